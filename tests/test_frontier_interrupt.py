"""A frontier point aborted mid-way (a second Ctrl-C, or a time limit's SIGTERM during a long compile)
is listed as interrupted, with where and after how long, instead of vanishing from the table."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.forkcli import Evalsuite

POINT = "qkv,compile=regional"


@pytest.mark.slow
def test_a_point_aborted_in_its_cold_compile_is_listed_as_interrupted(tmp_path: Path):
    args = ["frontier", "--configs", "flux-dev", "--points", POINT, "--cases", "1", "--weights", "tiny"]
    args += ["--device", "cpu", "--bootstrap", "50", "--out", str(tmp_path), "--run-id", "f", "--no-catalog"]
    env = {
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
    }
    p = Evalsuite(args, cwd=REPO, env=env)
    err = p._err  # the child's stderr file, written as it runs
    t0 = time.monotonic()
    while "cold call (compiling)" not in (err.read_text() if err.is_file() else ""):
        assert p.poll() is None, f"ended (rc {p.returncode}) before the compiled point's cold call"
        assert time.monotonic() - t0 < 240, "timed out waiting for the cold call"
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)  # the first: finish the current point ...
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)  # ... the second: abort at once, inside the compile
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr[-2000:]
    run = tmp_path / "f"
    rows = [json.loads(line) for line in (run / "rows.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "interrupted"]
    assert rows[1]["config"] == f"flux-dev[{POINT}]"
    md = (run / "frontier.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith(f"- `flux-dev[{POINT}]`"))
    assert ": interrupted: stopped after " in line and "s in its cold call (compiling); not measured" in line
