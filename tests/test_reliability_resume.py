"""Resume after SIGKILL at several points, clean stop on SIGINT and SIGTERM, and the run-directory lock — with
``evalsuite run`` in processes of their own on the tiny FLUX model, forked from a preloaded server
(tests/forkcli.py; the runs that resume them, which receive no signal, are the same command run in
this process)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import evalsuite
from evalsuite.cli.main import main
from evalsuite.engine.lock import LOCK_FILE, RunLock, RunLockedError
from tests.conftest import REPO, write_dataset
from tests.forkcli import Evalsuite
from tests.test_cli import cli

N_CASES = 6
STEPS = 2


def _timing(col: str) -> bool:
    return col.endswith("_s") or col in {
        "latency",
        "first_call",
        "host_peak_rss_gib",
        "nvml_peak_gib",
        "energy_j",
        "unavailable",
    }


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in df.columns if not _timing(c)]].reset_index(drop=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    rows = [
        {"id": f"case{i}", "prompt": f"prompt number {i}: a small house by a lake", "seed": 100 + i}
        for i in range(N_CASES)
    ]
    return write_dataset(tmp_path_factory.mktemp("resume") / "ds", rows)


@pytest.fixture(scope="module")
def baseline(dataset: Path, tmp_path_factory) -> evalsuite.RunResult:
    """An uninterrupted run of the same command, in-process."""
    return evalsuite.run(
        configs=["flux-dev"],
        dataset=str(dataset),
        weights="tiny",
        device="cpu",
        overrides=[f"steps={STEPS}"],
        run_dir=tmp_path_factory.mktemp("base") / "run",
        progress=False,
    )


def _run_args(dataset: Path, run_dir: Path) -> list[str]:
    """The ``evalsuite run`` arguments every run of this module uses."""
    return [
        "run",
        "--configs",
        "flux-dev",
        "--weights",
        "tiny",
        "--device",
        "cpu",
        "--dataset",
        str(dataset),
        "--set",
        f"steps={STEPS}",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]


def _start(dataset: Path, run_dir: Path) -> Evalsuite:
    """``evalsuite run`` in a process of its own (forked from a preloaded server: see tests/forkcli.py)."""
    return Evalsuite(_run_args(dataset, run_dir), cwd=REPO, env={"PYTHONUNBUFFERED": "1"})


def _resume_here(dataset: Path, run_dir: Path, caplog) -> tuple[int, str, str]:
    """The command of :func:`_start`, run to its end in this process: (exit code, stdout, stderr + log)."""
    args = _run_args(dataset, run_dir)
    caplog.clear()
    with caplog.at_level("INFO", logger="evalsuite"):
        res = cli(*args, cwd=run_dir.parent)
    return res.returncode, res.stdout, res.stderr + caplog.text


def _journal(run_dir: Path) -> list[dict]:
    """Complete journal lines only (a torn last line is not JSON)."""
    text = (run_dir / "rows.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and line.endswith("}")]


def _journal_rows(run_dir: Path) -> int:
    p = run_dir / "rows.jsonl"
    return p.read_bytes().count(b'"status": "ok"') if p.is_file() else 0


def _wait_for(proc: Evalsuite, cond, what: str, timeout: float = 240.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended (rc {proc.returncode}) before {what}:\n{err[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)  # the child needs the CPU more than this loop does


def _kill(proc: Evalsuite) -> None:
    assert proc.poll() is None, "the run finished before the kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _lock_holder(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / LOCK_FILE).read_text()).get("pid")
    except (OSError, ValueError):
        return None


def _check_final(run_dir: Path, baseline: evalsuite.RunResult) -> pd.DataFrame:
    df = pd.read_parquet(run_dir / "samples.parquet")
    pd.testing.assert_frame_equal(_comparable(df), _comparable(baseline.samples))
    assert set(df.status) == {"ok"} and len(df) == N_CASES
    for rel in df.image:
        with Image.open(run_dir / rel) as im:
            im.verify()  # complete, uncorrupted PNG
        # deterministic generation: identical bytes to the uninterrupted run's image
        assert (run_dir / rel).read_bytes() == (baseline.run_dir / rel).read_bytes(), rel
    # every generated row appears exactly once in the journal: nothing recomputed, nothing duplicated
    gen = Counter(r["case_id"] for r in _journal(run_dir) if r.get("status") == "ok")
    assert gen == Counter({f"case{i}": 1 for i in range(N_CASES)}), gen
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / LOCK_FILE).exists()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["finished"] and meta["interrupted"] is False
    return df


@pytest.mark.slow
def test_sigkill_at_several_points_then_rerun_completes_identically(
    dataset: Path, baseline, tmp_path: Path, caplog
):
    run_dir = tmp_path / "run"

    # 1. killed while the model loads: the run directory and its lock exist, no row yet
    p = _start(dataset, run_dir)
    _wait_for(
        p, lambda: (run_dir / "run.json").is_file() and _lock_holder(run_dir) == p.pid, "run.json and lock"
    )
    _kill(p)
    assert _journal_rows(run_dir) == 0 and _lock_holder(run_dir) == p.pid  # stale lock left behind

    # 2. killed after 2 rows; 3. killed after 4 rows (each rerun resumes the previous one)
    mtimes: dict[str, int] = {}
    for n in (2, 4):
        p = _start(dataset, run_dir)
        _wait_for(p, lambda n=n: _journal_rows(run_dir) >= n, f"{n} rows")
        _kill(p)
        assert _journal_rows(run_dir) < N_CASES
        mtimes = {r["image"]: (run_dir / r["image"]).stat().st_mtime_ns for r in _journal(run_dir)}
    last_pid = p.pid
    done = set(mtimes)

    # what a crash in the middle of writes leaves behind: a temporary image file, an image whose
    # row was never journaled (truncated, as a non-atomic writer would leave it) and a torn line
    pending = sorted({f"images/flux-dev/case{i}-{100 + i}.png" for i in range(N_CASES)} - done)
    (run_dir / "images/flux-dev/.case5-105.png.abc.tmp").write_bytes(b"\x89PNG partial")
    (run_dir / pending[0]).write_bytes((baseline.run_dir / pending[0]).read_bytes()[:100])
    with open(run_dir / "rows.jsonl", "ab") as f:
        f.write(b'{"config": "flux-dev", "case_id": "case5", "seed": 105, "sta')

    # 4. the same command completes the run, taking over the dead run's lock
    code, out, err = _resume_here(dataset, run_dir, caplog)
    assert code == 0, err[-3000:]
    assert f"taking over a stale lock from pid {last_pid}" in err
    assert "6 rows: 6 ok, 0 error, 0 skipped; no failures" in out
    _check_final(run_dir, baseline)
    # rows finished before the kills were not recomputed
    assert {r: (run_dir / r).stat().st_mtime_ns for r in done} == mtimes
    attempts = json.loads((run_dir / "run.json").read_text())["attempts"]
    assert len(attempts) == 4 and attempts[-1]["took_over_stale_lock_of_pid"] == last_pid


@pytest.mark.slow
def test_sigint_stops_after_the_current_case_with_everything_written(
    dataset: Path, baseline, tmp_path: Path, caplog
):
    run_dir = tmp_path / "run"
    p = _start(dataset, run_dir)
    _wait_for(p, lambda: _journal_rows(run_dir) >= 1, "the first row")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-3000:]
    assert "interrupt: finishing the current case" in err
    assert "INTERRUPTED: " in err and "rerun the same command to resume" in err
    df = pd.read_parquet(run_dir / "samples.parquet")
    n = len(df)
    assert 1 <= n < N_CASES and set(df.status) == {"ok"}
    assert n == _journal_rows(run_dir)  # the parquet holds every journaled row
    for rel in df.image:
        with Image.open(run_dir / rel) as im:
            im.verify()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is None
    assert meta["summary"]["flux-dev"]["counts"]["pending"] == N_CASES - n
    assert (run_dir / "report.md").is_file() and not (run_dir / LOCK_FILE).exists()

    code, out, err = _resume_here(dataset, run_dir, caplog)  # resume
    assert code == 0, err[-3000:]
    assert "taking over a stale lock" not in err  # the interrupted run released its lock
    _check_final(run_dir, baseline)


# -- SIGTERM is handled like Ctrl-C --------------------------------------------------------------------


def test_sigterm_finishes_the_case_writes_everything_and_exits_143(tmp_path: Path):
    run = tmp_path / "r"
    args = [
        "run",
        "--configs",
        "flux-dev",
        "--dataset",
        "smoke",
        "--metrics",
        "latency",
        "--no-progress",
        "--set",
        "steps=30",
        "--run-dir",
        str(run),
    ]
    p = Evalsuite(args, cwd=tmp_path)  # a process of its own, forked from a preloaded server
    t0 = time.monotonic()
    while not ((run / "rows.jsonl").is_file() and (run / "rows.jsonl").read_bytes().count(b"\n") >= 1):
        assert p.poll() is None, p.communicate()[1][-3000:]
        assert time.monotonic() - t0 < 300, "no row after 300 s"
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 143, err[-3000:]
    assert (
        "interrupt: finishing the current case, then writing everything and stopping (SIGTERM received" in err
        and "INTERRUPTED: " in err
    )
    meta = json.loads((run / "run.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is None
    df = pd.read_parquet(run / "samples.parquet")
    assert 1 <= len(df) < 8 and set(df.status) == {"ok"}
    assert meta["summary"]["flux-dev"]["counts"]["pending"] == 8 - len(df)
    assert (run / "report.md").is_file() and not (run / LOCK_FILE).exists()


@pytest.mark.slow
def test_concurrent_run_is_refused_naming_the_holder_pid(dataset: Path, tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    p = _start(dataset, run_dir)
    try:
        _wait_for(p, lambda: _lock_holder(run_dir) == p.pid, "the lock")
        with pytest.raises(RunLockedError, match=rf"in use by another evalsuite run \(pid {p.pid} on "):
            evalsuite.run(
                configs=["flux-dev"],
                dataset=str(dataset),
                overrides=[f"steps={STEPS}"],
                run_dir=run_dir,
                progress=False,
            )
        code = main(
            [
                "run",
                "--configs",
                "flux-dev",
                "--dataset",
                str(dataset),
                "--set",
                f"steps={STEPS}",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        assert code == 3
        assert f"pid {p.pid}" in capsys.readouterr().err
    finally:
        p.kill()
        p.communicate()


def test_lock_in_process(tmp_path: Path, caplog):
    with RunLock(tmp_path) as first:
        assert first.held and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()  # released and removed
    # a lock file left by a dead process (nobody holds the flock) is taken over, naming the old pid
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 999999999, "host": "h", "since": "then"}))
    with caplog.at_level("WARNING"), RunLock(tmp_path) as lock:
        assert lock.took_over == {"pid": 999999999, "host": "h", "since": "then"}
    assert "taking over a stale lock from pid 999999999" in caplog.text
