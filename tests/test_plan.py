"""evalsuite plan (memory budgets) on tiny weights on the CPU: strategies enumerated, accounting with a
fake budget; the enforced cap needs a CUDA device and is skipped with that reason."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import evalsuite  # noqa: F401
from evalsuite.accel.axes import PointSpec
from evalsuite.scenarios.plan import PlanSpec, choose, parse_gib, plan, resident_estimate, strategy_point


def test_parse_gib_accepts_units_and_names_bad_text():
    assert parse_gib("22GiB") == 22 and parse_gib("16G") == 16 and parse_gib("12") == 12
    assert parse_gib("512MiB") == 0.5
    with pytest.raises(ValueError, match="22GiB"):
        parse_gib("lots")


def test_strategies_are_precision_and_memory_points_only():
    assert strategy_point("resident") == PointSpec()
    assert strategy_point("precision=layerwise,memory=te_cpu").get("memory") == "te_cpu"
    with pytest.raises(ValueError, match="compile"):
        strategy_point("memory=te_cpu,compile=regional")


def test_resident_estimate_accounts_each_strategy_from_component_sizes():
    sizes = {"transformer": 22.0, "controlnet": 3.0, "text_encoder": 0.25, "text_encoder_2": 9.0, "vae": 0.2}
    dens = ["transformer", "controlnet"]
    est = {
        s: resident_estimate(sizes, dens, strategy_point(s))
        for s in (
            "resident",
            "memory=te_cpu",
            "precision=layerwise,memory=te_cpu",
            "memory=model_offload",
            "memory=te_cpu+group_block:1:stream",
            "memory=sequential",
            "precision=nf4",
        )
    }
    assert est["resident"] == pytest.approx(34.45)
    assert est["memory=te_cpu"] == pytest.approx(25.2)
    assert est["precision=layerwise,memory=te_cpu"] == pytest.approx(12.5 + 0.2)  # fp8 storage: half of bf16
    assert est["memory=model_offload"] == 22.0 and est["memory=sequential"] == 0.0
    assert est["memory=te_cpu+group_block:1:stream"] == pytest.approx(0.2)
    assert est["precision=nf4"] == pytest.approx(25.0 / 4 + 9.45)


def test_choose_takes_the_fastest_that_fits_by_measured_peak_first():
    rows = [
        {
            "strategy": "a",
            "status": "ok",
            "s_per_image": 1.0,
            "nvml_peak_gib": 40.0,
            "estimated_resident_gib": 30.0,
        },
        {
            "strategy": "b",
            "status": "ok",
            "s_per_image": 2.0,
            "nvml_peak_gib": 18.0,
            "estimated_resident_gib": 30.0,
        },
        {"strategy": "c", "status": "ok", "s_per_image": 9.0, "nvml_peak_gib": 8.0},
        {"strategy": "d", "status": "oom", "s_per_image": 0.1, "nvml_peak_gib": 1.0},
    ]
    assert choose(rows, 22)["strategy"] == "b"  # measured 18 GiB fits although its estimate does not
    assert choose(rows, 10)["strategy"] == "c" and choose(rows, 100)["strategy"] == "a"
    assert choose(rows, 5) is None


def test_plan_on_tiny_weights_with_a_fake_budget(tmp_path: Path):
    strategies = ["resident", "memory=te_cpu", "precision=layerwise,memory=te_cpu", "memory=model_offload"]
    # sizes of the tiny flux-dev: find them with a first, unverified run at a huge budget
    run = plan(
        PlanSpec("flux-dev", [1.0], strategies, reps=1),
        weights="tiny",
        device="cpu",
        out=tmp_path,
        run_id="p",
        overrides=["tiny_size=32", "steps=2"],
    )
    meta = json.loads((run / "run.json").read_text())
    sizes = meta["plan"]["component_gib"]
    assert set(sizes) >= {"transformer", "vae", "text_encoder", "text_encoder_2"}
    df = pd.read_csv(run / "plan.csv").set_index("strategy")
    assert df.loc["memory=model_offload", "status"] == "unavailable"
    assert "CUDA" in df.loc["memory=model_offload", "reason"]
    total = sum(sizes.values())
    te = sizes["text_encoder"] + sizes["text_encoder_2"]
    assert df.loc["resident", "estimated_resident_gib"] == pytest.approx(total)
    assert df.loc["memory=te_cpu", "estimated_resident_gib"] == pytest.approx(total - te)
    assert df.loc["precision=layerwise,memory=te_cpu", "estimated_resident_gib"] < total - te
    # a fake budget between "text encoders away" and "all resident": only te_cpu-like strategies fit
    budget = total - te / 2
    run2 = plan(
        PlanSpec("flux-dev", [budget, 1e-9], strategies[:3], reps=1),
        weights="tiny",
        device="cpu",
        out=tmp_path,
        run_id="p2",
        overrides=["tiny_size=32", "steps=2"],
    )
    choices = json.loads((run2 / "run.json").read_text())["plan"]["choices"]
    assert choices[0]["strategy"] in ("memory=te_cpu", "precision=layerwise,memory=te_cpu")
    assert choices[0]["peak_basis"].startswith("estimate") and "no CUDA device" in choices[0]["verified"]
    assert choices[1]["strategy"] is None
    md = (run2 / "plan.md").read_text()
    assert "none measured fits" in md and "Fastest under each budget" in md
    assert (run2 / "plan.png").stat().st_size > 0
    assert not math.isnan(choices[0]["s_per_image"])
