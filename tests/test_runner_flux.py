from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from evalsuite.config import configuration as cfg
from evalsuite.data.cases import Case
from evalsuite.runners.flux import FluxText2Image
from evalsuite.runners.lora import LoraError
from evalsuite.runners.weights import Weights, WeightsError
from evalsuite.testing.contract import RunnerContract

CASES = [Case("a", "a red apple on a wooden table"), Case("b", "a lighthouse")]


def _runner(policy="tiny", weights_dir=None, **over):
    conf = cfg.resolve("flux-dev", [cfg.Override("flux-dev", k, v) for k, v in {"steps": 2, **over}.items()])
    r = FluxText2Image(conf.params, Weights(policy, weights_dir))
    r.load()
    return r


def test_same_seed_same_image_and_batch_invariance():
    r = _runner()
    a = r.generate(CASES[:1], [7])[0].image
    b = r.generate(CASES[:1], [7])[0].image
    c = r.generate(CASES[:1], [8])[0].image
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    # per-sample generators make the noise batch-independent, but batched CPU kernels may round
    # differently (not promised bitwise: evalsuite.testing.contract)
    both = r.generate(CASES, [7, 9])
    RunnerContract.batch_tolerance.check(both[0].image, a, "flux-dev: single vs batch of 2")


def test_bitwise_equal_to_calling_fluxpipeline_directly():
    r = _runner()
    out = r.generate(CASES[:1], [3])[0]
    direct = r.pipe(
        prompt=CASES[0].prompt,
        height=64,
        width=64,
        num_inference_steps=2,
        guidance_scale=3.5,
        generator=torch.Generator("cpu").manual_seed(3),
        max_sequence_length=512,
    ).images[0]
    assert np.array_equal(np.asarray(out.image), np.asarray(direct))
    assert len(out.steps) == 2 and all(s >= 0 for s in out.steps)
    assert set(out.phases) == {"text_encode", "denoise", "vae_decode"}
    assert sum(out.steps) <= out.phases["denoise"] + 1e-6


def test_hub_policy_loads_a_saved_checkpoint_offline(tmp_path: Path):
    tiny = _runner()
    repo = tmp_path / "weights" / "black-forest-labs" / "FLUX.1-dev"
    tiny.pipe.save_pretrained(repo, safe_serialization=True)
    assert (repo / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(repo.rglob("*.bin"))
    # the hub path reads <weights_dir>/<org>/<name> exactly as a user's air-gapped folder
    hub = _runner("hub", weights_dir=tmp_path / "weights", tiny_size=64, width=64, height=64, dtype="float32")
    a = tiny.generate(CASES[:1], [5])[0].image
    b = hub.generate(CASES[:1], [5])[0].image
    # the same weights (loaded from the saved copy) in other tensors: CPU kernels may round a pixel
    # differently by instruction set (AVX-512 vs AVX2), so within the contract's reload tolerance
    RunnerContract.reload_tolerance.check(a, b, "flux-dev: tiny vs saved copy")


def test_hub_policy_offline_without_weights_fails_clearly(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE is set.*--weights-dir"):
        _runner("hub", model="black-forest-labs/FLUX.1-dev")


def _lora_state(runner, rank=2, prefix="transformer."):
    g = torch.Generator().manual_seed(0)
    state = {}
    for name, mod in runner.pipe.transformer.named_modules():
        if name.endswith("attn.to_q") and isinstance(mod, torch.nn.Linear):
            state[f"{prefix}{name}.lora_A.weight"] = torch.randn(rank, mod.in_features, generator=g) * 0.1
            state[f"{prefix}{name}.lora_B.weight"] = torch.randn(mod.out_features, rank, generator=g) * 0.1
    return state


def test_lora_fuses_exact_delta(tmp_path: Path):
    base = _runner()
    state = _lora_state(base)
    path = tmp_path / "turbo.safetensors"
    save_file(state, str(path))
    fused = _runner(lora=str(path), lora_scale=0.5)
    before = dict(base.pipe.transformer.named_parameters())
    after = dict(fused.pipe.transformer.named_parameters())
    checked = 0
    for key in state:
        if not key.endswith("lora_A.weight"):
            continue
        mod = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
        delta = state[key.replace("lora_A", "lora_B")] @ state[key]
        # diffusers' LoRA loader uses alpha = rank when the file has no alpha: scale × B·A
        expected = before[f"{mod}.weight"] + 0.5 * delta
        torch.testing.assert_close(after[f"{mod}.weight"], expected, rtol=0, atol=1e-6)
        checked += 1
    assert checked >= 2
    untouched = [k for k in before if "to_k" in k]
    assert all(torch.equal(before[k], after[k]) for k in untouched)


def test_lora_without_matching_keys_is_refused(tmp_path: Path):
    base = _runner()
    state = {k.removeprefix("transformer."): v for k, v in _lora_state(base, prefix="transformer.").items()}
    state = {f"unet.{k}": v for k, v in state.items()}
    path = tmp_path / "wrong.safetensors"
    save_file(state, str(path))
    with pytest.raises(LoraError, match="none of its .* keys match"):
        _runner(lora=str(path))
