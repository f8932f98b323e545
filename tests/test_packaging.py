"""The built wheel is complete and works away from the repository.

A wheel is built from the tracked files (``pip wheel --no-deps --no-build-isolation``), checked
for the package data (built-in configurations, every file of the shipped sets, no ``__pycache__``),
installed with ``pip install --no-deps --target`` (the test interpreter's torch, diffusers... are
reused) and its ``evalsuite`` script runs the smoke demo from an empty temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _tracked_files() -> list[str]:
    try:
        res = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except OSError:
        res = None
    if res is not None and res.returncode == 0 and res.stdout.strip():
        return [f for f in res.stdout.splitlines() if (ROOT / f).is_file()]
    pytest.skip("not a git checkout: cannot tell the tracked files")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")  # build from a copy: no build/ or *.egg-info in the checkout
    for f in _tracked_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    # a stray cache folder must not reach the wheel
    (src / "evalsuite" / "data" / "sets" / "smoke" / "__pycache__").mkdir()
    (src / "evalsuite" / "data" / "sets" / "smoke" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("evalsuite-*.whl")
    return whl


def test_wheel_holds_configurations_and_every_shipped_file(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = _tracked_files()
    data = {f for f in tracked if f.startswith(("evalsuite/config/builtin/", "evalsuite/data/sets/"))}
    assert any(f.endswith("flux-dev.yaml") for f in data) and any("smoke/manifest.jsonl" in f for f in data)
    assert data - names == set(), "package data missing from the wheel"
    assert {f for f in tracked if f.startswith("evalsuite/") and f.endswith(".py")} <= names
    assert "evalsuite/py.typed" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "reports/"))]


def test_installed_wheel_runs_the_smoke_demo_from_anywhere(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-compile",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EVALSUITE_")},
        "PYTHONPATH": str(
            site
        ),  # the installed copy first; torch & co. from this interpreter's site-packages
        "HF_HUB_OFFLINE": "1",
        "EVALSUITE_THREADS": "1",
        "EVALSUITE_CACHE_DIR": str(tmp_path / "cache"),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import evalsuite; print(evalsuite.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.stdout.strip() == str(site / "evalsuite" / "__init__.py"), where.stdout + where.stderr
    script = site / "bin" / "evalsuite"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "evalsuite"]
    run = subprocess.run(
        [*cmd, "run", "--configs", "flux-dev", "--limit", "1", "--set", "steps=1", "--no-progress"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (run_dir,) = [p for p in (cwd / "reports").iterdir() if p.is_dir()]  # and catalog.duckdb
    for name in ("run.json", "samples.parquet", "report.md", "report.html", "summary.csv"):
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["dataset"]["name"] == "smoke" and meta["dataset"]["source"].startswith(str(site))
    assert str(ROOT) not in json.dumps(meta), "the installed package reached back into the repository"
    # an installed copy has a version, not the commit of whatever repository is around it
    assert meta["environment"]["git_commit"] is None
    assert meta["environment"]["versions"]["evalsuite"]
