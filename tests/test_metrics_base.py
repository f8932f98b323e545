"""The metric contract: torchmetrics subclasses, typed options, merge_state, direction/unit for every
column, and the benchmark-compatible variants (BrushBench MSE/PSNR, MLPerf CLIP score)."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torchmetrics
from PIL import Image

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import (
    Column,
    Metric,
    MetricBatch,
    MetricOptionError,
    MetricResult,
    NetOptions,
    column_facts,
)
from evalsuite.metrics.latency import LatencyMetric
from evalsuite.metrics.quality import (
    FID,
    ClipScore,
    ClipScoreMLPerf,
    UnmaskedMSE,
    UnmaskedMSEBrushBench,
    UnmaskedPSNR,
    UnmaskedPSNRBrushBench,
)
from evalsuite.registry import METRICS

RANDOM = {"metric_weights": "random"}


def _imgs(n=4, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 255).round() / 255  # 8-bit values


def _batch(images, **kw):
    return MetricBatch(rows=[{"latency_s": float(i)} for i in range(len(images))], images=images, **kw)


def test_every_metric_is_a_torchmetrics_metric_with_direction_and_unit():
    facts = column_facts()
    for name in METRICS.names():
        cls = METRICS.get(name)
        if not issubclass(cls, Metric):
            continue
        assert issubclass(cls, torchmetrics.Metric), name
        assert isinstance(cls.higher_is_better, bool), name
        assert isinstance(cls.unit, str), name
        assert facts[name] == Column(cls.unit, cls.higher_is_better)
    assert facts["latency"] == Column("s", False) and facts["unmasked_psnr"] == Column("dB", True)
    assert facts["unmasked_psnr_paste_feather"] == Column("dB", True)
    assert facts["unmasked_psnr_brushbench"] == Column("dB", True)
    assert facts["lpips_pair_masked"] == Column("", False) and facts["fid"] == Column("", False)
    assert facts["clip_prompt_truncated"].higher_is_better is None  # a count, not a quality direction
    d = UnmaskedPSNR().describe()
    assert d["higher_is_better"] is True and d["unit"] == "dB" and "metric_weights" not in d
    assert d["columns"]["unmasked_psnr_paste_hard"] == {"unit": "dB", "higher_is_better": True}


def test_unknown_or_ill_typed_options_are_errors_naming_the_valid_ones():
    with pytest.raises(MetricOptionError) as e:
        UnmaskedPSNR(erod_px=3)
    msg = str(e.value)
    assert "metric 'unmasked_psnr' has no option 'erod_px' (did you mean 'erode_px'?)" in msg
    assert "valid options: erode_px, feather_sigma" in msg
    with pytest.raises(MetricOptionError, match="unmasked_psnr.erode_px: expected an integer, got 'three'"):
        UnmaskedPSNR(erode_px="three")
    with pytest.raises(MetricOptionError, match="must be ≥ 0"):
        UnmaskedPSNR(erode_px=-1)
    assert UnmaskedPSNR(erode_px="3").options.erode_px == 3  # CLI strings are coerced
    with pytest.raises(MetricOptionError, match="metric_weights must be one of real, random, random_full"):
        ClipScore(metric_weights="rnd")
    with pytest.raises(MetricOptionError, match="has no option 'metric_weights'; valid options: none"):
        LatencyMetric(metric_weights="random")


def test_merge_state_of_shards_equals_one_pass():
    imgs = _imgs(n=8, seed=3)
    ref = FID(**RANDOM, kid_subsets=5).features(_imgs(n=8, seed=4))
    whole, a, b = (FID(**RANDOM, kid_subsets=5) for _ in range(3))
    for m in (whole, a, b):
        m.set_reference_features(ref, {"reference": "r"})
    whole.update(_batch(imgs))
    a.update(_batch(imgs[:5]))
    b.update(_batch(imgs[5:]))
    a.merge_state(b)
    r_whole, r_merged = whole.compute(), a.compute()
    assert r_merged.n == 8 and r_merged.value == pytest.approx(r_whole.value, rel=1e-9)
    assert r_merged.extra["kid"] == pytest.approx(r_whole.extra["kid"], rel=1e-9)
    assert whole.fake_sum.dtype == torch.float64 and whole.fake_cov_sum.dtype == torch.float64
    # the running sums give numpy's mean and unbiased covariance
    mu, cov = whole.generated_stats()
    f = whole.features(imgs)
    np.testing.assert_allclose(mu, f.mean(0), rtol=1e-10)
    np.testing.assert_allclose(cov, np.cov(f, rowvar=False), rtol=1e-8, atol=1e-12)

    src = _imgs(n=6, seed=5)
    mask = torch.zeros(6, 1, 64, 64)
    mask[:, :, 16:48, 16:48] = 1
    pred = src.clone()
    pred[:, :, :8] = _imgs(n=6, seed=6)[:, :, :8]
    one, s1, s2 = UnmaskedPSNR(), UnmaskedPSNR(), UnmaskedPSNR()
    vals = one.update(_batch(pred, sources=src, masks=mask))
    s1.update(_batch(pred[:2], sources=src[:2], masks=mask[:2]))
    s2.update(_batch(pred[2:], sources=src[2:], masks=mask[2:]))
    s1.merge_state(s2)
    # torchmetrics concatenates the incoming shard first: the same values, another order
    assert sorted(s1.samples()) == pytest.approx(sorted(vals))
    assert s1.compute().value == pytest.approx(one.compute().value) and s1.compute().n == 6
    assert sorted(s1.samples("unmasked_psnr_paste_feather")) == pytest.approx(
        sorted(one.samples("unmasked_psnr_paste_feather"))
    )


def test_a_new_metric_is_a_few_lines():
    @dataclass(frozen=True)
    class BrightOptions(NetOptions):
        gamma: float = 1.0

    class Brightness(Metric):
        name = "brightness_test"
        higher_is_better = True
        unit = ""
        needs = frozenset({"images"})
        Options = BrightOptions

        def update(self, batch: MetricBatch) -> list[float]:
            assert batch.images is not None
            return self.add_samples(batch.images.mean(dim=(1, 2, 3)).pow(self.options.gamma).tolist())

        def compute(self) -> MetricResult:
            return self.mean_of_samples()

    imgs = _imgs(n=3)
    m = Brightness(metric_weights="random", gamma="2")
    vals = m.update(_batch(imgs))
    assert vals == pytest.approx(imgs.mean(dim=(1, 2, 3)).pow(2).tolist())
    r = m.compute()
    assert r.n == 3 and r.value == pytest.approx(float(np.mean(vals))) and "median" in r.extra
    m.reset()
    assert m.compute().n == 0 and math.isnan(m.compute().value)


# -- BrushBench ------------------------------------------------------------------------------------
def _brushbench_reference(pred_u8, src_u8, mask01):
    """BrushBench's published definition, from its text: images resized to 512² (PIL), /255, both
    multiplied by the (H, W, 1) keep mask, squared-error sum over all channels / mask.sum();
    PSNR = 20·log10(1/√MSE), 1000 below 1e-10."""
    p = np.asarray(Image.fromarray(pred_u8).resize((512, 512), Image.Resampling.BICUBIC), np.float32) / 255
    s = np.asarray(Image.fromarray(src_u8).resize((512, 512), Image.Resampling.BICUBIC), np.float32) / 255
    m = np.asarray(
        Image.fromarray((mask01 * 255).astype(np.uint8)).resize((512, 512), Image.Resampling.NEAREST)
    )
    keep = (1 - (m >= 128)).astype(np.float32)[:, :, None]
    mse = float((((p * keep) - (s * keep)) ** 2).sum() / keep.sum())
    return mse, (1000.0 if mse < 1e-10 else 20 * math.log10(1 / math.sqrt(mse)))


def test_brushbench_variants_follow_their_definition_and_relate_to_ours():
    src = _imgs(n=2, size=256, seed=7)
    pred = (src + 0.05 * torch.randn(src.shape, generator=torch.Generator().manual_seed(8))).clamp(0, 1)
    pred = (pred * 255).round() / 255
    mask = torch.zeros(2, 1, 256, 256)
    mask[:, :, 64:160, 80:200] = 1
    b = _batch(pred, sources=src, masks=mask)
    mse_bb = UnmaskedMSEBrushBench().update(b)
    psnr_bb = UnmaskedPSNRBrushBench().update(b)

    def u8(t):
        return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    for i in range(2):
        ref_mse, ref_psnr = _brushbench_reference(u8(pred[i]), u8(src[i]), mask[i, 0].numpy())
        assert mse_bb[i] == pytest.approx(ref_mse, rel=1e-5)
        assert psnr_bb[i] == pytest.approx(ref_psnr, abs=1e-4)
    # at the same size, 3× our MSE and 10·log10(3) dB below our PSNR
    b512 = _batch(
        fn.brushbench_resize(pred), sources=fn.brushbench_resize(src), masks=fn.brushbench_resize_mask(mask)
    )
    ours_mse, ours_psnr = UnmaskedMSE().update(b512), UnmaskedPSNR().update(b512)
    assert mse_bb == pytest.approx([3 * v for v in ours_mse], rel=1e-9)
    assert psnr_bb == pytest.approx([v - 10 * math.log10(3) for v in ours_psnr], abs=1e-9)
    same = UnmaskedPSNRBrushBench().update(_batch(src, sources=src, masks=mask))
    assert same == [1000.0, 1000.0]
    r = UnmaskedPSNRBrushBench()
    r.update(b)
    assert r.compute().extra["region"].startswith("BrushBench: 512²")


# -- MLPerf CLIP -------------------------------------------------------------------------------------
def test_mlperf_clip_score_is_open_clips_transform_tokenizer_and_unclamped_cosine():
    import open_clip

    net = fx.clip_net("random", torch.device("cpu"))
    imgs = _imgs(n=3, size=96, seed=9)[:, :, :, :80]  # not square: resize shorter side + center crop
    prompts = ["a photo of a cat", "a red car on a street " * 12, "the sea"]
    m = ClipScoreMLPerf(**RANDOM)
    vals = m.update(MetricBatch(rows=[{}] * 3, images=imgs, prompts=prompts))
    size = net.extra["size"]
    tf = open_clip.image_transform(size, is_train=False, mean=net.extra["mean"], std=net.extra["std"])
    with torch.no_grad():
        pix = torch.stack(
            [tf(Image.fromarray((i.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))) for i in imgs]
        )
        e_i = net.module.encode_image(pix).float()
        e_t = net.module.encode_text(open_clip.tokenize(prompts)).float()
    e_i = e_i / e_i.norm(dim=-1, keepdim=True)
    e_t = e_t / e_t.norm(dim=-1, keepdim=True)
    ref = (100 * (e_i * e_t).sum(-1)).tolist()
    assert vals == pytest.approx(ref, rel=1e-4, abs=1e-4)
    assert m.compute().extra["definition"].startswith("100 · cos(image, text) (MLPerf")
    assert ClipScoreMLPerf(**RANDOM)._model() == ("ViT-B-32", "openai")


def test_erosion_that_removes_every_kept_pixel_says_why(caplog):
    # issue 29 item 6: erode_px=1000 on 64² images made every row NaN with N = 0 and no message
    from evalsuite.metrics.quality import UnmaskedPSNR

    g = torch.Generator().manual_seed(0)
    imgs, src = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 16:48, 16:48] = 1.0
    caplog.set_level("WARNING")
    ok = UnmaskedPSNR(erode_px=4)
    ok.update(MetricBatch(rows=[{}] * 2, images=imgs, sources=src, masks=masks))
    assert ok.compute().n == 2 and "erode_px" not in caplog.text
    m = UnmaskedPSNR(erode_px=1000)
    vals = m.update(MetricBatch(rows=[{}] * 2, images=imgs, sources=src, masks=masks))
    assert all(math.isnan(v) for v in vals) and m.compute().n == 0
    assert (
        "unmasked_psnr: erode_px=1000 leaves no kept pixels in 2 of 2 image(s) of this batch (64×64)"
        in caplog.text
        and "use a smaller erode_px" in caplog.text
    )
