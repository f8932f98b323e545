"""The run lifecycle shared by `evalsuite run` and `evalsuite profile`, and the runner hooks the
engine's scenarios use instead of branching on model families."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalsuite.config import configuration as cfg
from evalsuite.data.registry import load_dataset
from evalsuite.registry import BUILTIN_RUNNERS, RUNNERS
from evalsuite.runners.weights import Weights
from evalsuite.trackers.flops import flux_tokens, flux_transformer_flops, step_flops

# one configuration per built-in runner, the ControlNet port with true CFG on
RUNNER_CONFIGS = {
    "flux-t2i": ("flux-dev", []),
    "flux-inpaint": ("flux-dev-inpaint", []),
    "flux-fill": ("flux-fill", []),
    "sdxl-inpaint": ("sdxl-inpaint", []),
    "flux-cn-inpaint": ("flux-cn-beta", ["true_guidance=2.0"]),
}


def _loaded(config: str, sets: list[str]):
    ovs = [cfg.Override.parse(s) for s in ["steps=2", "tiny_size=32", *sets]]
    conf = cfg.resolve(config, ovs)
    runner = RUNNERS.get(conf.runner)(conf.params, Weights("tiny"), "cpu")
    runner.load()
    return runner


def test_every_builtin_runner_is_covered():
    assert set(RUNNER_CONFIGS) == set(BUILTIN_RUNNERS)


@pytest.mark.parametrize("runner_name", sorted(RUNNER_CONFIGS))
def test_bare_call_does_the_work_of_generate(runner_name):
    """The overhead baseline of every runner (the ControlNet port included) is the bare pipeline call
    doing the same work: same size, and the same image as generate() within float tolerance."""
    config, sets = RUNNER_CONFIGS[runner_name]
    runner = _loaded(config, sets)
    case = next(c for c in load_dataset("smoke").cases if c.is_inpainting)
    try:
        harness = runner.generate([case], [5])[0].image
        bare = runner.bare_call([case], [5]).images[0]
    finally:
        runner.close()
    assert bare.size == harness.size == (32, 32)
    diff = np.abs(np.asarray(bare, dtype=np.int16) - np.asarray(harness, dtype=np.int16))
    assert diff.max() <= 2, f"{runner_name}: bare call differs from generate by {diff.max()} levels"


@pytest.mark.parametrize("runner_name", sorted(RUNNER_CONFIGS))
def test_flop_model_and_cfg_multiplier_come_from_the_runner(runner_name):
    config, sets = RUNNER_CONFIGS[runner_name]
    runner = _loaded(config, sets)
    try:
        flop, method = step_flops(runner, 1)
        mult = runner.cfg_batch_multiplier()
        flop2, _ = step_flops(runner, 2)
        inputs = runner.flop_inputs()
        assert set(runner.denoisers()) >= {i.label for i in inputs}
    finally:
        runner.close()
    assert flop > 0 and not math.isnan(flop)
    expected_mult = {"sdxl-inpaint": 2, "flux-cn-inpaint": 2}.get(runner_name, 1)  # CFG 8 / true CFG 2
    assert mult == expected_mult and f"batch×cfg={mult}" in method
    assert flop2 == pytest.approx(2 * flop, rel=1e-9)
    if runner_name == "flux-cn-inpaint":
        assert "ControlNet (" in method
    if runner_name == "flux-t2i":
        t = runner.params.max_sequence_length
        assert flop == flux_transformer_flops(inputs[0].config, flux_tokens(32, 32), t, 1)


def test_engine_has_no_model_family_branches():
    from pathlib import Path

    import evalsuite.engine as engine

    words = ("transformer", "unet", "controlnet", "true_cfg", "sdxl", '"flux')
    for path in Path(engine.__file__).parent.glob("*.py"):
        code = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
        for ln in code:
            low = ln.lower()
            hits = [w for w in words if w in low and "transformers" not in low and "--configs" not in low]
            assert not hits, f"{path.name}: {ln.strip()}"


COMMON_RUN_JSON = {
    "schema",
    "kind",
    "run_id",
    "created",
    "started",
    "finished",
    "interrupted",
    "dataset",
    "seeds",
    "generator",
    "determinism",
    "weights",
    "weights_dir",
    "metrics",
    "metric_weights",
    "environment",
    "configs",
    "attempts",
    "distributed",
    "summary",
}


def _profile_args(tmp_path, run_id: str, config: str = "flux-cn-beta") -> list[str]:
    return [
        "profile",
        "--weights",
        "tiny",
        "--device",
        "cpu",
        "--configs",
        config,
        "--resolutions",
        "32",
        "--steps",
        "1",
        "--min-reps",
        "1",
        "--max-reps",
        "1",
        "--min-seconds",
        "0",
        "--peak-seconds",
        "0.01",
        "--out",
        str(tmp_path),
        "--run-id",
        run_id,
    ]


def test_profile_and_run_share_lifecycle_schema_and_lock(tmp_path):
    """A ControlNet configuration gets its bare baseline in `evalsuite profile`; profile and run write
    the same run.json schema; profile takes the run lock."""
    import json

    import pandas as pd

    import evalsuite
    from evalsuite.cli.main import main
    from evalsuite.engine.lock import LOCK_FILE, RunLock, RunLockedError
    from evalsuite.scenarios.profile import ProfileSpec, profile

    assert main(_profile_args(tmp_path, "p")) == 0
    run = tmp_path / "p"
    row = pd.read_csv(run / "profile.csv").iloc[0]
    assert row.status == "ok" and row.baseline_median_s > 0 and not math.isnan(row.harness_overhead_pct)
    assert "baseline_error" not in row.index or pd.isna(row.baseline_error)
    assert "ControlNet (" in row.flop_method and "batch×cfg=1" in row.flop_method
    prof = json.loads((run / "run.json").read_text())
    gen = evalsuite.run(
        configs=["flux-dev"], limit=1, overrides=["steps=1"], out=tmp_path, metrics=[], progress=False
    ).meta
    assert COMMON_RUN_JSON <= set(prof) and COMMON_RUN_JSON <= set(gen)
    assert (prof["schema"], prof["kind"]) == ("evalsuite.run/2", "profile")
    assert (gen["schema"], gen["kind"]) == ("evalsuite.run/2", "generate")
    assert prof["dataset"]["fingerprint"] == gen["dataset"]["fingerprint"]
    assert prof["dataset"]["selection"].startswith("profile cases")
    assert not (run / LOCK_FILE).exists()
    spec = ProfileSpec(
        configs=["flux-dev"], resolutions=[32], steps=[1], min_reps=1, max_reps=1, min_seconds=0
    )
    with RunLock(run), pytest.raises(RunLockedError, match=r"in use by another evalsuite run"):
        profile(spec, weights="tiny", device="cpu", out=tmp_path, run_id="p")
