"""The Alimama inpainting ControlNet port and the ``flux-cn-inpaint`` runner (tiny weights, CPU)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from evalsuite.config import configuration as cfg
from evalsuite.data.cases import Case
from evalsuite.runners.base import CaseError
from evalsuite.runners.flux_controlnet import BASE_COMPONENTS, FluxControlNetInpaint
from evalsuite.runners.weights import Weights, WeightsError
from evalsuite.testing.contract import RunnerContract

cn = pytest.importorskip("evalsuite.runners.controlnet_inpaint")

SIZE = 64


def _runner(config="flux-cn-beta", policy="tiny", weights_dir=None, **over):
    ovs = [cfg.Override(config, k, v) for k, v in {"steps": 2, **over}.items()]
    r = FluxControlNetInpaint(cfg.resolve(config, ovs).params, Weights(policy, weights_dir))
    r.load()
    return r


@pytest.fixture(scope="module")
def tiny():
    return _runner()


@pytest.fixture
def case(tmp_path: Path) -> Case:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[16:48, 8:40] = 255
    Image.fromarray(m).save(tmp_path / "mask.png")
    return Case(
        "c", "a red apple on a wooden table", image=str(tmp_path / "img.png"), mask=str(tmp_path / "mask.png")
    )


def _img(a) -> np.ndarray:
    return np.asarray(a.image if hasattr(a, "image") else a)


# -- checkpoint layout and strict loading ------------------------------------------------------------
def _save_hub_layout(
    r, root: Path, controlnet="alimama-creative/FLUX.1-dev-Controlnet-Inpainting-Beta"
) -> Path:
    from diffusers import FluxPipeline

    FluxPipeline(**{k: r.pipe.components[k] for k in BASE_COMPONENTS}).save_pretrained(
        root / "black-forest-labs" / "FLUX.1-dev", safe_serialization=True
    )
    return cn.save_controlnet(r.pipe.controlnet, root / controlnet)


def test_hub_policy_loads_published_layout_with_strict_checking(tiny, case, tmp_path: Path):
    folder = _save_hub_layout(tiny, tmp_path / "w")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    conf = json.loads((folder / "config.json").read_text())
    assert conf["_class_name"] == "FluxControlNetModel"
    assert (conf["num_single_layers"], conf["extra_condition_channels"], conf["guidance_embeds"]) == (
        0,
        4,
        True,
    )
    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    inner = conf["num_attention_heads"] * conf["attention_head_dim"]
    # the published checkpoints' names: a 68-feature control projection, one zero-init block per double block
    assert state["controlnet_x_embedder.weight"].shape == (inner, 64 + 4)
    assert {f"controlnet_blocks.{i}.weight" for i in range(conf["num_layers"])} <= set(state)
    assert "time_text_embed.guidance_embedder.linear_1.weight" in state
    assert "transformer_blocks.0.attn.to_q.weight" in state and "x_embedder.weight" in state
    assert not any(k.startswith(("single_transformer_blocks", "controlnet_single_blocks")) for k in state)

    hub = _runner(policy="hub", weights_dir=tmp_path / "w", width=SIZE, height=SIZE, dtype="float32")
    for k, v in tiny.pipe.controlnet.state_dict().items():
        assert torch.equal(hub.pipe.controlnet.state_dict()[k], v), k
    # equal weights in other tensors: CPU kernels may round one pixel differently by instruction set
    # (seen: one channel of one pixel by one level with AVX-512), so within the reload tolerance
    RunnerContract.reload_tolerance.check(
        tiny.generate([case], [5])[0].image, hub.generate([case], [5])[0].image, "flux-cn: tiny vs saved copy"
    )


@pytest.mark.parametrize(
    "damage, message",
    [
        ("shape", r"1 shape mismatches: controlnet_x_embedder.weight: file \(32, 64\) vs model \(32, 68\)"),
        ("missing", r"1 missing: controlnet_blocks.1.bias"),
        ("unexpected", r"1 unexpected: controlnet_single_blocks.0.weight"),
        ("bin", r"only safetensors weights are loaded"),
        ("config", r"field 'num_mode'=3 is not supported"),
    ],
)
def test_mismatching_checkpoint_fails_clearly(tiny, tmp_path: Path, damage, message):
    folder = cn.save_controlnet(tiny.pipe.controlnet, tmp_path / "cn")
    path = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    if damage == "shape":  # a plain diffusers FluxControlNetModel projection (64 → inner)
        state["controlnet_x_embedder.weight"] = state["controlnet_x_embedder.weight"][:, :64].contiguous()
    elif damage == "missing":
        del state["controlnet_blocks.1.bias"]
    elif damage == "unexpected":
        state["controlnet_single_blocks.0.weight"] = torch.zeros(2, 2)
    elif damage == "bin":
        path.rename(folder / "diffusion_pytorch_model.bin")
    elif damage == "config":
        conf = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**conf, "num_mode": 3}))
    if damage in ("shape", "missing", "unexpected"):
        save_file(state, str(path))
    with pytest.raises(WeightsError, match=message):
        cn.load_controlnet(folder, "cpu", torch.float32)


def test_hub_controlnet_missing_offline_fails_clearly(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE is set"):
        _runner(policy="hub")


# -- control input -------------------------------------------------------------------------------------
def _pack_by_loops(x: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    out = np.zeros(((h // 2) * (w // 2), 4 * c), x.dtype)
    for i in range(h // 2):
        for j in range(w // 2):
            for ch in range(c):
                for dy in range(2):
                    for dx in range(2):
                        out[i * (w // 2) + j, ch * 4 + dy * 2 + dx] = x[ch, 2 * i + dy, 2 * j + dx]
    return out


def test_control_input_matches_an_independent_computation(tiny):
    pipe = tiny.pipe
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    grey = np.zeros((SIZE, SIZE), np.uint8)
    grey[0:8, 0:8] = 128  # cell (0,0): top-left 128 → masked
    grey[0:8, 8:16] = 255
    grey[0, 8] = 127  # cell (0,1): top-left 127 → kept, though the rest is white
    grey[8:16, 0:8] = 0
    grey[9, 1] = 255  # cell (1,0): top-left 0 → kept, though one pixel is white
    grey[40:64, 16:48] = 200  # a block of masked cells
    mask_img = Image.fromarray(np.stack([grey] * 3, -1))  # RGB mask: converted to greyscale first

    seed = 11
    prep = pipe.prepare(
        [Image.fromarray(rgb)], [mask_img], [torch.Generator().manual_seed(seed)], SIZE, SIZE, torch.float32
    )
    assert prep.control.shape == (1, (SIZE // 16) ** 2, 68)

    # independently: binarise ≥128, black out, VAE posterior mean/std plus noise drawn after the initial noise
    m = grey >= 128
    x = rgb.astype(np.float32) / 255 * 2 - 1
    x[m] = -1
    g = torch.Generator().manual_seed(seed)
    init = torch.randn(1, 16, SIZE // 8, SIZE // 8, generator=g)
    eps = torch.randn(1, 16, SIZE // 8, SIZE // 8, generator=g)
    dist = pipe.vae.encode(torch.from_numpy(x).permute(2, 0, 1)[None]).latent_dist
    vc = pipe.vae.config
    lat = ((dist.mean + dist.std * eps) - vc.shift_factor) * vc.scaling_factor
    keep = 1 - m[::8, ::8].astype(np.float32)  # nearest = the top-left pixel of each 8×8 cell
    assert keep[0, 0] == 0 and keep[0, 1] == 1 and keep[1, 0] == 1
    expected = _pack_by_loops(np.concatenate([lat[0].numpy(), keep[None]], 0))
    np.testing.assert_allclose(prep.control[0].numpy(), expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(prep.control[0, :, 64:].numpy(), _pack_by_loops(keep[None]))
    np.testing.assert_array_equal(prep.latents[0].numpy(), _pack_by_loops(init[0].numpy()))

    # the VAE noise really is sampled (not the posterior mean) and comes from the run generator
    other = pipe.prepare(
        [Image.fromarray(rgb)], [mask_img], [torch.Generator().manual_seed(seed + 1)], SIZE, SIZE
    )
    assert not torch.equal(other.control[..., :64], prep.control[..., :64])
    # in a batch, each image gets exactly its own noise and control input
    gens = [torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed)]
    pair = pipe.prepare([Image.fromarray(rgb)] * 2, [mask_img] * 2, gens, SIZE, SIZE)
    assert torch.equal(pair.control[1], prep.control[0]) and torch.equal(pair.latents[1], prep.latents[0])
    assert torch.equal(pair.control[0], other.control[0])


def test_pack_and_latent_mask_helpers():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    for b in range(2):
        np.testing.assert_array_equal(cn.pack(x)[b].numpy(), _pack_by_loops(x[b].numpy()))
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 0, 8] = 1  # top-left of cell (0,1)
    mask[0, 0, 9:16, 0:8] = 1  # all of cell (1,0) except its top-left row
    assert cn.latent_mask(mask, 2, 2)[0, 0].tolist() == [[1.0, 0.0], [1.0, 1.0]]
    bools = cn.binarize_masks([Image.fromarray(np.array([[127, 128]], np.uint8)), np.array([[0.49, 0.5]])])
    assert [b.tolist() for b in bools] == [[[False, True]], [[False, True]]]


# -- injection rule ----------------------------------------------------------------------------------
def test_interval_rule_of_the_transformer():
    from diffusers import FluxTransformer2DModel

    assert [cn.interval_index(j, 19, 6) for j in range(19)] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 3
    torch.manual_seed(0)
    t = FluxTransformer2DModel(
        num_layers=5,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    outs, ins = {}, {}
    for j, blk in enumerate(t.transformer_blocks):
        blk.register_forward_hook(lambda m, a, k, o, j=j: outs.__setitem__(j, o[1].clone()), with_kwargs=True)
        if j:
            blk.register_forward_pre_hook(
                lambda m, a, k, j=j: ins.__setitem__(j, k["hidden_states"].clone()), with_kwargs=True
            )
    t.single_transformer_blocks[0].register_forward_pre_hook(
        lambda m, a, k: ins.__setitem__(5, k["hidden_states"].clone()), with_kwargs=True
    )
    n_img, n_txt = 16, 4
    samples = [torch.randn(1, n_img, 32) for _ in range(2)]
    with torch.no_grad():
        t(
            hidden_states=torch.randn(1, n_img, 64),
            encoder_hidden_states=torch.randn(1, n_txt, 32),
            pooled_projections=torch.randn(1, 32),
            timestep=torch.tensor([0.5]),
            guidance=torch.tensor([3.5]),
            img_ids=torch.zeros(n_img, 3),
            txt_ids=torch.zeros(n_txt, 3),
            controlnet_block_samples=samples,
        )
    for j in range(5):  # ceil(5 / 2) = 3: blocks 0-2 get sample 0, blocks 3-4 sample 1
        torch.testing.assert_close(
            ins[j + 1] - outs[j], samples[cn.interval_index(j, 5, 2)], rtol=0, atol=1e-5
        )


# -- denoising loop: true CFG ---------------------------------------------------------------------------
def _trace(pipe):
    calls = []

    def hook(m, args, kwargs, out):
        calls.append(
            {
                k: kwargs[k].clone()
                for k in ("hidden_states", "encoder_hidden_states", "pooled_projections", "guidance")
            }
            | {"out": out[0].clone()}
        )

    cn_calls = []
    h1 = pipe.transformer.register_forward_hook(hook, with_kwargs=True)
    h2 = pipe.controlnet.register_forward_hook(
        lambda m, a, k, o: cn_calls.append(k["controlnet_cond"].clone()), with_kwargs=True
    )
    return calls, cn_calls, (h1, h2)


def _inputs(case, tiny):
    return tiny.load_inputs(case)


@pytest.mark.parametrize("true_guidance", [1.0, 3.5])
def test_true_cfg_batch_order_and_formula(tiny, case, true_guidance):
    pipe = tiny.pipe
    image, mask = _inputs(case, tiny)
    pe, ppe, _ = pipe.encode_prompt(prompt=[case.prompt], prompt_2=None, max_sequence_length=512)
    ne, npe, _ = pipe.encode_prompt(prompt=[""], prompt_2=None, max_sequence_length=512)
    prep = pipe.prepare([image], [mask], [torch.Generator().manual_seed(3)], SIZE, SIZE)
    calls, cn_calls, hooks = _trace(pipe)
    try:
        out = pipe(
            prompt=[case.prompt],
            height=SIZE,
            width=SIZE,
            num_inference_steps=1,
            guidance_scale=3.5,
            true_guidance_scale=true_guidance,
            controlnet_conditioning_scale=0.9,
            prepared=prep,
            output_type="latent",
        ).images
    finally:
        for h in hooks:
            h.remove()
    assert len(calls) == len(cn_calls) == 1
    c = calls[0]
    sigma0 = pipe.scheduler.sigmas[0]
    if true_guidance == 1.0:  # a single pass with the positive prompt
        assert c["hidden_states"].shape[0] == 1
        assert torch.equal(c["encoder_hidden_states"], pe) and torch.equal(c["hidden_states"], prep.latents)
        assert torch.equal(cn_calls[0], prep.control)
        guided = c["out"]
    else:  # one batched pass ordered [negative, positive]; negative prompt "" by default
        assert c["hidden_states"].shape[0] == 2
        assert torch.equal(c["encoder_hidden_states"][:1], ne) and torch.equal(
            c["encoder_hidden_states"][1:], pe
        )
        assert torch.equal(c["pooled_projections"][:1], npe) and torch.equal(c["pooled_projections"][1:], ppe)
        assert torch.equal(c["hidden_states"][:1], prep.latents) and torch.equal(
            c["hidden_states"][1:], prep.latents
        )
        assert torch.equal(cn_calls[0], torch.cat([prep.control, prep.control]))
        guided = c["out"][:1] + 3.5 * (c["out"][1:] - c["out"][:1])
        # the two halves really differ, so the formula is exercised
        assert not torch.allclose(c["out"][:1], c["out"][1:])
    assert c["guidance"].tolist() == [3.5] * c["hidden_states"].shape[0]
    # one Euler step from sigma0 to 0: x - sigma0 · v
    torch.testing.assert_close(out, prep.latents + (0 - sigma0) * guided, rtol=0, atol=1e-6)


def test_true_guidance_one_equals_a_direct_single_pass(tiny, case):
    pipe = tiny.pipe
    image, mask = _inputs(case, tiny)
    pe, ppe, _ = pipe.encode_prompt(prompt=[case.prompt], prompt_2=None, max_sequence_length=512)
    prep = pipe.prepare([image], [mask], [torch.Generator().manual_seed(4)], SIZE, SIZE)
    out = pipe(
        prompt_embeds=pe,
        pooled_prompt_embeds=ppe,
        height=SIZE,
        width=SIZE,
        num_inference_steps=1,
        guidance_scale=3.5,
        true_guidance_scale=1.0,
        controlnet_conditioning_scale=0.9,
        prepared=prep,
        output_type="latent",
    ).images
    # by hand: ControlNet then transformer, timestep and guidance as in the reference
    sigma0 = float(pipe.scheduler.sigmas[0])
    t = torch.tensor([sigma0])
    common = dict(
        hidden_states=prep.latents,
        timestep=t,
        guidance=torch.tensor([3.5]),
        pooled_projections=ppe,
        encoder_hidden_states=pe,
        txt_ids=torch.zeros(pe.shape[1], 3),
        img_ids=prep.latent_ids,
    )
    with torch.no_grad():
        blocks, singles = pipe.controlnet(
            controlnet_cond=prep.control, conditioning_scale=0.9, return_dict=False, **common
        )
        assert singles is None and len(blocks) == 2
        v = pipe.transformer(controlnet_block_samples=blocks, return_dict=False, **common)[0]
        v0 = pipe.transformer(return_dict=False, **common)[0]
    torch.testing.assert_close(out, prep.latents - sigma0 * v, rtol=0, atol=1e-6)
    assert not torch.allclose(v, v0)  # the ControlNet samples change the prediction


def test_timesteps_use_linspace_sigmas_with_resolution_shift(tiny):
    pipe = tiny.pipe
    n, seq = 4, 1024
    pipe.timesteps(n, seq)
    c = pipe.scheduler.config
    mu = c.base_shift + (c.max_shift - c.base_shift) * (seq - c.base_image_seq_len) / (
        c.max_image_seq_len - c.base_image_seq_len
    )
    s = np.linspace(1, 1 / n, n)
    shifted = np.exp(mu) / (np.exp(mu) + (1 / s - 1))
    np.testing.assert_allclose(pipe.scheduler.sigmas[:-1].numpy(), shifted, rtol=1e-5)
    assert float(pipe.scheduler.sigmas[-1]) == 0.0


# -- runner ----------------------------------------------------------------------------------------------
def test_same_seed_same_image_independent_of_global_rng(tiny, case):
    torch.manual_seed(0)
    a = tiny.generate([case], [7])[0]
    torch.manual_seed(12345)
    np.random.seed(5)
    b = tiny.generate([case], [7])[0]
    c = tiny.generate([case], [8])[0]
    assert np.array_equal(_img(a), _img(b))
    assert not np.array_equal(_img(a), _img(c))
    assert a.image.size == (SIZE, SIZE)
    assert set(a.phases) == {"text_encode", "vae_encode", "denoise", "vae_decode"}
    assert len(a.steps) == 2 and sum(a.steps) <= a.phases["denoise"] + 1e-6
    assert a.info["vae_sample_rng"].startswith("run generator") and a.info["true_cfg"] is False
    # batch invariance: per-sample generators and a per-image VAE encode give the same noise and control
    # input (checked exactly elsewhere); batched CPU matmuls may round differently, hence ≤ 1 grey level
    both = tiny.generate([case, Case("d", "a lighthouse", image=case.image, mask=case.mask)], [7, 9])
    RunnerContract.batch_tolerance.check(both[0].image, a.image, "flux-cn: single vs batch of 2")


def test_true_cfg_runner_differs_and_uses_negative_prompt(case):
    alpha = _runner("flux-cn-alpha")
    assert alpha.params.true_guidance == 3.5
    a = alpha.generate([case], [7])[0]
    assert a.info["true_cfg"] is True
    neg = _runner("flux-cn-alpha", negative_prompt="blurry, low quality")
    b = neg.generate([case], [7])[0]
    assert not np.array_equal(_img(a), _img(b))


def test_case_without_mask_is_a_case_error(tiny, case):
    with pytest.raises(CaseError, match="has no mask"):
        tiny.generate([Case("t", "a lighthouse", image=case.image)], [1])
    with pytest.raises(CaseError, match="has no image and mask"):
        tiny.check_case(Case("t", "a lighthouse"))


def _lora_file(runner, path: Path, rank=2) -> dict:
    g = torch.Generator().manual_seed(0)
    state = {}
    for name, mod in runner.pipe.transformer.named_modules():
        if name.endswith(("attn.to_q", "attn.to_v")) and isinstance(mod, torch.nn.Linear):
            state[f"transformer.{name}.lora_A.weight"] = torch.randn(rank, mod.in_features, generator=g) * 0.1
            state[f"transformer.{name}.lora_B.weight"] = (
                torch.randn(mod.out_features, rank, generator=g) * 0.1
            )
    save_file(state, str(path))
    return state


def test_lora_on_the_controlnet_pipeline_changes_only_the_transformer_by_the_expected_delta(
    tiny, case, tmp_path
):
    state = _lora_file(tiny, tmp_path / "turbo.safetensors")
    fused = _runner("flux-cn-beta-turbo8", lora=str(tmp_path / "turbo.safetensors"), lora_scale=0.5)
    assert fused.params.steps == 2 and fused.params.lora_scale == 0.5
    before = dict(tiny.pipe.transformer.named_parameters())
    after = dict(fused.pipe.transformer.named_parameters())
    assert set(before) == set(after)  # fused and unloaded: no LoRA modules left
    changed = set()
    for key in state:
        if key.endswith("lora_A.weight"):
            mod = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
            delta = state[key.replace("lora_A", "lora_B")] @ state[key]
            torch.testing.assert_close(
                after[f"{mod}.weight"], before[f"{mod}.weight"] + 0.5 * delta, rtol=0, atol=1e-6
            )
            changed.add(f"{mod}.weight")
    assert len(changed) == len(state) // 2 >= 4
    assert all(torch.equal(before[k], after[k]) for k in before if k not in changed)
    # the ControlNet has the same block names but is not touched
    for k, v in tiny.pipe.controlnet.state_dict().items():
        assert torch.equal(fused.pipe.controlnet.state_dict()[k], v), k
    assert not np.array_equal(_img(tiny.generate([case], [2])[0]), _img(fused.generate([case], [2])[0]))


def test_configurations_resolve_with_the_authors_settings():
    expect = {
        "flux-cn-alpha": dict(
            controlnet="alimama-creative/FLUX.1-dev-Controlnet-Inpainting-Alpha",
            width=768,
            height=768,
            steps=28,
            guidance=3.5,
            true_guidance=3.5,
            conditioning_scale=0.9,
            lora="",
        ),
        "flux-cn-beta": dict(
            controlnet="alimama-creative/FLUX.1-dev-Controlnet-Inpainting-Beta",
            width=1024,
            height=1024,
            steps=28,
            guidance=3.5,
            true_guidance=1.0,
            conditioning_scale=0.9,
            lora="",
        ),
        "flux-cn-beta-turbo8": dict(
            controlnet="alimama-creative/FLUX.1-dev-Controlnet-Inpainting-Beta",
            width=1024,
            height=1024,
            steps=8,
            guidance=3.5,
            true_guidance=1.0,
            conditioning_scale=0.9,
            lora="alimama-creative/FLUX.1-Turbo-Alpha",
            lora_scale=1.0,
        ),
    }
    for name, values in expect.items():
        c = cfg.resolve(name)
        assert c.runner == "flux-cn-inpaint"
        assert c.params.model == "black-forest-labs/FLUX.1-dev" and c.params.max_sequence_length == 512
        assert {k: getattr(c.params, k) for k in values} == values, name
    assert cfg.resolve("flux-cn-beta", [cfg.Override.parse("flux-cn-beta.steps=20")]).params.steps == 20
    with pytest.raises(cfg.ConfigError, match="true_guidance must be ≥ 1"):
        cfg.resolve("flux-cn-beta", [cfg.Override.parse("true_guidance=0.5")])


@pytest.mark.slow
def test_run_all_three_configurations_on_the_smoke_set(tiny, tmp_path: Path):
    import evalsuite

    lora = tmp_path / "turbo.safetensors"
    _lora_file(tiny, lora)
    res = evalsuite.run(
        configs=["flux-cn-alpha", "flux-cn-beta", "flux-cn-beta-turbo8"],
        dataset="smoke",
        weights="tiny",
        out=tmp_path / "reports",
        device="cpu",
        progress=False,
        overrides=["steps=1", f"flux-cn-beta-turbo8.lora={lora}"],
    )
    s = res.samples
    assert set(s["config"]) == {"flux-cn-alpha", "flux-cn-beta", "flux-cn-beta-turbo8"}
    # inpainting configurations run the smoke set's inpainting cases only: no skipped rows (issue 26)
    assert s["case_id"].str.startswith("inpaint-").all() and len(s) == 12
    assert (s["status"] == "ok").all(), s[["config", "case_id", "error"]]
    assert res.ok


def test_full_size_architecture_matches_the_published_checkpoint():
    with torch.device("meta"):
        m = cn.AlimamaInpaintControlNet(**cn.CONTROLNET_FULL)
    assert (len(m.transformer_blocks), len(m.single_transformer_blocks)) == (6, 0)
    assert (m.controlnet_x_embedder.in_features, m.controlnet_x_embedder.out_features) == (68, 3072)
    # the published diffusion_pytorch_model.safetensors is 4.28 GB of bf16 tensors
    n = sum(p.numel() for p in m.parameters())
    assert abs(n * 2 / 1e9 - 4.28) < 0.01, n
