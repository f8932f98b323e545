"""The acceleration axes (evalsuite.accel) on tiny weights on the CPU, and the frontier scenario."""

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import evalsuite  # noqa: F401  (registers runners and metrics)
from evalsuite.accel.axes import ApplyContext, PointSpec, apply_point, load_params
from evalsuite.accel.counters import PassCounter, main_denoiser
from evalsuite.accel.errors import Unavailable
from evalsuite.config import configuration as cfg
from evalsuite.data.registry import load_dataset
from evalsuite.registry import RUNNERS
from evalsuite.report.frontier import fastest_within, pareto_mask
from evalsuite.runners.weights import Weights
from evalsuite.scenarios.frontier import FrontierSpec, bootstrap_ci, frontier
from evalsuite.scenarios.profile import pick_cases

SIZE = 32


def _runner(point: PointSpec, config: str = "flux-dev", steps: int = 3):
    conf = cfg.resolve(config)
    params = dataclasses.replace(conf.params, steps=steps, tiny_size=SIZE)
    r = RUNNERS.get(conf.runner)(load_params(params, point), Weights("tiny"), "cpu")
    r.load()
    cases, seeds = pick_cases(r, list(load_dataset("smoke").cases), 1)
    return r, cases, seeds


def test_point_parsing_is_canonical_and_rejects_bad_axes():
    a = PointSpec.parse("compile=regional, qkv ,precision=fp8")
    assert a.label == "precision=fp8,qkv,compile=regional" and a.compiled
    assert PointSpec.parse("ref") == PointSpec.parse("") == PointSpec()
    assert PointSpec.parse("cache=fbc:0.1").speed_depends_on_weights
    assert PointSpec.parse("cache=mag").speed_depends_on_weights
    assert not PointSpec.parse("cache=taylorseer,steps=8").speed_depends_on_weights
    for bad in ("warp=9", "precision=fp4", "cache=nope", "qkv,qkv", "steps=0", "compile=max"):
        with pytest.raises(ValueError):
            PointSpec.parse(bad)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


_CUDA = torch.cuda.is_available()
# Axis points that need a package or a device this machine may lack: (whether it is here, what it
# needs, a word the "unavailable" reason must contain). Where the need is met the point must run;
# where it is not, the test checks the reason names the axis and the missing piece (a CPU machine
# without the accel extras runs only this branch for them, and the test id says so).
NEEDS = {
    "precision=fp8": (
        _has("torchao") and _CUDA,
        "torchao+CUDA",
        "torchao" if not _has("torchao") else "CUDA",
    ),
    "precision=int8wo": (_has("torchao"), "torchao", "torchao"),
    "precision=nf4": (_has("bitsandbytes") and _CUDA, "bitsandbytes+CUDA", "bitsandbytes"),
    "precision=gguf": (_has("gguf"), "gguf", "gguf"),
    "attention=_native_cudnn": (_CUDA, "CUDA", "CUDA"),
    "attention=flash": (_has("flash_attn") and _CUDA, "flash-attn+CUDA", "flash-attn"),
    "attention=sage": (_has("sageattention") and _CUDA, "sageattention+CUDA", "sageattention"),
    "memory=model_offload": (_CUDA, "CUDA", "CUDA"),
    "memory=group_block:2:stream": (_CUDA, "CUDA", "CUDA"),
    "memory=empty_cache": (_CUDA, "CUDA", "CUDA"),
}
AXIS_POINTS = [
    "precision=bf16",
    "precision=layerwise",
    "precision=fp8",
    "precision=int8wo",
    "precision=nf4",
    "precision=gguf",
    "qkv",
    "attention=native",
    "attention=_native_cudnn",
    "attention=flash",
    "attention=sage",
    "cache=fbc",
    "cache=taylorseer",
    "cache=pab",
    "cache=faster",
    "cache=mag",
    "memory=te_cpu+vae_tiling+vae_slicing",
    "memory=te_offload",
    "memory=model_offload",
    "memory=group_block:2:stream",
    "memory=empty_cache",
    "lora=off,steps=2",
]


def _point_id(text: str) -> str:
    here, needs, _ = NEEDS.get(text, (True, "", ""))
    return f"{text}[runs]" if here else f"{text}[unavailable-here:needs-{needs}]"


