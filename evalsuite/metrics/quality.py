"""Quality metrics: FID/KID, CLIP score (whole image and masked region), unmasked-region
fidelity (MSE, PSNR, SSIM, LPIPS — raw and after paste-back) and paired LPIPS between two
configurations.

Every class takes the options ``metric_weights`` (``real``/``random``/``random_full``, see
:mod:`evalsuite.metrics.features`; default ``real``) and ``metric_weights_dir``. Numbers made with
random feature networks set ``quality_evidence = False``.
"""

from __future__ import annotations

import logging
import math
import statistics
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import Metric, MetricBatch, MetricResult, ScoringContext
from evalsuite.registry import METRICS

log = logging.getLogger(__name__)


def _stats(values: list[float]) -> dict[str, Any]:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return {"std": math.nan, "median": math.nan}
    finite = [x for x in v if math.isfinite(x)]
    return {"std": statistics.pstdev(finite) if len(finite) > 1 else 0.0, "median": statistics.median(v)}


class _NetMetric(Metric):
    """Shared option handling for metrics with a feature network."""

    def _mode(self) -> str:
        mode = str(self.options.get("metric_weights", "real"))
        if mode not in fx.MODES:
            raise ValueError(f"metric_weights must be one of {', '.join(fx.MODES)}, got {mode!r}")
        return mode

    def _wdir(self) -> Any:
        return self.options.get("metric_weights_dir")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "metric_weights": self._mode()}


