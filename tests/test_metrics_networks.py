"""Metric classes with feature networks: LPIPS against the lpips package, CLIP truncation counts,
FID/KID invariants, streaming = one-shot, weight-file loading and the offline check."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import MetricBatch, ScoringContext
from evalsuite.metrics.quality import FID, ClipScore, ClipScoreMasked, PairedLPIPS, UnmaskedLPIPS

CPU = torch.device("cpu")
RANDOM = {"metric_weights": "random"}


def _imgs(n=4, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def _batch(images, prompts=None, masks=None, sources=None, pairs=None):
    rows = [{"config": "c", "case_id": str(i), "seed": 0} for i in range(len(images))]
    return MetricBatch(
        rows=rows,
        images=images,
        prompts=prompts or ["a cat"] * len(images),
        masks=masks,
        sources=sources,
        pairs=pairs,
    )


# -- LPIPS ----------------------------------------------------------------------------------------
def test_masked_lpips_equals_the_lpips_package_on_whole_images():
    import lpips

    net = fx.lpips_net("random", CPU).module
    a, b = _imgs(seed=1), _imgs(seed=2)
    with torch.no_grad():
        ref = net(a, b, normalize=True).flatten()
        ours = fn.masked_lpips(net, a, b)
        ours_ones = fn.masked_lpips(net, a, b, torch.ones(4, 1, 64, 64))
        # an independent lpips instance with the same random trunk and packaged heads
        torch.manual_seed(0)
        other = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
        other.net.load_state_dict(net.net.state_dict())
        ref2 = other(a, b, normalize=True).flatten()
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7)
    assert torch.allclose(ours_ones, ref, rtol=1e-5, atol=1e-7)
    assert torch.allclose(ref2, ref, rtol=1e-6)


def test_masked_lpips_ignores_differences_outside_the_kept_region():
    net = fx.lpips_net("random", CPU).module
    a = _imgs(n=1, size=128)
    b = a.clone()
    b[:, :, :, 64:] = torch.rand(1, 3, 128, 64)
    keep_left = torch.zeros(1, 1, 128, 128)
    keep_left[:, :, :, :32] = 1  # far from the changed half at AlexNet's coarsest stride
    with torch.no_grad():
        assert float(fn.masked_lpips(net, a, b, keep_left)) < 0.05 * float(fn.masked_lpips(net, a, b))


def test_paired_and_unmasked_lpips_metrics_use_the_functional():
    a, b = _imgs(seed=3), _imgs(seed=4)
    mask = torch.zeros(4, 1, 64, 64)
    mask[:, :, 16:48, 16:48] = 1
    net = fx.lpips_net("random", CPU).module
    m = PairedLPIPS(**RANDOM)
    vals = m.update(_batch(a, pairs=b, masks=mask))
    with torch.no_grad():
        assert vals == pytest.approx(fn.masked_lpips(net, a, b).tolist(), rel=1e-6)
        assert m.extra_columns()["lpips_pair_masked"] == pytest.approx(
            fn.masked_lpips(net, a, b, mask).tolist(), rel=1e-6
        )
    r = m.compute()
    assert r.n == 4 and r.value == pytest.approx(float(np.mean(vals)))
    assert m.describe()["quality_evidence"] is False
    u = UnmaskedLPIPS(**RANDOM)
    uv = u.update(_batch(a, sources=b, masks=mask))
    with torch.no_grad():
        assert uv == pytest.approx(fn.masked_lpips(net, a, b, 1 - mask).tolist(), rel=1e-6)


# -- CLIP -----------------------------------------------------------------------------------------
def test_clip_score_counts_truncated_prompts():
    long = "a very detailed photograph of a red apple on a wooden table " * 12
    m = ClipScore(**RANDOM)
    vals = m.update(_batch(_imgs(n=3), prompts=["a red apple", long, ""]))
    assert len(vals) == 3 and all(0 <= v <= 100 for v in vals)
    assert m.extra_columns()["clip_prompt_truncated"] == [0.0, 1.0, 0.0]
    m.update(_batch(_imgs(n=1), prompts=[long + " more"]))
    r = m.compute()
    assert r.extra["truncated_prompts"] == 2 and r.n == 4 and r.extra["context_length"] == 77
    tok = fx.clip_net("random", CPU).extra["tokenizer"]
    assert fx.count_truncated(tok, ["word " * 75, "word " * 76], 77) == [
        False,
        True,
    ]  # 75 + 2 fit, 76 + 2 do not


def test_clip_score_matches_a_direct_cosine_and_streams():
    net = fx.clip_net("random", CPU)
    imgs = _imgs(n=4)
    prompts = ["a cat", "a dog", "a red car", "the sea"]
    m = ClipScore(**RANDOM)
    one = m.update(_batch(imgs, prompts))
    one_shot = m.compute().value
    m.reset()
    assert m.compute().n == 0
    two = m.update(_batch(imgs[:2], prompts[:2])) + m.update(_batch(imgs[2:], prompts[2:]))
    assert two == pytest.approx(one, abs=1e-4) and m.compute().value == pytest.approx(one_shot, abs=1e-4)
    mean = torch.tensor(net.extra["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(net.extra["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        e_i = net.module.encode_image((imgs - mean) / std)  # 64 px already: no resize
        e_t = net.module.encode_text(net.extra["tokenizer"](prompts))
    ref = (100 * torch.cosine_similarity(e_i, e_t).clamp(min=0)).tolist()
    assert one == pytest.approx(ref, rel=1e-4, abs=1e-4)


def test_masked_clip_score_scores_the_mask_crop():
    imgs = _imgs(n=2, size=64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 8:40, 8:40] = 1
    crop = torch.stack([fn.mask_bbox_square_crop(i, mm) for i, mm in zip(imgs, mask, strict=True)])
    masked = ClipScoreMasked(**RANDOM).update(_batch(imgs, masks=mask))
    whole_of_crop = ClipScore(**RANDOM).update(_batch(crop))
    assert masked == pytest.approx(whole_of_crop, rel=1e-5)


# -- FID / KID --------------------------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero_and_streaming_equals_one_shot():
    imgs = _imgs(n=12, size=64, seed=5)
    m = FID(**RANDOM, kid_subsets=10)
    ref = m.features(imgs)
    m.set_reference_features(ref, {"reference": "self"})
    m.update(_batch(imgs))
    r1 = m.compute()
    assert r1.value == pytest.approx(0.0, abs=1e-6) and r1.n == 12 and r1.extra["n_ref"] == 12
    assert abs(r1.extra["kid"]) < 0.05 and r1.extra["kid_std"] >= 0
    assert (
        r1.extra["preprocessing"]["mode"] == "clean" and "PIL bicubic" in r1.extra["preprocessing"]["resize"]
    )
    m.reset()  # the reference stays
    for i in range(0, 12, 5):
        m.update(_batch(imgs[i : i + 5]))
    r2 = m.compute()
    assert r2.value == pytest.approx(r1.value, abs=1e-9) and r2.extra["kid"] == pytest.approx(r1.extra["kid"])
    m.reset()
    m.update(_batch(_imgs(n=12, size=64, seed=6) * 0.3))  # darker images: far away
    assert m.compute().value > 1e-3
    assert m.describe()["quality_evidence"] is False


def test_fid_without_reference_is_nan_with_a_reason():
    m = FID(**RANDOM)
    m.update(_batch(_imgs(n=3)))
    r = m.compute()
    assert math.isnan(r.value) and r.n == 3 and "reason" in r.extra


def test_fid_reference_features_are_cached_outside_the_package(tmp_path, monkeypatch, tiny_dataset):
    from evalsuite.data.cases import load_manifest

    monkeypatch.setenv("EVALSUITE_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_manifest(tiny_dataset)
    m = FID(**RANDOM)
    m.prepare(ScoringContext(config="c", task="inpaint", dataset=ds))
    files = list((tmp_path / "cache" / "reference-features").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:
        assert z["features"].shape == (2, 64)  # the 2 cases with a source image
    m2 = FID(**RANDOM)
    m2.prepare(ScoringContext(config="c", task="inpaint", dataset=ds))
    assert np.array_equal(m2._ref, m._ref)
    m3 = FID(**RANDOM)
    m3.prepare(ScoringContext(config="c", task="t2i", dataset=ds))  # no reference images in this dataset
    m3.update(_batch(_imgs(n=2)))
    assert math.isnan(m3.compute().value)


# -- weights ----------------------------------------------------------------------------------------
def _hub_offline(monkeypatch, on: bool) -> None:
    """huggingface_hub reads HF_HUB_OFFLINE once at import; evalsuite asks huggingface_hub."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", on)


