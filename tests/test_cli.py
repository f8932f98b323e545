import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.cli.main import NOISY_LOGGERS, build_parser, main
from tests.conftest import REPO


def evalsuite(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``evalsuite ARGS`` in a child process (the entry point, signals, a fresh interpreter)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "evalsuite", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``evalsuite ARGS`` in this process (``evalsuite.cli.main.main``, what the entry point calls): its
    exit code (argparse's own exits included), stdout and stderr; logging levels are restored after.

    torch and the tiny models are imported once per test process instead of once per command; the
    tests that need the entry point or signals use :func:`evalsuite`.
    """
    names = ("", "evalsuite", *NOISY_LOGGERS)
    levels = {n: logging.getLogger(n or None).level for n in names}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # --help and argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        for n, level in levels.items():
            logging.getLogger(n or None).setLevel(level)
    return subprocess.CompletedProcess(["evalsuite", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The demo's run (``evalsuite run`` with its defaults: every configuration on the smoke set, tiny
    weights) at 2 denoising steps instead of each configuration's default (28, 50...: the same code
    path, run 14-25 times more), through the CLI in this process; shared by the tests below."""
    cwd = tmp_path_factory.mktemp("demo")
    res = cli("run", "--set", "steps=2", "--no-progress", cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = [p for p in (cwd / "reports").iterdir() if p.is_dir()]  # and catalog.duckdb
    return run_dir, res


def test_no_arguments_is_run_with_its_defaults(tmp_path: Path, monkeypatch):
    from evalsuite.cli import run as run_cli

    seen = []
    monkeypatch.setattr(run_cli, "cmd_run", lambda args: seen.append(vars(args)) or 0)
    assert cli(cwd=tmp_path).returncode == 0
    want = vars(build_parser().parse_args(["run"]))
    (got,) = seen
    assert {k: v for k, v in got.items() if k != "func"} == {k: v for k, v in want.items() if k != "func"}
    assert got["command"] == "run" and got["configs"] is None and got["dataset"] in (None, "smoke")


@pytest.mark.slow
def test_demo_no_arguments_writes_a_complete_run(demo):
    run_dir, res = demo
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["dataset"]["name"] == "smoke"
    assert set(meta["weights"].values()) == {"tiny"}
    builtin = {p.stem for p in (REPO / "evalsuite" / "config" / "builtin").glob("*.yaml")}
    assert set(meta["configs"]) == builtin  # every built-in configuration
    df = pd.read_parquet(run_dir / "samples.parquet")
    assert len(df) > 0 and set(df["config"]) == set(meta["configs"])
    ok = df[df.status == "ok"]
    assert len(ok) > 0
    for rel in ok["image"]:
        assert (run_dir / rel).stat().st_size > 0
    report = (run_dir / "report.md").read_text().splitlines()
    assert "NO quality evidence" in report[0]
    # each configuration on the cases it can use: 6 inpainting configurations × 4 inpainting cases,
    # 2 text-to-image ones × 8 prompts, no skipped rows (issue 26)
    assert "40 rows: 40 ok, 0 error, 0 skipped; no failures" in res.stdout
    text = "\n".join(report)
    assert text.index("## Headline") < text.index("## Claims (alimama-flux)") < text.index("## Run")
    claims = text.split("## Claims (alimama-flux)")[1].split("\n## ")[0]
    assert claims.count("**not measurable**") >= 6 and "**supported**" not in claims
    assert "tiny weights carry no quality evidence" in claims


NATIVE = ["flux-dev-turbo8", "flux-dev-inpaint", "sdxl-inpaint", "flux-fill"]


@pytest.mark.slow
def test_demo_runs_the_native_configurations_on_the_smoke_set(demo):
    # (was tests/test_runner_native.py's own run of these five configurations: the demo runs them all)
    run_dir, _ = demo
    df = pd.read_parquet(run_dir / "samples.parquet")
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["configs"]["flux-dev-turbo8"]["effective"]["lora_synthetic"] is True
    for name in ("flux-dev-inpaint", "sdxl-inpaint", "flux-fill"):
        rows = df[df.config == name]
        assert set(rows.case_id) == {
            "inpaint-astronaut",
            "inpaint-chelsea",
            "inpaint-coffee",
            "inpaint-rocket",
        }
        assert set(rows.status) == {"ok"}
    for name in ("flux-dev", "flux-dev-turbo8"):
        rows = df[df.config == name]
        assert len(rows) == 8 and set(rows.status) == {"ok"}
    assert (REPO / "evalsuite" / "config" / "builtin" / "flux-fill.yaml").is_file()


def test_runners_lists_resolved_parameters(tmp_path: Path):
    res = cli("runners", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["flux-dev"]["params"]["steps"] == 28
    assert data["flux-dev"]["params"]["max_sequence_length"] == 512
    over = json.loads(cli("runners", "flux-dev", "--json", "--set", "flux-dev.steps=9", cwd=tmp_path).stdout)
    assert over["flux-dev"]["params"]["steps"] == 9


def test_datasets_lists_smoke_with_fingerprint(tmp_path: Path):
    res = cli("datasets", "--json", cwd=tmp_path)
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
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert not (tmp_path / "reports").exists()


def test_every_subcommand_has_help(tmp_path: Path):
    for sub in ("run", "runners", "datasets", "report", "compare", "score", "profile", "frontier", "plan"):
        res = cli(sub, "--help", cwd=tmp_path)
        assert res.returncode == 0 and "usage: evalsuite" in res.stdout, sub
    # and through the entry point, in a fresh interpreter
    res = evalsuite("--help", cwd=tmp_path)
    assert res.returncode == 0 and "usage: evalsuite" in res.stdout and "COMMAND" in res.stdout


def test_report_regenerates(tmp_path: Path, tiny_dataset: Path):
    res = cli(
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
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    (run_dir / "report.md").unlink()
    rep = cli("report", str(run_dir), cwd=tmp_path)
    assert rep.returncode == 0
    # the terminal shows the headline and where the claims stand (issue 26)
    assert (
        rep.stdout.startswith("configuration ")
        and "flux-dev: no sibling to compare with in this run; " in rep.stdout
    )
    assert "The alimama-flux claims name none of this run's configurations" in rep.stdout
    bad = cli("report", str(run_dir), "--reference-config", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "--reference-config 'nope' is not a configuration" in bad.stderr
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
