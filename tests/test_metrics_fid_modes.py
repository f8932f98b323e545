"""FID modes against the reference packages' own code, with one shared random Inception state dict.

* ``legacy_pytorch`` vs pytorch-fid: its ``InceptionV3`` (FID blocks, bilinear resize inside the
  network), its PNG loading (``get_activations``) and its ``calculate_frechet_distance``.
* ``legacy_tensorflow`` vs torch-fidelity: its ``FeatureExtractorInceptionV3.forward`` on uint8
  (TF1.x-compatible resize inside) and its ``fid_statistics_to_metric``.
* ``clean`` vs clean-fid: its ``ResizeDataset`` / ``get_files_features`` (PIL bicubic on float
  channels) and its ``frechet_distance``. clean-fid's network is NVIDIA's TorchScript export of the
  same TF graph, which cannot be built with other weights; its normalisation ((x − 128)/128, as
  ``InceptionV3W.forward`` without ``resize_inside``) is applied to our network here, so this
  proves the preprocessing, the feature pipeline and the distance — not the TorchScript network.

Random weights: He-normal convolutions and identity batch norms (the default initialisation makes
every feature ~1e-7), saved as a weight file and loaded through ``metric_weights=real``.

The distance is checked in two links (:func:`_check_distance`), because each reference computes
``sqrtm`` of a 2048² product with SciPy's Schur method — about 18 s per call on one CPU thread,
twice in pytorch-fid when it retries with a regularised diagonal — which was most of this file's
two minutes. (1) Our FID of the whole pipeline, at 2048 features, equals the exact closed form for
its statistics: with two images per side each covariance has rank one, Σ = u uᵀ with
u = (x₁ − x₂)/√2, so tr √(Σ₁Σ₂) = |u₁·u₂|. (2) Our :func:`frechet_distance` equals the reference
package's own distance function on the same statistics restricted to the first 256 features (the
same rank-one regime, a 64th of the cost).
"""

import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.metrics import features as fx
from evalsuite.metrics.base import MetricBatch, ScoringContext
from evalsuite.metrics.quality import FID

# Both are in the `dev` extra (pinned in constraints.txt), so `make test` runs these; the skip is for
# an environment installed without it.
_WHY = "install the dev extra: pip install -c constraints.txt -e '.[dev]'"
pytest.importorskip("pytorch_fid", reason=_WHY)
pytest.importorskip("cleanfid", reason=_WHY)

N = 4  # images; FID of the first 2 against the last 2 (each Inception pass costs ~1 s on a CPU)
H = N // 2


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """(weights dir, state dict, PNG files, images as float tensors)."""
    from safetensors.torch import save_file

    tmp = tmp_path_factory.mktemp("fidmodes")
    torch.manual_seed(0)
    net = fx._build_inception(None).inner
    g = torch.Generator().manual_seed(1)
    sd = {}
    for k, v in net.state_dict().items():
        if k.endswith("conv.weight"):
            fan_in = v[0].numel()
            v = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif k.endswith("bn.running_mean") or k.endswith("bn.bias"):
            v = torch.zeros_like(v)
        elif k.endswith("bn.running_var") or k.endswith("bn.weight"):
            v = torch.ones_like(v)
        sd[k] = v.clone().contiguous()
    save_file(sd, str(tmp / (Path(fx.INCEPTION_FILE).stem + ".safetensors")))
    save_file(sd, str(tmp / (Path(fx.PT_INCEPTION_FILE).stem + ".safetensors")))
    rng = np.random.default_rng(0)
    files = []
    for i in range(N):
        base = rng.random((1, 1, 3)) * 160 + rng.random((90, 120, 3)) * 90  # not 299², not square
        p = tmp / f"{i}.png"
        Image.fromarray(base.clip(0, 255).astype(np.uint8)).save(p)
        files.append(str(p))
    imgs = torch.stack(
        [torch.from_numpy(np.asarray(Image.open(f), np.float32) / 255).permute(2, 0, 1) for f in files]
    )
    return tmp, sd, files, imgs


def _ours(shared, mode):
    wdir, _, _, imgs = shared
    m = FID(metric_weights="real", metric_weights_dir=str(wdir), mode=mode, kid_subsets=2)
    ref = m.features(imgs[H:])
    m.set_reference_features(ref, {"reference": "last half"})
    m.update(MetricBatch(rows=[{}] * H, images=imgs[:H]))  # features kept in the 'fake_features' state
    feats = np.concatenate([torch.cat(m.fake_features).numpy(), ref])
    return m, feats, m.compute()


def _close_fid(ours, ref):
    assert ref > 0 and abs(ours - ref) <= 1e-4 * abs(ref), (ours, ref)


def _rank_one_fid(a, b):
    """Exact FID of two 2-sample feature sets (rows), from the rank-one covariances."""
    assert len(a) == len(b) == 2
    u, v = (a[0] - a[1]) / math.sqrt(2), (b[0] - b[1]) / math.sqrt(2)
    mean = float(((a.mean(0) - b.mean(0)) ** 2).sum())
    return mean + float(u @ u + v @ v - 2 * abs(u @ v))


DIMS = 256  # the reference distance functions run on the first DIMS features (see the docstring)