@pytest.mark.parametrize("text", AXIS_POINTS, ids=_point_id)
def test_every_axis_applies_and_generates_or_says_why(text):
    pt = PointSpec.parse(text)
    r, cases, seeds = _runner(pt)
    ctx = ApplyContext(calibrate=lambda: r.generate(cases, seeds), config="flux-dev")
    here, _, word = NEEDS.get(text, (True, "", ""))
    if not here:
        with pytest.raises(Unavailable) as info:
            apply_point(r, pt, ctx)
        reason = str(info.value)
        # the reason names the axis and what is missing, and the runner still generates without it
        assert reason.startswith(f"{text}: ") and word in reason, reason
        if word == "torchao":
            assert "pip install 'evalsuite[accel]'" in reason, reason
        assert r.generate(cases, seeds)[0].image.size == (SIZE, SIZE)
        return
    notes = apply_point(r, pt, ctx)
    out = r.generate(cases, seeds)
    assert out[0].image.size == (SIZE, SIZE)
    assert np.asarray(out[0].image).std() > 0
    if text.startswith("cache=mag"):
        assert len(ctx.mag_ratios["flux-dev|steps=3"]) == 3
    assert isinstance(notes, dict)


def test_axes_compose_and_counters_count_reuse():
    pt = PointSpec.parse("precision=layerwise,qkv,cache=fbc:1e9,memory=te_cpu+vae_tiling")
    r, cases, seeds = _runner(pt, steps=4)
    notes = apply_point(r, pt)
    assert {"precision", "qkv", "cache", "text_encoders", "vae_tiling"} <= set(notes)
    counter = PassCounter(main_denoiser(r)[1]).attach()
    assert counter.blocks == 4  # 2 double + 2 single blocks of the tiny FLUX transformer
    r.generate(cases, seeds)
    snap = counter.snapshot()
    # an enormous threshold: after the first step only the first block is recomputed
    assert snap["denoiser_calls"] == 4
    assert snap["passes_computed"] == pytest.approx(1 + 3 / 4)
    assert snap["passes_reused"] == pytest.approx(4 - 1.75)

    ref, cases, seeds = _runner(PointSpec(), steps=4)
    c2 = PassCounter(main_denoiser(ref)[1]).attach()
    ref.generate(cases, seeds)
    assert c2.snapshot() == {"denoiser_calls": 4.0, "passes_computed": 4.0, "passes_reused": 0.0}


def test_cache_runs_inside_a_pipeline_without_cache_context():
    # the ControlNet port's loop calls the transformer without diffusers' cache_context
    pt = PointSpec.parse("cache=taylorseer")
    r, cases, seeds = _runner(pt, config="flux-cn-beta", steps=6)
    apply_point(r, pt)
    counter = PassCounter(main_denoiser(r)[1]).attach()
    r.generate(cases, seeds)
    assert counter.snapshot()["passes_reused"] > 0


def test_pareto_front_and_fastest_within():
    df = pd.DataFrame(
        {
            "base_config": ["c"] * 4,
            "point": ["ref", "a", "b", "d"],
            "status": ["ok"] * 4,
            "is_reference": [True, False, False, False],
            "s_per_image": [4.0, 2.0, 3.0, 1.0],
            "lpips_mean": [0.0, 0.05, 0.1, 0.3],
            "speed_depends_on_weights": [False, False, True, False],
        }
    )
    assert list(pareto_mask(df)) == [True, True, False, True]
    best = {f["lpips_max"]: f for f in fastest_within(df, [0.01, 0.1, 0.5])}
    assert best[0.01]["point"] == "ref" and best[0.1]["point"] == "a" and best[0.5]["point"] == "d"
    assert best[0.1]["speedup"] == 2.0


def test_bootstrap_ci_brackets_the_mean_and_says_when_it_cannot():
    lo, hi, how = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0], resamples=500)
    assert lo < 3.0 < hi and "bootstrap" in how
    assert math.isnan(bootstrap_ci([1.0])[0])
    assert bootstrap_ci([2.0, 2.0])[:2] == (2.0, 2.0)


