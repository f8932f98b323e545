"""`evalsuite --help`, `evalsuite runners` and `evalsuite datasets` import neither torch, diffusers nor pandas.

Each command runs in a fresh interpreter; the check is on ``sys.modules`` after the command, not on
a time (speed goals live in ``benchmarks/test_bench_cli.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "pandas", "transformers", "matplotlib", "scipy", "duckdb")

PROBE = f"""
import contextlib, io, json, sys
from evalsuite.cli.main import main
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
print(json.dumps({{"rc": rc, "out": out.getvalue(), "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def _probe(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_evalsuite_is_light_and_the_api_still_resolves():
    code = f"import sys, evalsuite; print([m for m in {HEAVY!r} if m in sys.modules])"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", f"import evalsuite imported {res.stdout}"
    # every exported name resolves (here: torch & co. are already imported by the test process, the
    # resolution is the same); each lazy target is imported afresh from its module, whether or not an
    # earlier access already cached the attribute
    import importlib

    import evalsuite

    names = sorted(n for n in evalsuite.__all__ if n != "__version__")
    assert set(names) <= set(evalsuite._EXPORTS)
    for n in names:
        module = evalsuite._EXPORTS[n]
        assert getattr(importlib.import_module(module), n) is getattr(evalsuite, n), n
    assert callable(evalsuite.run) and callable(evalsuite.load_run)


def test_registry_lists_names_without_importing_modules():
    code = (
        "import sys; from evalsuite.registry import METRICS, RUNNERS; "
        "print(RUNNERS.names(), METRICS.names(), sorted(m for m in sys.modules if m.startswith('evalsuite.')))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "'flux-t2i'" in res.stdout and "'lpips_pair'" in res.stdout
    assert "evalsuite.runners.flux" not in res.stdout and "evalsuite.metrics.quality" not in res.stdout


def test_help_is_light():
    r = _probe("--help")
    assert r["rc"] == 0 and "runners" in r["out"] and "profile" in r["out"]
    assert r["heavy"] == []


def test_claims_help_is_light():
    r = _probe("claims", "--help")
    assert r["rc"] == 0 and "--claims FILE" in r["out"] and "supported" in r["out"]
    assert r["heavy"] == []


def test_catalog_help_is_light():
    r = _probe("catalog", "--help")
    assert r["rc"] == 0 and "regressions" in r["out"] and "query" in r["out"]
    assert r["heavy"] == []
    r = _probe("catalog", "trend", "--help")
    assert r["rc"] == 0 and "--plot FILE" in r["out"]
    assert r["heavy"] == []


def test_runners_is_light_and_shows_task_and_params():
    r = _probe("runners", "flux-dev", "flux-cn-beta", "--json")
    assert r["rc"] == 0
    shown = json.loads(r["out"])
    assert shown["flux-dev"]["task"] == "t2i" and shown["flux-cn-beta"]["task"] == "inpaint"
    assert shown["flux-dev"]["params"]["steps"] == 28
    assert r["heavy"] == []


def test_datasets_list_is_light():
    r = _probe("datasets", "list", "--json")
    assert r["rc"] == 0 and "smoke" in r["out"]
    assert r["heavy"] == []
