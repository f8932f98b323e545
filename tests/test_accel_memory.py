"""Memory strategy parts that need no GPU to check: partial group offload, the block spread, the estimate."""

import dataclasses

import numpy as np
import pytest

import evalsuite  # noqa: F401  (registers runners)
from evalsuite.accel.axes import ApplyContext, PointSpec, apply_point
from evalsuite.accel.errors import Unavailable
from evalsuite.accel.memory import _partial_group_offload, denoiser_blocks, offloaded_blocks
from evalsuite.config import configuration as cfg
from evalsuite.data.registry import load_dataset
from evalsuite.registry import RUNNERS
from evalsuite.runners.weights import Weights
from evalsuite.scenarios.plan import resident_estimate
from evalsuite.scenarios.profile import pick_cases


def _runner(config: str = "flux-dev"):
    conf = cfg.resolve(config)
    params = dataclasses.replace(conf.params, steps=2, tiny_size=32)
    r = RUNNERS.get(conf.runner)(params, Weights("tiny"), "cpu")
    r.load()
    cases, seeds = pick_cases(r, list(load_dataset("smoke").cases), 1)
    return r, cases, seeds


@pytest.mark.parametrize("n,f", [(8, 0.25), (57, 0.35), (57, 0.7), (5, 1.0), (5, 0.0), (1, 0.4), (19, 0.5)])
def test_offloaded_blocks_are_spread_and_counted(n, f):
    idx = offloaded_blocks(n, f)
    assert len(idx) == round(f * n) and idx == sorted(set(idx)) and all(0 <= i < n for i in idx)
    if idx:
        assert idx[-1] == n - 1
        gaps = np.diff([-1, *idx])
        assert gaps.max() - gaps.min() <= 1  # evenly spread, not bunched at one end


def test_partial_group_offload_keeps_the_image_and_removes_hooks_from_resident_blocks():
    from diffusers.hooks import HookRegistry

    ref, cases, seeds = _runner()
    want = np.asarray(ref.generate(cases, seeds)[0].image, dtype=np.float32)
    ref.close()
    r, cases, seeds = _runner()
    notes = _partial_group_offload(r, ["0.5"])  # CPU → CPU: exercises the hooks, moves nothing
    for role, m in r.denoisers().items():
        blocks = denoiser_blocks(m)
        away = set(offloaded_blocks(len(blocks), 0.5))
        assert f"{role}: {len(away)}/{len(blocks)} blocks offloaded" in notes["group_partial"]
        for i, b in enumerate(blocks):
            has = HookRegistry.check_if_exists_or_initialize(b).get_hook("group_offloading") is not None
            assert has == (i in away), (role, i)
    got = np.asarray(r.generate(cases, seeds)[0].image, dtype=np.float32)
    r.close()
    assert np.abs(got - want).max() <= 2.0  # same computation; a level of rounding allowed


@pytest.mark.parametrize("opts", [["0"], ["1.5"], ["x"], ["0.5", "0.6"], ["0.5", "fast"], []])
def test_partial_group_offload_refuses_bad_fractions(opts):
    r, _, _ = _runner()
    try:
        with pytest.raises(ValueError, match="group_partial"):
            _partial_group_offload(r, opts)
    finally:
        r.close()


@pytest.mark.parametrize("part", ["group_partial:0.5:stream", "expandable"])
def test_cuda_only_parts_say_why_on_the_cpu(part):
    r, _, _ = _runner()
    try:
        with pytest.raises(Unavailable, match="CUDA"):
            apply_point(r, PointSpec.parse(f"memory={part}"), ApplyContext(config="flux-dev"))
    finally:
        r.close()


def test_estimate_keeps_the_resident_share_of_the_denoisers():
    sizes = {"transformer": 20.0, "controlnet": 4.0, "text_encoder": 0.2, "text_encoder_2": 9.0, "vae": 0.2}
    dens = ["transformer", "controlnet"]
    full = resident_estimate(sizes, dens, PointSpec.parse("memory=te_cpu"))
    assert full == pytest.approx(24.2)
    part = resident_estimate(sizes, dens, PointSpec.parse("memory=te_cpu+group_partial:0.25:stream"))
    assert part == pytest.approx(0.75 * 24 + 0.2)
    lw = resident_estimate(
        sizes, dens, PointSpec.parse("precision=layerwise,memory=te_cpu+group_partial:0.5")
    )
    assert lw == pytest.approx(0.5 * 0.5 * 24 + 0.2)


@pytest.mark.parametrize("precision", ["layerwise", "layerwise_all"])
def test_layerwise_all_also_stores_the_modulation_linears_in_fp8(precision):
    import torch

    r, cases, seeds = _runner()
    try:
        notes = apply_point(r, PointSpec.parse(f"precision={precision}"), ApplyContext(config="flux-dev"))
        assert "fp8 e4m3 storage" in notes["precision"]
        t = r.denoisers()["transformer"]
        mod = t.transformer_blocks[0].norm1.linear.weight.dtype  # AdaLN modulation linear
        attn = t.transformer_blocks[0].attn.to_q.weight.dtype
        assert attn == torch.float8_e4m3fn
        assert (mod == torch.float8_e4m3fn) == (precision == "layerwise_all")
        assert t.proj_out.weight.dtype != torch.float8_e4m3fn  # skipped in both
        img = np.asarray(r.generate(cases, seeds)[0].image)
        assert img.shape[-1] == 3 and np.isfinite(img).all()
    finally:
        r.close()
