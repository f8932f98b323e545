"""`evalsuite compare` on frontier runs: the quantities the frontier declares, thresholds on them."""

import json
import shutil
from pathlib import Path

import pytest

from evalsuite.cli.main import main
from evalsuite.scenarios.frontier import FrontierSpec, frontier


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("frontier")
    spec = FrontierSpec(
        configs=["flux-dev"], points=["steps=2"], n_cases=1, seeds=[0], bootstrap_resamples=50
    )
    return frontier(
        spec, weights="tiny", device="cpu", out=out, run_id="a", overrides=["tiny_size=32", "steps=3"]
    )


def _slower_copy(run_a: Path, dst: Path, factor: float) -> Path:
    shutil.copytree(run_a, dst)
    (dst / "samples.parquet").unlink()  # rebuilt from the journal
    lines = []
    for line in (dst / "rows.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("s_per_image") is not None:
            row["s_per_image"] *= factor
        lines.append(json.dumps(row))
    (dst / "rows.jsonl").write_text("\n".join(lines) + "\n")
    meta = json.loads((dst / "run.json").read_text())
    meta["run_id"] = dst.name
    (dst / "run.json").write_text(json.dumps(meta))
    return dst


def test_compare_reads_the_declared_frontier_quantities(run_a: Path, tmp_path: Path, capsys):
    meta = json.loads((run_a / "run.json").read_text())
    assert meta["quantities"]["s_per_image"]["higher_is_better"] is False
    assert main(["compare", str(run_a), str(run_a), "--out", str(tmp_path / "same")]) == 0
    cmp = json.loads((tmp_path / "same" / "compare.json").read_text())
    names = {c["quantity"] for c in cmp["changes"]}
    assert {"s_per_image", "lpips_mean", "psnr_mean"} <= names
    # the per-point bookkeeping columns are not compared as if they were results
    assert not names & {"lpips_ci_low", "s_ci_high", "n_images", "load_s", "first_call_s", "steps"}


def test_a_slower_frontier_fails_a_latency_threshold(run_a: Path, tmp_path: Path):
    b = _slower_copy(run_a, tmp_path / "b", 1.5)
    th = tmp_path / "th.yaml"
    th.write_text("thresholds:\n  - metric: s_per_image\n    max_regression: 0.10\n    mode: relative\n")
    assert main(["compare", str(run_a), str(b), "--thresholds", str(th), "--out", str(tmp_path / "c1")]) == 1
    ok = _slower_copy(run_a, tmp_path / "b2", 1.02)
    assert main(["compare", str(run_a), str(ok), "--thresholds", str(th), "--out", str(tmp_path / "c2")]) == 0
