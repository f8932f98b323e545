"""The bad-input corpus, continued: stored run directories given to the commands that read them
(``compare``, ``report``) when they are unfinished, held by a live run, of another kind, or when the
output cannot be written (found by an independent try of main; each case is the behaviour a user
must get: one line, the right exit code, nothing written)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    from tests.runfactory import copy_run, make_dataset, make_run

    tmp = tmp_path_factory.mktemp("runs")
    a = make_run(tmp / "ref", make_dataset(tmp / "ds", n=4))
    return a, copy_run(a, tmp / "new")


def _copies(two_runs, tmp_path: Path) -> tuple[Path, Path]:
    from tests.runfactory import copy_run

    return copy_run(two_runs[0], tmp_path / "ref"), copy_run(two_runs[1], tmp_path / "new")


def _edit_meta(run: Path, **changes) -> None:
    meta = json.loads((run / "run.json").read_text())
    meta.update(changes)
    (run / "run.json").write_text(json.dumps(meta))


# name → (changes to run B's run.json, fragments of stderr)
UNFINISHED = {
    "still-running": ({"finished": None}, ["has not finished (no 'finished' time in run.json)"]),
    "interrupted": ({"interrupted": True}, ["the run was interrupted"]),
    "internal-error": (
        {"error": {"phase": "generate", "message": "x", "traceback": ""}},
        ["stopped on an internal error (generate)"],
    ),
}


@pytest.mark.parametrize("name", list(UNFINISHED))
def test_compare_refuses_an_unfinished_run(name: str, two_runs, tmp_path: Path):
    a, b = _copies(two_runs, tmp_path)
    changes, fragments = UNFINISHED[name]
    _edit_meta(b, **changes)
    res = cli("compare", str(a), str(b), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    for frag in [*fragments, "its rows are incomplete", "--allow-unfinished"]:
        assert frag in res.stderr
    assert not list(b.glob("compare-vs-*"))
    # asked for explicitly, the partial comparison is made
    assert cli("compare", str(a), str(b), "--allow-unfinished", cwd=tmp_path).returncode in (0, 1)
    assert list(b.glob("compare-vs-*"))


def _hold_lock(run_dir: str, ready, release) -> None:
    from evalsuite.engine.lock import RunLock

    with RunLock(run_dir, purpose="run"):
        ready.set()
        release.wait(60)


@pytest.mark.parametrize("which", ["baseline", "candidate"])
def test_compare_refuses_a_run_a_live_process_writes(which: str, two_runs, tmp_path: Path):
    a, b = _copies(two_runs, tmp_path)
    held = a if which == "baseline" else b
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(held), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        res = cli("compare", str(a), str(b), cwd=tmp_path)
    finally:
        release.set()
        proc.join(30)
    assert res.returncode == 3, res.stderr
    assert f"run directory {held} is in use by another evalsuite run (pid {proc.pid}" in res.stderr
    assert "'evalsuite compare' reads a finished run" in res.stderr
    assert not list(b.glob("compare-vs-*"))
    # a lock left by a dead process does not block
    assert cli("compare", str(a), str(b), cwd=tmp_path).returncode in (0, 1)


def test_compare_out_that_is_a_file_is_a_usage_error(two_runs, tmp_path: Path):
    a, b = _copies(two_runs, tmp_path)
    f = tmp_path / "cmp.txt"
    f.write_text("keep")
    res = cli("compare", str(a), str(b), "--out", str(f), cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"--out {f}: is a file, not a folder" in res.stderr and f.read_text() == "keep"


def test_compare_into_a_read_only_run_names_out(two_runs, tmp_path: Path):
    # the default output is inside run B; on a read-only file system (a read-only bind mount in a
    # private mount namespace: root ignores file modes) the message names the folder and --out
    from tests.test_bad_inputs import _read_only_command

    a, b = _copies(two_runs, tmp_path)
    cmd = _read_only_command(b, [sys.executable, "-m", "evalsuite", "compare", str(a), str(b)])
    if cmd is None:
        pytest.skip("cannot make a folder read-only here (root without mount namespaces)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    if os.geteuid() != 0:
        for p in [b, *b.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    finally:
        for p in [b, *b.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "the default output" in res.stderr and "(inside run B): cannot write in" in res.stderr
    assert "pass --out DIR" in res.stderr


@pytest.mark.parametrize(
    "kind, md, writer",
    [
        ("frontier", "frontier.md", "evalsuite frontier"),
        ("plan", "plan.md", "evalsuite plan"),
        ("profile", "profile.md", "evalsuite profile"),
    ],
)
def test_report_refuses_a_sweep_run_naming_its_report(
    kind: str, md: str, writer: str, two_runs, tmp_path: Path
):
    _, b = _copies(two_runs, tmp_path)
    _edit_meta(b, kind=kind)
    before = (b / "run.json").read_bytes()
    res = cli("report", str(b), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"{b} is a {kind} run (run.json kind '{kind}')" in res.stderr
    assert f"Its report is {b / md}, written by '{writer}'" in res.stderr
    assert (b / "run.json").read_bytes() == before and not (b / "report.md").exists()