def test_offline_follows_huggingface_hub(monkeypatch):
    _hub_offline(monkeypatch, True)
    assert fx.offline()
    _hub_offline(monkeypatch, False)
    assert not fx.offline()


def test_check_metric_weights_names_the_missing_file_offline(tmp_path, monkeypatch):
    _hub_offline(monkeypatch, True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv(fx.ENV_DIR, raising=False)
    fx.check_metric_weights(["fid", "clip_score", "unmasked_lpips"], "random")  # nothing needed
    with pytest.raises(fx.MetricWeightsError) as e:
        fx.check_metric_weights(["latency", "fid"], "real", tmp_path)
    msg = str(e.value)
    assert fx.INCEPTION_FILE in msg and "--metric-weights-dir" in msg and "\n" not in msg
    (tmp_path / fx.INCEPTION_FILE).write_bytes(b"x")
    fx.check_metric_weights(["fid"], "real", tmp_path)
    with pytest.raises(fx.MetricWeightsError, match="alexnet-owt-7be5be79.pth"):
        fx.check_metric_weights(["unmasked_lpips"], "real", tmp_path)
    with pytest.raises(fx.MetricWeightsError, match="open_clip-ViT-L-14-openai.safetensors"):
        fx.check_metric_weights(["clip_score"], "real", tmp_path)
    monkeypatch.setenv(fx.ENV_DIR, str(tmp_path))
    (tmp_path / "open_clip-ViT-L-14-openai.safetensors").write_bytes(b"x")
    fx.check_metric_weights(["clip_score"], "real")


def test_check_metric_weights_fails_when_the_download_host_is_unreachable(tmp_path, monkeypatch):
    _hub_offline(monkeypatch, False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(
        fx, "_SOURCES", {**fx._SOURCES, fx.ALEXNET_FILE: "http://127.0.0.1:9/alexnet-owt-7be5be79.pth"}
    )
    with pytest.raises(fx.MetricWeightsError, match="127.0.0.1:9 is unreachable"):
        fx.check_metric_weights(["lpips_pair"], "real", tmp_path)


def test_real_mode_loads_lpips_trunk_from_the_weights_dir(tmp_path):
    import torchvision

    torch.manual_seed(7)
    alex = torchvision.models.alexnet(weights=None)
    torch.save(
        {k: v for k, v in alex.state_dict().items() if k.startswith("features.")}, tmp_path / fx.ALEXNET_FILE
    )
    net = fx.lpips_net("real", CPU, tmp_path)
    assert net.quality_evidence and net.id == "lpips-v0.1-alex"
    assert torch.equal(net.module.net.slice1[0].weight, alex.features[0].weight)
    assert torch.equal(net.module.net.slice5._modules["10"].weight, alex.features[10].weight)


def test_real_mode_loads_inception_from_a_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    rand = fx.inception("random_full", CPU).module
    sd = {k: v.clone() * 0.5 for k, v in rand.inner.state_dict().items()}
    save_file(sd, str(tmp_path / (Path(fx.INCEPTION_FILE).stem + ".safetensors")))
    real = fx.inception("real", CPU, tmp_path)
    assert real.quality_evidence and real.extra["dim"] == 2048
    k = "Conv2d_1a_3x3.conv.weight"
    assert torch.equal(real.module.inner.state_dict()[k], sd[k])


def test_reference_cache_key_follows_the_weight_files_bytes(tmp_path):
    # two Inception files with the same name but other bytes (a replaced or damaged download) must not
    # share cached reference statistics: the digest is in the network id, and so in the cache key
    from safetensors.torch import save_file

    rand = fx.inception("random_full", CPU).module
    name = Path(fx.INCEPTION_FILE).stem + ".safetensors"
    ids = []
    for scale, folder in ((0.5, "a"), (0.25, "b"), (0.5, "c")):
        (tmp_path / folder).mkdir()
        save_file(
            {k: v.clone() * scale for k, v in rand.inner.state_dict().items()}, str(tmp_path / folder / name)
        )
        ids.append(fx.inception("real", CPU, tmp_path / folder).id)
    assert ids[0] != ids[1] and ids[0] == ids[2]  # same bytes, same id
    assert ids[0].startswith("inception-v3-2015-12-05-torch-fidelity@")
    pre = {"mode": "clean"}
    assert fx.stats_key("fp", "all", ids[0], pre) != fx.stats_key("fp", "all", ids[1], pre)
