"""Runners on diffusers' own pipelines: flux-inpaint, flux-fill, sdxl-inpaint, and the Turbo LoRA path.

Tiny models on CPU, 64 px, 2 steps. Each runner is checked bitwise against calling its diffusers
pipeline directly with the same components, inputs and generator.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from evalsuite.config import configuration as cfg
from evalsuite.data.cases import Case
from evalsuite.runners.base import CaseError
from evalsuite.runners.inpaint import mask_image
from evalsuite.runners.lora import LoraError, synthetic_lora
from evalsuite.runners.weights import Weights
from evalsuite.testing.contract import RunnerContract
from tests.conftest import write_dataset
from tests.test_cli import cli

INPAINT = ["flux-dev-inpaint", "flux-fill", "sdxl-inpaint"]
HUB_IDS = {
    "flux-dev-inpaint": "black-forest-labs/FLUX.1-dev",
    "flux-fill": "black-forest-labs/FLUX.1-Fill-dev",
    "sdxl-inpaint": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Case]:
    root = write_dataset(
        tmp_path_factory.mktemp("ds"),
        [
            {
                "id": "a",
                "prompt": "a red apple on a table",
                "image": "img/a.png",
                "mask": "mask/a.png",
                "seed": 1,
            },
            {"id": "b", "prompt": "a blue car", "image": "img/b.png", "mask": "mask/b.png", "seed": 2},
        ],
        size=80,
    )
    return [
        Case("a", "a red apple on a table", image=root / "img/a.png", mask=root / "mask/a.png"),
        Case("b", "a blue car", image=root / "img/b.png", mask=root / "mask/b.png"),
    ]


def make(name: str, policy: str = "tiny", weights_dir: Path | None = None, **over):
    over = {"steps": 2, **over}
    conf = cfg.resolve(name, [cfg.Override(name, k, v) for k, v in over.items()])
    runner = conf.runner_class()(conf.params, Weights(policy, weights_dir))
    runner.load()
    return runner


def pixels(img) -> np.ndarray:
    return np.asarray(img)


@pytest.fixture(scope="module")
def runners() -> dict:
    return {name: make(name) for name in INPAINT}


@pytest.mark.parametrize("name", INPAINT)
def test_bitwise_equal_to_calling_the_pipeline_directly(name, runners, cases):
    r = runners[name]
    out = r.generate(cases[:1], [3])[0]
    image, mask = r.load_inputs(cases[0])
    extra = {"max_sequence_length": 512} if name != "sdxl-inpaint" else {}
    strength = {"flux-dev-inpaint": 1.0, "flux-fill": 1.0, "sdxl-inpaint": 0.99}[name]
    guidance = {"flux-dev-inpaint": 3.5, "flux-fill": 30.0, "sdxl-inpaint": 8.0}[name]
    direct = r.pipe(
        prompt=cases[0].prompt,
        image=image,
        mask_image=mask_image(mask),
        height=64,
        width=64,
        strength=strength,
        num_inference_steps=2,
        guidance_scale=guidance,
        generator=torch.Generator("cpu").manual_seed(3),
        **extra,
    ).images[0]
    assert np.array_equal(pixels(out.image), pixels(direct))
    assert {"text_encode", "vae_encode", "denoise", "vae_decode"} <= set(out.phases)
    assert all(v >= 0 for v in out.phases.values())
    # SDXL runs int(steps × strength) steps: 1 of 2 at strength 0.99 (as the pipeline does)
    assert len(out.steps) == (1 if name == "sdxl-inpaint" else 2)
    assert sum(out.steps) <= out.phases["denoise"] + 1e-6


@pytest.mark.parametrize("name", INPAINT)
def test_same_seed_same_image_other_seed_differs_batch_invariant(name, runners, cases):
    r = runners[name]
    single = r.generate(cases[:1], [7])[0].image
    a = pixels(single)
    b = pixels(r.generate(cases[:1], [7])[0].image)
    c = pixels(r.generate(cases[:1], [8])[0].image)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    both = r.generate(cases, [7, 9])
    # per-sample generators make the noise batch-independent; CPU kernels of batch 2 may still round
    # differently (FluxFillPipeline at 64 px: latents differ by ~4e-6, a few pixels by one level)
    RunnerContract.batch_tolerance.check(both[0].image, single, f"{name}: single vs batch of 2")


@pytest.mark.parametrize("name", INPAINT)
def test_case_without_mask_raises_case_error(name, runners):
    with pytest.raises(CaseError, match="no image and mask.*inpainting runner"):
        runners[name].generate([Case("t", "a lighthouse")], [1])


@pytest.mark.parametrize("name", INPAINT)
def test_hub_policy_loads_a_saved_pipeline_offline(name, runners, cases, tmp_path: Path):
    tiny = runners[name]
    repo = tmp_path / "weights" / HUB_IDS[name]
    variant = "fp16" if name == "sdxl-inpaint" else None
    tiny.pipe.save_pretrained(repo, safe_serialization=True, variant=variant)
    assert not list(repo.rglob("*.bin"))
    hub = make(name, "hub", weights_dir=tmp_path / "weights", width=64, height=64, dtype="float32")
    assert type(hub.pipe) is type(tiny.pipe)
    a = tiny.generate(cases[:1], [5])[0].image
    b = hub.generate(cases[:1], [5])[0].image
    # the same weights, but identity is not promised across save/reload: CPU kernels of another
    # CPU (AMD EPYC, no AVX-512) round one pixel level differently after reloading flux-fill
    diff = np.abs(pixels(a).astype(int) - pixels(b).astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.05, (diff.max(), diff.mean())


def test_random_components_have_the_published_shapes():
    from diffusers import FluxTransformer2DModel, UNet2DConditionModel
    from transformers import CLIPTextConfig

    from evalsuite.runners import components as C

    with torch.device("meta"):
        unet = UNet2DConditionModel(**C.SDXL_UNET_FULL)
        fill = FluxTransformer2DModel(**C.FLUX_FILL_TRANSFORMER_FULL)
    assert round(sum(p.numel() for p in unet.parameters()) / 1e9, 2) == 2.57
    assert unet.conv_in.in_channels == 9 and unet.conv_out.out_channels == 4
    assert fill.x_embedder.in_features == 384 and fill.proj_out.out_features == 64
    g = CLIPTextConfig(**C.SDXL_CLIP_G_FULL)
    # SDXL's UNet cross-attends to CLIP-L (768) ⊕ bigG (1280) hidden states
    assert C.SDXL_CLIP_L_FULL["hidden_size"] + g.hidden_size == C.SDXL_UNET_FULL["cross_attention_dim"]
    tiny = C.sdxl_inpaint_components("tiny", "cpu", torch.float32)
    assert tiny["unet"].config.in_channels == 9


# -- LoRA in the published key format -------------------------------------------------------------


def _tiny_transformer_weights():
    base = make("flux-dev")
    return base, {k: v.clone() for k, v in base.pipe.transformer.named_parameters()}


def _check_delta(before, after, state, scale):
    checked = 0
    for key, a in state.items():
        if ".lora_A." not in key:
            continue
        mod = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
        b = state[key.replace("lora_A", "lora_B")]
        expected = before[f"{mod}.weight"] + scale * (b @ a)
        torch.testing.assert_close(after[f"{mod}.weight"], expected, rtol=0, atol=1e-6)
        checked += 1
    return checked


def test_published_format_lora_file_fuses_exact_delta_on_every_linear(tmp_path: Path):
    base, before = _tiny_transformer_weights()
    state = synthetic_lora(base.pipe.transformer, rank=4, seed=1)
    assert all(
        k.startswith("transformer.") and (".lora_A.weight" in k or ".lora_B.weight" in k) for k in state
    )
    assert any(k.startswith("transformer.single_transformer_blocks.") and ".norm.linear." in k for k in state)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file(state, str(path))
    fused = make("flux-dev-turbo8", lora=str(path), lora_scale=0.5)
    after = dict(fused.pipe.transformer.named_parameters())
    n = _check_delta(before, after, state, 0.5)
    linears = [m for m in base.pipe.transformer.modules() if isinstance(m, torch.nn.Linear)]
    assert (
        n == len(linears) > 10
    )  # the published file adapts every Linear (x_embedder, norm_out, ... included)
    assert any(k.startswith("transformer.x_embedder.") for k in state)
    assert all(torch.equal(before[k], after[k]) for k in before if k.endswith(".bias"))
    assert fused.effective()["lora_source"] == "file" and fused.effective()["lora_rank"] == 4


def test_lora_keys_without_transformer_prefix_are_prefixed_not_dropped(tmp_path: Path):
    base, before = _tiny_transformer_weights()
    state = synthetic_lora(base.pipe.transformer, rank=2, seed=2, prefix="")
    path = tmp_path / "unprefixed.safetensors"
    save_file(state, str(path))
    fused = make("flux-dev-turbo8", lora=str(path))
    assert fused.effective()["lora_prefixed_keys"] == len(state)
    n = _check_delta(before, dict(fused.pipe.transformer.named_parameters()), state, 1.0)
    assert n == len(state) // 2


def test_lora_with_some_unknown_keys_is_refused(tmp_path: Path):
    base, _ = _tiny_transformer_weights()
    state = synthetic_lora(base.pipe.transformer, rank=2)
    state["transformer.no_such_block.0.attn.to_q.lora_A.weight"] = torch.zeros(2, 32)
    state["transformer.no_such_block.0.attn.to_q.lora_B.weight"] = torch.zeros(32, 2)
    path = tmp_path / "partly.safetensors"
    save_file(state, str(path))
    with pytest.raises(LoraError, match="not adapted|name no transformer module"):
        make("flux-dev-turbo8", lora=str(path))


def test_lora_with_text_encoder_keys_is_refused(tmp_path: Path):
    base, _ = _tiny_transformer_weights()
    state = synthetic_lora(base.pipe.transformer, rank=2)
    state["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] = torch.zeros(2, 32)
    state["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight"] = torch.zeros(32, 2)
    path = tmp_path / "te.safetensors"
    save_file(state, str(path))
    with pytest.raises(LoraError, match="text encoder"):
        make("flux-dev-turbo8", lora=str(path))


def test_tiny_policy_fuses_a_synthetic_lora_in_the_published_format():
    base, before = _tiny_transformer_weights()
    turbo = make("flux-dev-turbo8", lora_rank=3, lora_seed=5)
    eff = turbo.effective()
    assert eff["lora_synthetic"] is True and eff["lora_rank"] == 3
    assert "FLUX.1-Turbo-Alpha" in eff["lora_path"]
    expected_state = synthetic_lora(base.pipe.transformer, rank=3, seed=5)
    n = _check_delta(before, dict(turbo.pipe.transformer.named_parameters()), expected_state, 1.0)
    assert n == eff["lora_modules"]
    out = turbo.generate([Case("x", "a cat")], [1])[0]
    plain = base.generate([Case("x", "a cat")], [1])[0]
    assert len(out.steps) == 2 and not np.array_equal(pixels(out.image), pixels(plain.image))


def test_hub_policy_reads_the_lora_from_the_published_repository_layout(tmp_path: Path):
    base, before = _tiny_transformer_weights()
    weights = tmp_path / "weights"
    base.pipe.save_pretrained(weights / "black-forest-labs" / "FLUX.1-dev", safe_serialization=True)
    state = synthetic_lora(base.pipe.transformer, rank=2, seed=9)
    lora_dir = weights / "alimama-creative" / "FLUX.1-Turbo-Alpha"
    lora_dir.mkdir(parents=True)
    save_file(state, str(lora_dir / "diffusion_pytorch_model.safetensors"))
    hub = make("flux-dev-turbo8", "hub", weights_dir=weights, width=64, height=64, dtype="float32")
    eff = hub.effective()
    assert eff["lora_source"] == "file" and eff["lora_synthetic"] is False and eff["lora_rank"] == 2
    assert eff["lora_path"].endswith("FLUX.1-Turbo-Alpha/diffusion_pytorch_model.safetensors")
    assert _check_delta(before, dict(hub.pipe.transformer.named_parameters()), state, 1.0) == len(state) // 2


# -- CLI -------------------------------------------------------------------------------------------

NEW = ["flux-dev-turbo8", "flux-dev-inpaint", "sdxl-inpaint", "flux-fill"]


def test_runners_lists_the_new_configurations(tmp_path: Path):
    res = cli("runners", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(NEW) <= set(data)
    t = data["flux-dev-turbo8"]["params"]
    assert (t["steps"], t["guidance"], t["lora_scale"], t["lora"]) == (
        8,
        3.5,
        1.0,
        "alimama-creative/FLUX.1-Turbo-Alpha",
    )
    i = data["flux-dev-inpaint"]["params"]
    assert (i["steps"], i["strength"], i["guidance"], i["width"]) == (28, 1.0, 3.5, 1024)
    s = data["sdxl-inpaint"]["params"]
    assert (s["steps"], s["guidance"], s["strength"], s["negative_prompt"]) == (20, 8.0, 0.99, None)
    f = data["flux-fill"]["params"]
    assert (f["steps"], f["guidance"], f["model"]) == (50, 30.0, "black-forest-labs/FLUX.1-Fill-dev")
    assert {data[n]["task"] for n in ("flux-dev-inpaint", "sdxl-inpaint", "flux-fill")} == {"inpaint"}


# The run of flux-dev and the configurations above on the smoke set is the demo's:
# tests/test_cli.py::test_demo_runs_the_native_configurations_on_the_smoke_set.