def test_frontier_scenario_on_tiny_weights(tmp_path: Path):
    spec = FrontierSpec(
        configs=["flux-cn-beta"],
        points=["steps=2", "cache=fbc:1e9", "precision=fp8", "cache=mag"],
        n_cases=2,
        seeds=[0],
        lpips_max=[0.0, 10.0],
        bootstrap_resamples=200,
    )
    run = frontier(
        spec,
        weights="tiny",
        device="cpu",
        out=tmp_path,
        run_id="f",
        overrides=[f"tiny_size={SIZE}", "steps=3"],
    )
    meta = json.loads((run / "run.json").read_text())
    assert meta["kind"] == "frontier" and meta["frontier"]["plumbing_only"]
    df = pd.read_csv(run / "frontier.csv")
    by = df.set_index("point")
    assert by.loc["ref", "status"] == "ok" and by.loc["ref", "lpips_mean"] == 0.0
    assert by.loc["precision=fp8", "status"] == "unavailable"
    assert "CUDA" in by.loc["precision=fp8", "reason"] or "torchao" in by.loc["precision=fp8", "reason"]
    ok = by[by.status == "ok"]
    assert (ok.n_images == 2).all() and (ok.s_per_image > 0).all()
    # fewer steps changes the image; masked-region metrics exist for an inpainting configuration
    assert by.loc["steps=2", "lpips_mean"] > 0 and not math.isnan(by.loc["steps=2", "lpips_masked_mean"])
    assert (
        by.loc["steps=2", "lpips_ci_low"]
        <= by.loc["steps=2", "lpips_mean"]
        <= by.loc["steps=2", "lpips_ci_high"]
    )
    assert by.loc["cache=fbc:1e9", "passes_reused"] > 0 and by.loc["ref", "passes_reused"] == 0
    assert bool(by.loc["cache=fbc:1e9", "speed_depends_on_weights"]) and not bool(
        by.loc["steps=2", "speed_depends_on_weights"]
    )
    assert "flux-cn-beta|steps=3" in meta["frontier"]["mag_ratios"]
    fastest = {f["lpips_max"]: f for f in meta["frontier"]["fastest"]}
    assert fastest[0.0]["point"] in ("ref", "cache=mag") or fastest[0.0]["lpips_mean"] == 0.0
    assert fastest[10.0]["s_per_image"] == ok.s_per_image.min()
    md = (run / "frontier.md").read_text()
    assert "unavailable" in md and "Fastest point within paired LPIPS" in md and "plumbing only" in md
    assert (run / "pareto.png").stat().st_size > 0 and (run / "rows.jsonl").exists()
    # distance to the limit: FLOP of one image at the measured matmul peak (float32 on the CPU)
    assert meta["frontier"]["peaks"]["float32"]["tflops"] > 0
    assert (ok.flop_per_image > 0).all() and (ok.floor_ratio > 1).all()
    # where the time goes: the phases of each image, their sum within its end-to-end seconds
    phases = ok[["phase_text_encode_s", "phase_vae_encode_s", "phase_denoise_s", "phase_vae_decode_s"]]
    assert (phases > 0).all().all()
    assert (phases.sum(axis=1) <= ok.s_per_image * 1.05).all()
    # fewer steps: 2/3 of the FLOP (2 of 3 steps), the same peak
    assert by.loc["steps=2", "flop_per_image"] == pytest.approx(by.loc["ref", "flop_per_image"] * 2 / 3)
    assert (ok.floor_s * ok.floor_ratio).round(9).equals(ok.s_per_image.round(9))
    assert "× FLOP floor" in md and "matmul peaks measured in this run: float32" in md


def test_peer_recipes_join_the_frontier_and_are_named_in_its_table(tmp_path: Path):
    from evalsuite.report.frontier import _point_cells
    from evalsuite.scenarios.frontier import PEER_RECIPES

    spec = FrontierSpec(configs=["flux-dev"], points=["steps=2", "qkv,compile=regional"], peers=True)
    labels = [p.label for p in spec.parsed()[1]]
    assert labels == ["steps=2", "qkv,compile=regional", "precision=fp8,qkv,compile=regional"]  # no duplicate
    assert [p.label for p in FrontierSpec(configs=["flux-dev"], points=["steps=2"]).parsed()[1]] == [
        "steps=2"
    ]
    # the torchao recipe where torchao (or CUDA) is missing: its row says unavailable and names the peer
    from evalsuite.results.store import RunStore
    from evalsuite.scenarios.frontier import run_point

    conf = cfg.resolve("flux-dev", [cfg.Override(None, "tiny_size", SIZE), cfg.Override(None, "steps", 2)])
    point = PointSpec.parse("precision=fp8,qkv,compile=regional")
    cases = list(load_dataset("smoke").cases)
    if NEEDS["precision=fp8"][0]:
        return  # torchao and CUDA here: the recipe would compile for minutes (the GPU benchmark runs it)
    row = run_point(
        conf, point, Weights("tiny"), torch.device("cpu"), cases, spec, RunStore(tmp_path), ApplyContext()
    )
    assert (
        row["status"] == "unavailable" and row["peer"] == PEER_RECIPES["precision=fp8,qkv,compile=regional"]
    )
    assert "(torchao fp8 recipe)" in " | ".join(_point_cells(pd.Series(row)))
