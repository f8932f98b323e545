"""CMMD, FD-DINOv2 and precision/recall/density/coverage: the estimators against independent
computations (CMMD's published formula in NumPy, the ``prdc`` package's own code, torch-fidelity's
own DINOv2 feature extractor and FID statistics on shared random weights), the preprocessing,
the bad inputs and the run/score/report/compare path on tiny weights."""

import json
import math
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.metrics import distribution as dist
from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import MetricBatch, ScoringContext

RNG = np.random.default_rng(27)


# -- CMMD ---------------------------------------------------------------------------------------
def _cmmd_reference(x: np.ndarray, y: np.ndarray, sigma: float = 10.0) -> float:
    """The published formula term by term: 1000 × (mean k(xi,xj) + mean k(yi,yj) − 2 mean k(xi,yj)),
    k(a, b) = exp(−‖a − b‖² / (2σ²)), every pair including i = j."""

    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))

    kxx = sum(k(a, b) for a in x for b in x) / len(x) ** 2
    kyy = sum(k(a, b) for a in y for b in y) / len(y) ** 2
    kxy = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return 1000 * (kxx + kyy - 2 * kxy)


def _unit(n: int, d: int, shift: float = 0.0) -> np.ndarray:
    v = RNG.normal(size=(n, d)) + shift
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cmmd_estimator_matches_the_published_formula():
    x, y = _unit(12, 16), _unit(9, 16, shift=0.3)
    assert fn.cmmd(x, y) == pytest.approx(_cmmd_reference(x, y), rel=1e-10)
    z = RNG.normal(size=(7, 5)) * 4  # not normalised, larger distances
    w = RNG.normal(size=(6, 5)) * 4 + 1
    assert fn.cmmd(z, w, sigma=3.0) == pytest.approx(_cmmd_reference(z, w, sigma=3.0), rel=1e-10)


def test_cmmd_invariants():
    x, y = _unit(20, 8), _unit(15, 8, shift=0.5)
    assert fn.cmmd(x, x) == pytest.approx(0.0, abs=1e-9)
    assert fn.cmmd(x, y) == pytest.approx(fn.cmmd(y, x), rel=1e-12)
    assert fn.cmmd(x, y) > 0
    assert fn.cmmd(x, _unit(15, 8, shift=2.0)) > fn.cmmd(x, y)  # further apart → larger
    with pytest.raises(ValueError, match="same D"):
        fn.cmmd(x, _unit(3, 4))


def test_cmmd_preprocessing_is_pil_bicubic_without_crop():
    img = torch.from_numpy(RNG.integers(0, 256, (2, 3, 100, 180)).astype(np.float32) / 255)
    got = dist.cmmd_input(img)
    assert got.shape == (2, 3, 336, 336)
    mean, std = np.array(dist.pn.OPENAI_MEAN), np.array(dist.pn.OPENAI_STD)
    for i in range(2):
        u8 = (img[i].numpy() * 255).round().astype(np.uint8)
        chans = [
            np.asarray(
                Image.fromarray(u8[c].astype(np.float32), mode="F").resize(
                    (336, 336), Image.Resampling.BICUBIC
                )
            ).clip(0, 255)
            for c in range(3)
        ]
        want = (np.stack(chans) / 255 - mean[:, None, None]) / std[:, None, None]
        np.testing.assert_allclose(got[i].numpy(), want, atol=1e-5)


# -- PRDC ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_matches_the_prdc_package(k):
    from prdc import compute_prdc

    real = RNG.normal(size=(60, 12))
    fake = RNG.normal(size=(50, 12)) * 1.3 + 0.4
    want = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = fn.prdc(real, fake, k)
    for m in ("precision", "recall", "density", "coverage"):
        assert got[m] == pytest.approx(float(want[m]), abs=1e-12), m


def test_prdc_needs_k_plus_one_samples():
    with pytest.raises(ValueError, match="at least k \\+ 1 = 6 samples"):
        fn.prdc(RNG.normal(size=(5, 4)), RNG.normal(size=(20, 4)), 5)
    fn.prdc(RNG.normal(size=(6, 4)), RNG.normal(size=(6, 4)), 5)