def _check_distance(ours_value, feats, reference_distance):
    """Both links of the module docstring; ``reference_distance(a, b)`` → the reference's FID."""
    from evalsuite.metrics.functional import feature_stats, frechet_distance

    a, b = np.asarray(feats[:H], np.float64), np.asarray(feats[H:], np.float64)
    _close_fid(ours_value, _rank_one_fid(a, b))
    a, b = a[:, :DIMS], b[:, :DIMS]
    ref = reference_distance(a, b)
    _close_fid(frechet_distance(*feature_stats(a), *feature_stats(b)), ref)
    _close_fid(_rank_one_fid(a, b), ref)  # the closed form agrees with the reference too


@pytest.mark.slow  # 8 full-size Inception passes (~10 s on an idle 2-core CPU)
def test_legacy_pytorch_equals_pytorch_fid(shared):
    import pytorch_fid.inception as pi
    from pytorch_fid.fid_score import calculate_frechet_distance, get_activations

    _, sd, files, _ = shared
    m, ours, res = _ours(shared, "legacy_pytorch")
    assert m._net().id.startswith("inception-v3-2015-12-05-pytorch-fid@")
    with mock.patch.object(pi, "load_state_dict_from_url", lambda *a, **k: dict(sd)):
        ref_net = pi.InceptionV3([3]).eval()  # FID blocks, resize_input=True, normalize_input=True
    ref = get_activations(files, ref_net, batch_size=N, dims=2048, device="cpu", num_workers=0)
    assert ref.std() > 1e-3  # the features carry signal
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    _check_distance(
        res.value,
        ref,
        lambda a, b: calculate_frechet_distance(
            a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
        ),
    )
    assert res.extra["fid_mode"] == "legacy_pytorch" and "bilinear" in res.extra["preprocessing"]["resize"]


@pytest.mark.slow  # 8 full-size Inception passes (~10 s on an idle 2-core CPU)
def test_legacy_tensorflow_equals_torch_fidelity(shared):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    _, sd, _, imgs = shared
    m, ours, res = _ours(shared, "legacy_tensorflow")
    fe = m._net().module.inner  # torch-fidelity's own module, its own forward (uint8 in, TF resize inside)
    with torch.no_grad():
        ref = fe(fx.to_uint8(imgs))[0].double()
    assert ref.std() > 1e-3
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    _check_distance(
        res.value,
        ref.numpy(),
        lambda a, b: fid_statistics_to_metric(
            fid_features_to_statistics(torch.from_numpy(a)),
            fid_features_to_statistics(torch.from_numpy(b)),
            verbose=False,
        )["frechet_inception_distance"],
    )


@pytest.mark.slow  # 8 full-size Inception passes (~10 s on an idle 2-core CPU)
def test_clean_equals_clean_fid_preprocessing_and_distance(shared):
    from cleanfid import fid as cfid
    from cleanfid.resize import build_resizer

    _, _, files, imgs = shared
    m, ours, res = _ours(shared, "clean")
    net = m._net().module
    # clean-fid's resize on its own: PIL bicubic on float channels, no quantisation
    u8 = np.asarray(Image.open(files[0]).convert("RGB"))
    theirs = torch.from_numpy(build_resizer("clean")(u8)).permute(2, 0, 1)
    mine = fx.fid_input(imgs[:1], "clean", 299)[0] * 128 + 128
    torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-4)

    def model_fn(x):  # InceptionV3W.forward without resize_inside: (x − 128)/128 → layers
        with torch.no_grad():
            return net((x - 128) / 128)

    ref = cfid.get_files_features(
        files,
        model=model_fn,
        num_workers=0,
        batch_size=N,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    _check_distance(
        res.value,
        ref,
        lambda a, b: cfid.frechet_distance(
            a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
        ),
    )


def test_modes_differ_and_are_recorded_in_the_cache_key(shared, tmp_path, monkeypatch, tiny_dataset):
    from evalsuite.data.cases import load_manifest

    wdir, _, _, imgs = shared
    feats = {mode: FID(metric_weights="random", mode=mode).features(imgs) for mode in fx.FID_MODES}
    assert not np.allclose(feats["clean"], feats["legacy_pytorch"])
    assert not np.allclose(feats["clean"], feats["legacy_tensorflow"])
    monkeypatch.setenv("EVALSUITE_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_manifest(tiny_dataset)
    keys = set()
    for mode in fx.FID_MODES:
        m = FID(metric_weights="random", mode=mode)
        m.prepare(ScoringContext(config="c", task="inpaint", dataset=ds))
        keys.add(m._ref_desc["cache_key"])
        assert m.describe()["fid_mode"] == mode
    assert len(keys) == 3 and len(list((tmp_path / "cache" / "reference-features").glob("*.npz"))) == 3


def test_fid_mode_is_a_typed_option():
    from evalsuite.metrics.base import MetricOptionError

    with pytest.raises(
        MetricOptionError,
        match="fid.mode: expected one of clean, legacy_pytorch, legacy_tensorflow, got 'legacy'",
    ):
        FID(metric_weights="random", mode="legacy")
    with pytest.raises(MetricOptionError, match=r"'mdoe' \(did you mean 'mode'\?\).*valid options: .*mode"):
        FID(metric_weights="random", mdoe="clean")
    assert FID(metric_weights="random").options.mode == "clean"  # the default


def test_required_weight_file_follows_the_mode():
    assert fx.required_files(["fid"], "real") == [fx.INCEPTION_FILE]
    assert fx.required_files(["fid"], "real", metric_options={"fid": {"mode": "legacy_pytorch"}}) == [
        fx.PT_INCEPTION_FILE
    ]
    assert fx.required_files(["clip_score_mlperf"], "real") == ["open_clip-ViT-B-32-openai.safetensors"]
