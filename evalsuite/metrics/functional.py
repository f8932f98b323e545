"""Functional metrics: plain functions behind the metric classes, so any number can be checked by hand.

Conventions (all functions):

* Images are float tensors in [0, 1] of shape (3, H, W) or (N, 3, H, W).
* ``keep_mask`` is (H, W), (1, H, W) or (N, 1, H, W) with 1 where the source must be preserved
  (the complement of the inpainting mask); values ≥ 0.5 count as kept.
* ``mask`` (for :func:`paste_back` and :func:`erode_keep_mask`) is the inpainting mask as stored
  in the dataset: 1 = region that was regenerated.

Per-element definitions. Over the set K of kept pixels, with C = 3 channels,

    MSE  = Σ_{p∈K} Σ_c (pred[c,p] − target[c,p])² / (C · |K|)
    PSNR = 10 · log10(data_range² / MSE)

BrushBench (and the BrushNet evaluation code derived from it) divides the 3-channel sum of
squared errors by the 1-channel pixel count |K|, so its MSE is **3×** ours and its PSNR is
10·log10(3) ≈ **4.77 dB lower** for the same images. Ours is the standard per-element mean
(what ``skimage.metrics.mean_squared_error`` computes on the kept pixels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "frechet_distance",
    "kernel_inception_distance",
    "masked_mse",
    "masked_psnr",
    "masked_ssim",
    "masked_lpips",
    "paste_back",
    "erode_keep_mask",
    "gaussian_blur",
    "mask_bbox_square_crop",
    "feature_stats",
    "brushbench_resize",
    "brushbench_mse_per_image",
    "brushbench_psnr_per_image",
    "normalize_text",
    "levenshtein",
    "sentence_accuracy",
    "normalized_edit_similarity",
    "cmmd",
    "prdc",
]

BRUSHBENCH_MSE_FACTOR = 3.0
BRUSHBENCH_PSNR_OFFSET_DB = 10.0 * math.log10(3.0)


# ---------------------------------------------------------------------------------------------
# shapes
def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (3, H, W) or (N, 3, H, W), got shape {tuple(x.shape)}")
    return x


def _as_mask(m: torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    """A (N, 1, H, W) float {0, 1} mask broadcastable to ``like`` (N, 3, H, W)."""
    if m.dim() == 2:
        m = m[None, None]
    elif m.dim() == 3:
        m = m.unsqueeze(1)
    if m.dim() != 4 or m.shape[1] != 1 or m.shape[-2:] != like.shape[-2:]:
        raise ValueError(
            f"{name} must be (H, W) or (N, 1, H, W) matching the images' {tuple(like.shape[-2:])}, "
            f"got shape {tuple(m.shape)}"
        )
    if m.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"{name} has {m.shape[0]} masks for {like.shape[0]} images")
    return (m >= 0.5).to(like.dtype).expand(like.shape[0], 1, *like.shape[-2:])


def _pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _as_batch(pred, "pred"), _as_batch(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    return pred, target


# ---------------------------------------------------------------------------------------------
# set-level distances
def feature_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of an (N, D) feature matrix, in float64.

    Raises:
        ValueError: if fewer than 2 samples are given (the covariance is undefined).
    """
    f = (
        features.detach().double().cpu().numpy()
        if isinstance(features, torch.Tensor)
        else np.asarray(features, np.float64)
    )
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need an (N ≥ 2, D) feature matrix, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2) (the FID formula).

        d² = ‖mu1 − mu2‖² + tr(sigma1) + tr(sigma2) − 2 · tr((sigma1 · sigma2)^½)

    Computed in float64. The trace term uses tr((σ1 σ2)^½) = Σ √λ_i(σ1^½ σ2 σ1^½), with σ1^½ from a
    symmetric eigendecomposition and negative eigenvalues (round-off of near-singular covariances,
    e.g. N < D) clipped to 0 — no complex square roots, no ``eps`` offsets. The result is clipped
    at 0 (it is a squared distance; tiny negatives are round-off).

    Raises:
        ValueError: on mismatched shapes.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    lam, vec = np.linalg.eigh(s1)
    s1_half = (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T
    m = s1_half @ s2 @ s1_half
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(d, 0.0)


def kernel_inception_distance(
    feats1: np.ndarray | torch.Tensor,
    feats2: np.ndarray | torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased MMD² with the polynomial kernel k(x, y) = (x·y / D + coef0)^degree.

    For subsets X, Y of m samples each (drawn without replacement, ``subset_size`` capped at the
    smaller set), MMD² = [Σ_{i≠j} k(x_i,x_j) + Σ_{i≠j} k(y_i,y_j)] / (m(m−1)) − 2 Σ_{i,j} k(x_i,y_j) / m².
    Returns (mean, std) over ``subsets`` draws (numpy RNG seeded with ``seed``).

    Raises:
        ValueError: when either set has fewer than 2 samples or the dimensions differ.
    """
    a = (
        feats1.detach().double().cpu().numpy()
        if isinstance(feats1, torch.Tensor)
        else np.asarray(feats1, np.float64)
    )
    b = (
        feats2.detach().double().cpu().numpy()
        if isinstance(feats2, torch.Tensor)
        else np.asarray(feats2, np.float64)
    )
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature matrices must be (N, D) with the same D, got {a.shape} and {b.shape}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {a.shape[0]} and {b.shape[0]}")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + coef0) ** degree
        kyy = (y @ y.T / d + coef0) ** degree
        kxy = (x @ y.T / d + coef0) ** degree
        vals[s] = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    return float(vals.mean()), float(vals.std())


# ---------------------------------------------------------------------------------------------
# masks
def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of an (N, C, H, W) tensor; kernel radius ⌈3σ⌉, replicate padding."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def erode_keep_mask(mask: torch.Tensor, margin_px: int) -> torch.Tensor:
    """Keep mask (1 = keep) from an inpainting ``mask`` (1 = regenerated), minus a margin.

    A pixel is kept when no regenerated pixel lies within ``margin_px`` in Chebyshev distance
    (a (2·margin+1)² square window), i.e. the kept region shrinks by ``margin_px`` pixels away
    from the mask boundary. ``margin_px = 0`` gives the plain complement. Shape follows ``mask``
    ((H, W) or (N, 1, H, W)).
    """
    if margin_px < 0:
        raise ValueError(f"margin_px must be ≥ 0, got {margin_px}")
    m = (mask >= 0.5).float()
    if margin_px:
        shape = m.shape
        m4 = m.view(-1, 1, *shape[-2:])
        m4 = F.max_pool2d(m4, 2 * margin_px + 1, stride=1, padding=margin_px)
        m = m4.view(shape)
    return 1.0 - m


def paste_back(
    pred: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, feather_sigma: float = 0.0
) -> torch.Tensor:
    """Composite the generated region onto the source.

        out = α · pred + (1 − α) · source,   α = mask (hard)  or  α = G_σ * mask (feathered)

    ``mask`` is the inpainting mask (1 = regenerated, binarised at 0.5); G_σ is a Gaussian of
    ``feather_sigma`` pixels (:func:`gaussian_blur`), which blends across the edge on both sides.
    With ``feather_sigma == 0`` the kept pixels are the source's, bit for bit (``torch.where``).

    Raises:
        ValueError: on mismatched shapes.
    """
    batched = pred.dim() == 4
    p, s = _pair(pred, source)
    hard = _as_mask(mask.to(p.dtype), p, "mask")  # (N, 1, H, W), 1 = regenerated
    if feather_sigma <= 0:
        out = torch.where(hard.bool().expand_as(p), p, s)
    else:
        alpha = gaussian_blur(hard, feather_sigma).clamp(0, 1)
        out = alpha * p + (1 - alpha) * s
    return out if batched else out[0]


def mask_bbox_square_crop(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Crop a (3, H, W) image to the bounding box of ``mask`` ≥ 0.5 and pad it to a square.

    The shorter side is padded symmetrically with black (0). An empty mask returns the whole
    image padded to a square.
    """
    m = mask.reshape(mask.shape[-2:]) >= 0.5
    ys, xs = torch.nonzero(m, as_tuple=True)
    if len(ys):
        image = image[:, int(ys.min()) : int(ys.max()) + 1, int(xs.min()) : int(xs.max()) + 1]
    h, w = image.shape[-2:]
    side = max(h, w)
    ph, pw = side - h, side - w
    return F.pad(image, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=0.0)


# ---------------------------------------------------------------------------------------------
# per-image fidelity on the kept region
def _per_image_mse(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    se = ((pred.double() - target.double()) ** 2 * keep.double()).sum(dim=(1, 2, 3))
    n = keep.double().sum(dim=(1, 2, 3)) * pred.shape[1]
    return torch.where(n > 0, se / n.clamp(min=1), torch.full_like(se, math.nan))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor) -> float:
    """Per-element mean squared error over the kept pixels (see the module doc), in float64.

        MSE = Σ_{p∈K} Σ_c (pred − target)² / (C · |K|)

    For a batch, the mean of the per-image values. ``nan`` when no pixel is kept.
    """
    return float(masked_mse_per_image(pred, target, keep_mask).mean())


def masked_mse_per_image(pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor) -> torch.Tensor:
    """:func:`masked_mse` of each image of a batch, as an (N,) float64 tensor."""
    p, t = _pair(pred, target)
    return _per_image_mse(p, t, _as_mask(keep_mask, p, "keep_mask"))


def masked_psnr_per_image(
    pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor, data_range: float = 1.0
) -> torch.Tensor:
    """:func:`masked_psnr` of each image of a batch, as an (N,) float64 tensor (``inf`` where MSE = 0)."""
    mse = masked_mse_per_image(pred, target, keep_mask)
    return 10.0 * torch.log10(torch.as_tensor(data_range, dtype=torch.float64) ** 2 / mse)


def masked_psnr(
    pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor, data_range: float = 1.0
) -> float:
    """PSNR in dB over the kept pixels: 10 · log10(data_range² / MSE), MSE per element (:func:`masked_mse`).

    ``inf`` for identical kept regions, ``nan`` when no pixel is kept. For a batch, the mean of
    the per-image PSNRs. BrushBench's PSNR is ≈ 4.77 dB lower for the same images (module doc).
    """
    return float(masked_psnr_per_image(pred, target, keep_mask, data_range).mean())


def _gauss_window(
    device: torch.device, dtype: torch.dtype, sigma: float = 1.5, radius: int = 5
) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _pad_symmetric(x: torch.Tensor, r: int) -> torch.Tensor:
    """Pad the last two dims by ``r`` mirroring the edge pixel too (numpy 'symmetric', scipy 'reflect')."""
    if min(x.shape[-2:]) < r:
        raise ValueError(f"images must be at least {r} px on each side for SSIM, got {tuple(x.shape[-2:])}")
    x = torch.cat([x[..., :r].flip(-1), x, x[..., -r:].flip(-1)], dim=-1)
    return torch.cat([x[..., :r, :].flip(-2), x, x[..., -r:, :].flip(-2)], dim=-2)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel, per-channel SSIM map (N, 3, H, W).

    Gaussian window σ = 1.5 truncated at 3.5σ (11 taps), population (co)variances, constants
    C1 = (0.01·L)², C2 = (0.03·L)² with L = ``data_range``, symmetric padding at the border —
    the same map as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, full=True)``:

        SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))
    """
    p, t = _pair(pred, target)
    k = _gauss_window(p.device, p.dtype)
    r = (k.numel() - 1) // 2
    c = p.shape[1]

    def filt(x: torch.Tensor) -> torch.Tensor:
        x = _pad_symmetric(x, r)
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    mx, my = filt(p), filt(t)
    vx = filt(p * p) - mx * mx
    vy = filt(t * t) - my * my
    cxy = filt(p * t) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def masked_ssim_per_image(
    pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor, data_range: float = 1.0
) -> torch.Tensor:
    """:func:`masked_ssim` of each image of a batch, as an (N,) float64 tensor."""
    p, t = _pair(pred, target)
    keep = _as_mask(keep_mask, p, "keep_mask")
    s = ssim_map(p, t, data_range).double() * keep.double()
    n = keep.double().sum(dim=(1, 2, 3)) * p.shape[1]
    return torch.where(n > 0, s.sum(dim=(1, 2, 3)) / n.clamp(min=1), torch.full_like(n, math.nan))


def masked_ssim(
    pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor, data_range: float = 1.0
) -> float:
    """Mean of the SSIM map (:func:`ssim_map`, computed on the whole image) over the kept pixels and channels.

        SSIM_K = Σ_{p∈K} Σ_c SSIM[c,p] / (C · |K|)

    The window reaches across the mask boundary (the map is computed on full images), so pixels
    within 5 px of the boundary see regenerated content; use an erosion margin to exclude them.
    For a batch, the mean of the per-image values; ``nan`` when no pixel is kept.
    """
    return float(masked_ssim_per_image(pred, target, keep_mask, data_range).mean())


def masked_lpips(
    net: Any, pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """LPIPS (v0.1) of each image pair, averaged over the kept region; returns an (N,) tensor.

    ``net`` is an ``lpips.LPIPS`` model. For each layer l with unit-normalised features f̂ˡ and
    learned channel weights wˡ, the distance map dˡ = Σ_c wˡ_c (f̂ˡ_pred − f̂ˡ_target)²_c is averaged
    over the kept positions with weights given by the keep mask area-downsampled to the layer's
    resolution; the layer means are summed. With ``keep_mask=None`` (or all ones) this equals
    ``net(pred, target, normalize=True)`` exactly (the spatial mean of every layer).
    Images are in [0, 1] (mapped to [−1, 1] as lpips expects).
    """
    import lpips as _lpips

    p, t = _pair(pred, target)
    x0 = net.scaling_layer(2 * p - 1)
    x1 = net.scaling_layer(2 * t - 1)
    o0, o1 = net.net.forward(x0), net.net.forward(x1)
    keep = None if keep_mask is None else _as_mask(keep_mask, p, "keep_mask")
    total = torch.zeros(p.shape[0], device=p.device, dtype=p.dtype)
    for layer, lin in enumerate(net.lins):
        d = lin(
            (_lpips.normalize_tensor(o0[layer]) - _lpips.normalize_tensor(o1[layer])) ** 2
        )  # (N, 1, h, w)
        if keep is None:
            total = total + d.mean(dim=(1, 2, 3))
        else:
            w = F.adaptive_avg_pool2d(keep, d.shape[-2:])
            total = total + (d * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp(min=1e-12)
    return total


def mean_finite(values: Sequence[float]) -> float:
    """Mean of the non-NaN values (``nan`` if none); ``inf`` values are kept."""
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


# ---------------------------------------------------------------------------------------------
# BrushBench-compatible variants (labelled options; ours above stay the default)
BRUSHBENCH_SIZE = 512


def brushbench_resize(images: torch.Tensor, size: int = BRUSHBENCH_SIZE) -> torch.Tensor:
    """8-bit images (N, 3, H, W) in [0, 1] → PIL bicubic resize to size² → float in [0, 1] (BrushBench's
    ``Image.resize((512, 512))`` on RGB images)."""
    from PIL import Image

    x = _as_batch(images, "images")
    u8 = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = [
        np.asarray(Image.fromarray(a).resize((size, size), resample=Image.Resampling.BICUBIC), np.float32)
        for a in u8
    ]
    return torch.from_numpy(np.stack(out) / 255.0).permute(0, 3, 1, 2).to(images.device, images.dtype)


def brushbench_resize_mask(mask: torch.Tensor, size: int = BRUSHBENCH_SIZE) -> torch.Tensor:
    """An (N, 1, H, W) mask resized to size² with nearest neighbour, binarised at 0.5."""
    m = (mask.float() >= 0.5).float()
    if m.shape[-2:] != (size, size):
        m = F.interpolate(m, size=(size, size), mode="nearest")
    return m.to(mask.dtype)


def brushbench_mse_per_image(
    pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor
) -> torch.Tensor:
    """BrushBench's masked MSE per image, (N,) float64:

        MSE_BB = Σ_{p∈K} Σ_c (pred − target)² / |K|   (= 3 × :func:`masked_mse`)

    the 3-channel squared-error sum divided by the 1-channel kept-pixel count. ``nan`` when no pixel is kept.
    """
    return masked_mse_per_image(pred, target, keep_mask) * BRUSHBENCH_MSE_FACTOR


def brushbench_psnr_per_image(
    pred: torch.Tensor, target: torch.Tensor, keep_mask: torch.Tensor
) -> torch.Tensor:
    """BrushBench's PSNR per image: 20·log10(1/√MSE_BB) = 10·log10(1/MSE_BB), 1000 where MSE_BB < 1e-10
    (their cap); ≈ 4.77 dB below :func:`masked_psnr_per_image`."""
    mse = brushbench_mse_per_image(pred, target, keep_mask)
    psnr = 10.0 * torch.log10(1.0 / mse)
    return torch.where(mse < 1e-10, torch.full_like(psnr, 1000.0), psnr)


# ---------------------------------------------------------------------------------------------
# text rendering (the ``ocr_*`` metrics, evalsuite.metrics.ocr)
def normalize_text(text: str, case_sensitive: bool = False, keep_spaces: bool = False) -> str:
    """The form in which a read string and its target are compared.

    1. Unicode NFKC: full-width forms become their ASCII twins (``ＡＢＣ１２３`` → ``ABC123``,
       ``，`` → ``,``), compatibility ligatures are split;
    2. case folded (``str.casefold``) unless ``case_sensitive``;
    3. every whitespace character removed unless ``keep_spaces`` (then runs collapse to one
       space and the ends are stripped): OCR engines drop or insert spaces between words
       unreliably, and Chinese has none.
    """
    import unicodedata

    t = unicodedata.normalize("NFKC", text)
    if not case_sensitive:
        t = t.casefold()
    return " ".join(t.split()) if keep_spaces else "".join(t.split())


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions, each costing 1) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def sentence_accuracy(pred: str, target: str, **norm: bool) -> float:
    """1.0 when the normalised strings (:func:`normalize_text`) are equal, else 0.0 (AnyText's
    ``sen_acc``)."""
    return float(normalize_text(pred, **norm) == normalize_text(target, **norm))


def normalized_edit_similarity(pred: str, target: str, **norm: bool) -> float:
    """1 − Levenshtein(p, t) / max(|p|, |t|) over the normalised strings (AnyText's ``NED``,
    ``eval_dgocr.py``'s ``get_ld``, without its 1e-5 in the denominator): 1 for equal strings,
    0 when nothing matches (an empty read of a non-empty target); 1 for two empty strings."""
    p, t = normalize_text(pred, **norm), normalize_text(target, **norm)
    n = max(len(p), len(t))
    return 1.0 if n == 0 else 1.0 - levenshtein(p, t) / n


# ---------------------------------------------------------------------------------------------
# CMMD and precision / recall / density / coverage
def _f64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().double().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)


def cmmd(
    x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, sigma: float = 10.0, scale: float = 1000.0
) -> float:
    """CMMD (Jayasumana et al., CVPR 2024): ``scale`` × MMD² between two embedding sets with the
    Gaussian RBF kernel k(a, b) = exp(−‖a − b‖² / (2σ²)), the estimator of the reference
    implementation (google-research ``cmmd/distance.py``): the means of the full kernel matrices,
    diagonals included,

        MMD² = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) − 2 · mean_ij k(x_i, y_j)

    (a biased V-statistic: ≥ 0, exactly 0 for a set with itself). Embeddings are used as given
    (the CMMD metric L2-normalises CLIP embeddings first). float64.

    Raises:
        ValueError: empty sets or different dimensions.
    """
    a, b = _f64(x), _f64(y)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"CMMD needs two non-empty (N, D) sets of the same D, got {a.shape} and {b.shape}")
    gamma = 1.0 / (2.0 * sigma**2)

    def k(p: np.ndarray, q: np.ndarray) -> float:
        d2 = (p * p).sum(1)[:, None] + (q * q).sum(1)[None, :] - 2.0 * p @ q.T
        return float(np.exp(-gamma * np.clip(d2, 0, None)).mean())

    return scale * (k(a, a) + k(b, b) - 2.0 * k(a, b))


def _pairwise(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    d2 = (p * p).sum(1)[:, None] + (q * q).sum(1)[None, :] - 2.0 * p @ q.T
    return np.sqrt(np.clip(d2, 0, None))


def prdc(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al., ICML 2020) with k-NN balls.

    r_k(x): Euclidean distance from x to its k-th nearest neighbour in its own set (itself
    excluded). With R the real and F the fake features:

    * precision = share of f ∈ F inside some real ball: ∃ r: ‖f − r‖ < r_k(r);
    * recall    = share of r ∈ R inside some fake ball: ∃ f: ‖r − f‖ < r_k(f);
    * density   = (1 / (k·|F|)) Σ_f #{r: ‖f − r‖ < r_k(r)}  (can exceed 1);
    * coverage  = share of r ∈ R whose ball holds some f: min_f ‖r − f‖ < r_k(r).

    Raises:
        ValueError: k < 1, mismatched dimensions, or a set with fewer than k + 1 samples (the
            k-th neighbour other than itself must exist).
    """
    r, f = _f64(real), _f64(fake)
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"feature matrices must be (N, D) with the same D, got {r.shape} and {f.shape}")
    if len(r) < k + 1 or len(f) < k + 1:
        raise ValueError(
            f"precision/recall/density/coverage with k = {k} need at least k + 1 = {k + 1} samples in "
            f"each set, got {len(r)} real and {len(f)} generated"
        )

    def radii(x: np.ndarray) -> np.ndarray:
        return np.sort(_pairwise(x, x), axis=1)[:, k]  # column 0 is the point itself

    rr, fr = radii(r), radii(f)
    d = _pairwise(r, f)  # (|R|, |F|)
    inside_real = d < rr[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d < fr[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < rr).mean()),
    }
