import math

import pytest
import torch

from evalsuite.config import configuration as cfg
from evalsuite.runners.components import FLUX_TRANSFORMER_FULL, FLUX_TRANSFORMER_TINY
from evalsuite.runners.flux import FluxText2Image
from evalsuite.runners.weights import Weights
from evalsuite.trackers.flops import (
    SDXL_UNET_FULL,
    cfg_multiplier,
    count_flops,
    count_flux_transformer_flops,
    count_unet_flops,
    flux_controlnet_flops,
    flux_tokens,
    flux_transformer_flops,
    measure_peak_tflops,
    step_flops,
)


@pytest.mark.parametrize(
    "config,n,t,b",
    [
        (FLUX_TRANSFORMER_TINY, 16, 20, 1),
        (FLUX_TRANSFORMER_TINY, 64, 7, 3),
        (FLUX_TRANSFORMER_FULL, 256, 512, 2),
    ],
)
def test_analytic_flux_formula_equals_the_counted_forward(config, n, t, b):
    assert flux_transformer_flops(config, n, t, b) == count_flux_transformer_flops(config, n, t, b)


def test_flux_step_at_1024_matches_the_reference_count():
    n = flux_tokens(1024, 1024)
    assert n == 4096
    flop = flux_transformer_flops(FLUX_TRANSFORMER_FULL, n, 512)
    assert flop == count_flux_transformer_flops(FLUX_TRANSFORMER_FULL, n, 512)
    # the FLOP model: 6.46 B params per token × 2 × 4,608 tokens + 57 × 4 × 4,608² × 3,072 ≈ 7.4e13
    by_hand = 2 * 6.46e9 * 4608 + 57 * 4 * 4608**2 * 3072
    assert flop == pytest.approx(by_hand, rel=0.005)
    assert flop == pytest.approx(7.44e13, rel=0.005)


def test_controlnet_formula_equals_the_counted_forward():
    from diffusers import FluxControlNetModel

    cn = dict(FLUX_TRANSFORMER_FULL, num_layers=6, num_single_layers=0)
    n, t = 1024, 512
    with torch.device("meta"):
        model = FluxControlNetModel(**cn)
        kw = dict(
            hidden_states=torch.empty(1, n, 64),
            controlnet_cond=torch.empty(1, n, 64),
            encoder_hidden_states=torch.empty(1, t, 4096),
            pooled_projections=torch.empty(1, 768),
            timestep=torch.empty(1),
            img_ids=torch.empty(n, 3),
            txt_ids=torch.empty(t, 3),
            guidance=torch.empty(1),
        )
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(2.14e9, rel=0.01)  # the CN, full size
    assert flux_controlnet_flops(cn, n, t) == count_flops(lambda: model(**kw))
    # Alimama's condition embedder takes 68 features instead of 64: 2·N·4·d more
    assert (
        flux_controlnet_flops(cn, n, t, cond_channels=68) - flux_controlnet_flops(cn, n, t)
        == 2 * n * 4 * 3072
    )


TINY_UNET = dict(
    SDXL_UNET_FULL,
    block_out_channels=(32, 64, 64),
    transformer_layers_per_block=(1, 1, 1),
    attention_head_dim=(2, 4, 4),
    cross_attention_dim=32,
    norm_num_groups=8,
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=32 + 6 * 8,
)


def test_unet_count_is_linear_in_batch_and_grows_with_pixels():
    one = count_unet_flops(TINY_UNET, 64, 64, 1)
    assert count_unet_flops(TINY_UNET, 64, 64, 2) == 2 * one
    # convs and self-attention grow ≥ 4× with 4× the pixels; text cross-attention K/V and embeddings do not
    assert 3 * one < count_unet_flops(TINY_UNET, 128, 128, 1) < 6 * one


def test_sdxl_unet_step_at_1024_is_in_the_expected_range():
    # 2.57 B params mostly convs/linears over 128² latents: a few TFLOP per sample (≈ 6.8e12 counted)
    assert 5e12 < count_unet_flops(SDXL_UNET_FULL, 1024, 1024, 1) < 9e12


def test_step_flops_of_a_loaded_tiny_runner():
    conf = cfg.resolve("flux-dev", [cfg.Override("flux-dev", "steps", 1)])
    r = FluxText2Image(conf.params, Weights("tiny"))
    r.load()
    flop, method = step_flops(r)
    assert flop == flux_transformer_flops(r.pipe.transformer.config, flux_tokens(64, 64), 512, 1)
    assert "analytic FLUX" in method
    assert cfg_multiplier(r) == 1


def test_measured_peak_on_cpu_and_unsupported_dtype():
    pk = measure_peak_tflops("cpu", "float32", n=128, min_seconds=0.05)
    assert pk["tflops"] > 0 and pk["reps"] >= 1
    bad = measure_peak_tflops("cpu", "int3", n=16, min_seconds=0.01)
    assert math.isnan(bad["tflops"]) and "int3" in bad["reason"]
