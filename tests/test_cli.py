import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO


def evalsuite(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "evalsuite", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow
def test_demo_no_arguments_writes_a_complete_run(tmp_path: Path):
    res = evalsuite(cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = next((tmp_path / "reports").iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["dataset"]["name"] == "smoke"
    assert set(meta["weights"].values()) == {"tiny"}
    df = pd.read_parquet(run_dir / "samples.parquet")
    assert len(df) > 0 and set(df["config"]) == set(meta["configs"])
    ok = df[df.status == "ok"]
    assert len(ok) > 0
    for rel in ok["image"]:
        assert (run_dir / rel).stat().st_size > 0
    report = (run_dir / "report.md").read_text().splitlines()
    assert "NO quality evidence" in report[0]


def test_runners_lists_resolved_parameters(tmp_path: Path):
    res = evalsuite("runners", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["flux-dev"]["params"]["steps"] == 28
    assert data["flux-dev"]["params"]["max_sequence_length"] == 512
    over = json.loads(
        evalsuite("runners", "flux-dev", "--json", "--set", "flux-dev.steps=9", cwd=tmp_path).stdout
    )
    assert over["flux-dev"]["params"]["steps"] == 9


def test_datasets_lists_smoke_with_fingerprint(tmp_path: Path):
    res = evalsuite("datasets", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["smoke"]["cases"] >= 1 and len(rows["smoke"]["fingerprint"]) == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--configs", "flux-dve"], "Did you mean 'flux-dev'"),
        (["run", "--metrics", "latncy"], "Did you mean 'latency'"),
        (["run", "--dataset", "smok"], "Did you mean 'smoke'"),
        (["run", "--set", "flux-dev.steps=abc"], "expected an integer"),
    ],
)
def test_usage_errors_exit_2_before_generating(tmp_path: Path, args, message):
    res = evalsuite(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert not (tmp_path / "reports").exists()


def test_every_subcommand_has_help(tmp_path: Path):
    for sub in ("run", "runners", "datasets", "report", "compare", "score", "profile"):
        res = evalsuite(sub, "--help", cwd=tmp_path)
        assert res.returncode == 0 and "usage: evalsuite" in res.stdout


def test_report_regenerates(tmp_path: Path, tiny_dataset: Path):
    res = evalsuite(
        "run",
        "--dataset",
        str(tiny_dataset),
        "--configs",
        "flux-dev",
        "--set",
        "steps=1",
        "--no-progress",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    run_dir = next((tmp_path / "reports").iterdir())
    (run_dir / "report.md").unlink()
    assert evalsuite("report", str(run_dir), cwd=tmp_path).returncode == 0
    text = (run_dir / "report.md").read_text()
    assert text.count("### Metric notes") <= 1
    # each metric's own aggregate is a table (configuration, metric, aggregate, N), not one long line
    head = text.index("Each metric's own aggregate")
    table = text[head:].split("\n\n", 2)[1].splitlines()
    assert table[0] == "| configuration | metric | aggregate | N |"
    assert any(row.startswith("| flux-dev | latency | ") for row in table[2:])


def test_verbose_flag_sets_evalsuite_to_debug():
    import logging

    from evalsuite.cli.main import build_parser, configure_logging

    names = ("evalsuite", "diffusers")
    saved = {n: logging.getLogger(n).level for n in (*names, "")}
    try:
        assert build_parser().parse_args(["-v", "runners"]).verbose == 1
        configure_logging(0)
        assert logging.getLogger("evalsuite.engine").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("diffusers").getEffectiveLevel() == logging.ERROR
        configure_logging(1)
        assert logging.getLogger("evalsuite.engine").getEffectiveLevel() == logging.DEBUG
        assert logging.getLogger("diffusers").getEffectiveLevel() == logging.ERROR
        configure_logging(2)
        assert logging.getLogger("diffusers").getEffectiveLevel() == logging.DEBUG
    finally:
        for n, level in saved.items():
            logging.getLogger(n or None).setLevel(level)


def test_repo_layout():
    for p in (
        "evalsuite",
        "benchmarks",
        "evalsuite/data/sets/smoke",
        "reports/baselines",
        "tests",
        "tox.ini",
        "pyproject.toml",
        "README.md",
        "Makefile",
        ".ci/run",
    ):
        assert (REPO / p).exists(), p
