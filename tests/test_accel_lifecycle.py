"""`evalsuite frontier` and `evalsuite plan` run in the run lifecycle `evalsuite run` and `evalsuite
profile` use: one lock, one store, one run.json schema with its provenance, the same signal handling
and exit codes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.cli.main import main
from evalsuite.engine.lock import LOCK_FILE, RunLock
from evalsuite.results.store import RunStore
from evalsuite.trackers.tracking import cold_then_warm
from tests.test_engine_lifecycle import COMMON_RUN_JSON

TINY = ["--weights", "tiny", "--device", "cpu", "--set", "tiny_size=32", "--set", "steps=2"]


def frontier_args(out: Path, run_id: str, points: list[str]) -> list[str]:
    return [
        "frontier",
        "--configs",
        "flux-dev",
        "--points",
        *points,
        "--cases",
        "1",
        "--bootstrap",
        "20",
        *TINY,
        "--out",
        str(out),
        "--run-id",
        run_id,
    ]


def plan_args(out: Path, run_id: str, strategies: list[str]) -> list[str]:
    return [
        "plan",
        "flux-dev",
        "--budget",
        "100GiB",
        "--strategies",
        *strategies,
        "--reps",
        "1",
        *TINY,
        "--out",
        str(out),
        "--run-id",
        run_id,
    ]


# the fields every scenario's run.json has (tests/test_engine_lifecycle.py checks run and profile)
COMMON = COMMON_RUN_JSON


@pytest.mark.parametrize("kind", ["frontier", "plan"])
def test_frontier_and_plan_write_the_shared_run_json(tmp_path: Path, kind: str, capsys):
    if kind == "frontier":
        code = main(frontier_args(tmp_path, "r", ["steps=1"]))
        outputs = ["frontier.md", "frontier.json", "frontier.csv", "pareto.png"]
    else:
        code = main(plan_args(tmp_path, "r", ["resident", "memory=te_cpu"]))
        outputs = ["plan.md", "plan.json", "plan.csv", "plan.png"]
    assert code == 0, capsys.readouterr().err[-2000:]
    run = tmp_path / "r"
    meta = json.loads((run / "run.json").read_text())
    assert COMMON <= set(meta), COMMON - set(meta)
    assert (meta["schema"], meta["kind"], meta["run_id"]) == ("evalsuite.run/2", kind, "r")
    assert meta["finished"] and meta["interrupted"] is False and kind in meta
    assert meta["environment"]["device"]["type"] == "cpu" and meta["environment"]["versions"]["torch"]
    assert meta["dataset"]["name"] == "smoke" and meta["dataset"]["fingerprint"]
    assert [a["kind"] for a in meta["attempts"]] == [kind]
    # the store reads it back with its checks: run.json lists every row's configuration
    checked = RunStore(run).read_meta()
    rows = RunStore(run).rows()
    assert {r["config"] for r in rows} <= set(checked["configs"])
    assert sum(s["counts"]["n"] for s in meta["summary"].values()) == len(rows) == 2
    assert len(pd.read_parquet(run / "samples.parquet")) == 2
    for name in outputs:
        assert (run / name).stat().st_size > 0, name
    assert not (run / LOCK_FILE).exists()
    if kind == "plan":  # (start_meta is shared: one kind suffices) a rerun in the same directory is a
        # second attempt; the first attempt's rows stay in the journal and stay described in run.json
        assert main(plan_args(tmp_path, "r", ["memory=vae_tiling"])) == 0
        again = RunStore(run).read_meta()
        assert [a["kind"] for a in again["attempts"]] == [kind, kind]
        assert "flux-dev[memory=te_cpu]" in again["configs"] and len(RunStore(run).rows()) == 3


@pytest.mark.parametrize("kind", ["frontier", "plan"])
def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path, kind: str, capsys):
    run = tmp_path / "r"
    args = (
        frontier_args(tmp_path, "r", ["steps=1"])
        if kind == "frontier"
        else plan_args(tmp_path, "r", ["resident"])
    )
    with RunLock(run, purpose="run"):
        assert main(args) == 3
    err = capsys.readouterr().err
    assert f"in use by another evalsuite run (pid {os.getpid()}" in err and "evalsuite run, since" in err
    assert not (run / "run.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        frontier_args(Path("OUT"), "../x", ["steps=1"]),
        plan_args(Path("OUT"), "a/b", ["resident"]),
        [*frontier_args(Path("OUT"), "ok", ["steps=1"]), "--cases", "0"],
        [*frontier_args(Path("OUT"), "ok", ["nonsense=1"])],
        [*plan_args(Path("OUT"), "ok", ["resident"]), "--budget", "0"],
        [*plan_args(Path("OUT"), "ok", ["cache=fbc"])],
        [*plan_args(Path("OUT"), "ok", ["resident"]), "--device", "cuda:x"],
    ],
    ids=[
        "frontier-run-id",
        "plan-run-id",
        "no-cases",
        "bad-point",
        "zero-budget",
        "not-a-strategy",
        "device",
    ],
)
def test_usage_errors_exit_2_before_anything_is_written(tmp_path: Path, args: list[str], capsys):
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in args]
    assert main(args) == 2
    assert "evalsuite: error:" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["frontier", "plan"])
def test_sigterm_stops_between_points_writes_everything_and_exits_143(tmp_path: Path, kind: str, capsys):
    """The signal arrives while the first point is measured: the sweep finishes that point, writes its
    rows, run.json (interrupted) and tables, releases the lock and exits 143."""
    run = tmp_path / "r"
    if kind == "frontier":
        args = frontier_args(tmp_path, "r", ["steps=1", "cache=fbc:1e9", "precision=layerwise", "qkv"])
    else:
        args = plan_args(
            tmp_path, "r", ["resident", "memory=te_cpu", "memory=vae_tiling", "memory=vae_slicing"]
        )
    late: list[int] = []
    old = signal.signal(
        signal.SIGTERM, lambda s, f: late.append(s)
    )  # a signal after the run must not kill pytest

    def send_on_first_row() -> None:
        t0 = time.monotonic()
        while not (run / "rows.jsonl").is_file() and time.monotonic() - t0 < 120:
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_on_first_row)
    sender.start()
    try:
        code = main(args)
    finally:
        sender.join()
        signal.signal(signal.SIGTERM, old)
    captured = capsys.readouterr()
    assert code == 143 and not late, captured.err[-2000:]
    assert "INTERRUPTED" in captured.err
    meta = json.loads((run / "run.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is None
    n = len(RunStore(run).rows())
    assert 1 <= n < 4 and sum(s["counts"]["n"] for s in meta["summary"].values()) == n
    assert (run / f"{kind}.md").is_file() and not (run / LOCK_FILE).exists()
    if kind == "plan":
        assert meta["plan"]["choices"][0]["verified"] == "not verified: the run was interrupted"


def test_cold_then_warm_keeps_the_cold_call_apart_and_runs_each_warm_call():
    seen: list[tuple[str, int]] = []
    m = cold_then_warm(
        "cpu",
        lambda: "cold",
        [lambda: "a", lambda: "b"],
        before_each=lambda i: seen.append(("before", i)),
        after_each=lambda i, c: seen.append((f"after:{c.out}", i)),
    )
    assert m.cold.out == "cold" and [c.out for c in m.warm] == ["a", "b"]
    assert seen == [
        ("before", 0),
        ("after:cold", 0),
        ("before", 1),
        ("after:a", 1),
        ("before", 2),
        ("after:b", 2),
    ]
    assert all(c.seconds >= 0 and c.readings["wall_s"] == c.seconds for c in [m.cold, *m.warm])
    assert m.peak("host_peak_rss_gib", cold=True) >= m.peak("host_peak_rss_gib") > 0
    assert m.peak("nvml_peak_gib") is None and "nvml_peak_gib" in (m.unavailable() or "")
    # repeating one call: both minima, capped
    calls = []
    r = cold_then_warm("cpu", lambda: calls.append(1), min_reps=3, min_seconds=0.0, max_reps=5)
    assert len(r.warm) == 3 and len(calls) == 4
    r = cold_then_warm("cpu", lambda: time.sleep(0.01), min_reps=1, min_seconds=10.0, max_reps=4)
    assert len(r.warm) == 4
    with pytest.raises(ValueError, match="min_reps"):
        cold_then_warm("cpu", lambda: None, min_reps=0)