# ---------------------------------------------------------------------------------------------
@METRICS.register("fid")
class FID(_NetMetric):
    """Fréchet Inception Distance of the generated images to a reference set, with KID beside it.

    Reference: for ``inpaint`` configurations the dataset's source images; for ``t2i`` the cases'
    ``reference`` images; option ``reference`` = a folder of images overrides both. Reference
    features are cached under :func:`~evalsuite.metrics.features.cache_dir`, keyed by dataset
    fingerprint (or folder hash), preprocessing and feature network, and kept across
    :meth:`reset` (like torchmetrics' ``reset_real_features=False``).

    The value is FID (lower is better); ``extra`` holds ``kid`` and ``kid_std`` (polynomial
    kernel, ``kid_subsets`` subsets of ``kid_subset_size``), ``n_ref``, the feature network and the
    preprocessing. FID is biased at small N — read it with N and KID. ``nan`` (with ``reason``)
    when there is no reference or fewer than 2 images on a side.
    """

    name = "fid"
    higher_is_better = False
    unit = ""
    needs = frozenset({"images"})
    per_sample = False
    feature_nets = frozenset({"inception"})

    def reset(self) -> None:
        self._feats: list[np.ndarray] = []
        if not hasattr(self, "_ref"):
            self.skipped_reference: list[str] = []
            self._ref: np.ndarray | None = None
            self._ref_desc: dict[str, Any] = {"reason": "no reference set"}

    def _net(self) -> fx.FeatureNet:
        net = fx.inception(self._mode(), self.device, self._wdir())
        self.quality_evidence = net.quality_evidence
        return net

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, D) float64 features of float (N, 3, H, W) images in [0, 1]."""
        net = self._net()
        x = fx.inception_input(images.to(self.device), net.extra["size"])
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
            raise ValueError("FID: no readable reference image")
        return np.concatenate(out)

    def set_reference_features(self, feats: np.ndarray, description: dict[str, Any]) -> None:
        """Use ``feats`` (N, D) as the reference set."""
        self._ref = np.asarray(feats, np.float64)
        self._ref_desc = description

    def prepare(self, context: ScoringContext) -> None:
        """Load (or compute and cache) the reference features for ``context``."""
        net = self._net()
        pre = fx.preprocessing_record(net.extra["size"])
        folder = self.options.get("reference")
        if folder:
            exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
            paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)
            if not paths:
                raise FileNotFoundError(f"FID reference folder {folder} holds no images (.png/.jpg/.webp)")
            import hashlib

            h = hashlib.sha256()
            for p in paths:
                h.update(p.name.encode() + b"\0" + p.read_bytes())
            fp, what = h.hexdigest(), f"folder:{Path(folder).resolve()}"
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
        key = fx.stats_key(fp, what, net.id, pre)
        feats = fx.load_reference_features(key)
        if feats is None:
            feats = self._features_of_files(paths)
            fx.save_reference_features(
                key, feats, {"fingerprint": fp, "what": what, "net": net.id, "pre": pre}
            )
        self.set_reference_features(
            feats,
            {
                "reference": what.split(":")[0] if not folder else str(folder),
                "reference_fingerprint": fp,
                "cache_key": key,
            },
        )

    def update(self, batch: MetricBatch) -> None:
        if batch.images is None:
            raise ValueError("fid needs images")
        self._feats.append(self.features(batch.images))
        return None

    def compute(self) -> MetricResult:
        feats = np.concatenate(self._feats) if self._feats else np.zeros((0, 1))
        n = int(feats.shape[0])
        extra: dict[str, Any] = {
            "feature_network": self._net().id,
            "preprocessing": fx.preprocessing_record(self._net().extra["size"]),
            **self._ref_desc,
        }
        if self._ref is None or n < 2 or len(self._ref) < 2:
            extra.setdefault("reason", "fewer than 2 images")
            return MetricResult(
                math.nan,
                n,
                {
                    **extra,
                    "kid": math.nan,
                    "kid_std": math.nan,
                    "n_ref": 0 if self._ref is None else len(self._ref),
                },
            )
        fid = fn.frechet_distance(*fn.feature_stats(feats), *fn.feature_stats(self._ref))
        subsets = int(self.options.get("kid_subsets", 100))
        size = min(int(self.options.get("kid_subset_size", 1000)), n, len(self._ref))
        kid, kid_std = fn.kernel_inception_distance(feats, self._ref, subsets=subsets, subset_size=size)
        extra.pop("reason", None)
        return MetricResult(
            fid,
            n,
            {
                **extra,
                "kid": kid,
                "kid_std": kid_std,
                "kid_subsets": subsets,
                "kid_subset_size": size,
                "n_ref": int(len(self._ref)),
            },
        )


# ---------------------------------------------------------------------------------------------
class _ClipBase(_NetMetric):
    needs = frozenset({"images", "prompts"})
    feature_nets = frozenset({"clip"})
    unit = ""

    def reset(self) -> None:
        self._values: list[float] = []
        self._truncated = 0
        self._last_trunc: list[float] = []

    def _net(self) -> fx.FeatureNet:
        model = str(self.options.get("model", fx.DEFAULT_CLIP[0]))
        pretrained = str(self.options.get("pretrained", fx.DEFAULT_CLIP[1]))
        net = fx.clip_net(self._mode(), self.device, self._wdir(), model, pretrained)
        self.quality_evidence = net.quality_evidence
        return net

    @abstractmethod
    def _crops(self, batch: MetricBatch) -> list[torch.Tensor]:
        """The image regions scored against the prompt (whole image, or the mask's square crop)."""

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:
        if batch.images is None:
            raise ValueError(f"{self.name} needs images")
        net = self._net()
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
        model: Any = net.module
        img = model.encode_image((x - mean) / std).float()
        prompts = list(batch.prompts)
        tok = net.extra["tokenizer"]
        trunc = fx.count_truncated(tok, prompts, net.extra["context_length"])
        txt = model.encode_text(tok(prompts).to(self.device)).float()
        cos = F.cosine_similarity(img, txt, dim=-1)
        vals = (100.0 * cos.clamp(min=0)).cpu().tolist()
        self._values += vals
        self._truncated += sum(trunc)
        self._last_trunc = [float(t) for t in trunc]
        return vals

    def extra_columns(self) -> dict[str, list[float]]:
        return {"clip_prompt_truncated": self._last_trunc}

    def compute(self) -> MetricResult:
        net = self._net()
        if not self._values:
            return MetricResult(math.nan, 0, {"truncated_prompts": 0})
        return MetricResult(
            statistics.fmean(self._values),
            len(self._values),
            {
                **_stats(self._values),
                "truncated_prompts": self._truncated,
                "context_length": net.extra["context_length"],
                "feature_network": net.id,
                "definition": "100 · max(cos(image, text), 0)",
                "preprocessing": f"center square crop, bicubic antialias to {net.extra['size']}, CLIP mean/std",
            },
        )


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


# ---------------------------------------------------------------------------------------------
class _Unmasked(_NetMetric):
    """Fidelity of the kept (unmasked) region to the source, raw and after paste-back.

    Options: ``erode_px`` (margin in pixels removed from the kept region along the mask boundary,
    default 0), ``feather_sigma`` (Gaussian σ in pixels of the feathered paste-back, default 4).
    Per-sample columns: ``<name>`` (raw output), ``<name>_paste_hard`` and ``<name>_paste_feather``
    (after :func:`~evalsuite.metrics.functional.paste_back`). Hard paste-back makes MSE 0 and PSNR
    ``inf`` by construction (a check that it is bit-exact); the feathered one shows what blending
    costs in the kept region.
    """

    needs = frozenset({"images", "sources", "masks"})
    tasks = frozenset({"inpaint"})
    quantity = ""

    def reset(self) -> None:
        self._vals: dict[str, list[float]] = {"": [], "_paste_hard": [], "_paste_feather": []}
        self._last: dict[str, list[float]] = {}

    @abstractmethod
    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        """Per-image values of the metric over the kept region ``keep`` (1 = preserved)."""

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:
        if batch.images is None or batch.sources is None or batch.masks is None:
            raise ValueError(f"{self.name} needs images, sources and masks")
        pred, src, mask = (t.to(self.device).float() for t in (batch.images, batch.sources, batch.masks))
        keep = fn.erode_keep_mask(mask, int(self.options.get("erode_px", 0)))
        sigma = float(self.options.get("feather_sigma", 4.0))
        out = {
            "": self._measure(pred, src, keep),
            "_paste_hard": self._measure(fn.paste_back(pred, src, mask), src, keep),
            "_paste_feather": self._measure(fn.paste_back(pred, src, mask, sigma), src, keep),
        }
        for k, v in out.items():
            self._vals[k] += v
        self._last = {f"{self.name}{k}": v for k, v in out.items() if k}
        return out[""]

    def extra_columns(self) -> dict[str, list[float]]:
        return self._last

    def compute(self) -> MetricResult:
        raw = self._vals[""]
        extra: dict[str, Any] = {
            **_stats(raw),
            "paste_hard": fn.mean_finite(self._vals["_paste_hard"]),
            "paste_feather": fn.mean_finite(self._vals["_paste_feather"]),
            "erode_px": int(self.options.get("erode_px", 0)),
            "feather_sigma": float(self.options.get("feather_sigma", 4.0)),
            "region": "kept (unmasked) pixels, per-element mean over 3 channels",
        }
        return MetricResult(fn.mean_finite(raw), len([v for v in raw if not math.isnan(v)]), extra)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if not self.feature_nets:
            d.pop("metric_weights", None)
        return d


@METRICS.register("unmasked_mse")
class UnmaskedMSE(_Unmasked):
    """Per-element MSE over the kept region (:func:`~evalsuite.metrics.functional.masked_mse`; BrushBench's is 3×)."""

    name = "unmasked_mse"
    higher_is_better = False

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
    higher_is_better = False
    feature_nets = frozenset({"lpips"})

    def _measure(self, pred: torch.Tensor, src: torch.Tensor, keep: torch.Tensor) -> list[float]:
        net = fx.lpips_net(self._mode(), self.device, self._wdir())
        self.quality_evidence = net.quality_evidence
        return fn.masked_lpips(net.module, pred, src, keep).double().cpu().tolist()


# ---------------------------------------------------------------------------------------------
@METRICS.register("lpips_pair")
class PairedLPIPS(_NetMetric):
    """LPIPS (v0.1, AlexNet) between two configurations' images at the same case and seed
    (e.g. ``flux-dev-turbo8`` vs ``flux-dev``): the whole image, plus — when masks are given —
    the regenerated region only (column ``lpips_pair_masked``). Lower = closer. Scoring stores it
    in the first configuration's rows and summary, with ``vs`` naming the second."""

    name = "lpips_pair"
    higher_is_better = False
    needs = frozenset({"images", "pairs"})
    feature_nets = frozenset({"lpips"})
    paired = True

    def reset(self) -> None:
        self._values: list[float] = []
        self._masked: list[float] = []
        self._last: dict[str, list[float]] = {}

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:
        if batch.images is None or batch.pairs is None:
            raise ValueError("lpips_pair needs images and pairs")
        net = fx.lpips_net(self._mode(), self.device, self._wdir())
        self.quality_evidence = net.quality_evidence
        a, b = batch.images.to(self.device).float(), batch.pairs.to(self.device).float()
        vals = fn.masked_lpips(net.module, a, b).double().cpu().tolist()
        self._values += vals
        self._last = {}
        if batch.masks is not None:
            masked = (
                fn.masked_lpips(net.module, a, b, (batch.masks.to(self.device) >= 0.5).float())
                .double()
                .cpu()
                .tolist()
            )
            self._masked += masked
            self._last = {"lpips_pair_masked": masked}
        return vals

    def extra_columns(self) -> dict[str, list[float]]:
        return self._last

    def compute(self) -> MetricResult:
        if not self._values:
            return MetricResult(math.nan, 0)
        extra = {**_stats(self._values), "feature_network": "lpips-v0.1-alex"}
        if self._masked:
            extra["masked_region"] = statistics.fmean(self._masked)
        return MetricResult(statistics.fmean(self._values), len(self._values), extra)


QUALITY_METRICS = (
    "fid",
    "clip_score",
    "clip_score_masked",
    "unmasked_mse",
    "unmasked_psnr",
    "unmasked_ssim",
    "unmasked_lpips",
    "lpips_pair",
)