# -- FD-DINOv2 ------------------------------------------------------------------------------------
class _HubDinoStandIn(torch.nn.Module):
    """What ``torch.hub.load('facebookresearch/dinov2', ...)`` returns, called as torch-fidelity
    calls it (normalised (N, 3, 224, 224) → (N, D) CLS features), on the shared random weights."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(pixel_values=x).pooler_output


def test_fd_dinov2_torch_fidelity_mode_matches_torch_fidelity():
    from torch_fidelity import feature_extractor_dinov2 as tfd
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    net = dist.dinov2_net("random", torch.device("cpu"))
    with mock.patch.object(torch.hub, "load", lambda *a, **k: _HubDinoStandIn(net.module)):
        tf = tfd.FeatureExtractorDinoV2("dinov2-vit-l-14", ["dinov2"])
    d = net.module.config.hidden_size
    n = d + 8
    a = torch.from_numpy(RNG.integers(0, 256, (n, 3, 48, 40), dtype=np.uint8))
    b = torch.from_numpy(RNG.integers(0, 200, (n, 3, 48, 40), dtype=np.uint8))
    m = dist.FDDinov2(metric_weights="random", mode="torch_fidelity")
    fa, fb = m.features(a.float() / 255), m.features(b.float() / 255)
    with torch.no_grad():
        ta, tb = tf(a)[0].double(), tf(b)[0].double()
    np.testing.assert_allclose(fa, ta.numpy(), rtol=1e-4, atol=1e-4)
    want = fid_statistics_to_metric(
        fid_features_to_statistics(ta), fid_features_to_statistics(tb), verbose=False
    )["frechet_inception_distance"]
    m.set_reference_features(fb, {"reference": "test"})
    m.update(MetricBatch(rows=[{}] * n, images=a.float() / 255))
    got = m.compute()
    assert got.value == pytest.approx(want, rel=1e-4)
    assert got.extra["fd_mode"] == "torch_fidelity" and got.n == n


def test_dgm_eval_preprocessing_is_torchvision_bicubic_on_pil():
    from torchvision import transforms as T

    u8 = RNG.integers(0, 256, (3, 64, 90, 3), dtype=np.uint8)
    pipe = T.Compose(
        [
            T.Resize((224, 224), interpolation=T.InterpolationMode.BICUBIC),
            T.ToTensor(),
            T.Normalize(dist.IMAGENET_MEAN, dist.IMAGENET_STD),
        ]
    )
    want = torch.stack([pipe(Image.fromarray(x)) for x in u8])
    got = dist.dinov2_input(torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255, "dgm_eval")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    tf = dist.dinov2_input(torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255, "torch_fidelity")
    assert tf.shape == got.shape and not torch.allclose(tf, got, atol=1e-3)  # the modes differ


# -- bad inputs ---------------------------------------------------------------------------------
def _imgs(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32))


def test_too_few_samples_are_nan_with_the_minimum():
    fd = dist.FDDinov2(metric_weights="random")
    fd.set_reference_features(fd.features(_imgs(40, 1)), {"reference": "test"})
    fd.update(MetricBatch(rows=[{}] * 10, images=_imgs(10)))
    r = fd.compute()
    assert math.isnan(r.value) and "at least D + 1 = 33 images" in r.extra["reason"]
    pr = dist.PRDCDinov2(metric_weights="random")
    pr.set_reference_features(pr.features(_imgs(10, 1)), {"reference": "test"})
    pr.update(MetricBatch(rows=[{}] * 5, images=_imgs(5)))
    r = pr.compute()
    assert math.isnan(r.value) and math.isnan(r.extra["precision"]) and "k + 1 = 6" in r.extra["reason"]
    pr.update(MetricBatch(rows=[{}] * 5, images=_imgs(5, 2)))
    r = pr.compute()
    assert 0 <= r.value <= 1 and r.extra["headline"] == "coverage" and r.value == r.extra["coverage"]
    cm = dist.CMMD(metric_weights="random")
    cm.update(MetricBatch(rows=[{}] * 3, images=_imgs(3)))
    assert math.isnan(cm.compute().value) and cm.compute().extra["reason"] == "no reference set"


@pytest.mark.parametrize(
    "metric, cls, fetch",
    [
        ("cmmd", dist.CMMD, "hf download openai/clip-vit-large-patch14-336 pytorch_model.bin"),
        ("fd_dinov2", dist.FDDinov2, "hf download facebook/dinov2-large model.safetensors"),
    ],
)
def test_real_weights_missing_offline_name_the_fetch_command(tmp_path, monkeypatch, metric, cls, fetch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(fx.MetricWeightsError, match=fetch.replace(".", "\\.")):
        fx.check_metric_weights([metric], "real", tmp_path / "empty")
    m = cls(metric_weights="real", metric_weights_dir=str(tmp_path / "empty"))
    with pytest.raises(fx.MetricWeightsError, match="HF_HUB_OFFLINE"):
        m.update(MetricBatch(rows=[{}], images=_imgs(1)))
    # the same file placed where the message says (DIR/<path>) satisfies the check before generation
    wf = dist.CLIP336_FILE if metric == "cmmd" else dist.DINOV2_FILE
    (tmp_path / "empty" / wf.path).parent.mkdir(parents=True)
    (tmp_path / "empty" / wf.path).write_bytes(b"stand-in")
    fx.check_metric_weights([metric], "real", tmp_path / "empty")


# -- end to end -----------------------------------------------------------------------------------
def test_run_score_report_compare_on_tiny_weights(tmp_path):
    from tests.test_cli import cli

    names = ["cmmd", "fd_dinov2", "prdc", "prdc_dinov2"]
    runs = []
    for rid, steps in (("a", "2"), ("b", "3")):
        res = cli(
            "run", "--configs", "flux-cn-beta", "--dataset", "text-inpaint", "--limit", "8",
            "--set", f"steps={steps}", "--metrics", *names, "--out", str(tmp_path), "--run-id", rid,
            "--no-progress", cwd=tmp_path,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        runs.append(tmp_path / rid)
    meta = json.loads((runs[0] / "run.json").read_text(encoding="utf-8"))
    got = meta["summary"]["flux-cn-beta"]["metrics"]
    assert got["cmmd"]["value"] > 0 and got["cmmd"]["n_ref"] == 8
    assert got["fd_dinov2"]["value"] is None or math.isnan(got["fd_dinov2"]["value"])  # NaN, with the reason:
    assert "D + 1 = 33" in got["fd_dinov2"]["reason"]
    assert 0 <= got["prdc"]["value"] <= 1 and set(got["prdc"]) >= {
        "precision",
        "recall",
        "density",
        "coverage",
    }
    assert got["prdc_dinov2"]["preprocessing"]["mode"] == "dgm_eval"
    report = (runs[0] / "report.md").read_text(encoding="utf-8")
    assert "cmmd" in report and "prdc_dinov2" in report
    res = cli("score", str(runs[0]), "--metrics", "cmmd", "prdc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = cli("compare", str(runs[0]), str(runs[1]), cwd=tmp_path)
    assert res.returncode in (0, 1), res.stderr
    assert "cmmd" in "".join(p.read_text(encoding="utf-8") for p in runs[1].glob("compare-vs-a/*.md"))


def test_reference_features_are_cached_per_network_and_preprocessing(tmp_path, monkeypatch):
    from evalsuite.data.registry import load_dataset

    monkeypatch.setenv("EVALSUITE_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_dataset("text-inpaint").select(limit=3)
    ctx = ScoringContext(config="x", task="inpaint", dataset=ds)
    keys = {}
    for mode in ("dgm_eval", "torch_fidelity"):
        m = dist.FDDinov2(metric_weights="random", mode=mode)
        m.prepare(ctx)
        assert m._ref.shape == (3, 32) and m._ref_desc["reference"] == "image"
        keys[mode] = m._ref_desc["cache_key"]
    assert keys["dgm_eval"] != keys["torch_fidelity"]
    cached = sorted(p.stem for p in (tmp_path / "cache").rglob("*.npz"))
    assert cached == sorted(keys.values())
    again = dist.FDDinov2(metric_weights="random", mode="dgm_eval")
    with mock.patch.object(dist.FDDinov2, "_files_features", side_effect=AssertionError("recomputed")):
        again.prepare(ctx)  # read from the cache
    np.testing.assert_array_equal(
        again._ref, dist.FDDinov2(metric_weights="random").features(_ref_images(ds))
    )


def _ref_images(ds) -> torch.Tensor:
    return torch.stack(
        [
            torch.from_numpy(np.asarray(Image.open(c.image).convert("RGB"), np.float32) / 255).permute(
                2, 0, 1
            )
            for c in ds.cases
        ]
    )


def test_shards_merge_like_one_pass():
    x = _imgs(10, 6)
    for cls in (dist.CMMD, dist.PRDCDinov2):
        whole, a, b = (cls(metric_weights="random") for _ in range(3))
        ref = whole.features(_imgs(12, 5))
        for m in (whole, a, b):
            m.set_reference_features(ref, {"reference": "test"})
        whole.update(MetricBatch(rows=[{}] * 10, images=x))
        a.update(MetricBatch(rows=[{}] * 6, images=x[:6]))
        b.update(MetricBatch(rows=[{}] * 4, images=x[6:]))
        a.merge_state(b)
        assert a.compute().value == pytest.approx(whole.compute().value, rel=1e-6, abs=1e-9)
        assert a.compute().n == 10
