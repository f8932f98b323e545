"""Quality metrics: FID/KID (three published modes), CLIP score (whole image, masked region,
MLPerf-compatible), unmasked-region fidelity (MSE, PSNR, SSIM, LPIPS — raw and after paste-back;
BrushBench-compatible MSE/PSNR as labelled variants) and paired LPIPS between two configurations.

Every metric with a feature network takes the options ``metric_weights``
(``real``/``random``/``random_full``, see :mod:`evalsuite.metrics.features`; default ``real``) and
``metric_weights_dir``. Numbers made with random feature networks set ``quality_evidence = False``.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import (
    Column,
    Metric,
    MetricBatch,
    MetricOptionError,
    MetricResult,
    NetOptions,
    ScoringContext,
)
from evalsuite.registry import METRICS
from evalsuite.vocab import FIDMode

log = logging.getLogger(__name__)


class _NetMetric(Metric):
    """A metric with a feature network: ``self.options`` is a :class:`NetOptions`."""

    def _mode(self) -> str:
        return str(self.options.metric_weights)

    def _wdir(self) -> Any:
        return self.options.metric_weights_dir


def _digest(data: bytes) -> str:
    """What identifies an FID reference set (12 hex digits of sha256): the same images, the same id."""
    import hashlib

    return hashlib.sha256(data).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
class FIDReferenceError(MetricOptionError, FileNotFoundError):
    """An FID reference (``fid.reference`` folder, ``fid.reference_stats`` file) that cannot be used;
    the message names it and the expected content."""


@dataclass(frozen=True)
class FIDOptions(NetOptions):
    """Options of :class:`FID`.

    Attributes:
        mode: ``clean`` (clean-fid, default), ``legacy_pytorch`` (pytorch-fid, MLPerf's) or
            ``legacy_tensorflow`` (torch-fidelity / the original TF FID): the resize and the
            network input scaling (:func:`~evalsuite.metrics.features.fid_input`).
        reference: a folder of reference images (overrides the dataset's).
        reference_stats: an ``.npz`` with precomputed ``mu``/``sigma`` (e.g. MLPerf's
            ``val2014.npz``); FID against it, KID unavailable.
        kid_subsets, kid_subset_size: KID's subsets (100 of min(1000, N)).
    """

    mode: FIDMode = "clean"
    reference: str | None = None
    reference_stats: str | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise MetricOptionError("fid.kid_subsets must be ≥ 1 and fid.kid_subset_size ≥ 2")
        if self.reference and self.reference_stats:
            raise MetricOptionError("give fid.reference or fid.reference_stats, not both")
        if self.reference and not Path(self.reference).is_dir():
            what = "is a file" if Path(self.reference).exists() else "does not exist"
            raise FIDReferenceError(
                f"fid.reference {self.reference}: {what}; give a folder of reference images "
                "(.png/.jpg/.webp), or fid.reference_stats FILE.npz"
            )
        if self.reference_stats and not Path(self.reference_stats).is_file():
            raise FIDReferenceError(
                f"fid.reference_stats {self.reference_stats}: no such file; give an .npz written by "
                "numpy.savez with arrays mu (D,) and sigma (D, D)"
            )


@METRICS.register("fid")
class FID(_NetMetric):
    """Fréchet Inception Distance of the generated images to a reference set, with KID beside it.

    Reference: for ``inpaint`` configurations the dataset's source images; for ``t2i`` the cases'
    ``reference`` images; option ``reference`` = a folder of images overrides both, and
    ``reference_stats`` = an ``.npz`` of ``mu``/``sigma`` replaces them. Reference features are
    cached under the cache root (:func:`evalsuite.paths.cache_dir`), keyed by dataset fingerprint
    (or folder hash), FID mode/preprocessing and feature network, and kept across :meth:`reset`
    (like torchmetrics' ``reset_real_features=False``); an unusable cache is skipped with a warning.

    States (torchmetrics, merged with ``merge_state``): float64 running sums of the generated
    features and of their outer products and the count — as torchmetrics' FID keeps them — plus the
    features themselves (``cat``) for KID.

    The value is FID (lower is better); ``extra`` holds ``kid`` and ``kid_std`` (polynomial
    kernel), ``n_ref``, the mode, the feature network and the preprocessing. FID is biased at
    small N — read it with N and KID. ``nan`` (with ``reason``) when there is no reference or
    fewer than 2 images on a side.
    """

    name = "fid"
    higher_is_better = False  # type: ignore[misc]  # torchmetrics declares it an instance attribute
    unit = ""
    needs = frozenset({"images"})
    per_sample = False
    feature_nets = frozenset({"inception"})
    Options = FIDOptions

    # torchmetrics states (add_state in setup_states); fake_features is one Tensor after a distributed sync
    fake_sum: torch.Tensor
    fake_cov_sum: torch.Tensor
    fake_n: torch.Tensor
    fake_features: list[torch.Tensor]

    def setup_states(self) -> None:
        d = fx.inception_dim(self._mode())
        self.add_state("fake_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("fake_cov_sum", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("fake_n", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")
        self.skipped_reference: list[str] = []
        self._ref: np.ndarray | None = None
        self._ref_stats: tuple[np.ndarray, np.ndarray] | None = None
        self._ref_desc: dict[str, Any] = {"reason": "no reference set"}

    def _net(self) -> fx.FeatureNet:
        net = fx.inception(self._mode(), self.device, self._wdir(), self.options.mode)
        self.quality_evidence = net.quality_evidence
        return net

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, D) float64 features of float (N, 3, H, W) images in [0, 1] (8-bit values)."""
        net = self._net()
        x = fx.fid_input(images.to(self.device), self.options.mode, net.extra["size"])
        return net.module(x).double().cpu().numpy()

    def _features_of_files(self, paths: list[Path]) -> np.ndarray:
        """Features of the reference images; an unreadable file is left out with a warning (its case
        already failed at generation), so one bad source never sinks the set-level score."""
        from evalsuite.data.imageio import ImageError, load_image

        out = []
        for p in paths:
            try:
                img = load_image(p)
            except ImageError as exc:
                log.warning("FID reference: leaving out %s", exc)
                self.skipped_reference.append(str(p))
                continue
            t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
            out.append(self.features(t))
        if not out:
            raise FIDReferenceError("FID: no readable reference image")
        return np.concatenate(out)

    def set_reference_features(self, feats: np.ndarray, description: dict[str, Any]) -> None:
        """Use ``feats`` (N, D) as the reference set."""
        self._ref = np.asarray(feats, np.float64)
        self._ref_stats = None
        self._ref_desc = description

    def _load_reference_stats(self, path: str) -> None:
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
        except (OSError, KeyError, ValueError, EOFError) as exc:
            # numpy's own text for a pickle suggests loading it unsafely: never relay that advice
            why = (
                "it holds pickled data, which is never loaded (unpickling can run code)"
                if "pickle" in str(exc).lower()
                else f"cannot read 'mu' and 'sigma' from it ({exc})"
            )
            raise FIDReferenceError(
                f"fid.reference_stats {p}: {why}; only an .npz without pickles is read: one written by "
                "numpy.savez with float arrays mu (D,) and sigma (D, D)"
            ) from exc
        self._ref, self._ref_stats = None, (mu, sigma)
        self._ref_desc = {
            "reference": f"stats:{p.name}",
            "reference_stats": str(p.resolve()),
            "reference_set": f"mu/sigma of {p.name}",
            "reference_id": _digest(p.read_bytes()),
        }

    def prepare(self, context: ScoringContext) -> None:
        """Load (or compute and cache) the reference features for ``context``."""
        if self.options.reference_stats:
            self._load_reference_stats(self.options.reference_stats)
            return
        net = self._net()
        pre = fx.preprocessing_record(net.extra["size"], self.options.mode)
        folder = self.options.reference
        if folder:
            exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
            paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)
            if not paths:
                raise FIDReferenceError(f"FID reference folder {folder} holds no images (.png/.jpg/.webp)")
            import hashlib

            h = hashlib.sha256()
            for p in paths:
                h.update(p.name.encode() + b"\0" + p.read_bytes())
            fp, what = h.hexdigest(), f"folder:{Path(folder).resolve()}"
            ref_set = f"{len(paths)} image(s) of folder {folder}"
        else:
            ds = context.dataset
            if ds is None:
                self._ref_desc = {"reason": "dataset unknown"}
                return
            attr = "image" if context.task == "inpaint" else "reference"
            paths = [getattr(c, attr) for c in ds.cases if getattr(c, attr) is not None]
            if len(paths) < 2:
                self._ref, self._ref_desc = None, {"reason": f"dataset has fewer than 2 case '{attr}' images"}
                return
            fp, what = (
                ds.fingerprint,
                f"{attr}:" + ",".join(sorted(c.id for c in ds.cases if getattr(c, attr))),
            )
            kind = "source" if attr == "image" else "reference"
            ref_set = f"{kind} images of {len(paths)} case(s) of {ds.name}"
        feats, key = fx.cached_reference_features(
            fp, what, net.id, pre, lambda: self._features_of_files(paths)
        )
        self.set_reference_features(
            feats,
            {
                "reference": what.split(":")[0] if not folder else str(folder),
                "reference_fingerprint": fp,
                "cache_key": key,
                "reference_set": ref_set,
                "reference_id": _digest(f"{fp}\0{what}".encode()),
            },
        )

    def update(self, batch: MetricBatch) -> None:
        if batch.images is None:
            raise ValueError("fid needs images")
        f = torch.from_numpy(self.features(batch.images)).to(self.device)
        self.fake_sum += f.sum(dim=0)
        self.fake_cov_sum += f.T @ f
        self.fake_n += f.shape[0]
        self.fake_features.append(f)
        return None

    def generated_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased covariance of the generated features from the running sums (float64)."""
        n = int(self.fake_n)
        s = self.fake_sum.double().cpu().numpy()
        mu = s / n
        cov = (self.fake_cov_sum.double().cpu().numpy() - n * np.outer(mu, mu)) / (n - 1)
        return mu, cov

    def compute(self) -> MetricResult:
        n = int(self.fake_n)
        size = fx.inception_dim(self._mode()) if self._mode() == "random" else 299
        extra: dict[str, Any] = {
            "fid_mode": self.options.mode,
            "feature_network": self._net().id,
            "preprocessing": fx.preprocessing_record(
                64 if self._mode() == "random" else size, self.options.mode
            ),
            **self._ref_desc,
        }
        n_ref = len(self._ref) if self._ref is not None else (0 if self._ref_stats is None else -1)
        have_ref = self._ref_stats is not None or (self._ref is not None and len(self._ref) >= 2)
        if not have_ref or n < 2:
            extra.setdefault("reason", "fewer than 2 images")
            return MetricResult(
                math.nan, n, {**extra, "kid": math.nan, "kid_std": math.nan, "n_ref": max(n_ref, 0)}
            )
        mu, cov = self.generated_stats()
        if self._ref_stats is not None:
            ref_mu, ref_cov = self._ref_stats
        else:
            assert self._ref is not None  # have_ref: without reference stats there are reference features
            ref_mu, ref_cov = fn.feature_stats(self._ref)
        fid = fn.frechet_distance(mu, cov, ref_mu, ref_cov)
        extra.pop("reason", None)
        if self._ref is None:
            return MetricResult(
                fid,
                n,
                {**extra, "kid": math.nan, "kid_std": math.nan, "kid_reason": "reference is mu/sigma only"},
            )
        feats = (
            torch.cat(self.fake_features).double().cpu().numpy()
            if isinstance(self.fake_features, list)
            else self.fake_features.double().cpu().numpy()
        )
        subsets = self.options.kid_subsets
        ksize = min(self.options.kid_subset_size, n, len(self._ref))
        kid, kid_std = fn.kernel_inception_distance(feats, self._ref, subsets=subsets, subset_size=ksize)
        return MetricResult(
            fid,
            n,
            {
                **extra,
                "kid": kid,
                "kid_std": kid_std,
                "kid_subsets": subsets,
                "kid_subset_size": ksize,
                "n_ref": int(len(self._ref)),
            },
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "fid_mode": self.options.mode}


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipOptions(NetOptions):
    """Options of the CLIP scores: ``model``/``pretrained`` (open_clip names; default per metric)."""

    model: str | None = None
    pretrained: str | None = None


class _ClipBase(_NetMetric):
    needs = frozenset({"images", "prompts"})
    feature_nets = frozenset({"clip"})
    unit = ""
    Options = ClipOptions
    columns = {"clip_prompt_truncated": Column("", None)}
    default_clip: tuple[str, str] = fx.DEFAULT_CLIP
    truncated: torch.Tensor  # torchmetrics state (add_state in setup_states)

    def setup_states(self) -> None:
        self.add_state("truncated", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _model(self) -> tuple[str, str]:
        return (self.options.model or self.default_clip[0], self.options.pretrained or self.default_clip[1])

    def _net(self) -> fx.FeatureNet:
        net = fx.clip_net(self._mode(), self.device, self._wdir(), *self._model())
        self.quality_evidence = net.quality_evidence
        return net

    @abstractmethod
    def _crops(self, batch: MetricBatch) -> list[torch.Tensor]:
        """The image regions scored against the prompt (whole image, or the mask's square crop)."""

    def _pixels(self, batch: MetricBatch, net: fx.FeatureNet) -> torch.Tensor:
        """The normalised network input: center square, bicubic antialias to the CLIP size, CLIP mean/std."""
        size = net.extra["size"]
        mean = torch.tensor(net.extra["mean"], device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(net.extra["std"], device=self.device).view(1, 3, 1, 1)
        x = torch.stack(
            [
                F.interpolate(
                    _center_square(c.to(self.device))[None].float(),
                    size=(size, size),
                    mode="bicubic",
                    antialias=True,
                    align_corners=False,
                )[0]
                for c in self._crops(batch)
            ]
        ).clamp(0, 1)
        return (x - mean) / std

    def _score(self, cos: torch.Tensor) -> torch.Tensor:
        return 100.0 * cos.clamp(min=0)

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:  # type: ignore[override]  # base returns None
        if batch.images is None:
            raise ValueError(f"{self.name} needs images")
        net = self._net()
        model: Any = net.module
        img = model.encode_image(self._pixels(batch, net)).float()
        prompts = list(batch.prompts)
        tok = net.extra["tokenizer"]
        trunc = fx.count_truncated(tok, prompts, net.extra["context_length"])
        txt = model.encode_text(tok(prompts).to(self.device)).float()
        cos = F.cosine_similarity(img, txt, dim=-1)
        self.truncated += int(sum(trunc))
        return self.add_samples(
            self._score(cos).cpu().tolist(), clip_prompt_truncated=[float(t) for t in trunc]
        )

    definition = "100 · max(cos(image, text), 0)"

    def _preprocessing(self, size: int) -> str:
        return f"center square crop, bicubic antialias to {size}, CLIP mean/std"

    def compute(self) -> MetricResult:
        net = self._net()
        r = self.mean_of_samples()
        if r.n == 0:
            return MetricResult(math.nan, 0, {"truncated_prompts": 0})
        r.extra.update(
            {
                "truncated_prompts": int(self.truncated),
                "context_length": net.extra["context_length"],
                "feature_network": net.id,
                "definition": self.definition,
                "preprocessing": self._preprocessing(net.extra["size"]),
            }
        )
        return r


def _center_square(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = min(h, w)
    return x[:, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]


@METRICS.register("clip_score")
class ClipScore(_ClipBase):
    """CLIP score of the whole image vs its prompt: 100 · max(cos(E_img, E_txt), 0), per image; aggregate = mean.

    Options: ``model`` (open_clip name, default ``ViT-L-14``), ``pretrained`` (default ``openai``).
    Prompts longer than the text context are truncated by the tokenizer; ``extra.truncated_prompts``
    counts them and the per-sample column ``clip_prompt_truncated`` marks them.
    """

    name = "clip_score"

    def _crops(self, batch: MetricBatch) -> list[torch.Tensor]:
        assert batch.images is not None
        return list(batch.images)


@METRICS.register("clip_score_masked")
class ClipScoreMasked(_ClipBase):
    """CLIP score of the regenerated region vs the prompt: each image is cropped to the bounding box
    of its mask and padded to a square with black (:func:`~evalsuite.metrics.functional.mask_bbox_square_crop`)."""

    name = "clip_score_masked"
    needs = frozenset({"images", "prompts", "masks"})
    tasks = frozenset({"inpaint"})

    def _crops(self, batch: MetricBatch) -> list[torch.Tensor]:
        if batch.images is None or batch.masks is None:
            raise ValueError("clip_score_masked needs images and masks")
        return [fn.mask_bbox_square_crop(i, m) for i, m in zip(batch.images, batch.masks, strict=True)]


@METRICS.register("clip_score_mlperf")
class ClipScoreMLPerf(_ClipBase):
    """MLPerf Inference's SDXL CLIP score (``text_to_image/tools/accuracy_coco.py``): open_clip
    ``ViT-B-32`` / ``openai``, 100 · cos(E_img, E_txt) **without** clamping at 0, the caption used
    verbatim (``open_clip.tokenize``: truncated to 77 tokens, end token kept), and open_clip's own
    eval transform on the 8-bit image — PIL bicubic resize of the shorter side to 224, center crop
    224, CLIP mean/std. Aggregate = mean (MLPerf's closed-division range on its 5,000 COCO-2014
    captions: 31.68632–31.81332)."""

    name = "clip_score_mlperf"
    default_clip = ("ViT-B-32", "openai")
    definition = "100 · cos(image, text) (MLPerf; no clamp)"

    def _crops(self, batch: MetricBatch) -> list[torch.Tensor]:
        assert batch.images is not None
        return list(batch.images)

    def _pixels(self, batch: MetricBatch, net: fx.FeatureNet) -> torch.Tensor:
        from PIL import Image

        size = net.extra["size"]
        mean = torch.tensor(net.extra["mean"]).view(3, 1, 1)
        std = torch.tensor(net.extra["std"]).view(3, 1, 1)
        out = []
        for img in fx.to_uint8(torch.stack(self._crops(batch))).permute(0, 2, 3, 1).cpu().numpy():
            out.append((_pil_resize_center_crop(Image.fromarray(img), size) - mean) / std)
        return torch.stack(out).to(self.device)

    def _score(self, cos: torch.Tensor) -> torch.Tensor:
        return 100.0 * cos

    def _preprocessing(self, size: int) -> str:
        return (
            f"open_clip eval transform: PIL bicubic shorter side to {size}, center crop {size}, CLIP mean/std"
        )


def _pil_resize_center_crop(img: Any, size: int) -> torch.Tensor:
    """torchvision's ``Resize(size, BICUBIC)`` + ``CenterCrop(size)`` + ``ToTensor`` on a PIL image
    (what open_clip's eval transform does), as float (3, size, size) in [0, 1]."""
    from PIL import Image

    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    img = img.resize((nw, nh), resample=Image.Resampling.BICUBIC)
    left = int(round((nw - size) / 2.0))
    top = int(round((nh - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnmaskedOptions:
    """Options of the ``unmasked_*`` metrics.

    Attributes:
        erode_px: margin in pixels removed from the kept region along the mask boundary.
        feather_sigma: Gaussian σ in pixels of the feathered paste-back.
    """

    erode_px: int = 0
    feather_sigma: float = 4.0

    def __post_init__(self) -> None:
        if self.erode_px < 0 or self.feather_sigma < 0:
            raise MetricOptionError(
                f"erode_px and feather_sigma must be ≥ 0, got {self.erode_px}, {self.feather_sigma}"
            )


@dataclass(frozen=True)
class UnmaskedNetOptions(UnmaskedOptions, NetOptions):
    """:class:`UnmaskedOptions` plus the feature-network options (``unmasked_lpips``)."""

    def __post_init__(self) -> None:
        UnmaskedOptions.__post_init__(self)
        NetOptions.__post_init__(self)


class _Unmasked(Metric):
    """Fidelity of the kept (unmasked) region to the source, raw and after paste-back.

    Options (:class:`UnmaskedOptions`): ``erode_px`` (default 0), ``feather_sigma`` (default 4).
    Per-sample columns: ``<name>`` (raw output), ``<name>_paste_hard`` and ``<name>_paste_feather``
    (after :func:`~evalsuite.metrics.functional.paste_back`). Hard paste-back makes MSE 0 and PSNR
    ``inf`` by construction (a check that it is bit-exact); the feathered one shows what blending
    costs in the kept region.
    """

    needs = frozenset({"images", "sources", "masks"})
    tasks = frozenset({"inpaint"})
    Options: ClassVar[type] = UnmaskedOptions
    region = "kept (unmasked) pixels, per-element mean over 3 channels"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.name:
            cls.columns = {
                f"{cls.name}_paste_hard": Column(cls.unit, cls.higher_is_better),
                f"{cls.name}_paste_feather": Column(cls.unit, cls.higher_is_better),
            }

    @abstractmethod
    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        """Per-image values of the metric over the kept region ``keep`` (1 = preserved)."""

    def _inputs(self, batch: MetricBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if batch.images is None or batch.sources is None or batch.masks is None:
            raise ValueError(f"{self.name} needs images, sources and masks")
        pred, src, mask = (t.to(self.device).float() for t in (batch.images, batch.sources, batch.masks))
        return pred, src, mask

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:  # type: ignore[override]  # base returns None
        pred, src, mask = self._inputs(batch)
        keep = fn.erode_keep_mask(mask, self.options.erode_px)
        self._warn_if_eroded_away(mask, keep)
        sigma = self.options.feather_sigma
        return self.add_samples(
            self._measure(pred, src, keep),
            **{
                f"{self.name}_paste_hard": self._measure(fn.paste_back(pred, src, mask), src, keep),
                f"{self.name}_paste_feather": self._measure(fn.paste_back(pred, src, mask, sigma), src, keep),
            },
        )

    def _warn_if_eroded_away(self, mask: torch.Tensor, keep: torch.Tensor) -> None:
        """One warning per metric when ``erode_px`` removes every kept pixel of some image (whose
        value is then NaN): the reason, the image size and the fix, instead of a silent N = 0."""
        if self.options.erode_px == 0 or getattr(self, "_warned_eroded", False):
            return
        kept_before = (mask < 0.5).flatten(1).any(dim=1)
        kept_after = (keep > 0.5).flatten(1).any(dim=1)
        lost = int((kept_before & ~kept_after).sum())
        if lost:
            self._warned_eroded = True
            h, w = mask.shape[-2:]
            log.warning(
                "%s: erode_px=%d leaves no kept pixels in %d of %d image(s) of this batch (%d×%d): their "
                "value is NaN and they are not counted in N; use a smaller erode_px",
                self.name,
                self.options.erode_px,
                lost,
                mask.shape[0],
                w,
                h,
            )

    def compute(self) -> MetricResult:
        r = self.mean_of_samples()
        r.extra.update(
            {
                "paste_hard": fn.mean_finite(self.samples(f"{self.name}_paste_hard")),
                "paste_feather": fn.mean_finite(self.samples(f"{self.name}_paste_feather")),
                "erode_px": self.options.erode_px,
                "feather_sigma": self.options.feather_sigma,
                "region": self.region,
            }
        )
        return r


@METRICS.register("unmasked_mse")
class UnmaskedMSE(_Unmasked):
    """Per-element MSE over the kept region (:func:`~evalsuite.metrics.functional.masked_mse`; BrushBench's is 3×)."""

    name = "unmasked_mse"
    higher_is_better = False  # type: ignore[misc]  # torchmetrics declares it an instance attribute

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        return fn.masked_mse_per_image(pred, src, keep).cpu().tolist()


@METRICS.register("unmasked_psnr")
class UnmaskedPSNR(_Unmasked):
    """PSNR (dB) over the kept region, data range 1 (:func:`~evalsuite.metrics.functional.masked_psnr`;
    BrushBench's is ≈ 4.77 dB lower); aggregate = mean of per-image PSNRs."""

    name = "unmasked_psnr"
    unit = "dB"

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        return fn.masked_psnr_per_image(pred, src, keep).cpu().tolist()


@METRICS.register("unmasked_ssim")
class UnmaskedSSIM(_Unmasked):
    """SSIM map averaged over the kept region (:func:`~evalsuite.metrics.functional.masked_ssim`)."""

    name = "unmasked_ssim"

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        return fn.masked_ssim_per_image(pred, src, keep).cpu().tolist()


@METRICS.register("unmasked_lpips")
class UnmaskedLPIPS(_Unmasked):
    """LPIPS (v0.1, AlexNet) between output and source averaged over the kept region
    (:func:`~evalsuite.metrics.functional.masked_lpips`)."""

    name = "unmasked_lpips"
    higher_is_better = False  # type: ignore[misc]  # torchmetrics declares it an instance attribute
    feature_nets = frozenset({"lpips"})
    Options = UnmaskedNetOptions

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        net = fx.lpips_net(self.options.metric_weights, self.device, self.options.metric_weights_dir)
        self.quality_evidence = net.quality_evidence
        return fn.masked_lpips(net.module, pred, src, keep).double().cpu().tolist()


class _BrushBench(_Unmasked):
    """BrushBench's definition (BrushNet's evaluation script), shown as a labelled variant: output,
    source and mask resized to 512×512 (PIL bicubic for the images, nearest for the mask), then the
    3-channel squared-error sum over the kept pixels divided by the 1-channel kept-pixel count
    (:func:`~evalsuite.metrics.functional.brushbench_mse_per_image`): MSE 3× ours, PSNR
    10·log10 3 ≈ 4.77 dB lower; PSNR is 1000 where that MSE < 1e-10, as theirs. Compare with
    published BrushBench tables only through these, never through ``unmasked_mse``/``unmasked_psnr``."""

    region = "BrushBench: 512² PIL bicubic, kept pixels, 3-channel SSE / 1-channel pixel count"

    def _inputs(self, batch: MetricBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pred, src, mask = super()._inputs(batch)
        return fn.brushbench_resize(pred), fn.brushbench_resize(src), fn.brushbench_resize_mask(mask)


@METRICS.register("unmasked_mse_brushbench")
class UnmaskedMSEBrushBench(_BrushBench):
    """BrushBench-compatible unmasked-region MSE (3× :class:`UnmaskedMSE` at the same size)."""

    name = "unmasked_mse_brushbench"
    higher_is_better = False  # type: ignore[misc]  # torchmetrics declares it an instance attribute

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        return fn.brushbench_mse_per_image(pred, src, keep).cpu().tolist()


@METRICS.register("unmasked_psnr_brushbench")
class UnmaskedPSNRBrushBench(_BrushBench):
    """BrushBench-compatible unmasked-region PSNR (≈ 4.77 dB below :class:`UnmaskedPSNR` at the same size)."""

    name = "unmasked_psnr_brushbench"
    unit = "dB"

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        return fn.brushbench_psnr_per_image(pred, src, keep).cpu().tolist()


# ---------------------------------------------------------------------------------------------
@METRICS.register("lpips_pair")
class PairedLPIPS(_NetMetric):
    """LPIPS (v0.1, AlexNet) between two configurations' images at the same case and seed
    (e.g. ``flux-dev-turbo8`` vs ``flux-dev``): the whole image, plus — when masks are given —
    the regenerated region only (column ``lpips_pair_masked``). Lower = closer. Scoring stores it
    in the first configuration's rows and summary, with ``vs`` naming the second."""

    name = "lpips_pair"
    higher_is_better = False  # type: ignore[misc]  # torchmetrics declares it an instance attribute
    needs = frozenset({"images", "pairs"})
    feature_nets = frozenset({"lpips"})
    paired = True
    Options = NetOptions
    columns = {"lpips_pair_masked": Column("", False)}

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:  # type: ignore[override]  # base returns None
        if batch.images is None or batch.pairs is None:
            raise ValueError("lpips_pair needs images and pairs")
        net = fx.lpips_net(self._mode(), self.device, self._wdir())
        self.quality_evidence = net.quality_evidence
        a, b = batch.images.to(self.device).float(), batch.pairs.to(self.device).float()
        vals = fn.masked_lpips(net.module, a, b).double().cpu().tolist()
        if batch.masks is None:
            return self.add_samples(vals)
        keep = (batch.masks.to(self.device) >= 0.5).float()
        masked = fn.masked_lpips(net.module, a, b, keep).double().cpu().tolist()
        return self.add_samples(vals, lpips_pair_masked=masked)

    def compute(self) -> MetricResult:
        r = self.mean_of_samples()
        if r.n == 0:
            return MetricResult(math.nan, 0)
        r.extra["feature_network"] = "lpips-v0.1-alex"
        masked = [v for v in self.samples("lpips_pair_masked") if not math.isnan(v)]
        if masked:
            r.extra["masked_region"] = float(np.mean(masked))
        return r


QUALITY_METRICS = (
    "fid",
    "clip_score",
    "clip_score_masked",
    "clip_score_mlperf",
    "unmasked_mse",
    "unmasked_psnr",
    "unmasked_ssim",
    "unmasked_lpips",
    "unmasked_mse_brushbench",
    "unmasked_psnr_brushbench",
    "lpips_pair",
)
