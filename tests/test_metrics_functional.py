"""The functional metrics against independent references (scipy, numpy, scikit-image) and invariants."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from evalsuite.metrics import functional as fn


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _rand_cov(rng, d, n):
    x = rng.normal(size=(n, d))
    return np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [3, 16, 40])
def test_frechet_distance_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _rand_cov(rng, d, 4 * d), _rand_cov(rng, d, 4 * d) * 2.0
    ours = fn.frechet_distance(mu1, s1, mu2, s2)
    ref = _scipy_fid(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-8, abs=1e-8)


def test_frechet_distance_of_a_feature_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 32)) @ rng.normal(size=(32, 32))
    mu, sigma = fn.feature_stats(feats)
    assert fn.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    shifted = fn.feature_stats(feats + 1.0)
    assert fn.frechet_distance(mu, sigma, *shifted) == pytest.approx(32.0, rel=1e-6)  # ‖Δμ‖² = 32


def test_frechet_distance_is_finite_for_singular_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 64)), rng.normal(size=(5, 64))  # N < D: rank-deficient
    d = fn.frechet_distance(*fn.feature_stats(a), *fn.feature_stats(b))
    assert math.isfinite(d) and d > 0
    assert fn.frechet_distance(*fn.feature_stats(a), *fn.feature_stats(a)) == pytest.approx(0.0, abs=1e-7)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        fn.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_kid_of_identical_sets_is_near_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(1000, 16))
    same, _ = fn.kernel_inception_distance(feats, feats, subsets=20, subset_size=500)
    other, std = fn.kernel_inception_distance(feats, rng.normal(size=(1000, 16)), subsets=20, subset_size=500)
    far, _ = fn.kernel_inception_distance(feats, feats + 0.5, subsets=20, subset_size=500)
    assert far > 0.5
    assert abs(same) < 0.03 * far  # only the O(1/m) self-pair term of the cross kernel remains
    assert abs(other) < 0.01 * far and std >= 0


def test_kid_matches_a_direct_unbiased_mmd_on_one_full_subset():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 0.3
    kid, std = fn.kernel_inception_distance(x, y, subsets=3, subset_size=30)

    def k(a, b):
        return (a @ b.T / 8 + 1) ** 3

    m = 30
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    ref = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    assert kid == pytest.approx(ref, rel=1e-10) and std == pytest.approx(0.0, abs=1e-12)


def _images(seed=0, n=2, h=32, w=40):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 3, h, w, generator=g)
    b = (a + 0.1 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, 8:20, 10:30] = 1  # regenerated
    return a, b, mask


def test_masked_mse_and_psnr_match_numpy_and_skimage_on_the_kept_pixels():
    a, b, mask = _images()
    keep = 1 - mask
    for i in range(a.shape[0]):
        sel = keep[i, 0].bool().numpy()
        pa = a[i].permute(1, 2, 0).numpy()[sel].astype(np.float64)
        pb = b[i].permute(1, 2, 0).numpy()[sel].astype(np.float64)
        assert fn.masked_mse(a[i], b[i], keep[i, 0]) == pytest.approx(mean_squared_error(pa, pb), rel=1e-9)
        assert fn.masked_mse(a[i], b[i], keep[i, 0]) == pytest.approx(np.mean((pa - pb) ** 2), rel=1e-9)
        assert fn.masked_psnr(a[i], b[i], keep[i, 0]) == pytest.approx(
            peak_signal_noise_ratio(pa, pb, data_range=1.0), rel=1e-9
        )
    per = fn.masked_mse_per_image(a, b, keep)
    assert fn.masked_mse(a, b, keep) == pytest.approx(float(per.mean()))


def test_brushbench_convention_is_three_times_our_mse_and_4_77_db_lower():
    a, b, mask = _images(n=1)
    keep = (1 - mask)[0, 0].bool()
    diff = (a[0].double() - b[0].double()) ** 2
    brush_mse = float(diff[:, keep].sum() / keep.sum())  # 3-channel sum / 1-channel count
    ours = fn.masked_mse(a, b, 1 - mask)
    assert brush_mse == pytest.approx(fn.BRUSHBENCH_MSE_FACTOR * ours, rel=1e-9)
    brush_psnr = 10 * math.log10(1 / brush_mse)
    assert fn.masked_psnr(a, b, 1 - mask) - brush_psnr == pytest.approx(
        fn.BRUSHBENCH_PSNR_OFFSET_DB, abs=1e-9
    )
    assert fn.BRUSHBENCH_PSNR_OFFSET_DB == pytest.approx(4.7712, abs=1e-4)


def test_masked_psnr_is_inf_for_identical_kept_regions_and_nan_without_kept_pixels():
    a, _, mask = _images(n=1)
    assert fn.masked_psnr(a, a, 1 - mask) == math.inf
    assert math.isnan(fn.masked_mse(a, a, torch.zeros(a.shape[-2:])))


def test_masked_ssim_matches_skimage_full_map_on_the_kept_pixels():
    a, b, mask = _images(n=1, h=48, w=56)
    keep = (1 - mask)[0, 0].bool().numpy()
    pa, pb = a[0].permute(1, 2, 0).double().numpy(), b[0].permute(1, 2, 0).double().numpy()
    _, smap = structural_similarity(
        pa,
        pb,
        channel_axis=-1,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    ref = smap[keep].mean()
    ours = fn.masked_ssim(a.double(), b.double(), 1 - mask)
    assert ours == pytest.approx(ref, abs=1e-6)
    assert fn.masked_ssim(a, a, 1 - mask) == pytest.approx(1.0, abs=1e-6)


def test_paste_back_keeps_kept_pixels_bit_identical_for_a_hard_mask():
    a, b, mask = _images()
    src = b
    out = fn.paste_back(a, src, mask)
    kept = ~mask.bool().expand_as(a)
    assert torch.equal(out[kept], src[kept])
    assert torch.equal(out[~kept], a[~kept])
    single = fn.paste_back(a[0], src[0], mask[0, 0])
    assert single.shape == a[0].shape and torch.equal(single, out[0])


def test_feathered_paste_back_blends_only_near_the_edge():
    a, b, mask = _images(h=64, w=64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 20:44, 20:44] = 1
    out = fn.paste_back(a, b, mask, feather_sigma=2.0)
    far_keep = torch.zeros(64, 64, dtype=torch.bool)
    far_keep[:5, :] = True  # ≥ 15 px from the mask: weight below 1e-10
    assert torch.allclose(out[:, :, far_keep], b[:, :, far_keep], atol=1e-6)
    centre = out[:, :, 30:34, 30:34]
    assert torch.allclose(centre, a[:, :, 30:34, 30:34], atol=1e-6)
    edge_keep = out[:, :, 19, 30]  # kept pixel next to the edge: a blend
    assert not torch.allclose(edge_keep, b[:, :, 19, 30], atol=1e-3)


def test_erode_keep_mask_removes_a_margin_around_the_mask():
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 10:20, 10:20] = 1
    keep0 = fn.erode_keep_mask(mask, 0)
    keep3 = fn.erode_keep_mask(mask, 3)
    assert keep0.sum() == 32 * 32 - 100
    assert keep3.sum() == 32 * 32 - 16 * 16
    assert keep3[0, 0, 6, 15] == 1 and keep3[0, 0, 7, 15] == 0


def test_mask_bbox_square_crop_pads_the_bounding_box_to_a_square():
    img = torch.rand(3, 40, 50)
    mask = torch.zeros(40, 50)
    mask[5:15, 10:40] = 1
    crop = fn.mask_bbox_square_crop(img, mask)
    assert crop.shape == (3, 30, 30)
    assert torch.equal(crop[:, 10:20, :], img[:, 5:15, 10:40])
    assert crop[:, :10].abs().sum() == 0


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="keep_mask"):
        fn.masked_mse(torch.rand(3, 8, 8), torch.rand(3, 8, 8), torch.ones(4, 4))
    with pytest.raises(ValueError, match="pred"):
        fn.masked_mse(torch.rand(8, 8), torch.rand(8, 8), torch.ones(8, 8))
