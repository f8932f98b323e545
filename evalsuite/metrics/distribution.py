"""Set-level distribution metrics beside FID: CMMD, FD-DINOv2 and precision/recall/density/coverage.

``cmmd`` (Jayasumana et al., CVPR 2024, "Rethinking FID")
    CLIP ViT-L/14 at 336 px (``openai/clip-vit-large-patch14-336``) image embeddings,
    L2-normalised; MMD² with a Gaussian RBF kernel (σ = 10) × 1000, the estimator of the reference
    implementation (google-research ``cmmd/distance.py``; :func:`~evalsuite.metrics.functional.cmmd`).
    Preprocessing: the whole image resized bicubic to 336×336 (PIL, float, antialiased — the
    reference resizes with ``jax.image.resize(bicubic)``, antialiased too), no crop, CLIP mean/std.
``fd_dinov2`` (Stein et al., NeurIPS 2023)
    The Fréchet distance (:func:`~evalsuite.metrics.functional.frechet_distance`) between the
    DINOv2 ViT-L/14 (``facebook/dinov2-large``) CLS features of the generated and the reference
    images. ``mode = dgm_eval`` (default; Stein et al.'s ``dgm-eval``): PIL bicubic to 224×224 on
    the 8-bit image, /255, ImageNet mean/std. ``mode = torch_fidelity`` (torch-fidelity 0.4.0's
    ``dinov2-vit-l-14``): its TF1.x-compatible bilinear resize to 224 on uint8 values, then
    ImageNet mean/std × 255. The two disagree by design; the mode is in the value's record and
    in the reference cache key. Needs N ≥ D + 1 images on each side (1025 with real weights): with
    fewer the covariance is singular and the value is NaN with the reason.
``prdc`` / ``prdc_dinov2`` (Naeem et al., ICML 2020)
    Precision, recall, density and coverage of k-NN manifolds (k = 5) on Inception features (the
    FID network, clean-fid preprocessing) or DINOv2 CLS features (``dgm_eval`` preprocessing).
    The value is the ``headline`` option (default ``coverage``); all four are in the record. Needs
    N ≥ k + 1 on each side (NaN with the reason otherwise).

Reference images: the dataset's sources for ``inpaint`` configurations, the cases' ``reference``
images for ``t2i``, or the folder of option ``reference``; their features are cached under the
cache root keyed by dataset fingerprint, network and preprocessing (as FID's).

Weights (``real``) are looked up like the preference metrics' (:mod:`evalsuite.metrics.preference_nets`):
the metric weights folder (``--metric-weights-dir``), the torch hub checkpoints folder, the Hugging
Face cache, else downloaded unless ``HF_HUB_OFFLINE`` is set — then the error names the file and
the command that fetches it. No sha256 is pinned: none published for these files could be read
here, and a digest is never guessed; the digest of the file loaded is recorded with the numbers.
``random`` builds tiny random architectures from transformers configs (tests, no quality
evidence), ``random_full`` the real architectures with random weights.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics import preference_nets as pn
from evalsuite.metrics.base import (
    Metric,
    MetricBatch,
    MetricOptionError,
    MetricResult,
    NetOptions,
    ScoringContext,
)
from evalsuite.registry import METRICS

log = logging.getLogger(__name__)

CLIP336_REPO = "openai/clip-vit-large-patch14-336"
DINOV2_REPO = "facebook/dinov2-large"
CLIP336_FILE = pn.WeightFile(
    path="clip-vit-large-patch14-336/pytorch_model.bin",
    source=f"huggingface.co/{CLIP336_REPO} (pytorch_model.bin)",
    sha256=None,
    fetch=f"hf download {CLIP336_REPO} pytorch_model.bin --local-dir DIR/clip-vit-large-patch14-336",
    hub=(CLIP336_REPO, "pytorch_model.bin"),
)
DINOV2_FILE = pn.WeightFile(
    path="dinov2-large/model.safetensors",
    source=f"huggingface.co/{DINOV2_REPO} (model.safetensors)",
    sha256=None,
    fetch=f"hf download {DINOV2_REPO} model.safetensors --local-dir DIR/dinov2-large",
    hub=(DINOV2_REPO, "model.safetensors"),
)
# the pre-generation check (features.check_metric_weights) finds these files through the
# preference metrics' table; the error names the fetch command
pn.WEIGHT_FILES.update({"cmmd": (CLIP336_FILE,), "fd_dinov2": (DINOV2_FILE,), "prdc_dinov2": (DINOV2_FILE,)})
for _wf in (CLIP336_FILE, DINOV2_FILE):
    fx._SOURCES[_wf.path] = f"{_wf.source}; command: {_wf.fetch}"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CMMD_SIZE = 336
DINO_SIZE = 224
_NETS: dict[tuple[Any, ...], fx.FeatureNet] = {}


# ---------------------------------------------------------------------------------------------
# networks
def clip336_config(mode: str) -> Any:
    """transformers ``CLIPVisionConfig`` of CLIP ViT-L/14-336 (``random``: 2 layers, 32 wide)."""
    from transformers import CLIPVisionConfig

    if mode == "random":
        return CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=CMMD_SIZE,
            patch_size=14,
            projection_dim=16,
            hidden_act="quick_gelu",
        )
    return CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=CMMD_SIZE,
        patch_size=14,
        projection_dim=768,
        hidden_act="quick_gelu",
    )


def dinov2_config(mode: str) -> Any:
    """transformers ``Dinov2Config`` of DINOv2 ViT-L/14 (``random``: 2 layers, 32 wide)."""
    from transformers import Dinov2Config

    if mode == "random":
        return Dinov2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=DINO_SIZE, patch_size=14
        )
    return Dinov2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, image_size=518, patch_size=14
    )


def _file_record(wf: pn.WeightFile, path: Path) -> dict[str, Any]:
    return pn.weights_record(wf, path)


def clip336_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> fx.FeatureNet:
    """CLIP ViT-L/14-336's image tower and projection (``CLIPVisionModelWithProjection``).

    Raises:
        MetricWeightsError: ``real``, offline, the file found nowhere (the message names the
            fetch command).
    """
    key = ("clip336", mode, str(device), str(fx.weights_dir(wdir)))
    if key not in _NETS:
        from transformers import CLIPVisionModelWithProjection

        path = pn.locate(CLIP336_FILE, wdir) if mode == "real" else None  # fail before building
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(27)
            model = CLIPVisionModelWithProjection(clip336_config(mode))
        record: list[dict[str, Any]] = []
        if path is not None:
            sd = pn._state(path)
            keep = {k: v for k, v in sd.items() if k.startswith(("vision_model.", "visual_projection."))}
            keep.pop("vision_model.embeddings.position_ids", None)
            model.load_state_dict(keep)
            record.append(_file_record(CLIP336_FILE, path))
        model = model.to(device).eval().requires_grad_(False)
        nid = "clip-vit-l-14-336-openai" + ("" if mode == "real" else f"-{mode}")
        _NETS[key] = fx.FeatureNet(model, nid, mode == "real", {"weights": record})
    return _NETS[key]


def dinov2_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> fx.FeatureNet:
    """DINOv2 ViT-L/14 (``Dinov2Model``); features = ``pooler_output``, the normalised CLS token.

    Raises:
        MetricWeightsError: as :func:`clip336_net`.
    """
    key = ("dinov2", mode, str(device), str(fx.weights_dir(wdir)))
    if key not in _NETS:
        from transformers import Dinov2Model

        path = pn.locate(DINOV2_FILE, wdir) if mode == "real" else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(27)
            model = Dinov2Model(dinov2_config(mode))
        record: list[dict[str, Any]] = []
        if path is not None:
            model.load_state_dict(pn._state(path))
            record.append(_file_record(DINOV2_FILE, path))
        model = model.to(device).eval().requires_grad_(False)
        nid = "dinov2-vit-l-14" + ("" if mode == "real" else f"-{mode}")
        _NETS[key] = fx.FeatureNet(model, nid, mode == "real", {"weights": record})
    return _NETS[key]


# ---------------------------------------------------------------------------------------------
# preprocessing
def _pil_bicubic_u8(u8: torch.Tensor, size: int) -> torch.Tensor:
    """PIL bicubic resize of 8-bit RGB images to size² (8-bit result, as torchvision's ``Resize`` on
    a PIL image): uint8 (N, 3, H, W) → float (N, 3, size, size) in [0, 255]."""
    from PIL import Image

    out = []
    for img in u8.permute(0, 2, 3, 1).cpu().numpy():
        im = Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.Resampling.BICUBIC)
        out.append(torch.from_numpy(np.asarray(im, np.float32)).permute(2, 0, 1))
    return torch.stack(out)


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def cmmd_input(images: torch.Tensor) -> torch.Tensor:
    """CMMD's network input: float (N, 3, H, W) in [0, 1] (8-bit values) → 8-bit → PIL bicubic on
    32-bit float channels to 336² (no crop, antialiased) → /255 → CLIP mean/std."""
    x = fx._pil_bicubic_float(fx.to_uint8(images), CMMD_SIZE) / 255.0
    return _normalise(x, pn.OPENAI_MEAN, pn.OPENAI_STD)


def dinov2_input(images: torch.Tensor, mode: str = "dgm_eval") -> torch.Tensor:
    """FD-DINOv2's network input for ``mode`` (see the module doc) → (N, 3, 224, 224) float32."""
    u8 = fx.to_uint8(images)
    if mode == "dgm_eval":
        return _normalise(_pil_bicubic_u8(u8, DINO_SIZE) / 255.0, IMAGENET_MEAN, IMAGENET_STD)
    if mode == "torch_fidelity":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(
            u8.float(), size=(DINO_SIZE, DINO_SIZE), align_corners=False
        )
        return _normalise(x, tuple(255 * m for m in IMAGENET_MEAN), tuple(255 * s for s in IMAGENET_STD))
    raise ValueError(f"FD-DINOv2 mode must be dgm_eval or torch_fidelity, got {mode!r}")


_PRE = {
    "cmmd": {
        "resize": f"PIL bicubic on 32-bit float channels to {CMMD_SIZE}x{CMMD_SIZE}, whole image, no crop",
        "network_input": "x/255, CLIP mean/std",
        "embedding": "L2-normalised image_embeds",
        "compatible_with": "google-research cmmd (jax.image.resize bicubic)",
    },
    "dgm_eval": {
        "resize": f"PIL bicubic on the 8-bit image to {DINO_SIZE}x{DINO_SIZE}",
        "network_input": "x/255, ImageNet mean/std",
        "compatible_with": "dgm-eval (Stein et al. 2023)",
    },
    "torch_fidelity": {
        "resize": f"torch-fidelity's TF1.x-compatible bilinear to {DINO_SIZE}x{DINO_SIZE} on uint8 values",
        "network_input": "ImageNet mean/std x 255",
        "compatible_with": "torch-fidelity 0.4.0 dinov2-vit-l-14",
    },
}


# ---------------------------------------------------------------------------------------------
# metrics
@dataclass(frozen=True)
class RefSetOptions(NetOptions):
    """Options of the set-level distribution metrics.

    Attributes:
        reference: a folder of reference images (overrides the dataset's).
    """

    reference: str | None = None


class _RefSetMetric(Metric):
    """Features of the generated images (a ``cat`` list state) against cached reference features."""

    unit = ""
    needs = frozenset({"images"})
    per_sample = False
    Options = RefSetOptions
    feats: list[torch.Tensor]

    def setup_states(self) -> None:
        self.add_state("feats", default=[], dist_reduce_fx="cat")
        self._ref: np.ndarray | None = None
        self._ref_desc: dict[str, Any] = {"reason": "no reference set"}
        self.skipped_reference: list[str] = []

    # what subclasses provide
    @abstractmethod
    def _embedder(self) -> tuple[fx.FeatureNet, Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
        """(network, images → network input, preprocessing record)."""

    @abstractmethod
    def _forward(self, net: fx.FeatureNet, x: torch.Tensor) -> torch.Tensor:
        """(N, D) features of the network input ``x``."""

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, D) float64 features of float (N, 3, H, W) images in [0, 1]."""
        net, pre, _ = self._embedder()
        self.quality_evidence = net.quality_evidence
        return self._forward(net, pre(images).to(self.device)).double().cpu().numpy()

    def _files_features(self, paths: list[Path]) -> np.ndarray:
        from evalsuite.data.imageio import ImageError, load_image

        out = []
        for p in paths:
            try:
                img = load_image(p)
            except ImageError as exc:
                log.warning("%s reference: leaving out %s", self.name, exc)
                self.skipped_reference.append(str(p))
                continue
            out.append(
                self.features(torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)[None])
            )
        if not out:
            raise ValueError(f"{self.name}: no readable reference image")
        return np.concatenate(out)

    def set_reference_features(self, feats: np.ndarray, description: dict[str, Any]) -> None:
        self._ref = np.asarray(feats, np.float64)
        self._ref_desc = description

    def prepare(self, context: ScoringContext) -> None:
        net, _, pre = self._embedder()
        folder = self.options.reference
        if folder:
            exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
            paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)
            if not paths:
                raise FileNotFoundError(
                    f"{self.name} reference folder {folder} holds no images (.png/.jpg/.webp)"
                )
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
            seen: dict[Path, str] = {}
            for c in ds.cases:
                if getattr(c, attr) is not None:
                    seen.setdefault(getattr(c, attr), c.id)
            paths = list(seen)
            if not paths:
                self._ref, self._ref_desc = None, {"reason": f"dataset has no case '{attr}' images"}
                return
            fp, what = ds.fingerprint, f"{attr}:" + ",".join(sorted(seen.values()))
        feats, key = fx.cached_reference_features(fp, what, net.id, pre, lambda: self._files_features(paths))
        self.set_reference_features(
            feats,
            {
                "reference": what.split(":")[0] if not folder else str(folder),
                "reference_fingerprint": fp,
                "cache_key": key,
            },
        )

    def update(self, batch: MetricBatch) -> None:  # type: ignore[override]
        if batch.images is None:
            raise ValueError(f"{self.name} needs images")
        if len(batch):
            self.feats.append(torch.from_numpy(self.features(batch.images)).to(self.device))
        return None

    def generated(self) -> np.ndarray:
        f = self.feats
        if isinstance(f, torch.Tensor):
            return f.double().cpu().numpy()
        return torch.cat(f).double().cpu().numpy() if f else np.zeros((0, 0))

    def _record(self) -> dict[str, Any]:
        net, _, pre = self._embedder()
        return {
            "feature_network": net.id,
            "preprocessing": pre,
            "weights": net.extra.get("weights", []),
            **self._ref_desc,
            "n_ref": 0 if self._ref is None else int(len(self._ref)),
        }


# -- CMMD ----------------------------------------------------------------------------------------
@METRICS.register("cmmd")
class CMMD(_RefSetMetric):
    """CMMD: MMD² (RBF, σ = 10, × 1000) between CLIP ViT-L/14-336 embeddings of the generated and
    the reference images; lower is better. NaN (with the reason) below 2 images on a side."""

    name = "cmmd"
    higher_is_better = False  # type: ignore[misc]
    feature_nets = frozenset({fx.PREFERENCE_NETS})

    def _embedder(self) -> tuple[fx.FeatureNet, Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
        return (
            clip336_net(str(self.options.metric_weights), self.device, self.options.metric_weights_dir),
            cmmd_input,
            _PRE["cmmd"],
        )

    def _forward(self, net: fx.FeatureNet, x: torch.Tensor) -> torch.Tensor:
        e = net.module(pixel_values=x).image_embeds.double()
        return e / e.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def compute(self) -> MetricResult:
        g = self.generated()
        extra = {
            **self._record(),
            "sigma": 10.0,
            "scale": 1000.0,
            "estimator": "biased (V-statistic), as google-research cmmd",
        }
        if self._ref is None or len(self._ref) < 2 or len(g) < 2:
            extra.setdefault(
                "reason", f"fewer than 2 images (generated {len(g)}, reference {extra['n_ref']})"
            )
            return MetricResult(math.nan, len(g), extra)
        extra.pop("reason", None)
        return MetricResult(fn.cmmd(g, self._ref), len(g), extra)


# -- FD-DINOv2 -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FDDinov2Options(RefSetOptions):
    """Options of :class:`FDDinov2`: ``mode`` = ``dgm_eval`` (default) or ``torch_fidelity``."""

    mode: Literal["dgm_eval", "torch_fidelity"] = "dgm_eval"


@METRICS.register("fd_dinov2")
class FDDinov2(_RefSetMetric):
    """Fréchet distance between DINOv2 ViT-L/14 CLS features of the generated and the reference
    images; lower is better. NaN (with the reason) below D + 1 images on a side."""

    name = "fd_dinov2"
    higher_is_better = False  # type: ignore[misc]
    feature_nets = frozenset({fx.PREFERENCE_NETS})
    Options = FDDinov2Options

    def _embedder(self) -> tuple[fx.FeatureNet, Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
        net = dinov2_net(str(self.options.metric_weights), self.device, self.options.metric_weights_dir)
        mode = self.options.mode
        return net, lambda im: dinov2_input(im, mode), {"mode": mode, **_PRE[mode]}

    def _forward(self, net: fx.FeatureNet, x: torch.Tensor) -> torch.Tensor:
        return net.module(pixel_values=x).pooler_output

    def compute(self) -> MetricResult:
        g = self.generated()
        extra = {**self._record(), "fd_mode": self.options.mode}
        cfg: Any = self._embedder()[0].module.config
        d = int(cfg.hidden_size)
        need = d + 1
        if self._ref is None or len(self._ref) < need or len(g) < need:
            extra.setdefault(
                "reason",
                f"FD on {d}-d features needs at least D + 1 = {need} images on each side (the covariance of "
                f"N images has rank ≤ N − 1); got generated {len(g)}, reference {extra['n_ref']}",
            )
            return MetricResult(math.nan, len(g), extra)
        extra.pop("reason", None)
        mu1, s1 = fn.feature_stats(g)
        mu2, s2 = fn.feature_stats(self._ref)
        return MetricResult(fn.frechet_distance(mu1, s1, mu2, s2), len(g), extra)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "fd_mode": self.options.mode}


# -- precision / recall / density / coverage ------------------------------------------------------
@dataclass(frozen=True)
class PRDCOptions(RefSetOptions):
    """Options of the PRDC metrics: ``k`` (neighbours, default 5) and ``headline`` (which of the
    four is the value; all four are recorded)."""

    k: int = 5
    headline: Literal["precision", "recall", "density", "coverage"] = "coverage"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise MetricOptionError(f"k must be ≥ 1, got {self.k}")


class _PRDC(_RefSetMetric):
    higher_is_better = True  # type: ignore[misc]
    Options = PRDCOptions

    def compute(self) -> MetricResult:
        g = self.generated()
        k = self.options.k
        extra: dict[str, Any] = {**self._record(), "k": k, "headline": self.options.headline}
        nan4 = {m: math.nan for m in ("precision", "recall", "density", "coverage")}
        if self._ref is None or len(self._ref) < k + 1 or len(g) < k + 1:
            extra.setdefault(
                "reason",
                f"k-NN manifolds with k = {k} need at least k + 1 = {k + 1} images on each side; got "
                f"generated {len(g)}, reference {extra['n_ref']}",
            )
            return MetricResult(math.nan, len(g), {**extra, **nan4})
        extra.pop("reason", None)
        r = fn.prdc(self._ref, g, k)
        return MetricResult(r[self.options.headline], len(g), {**extra, **r})


@METRICS.register("prdc")
class PRDCInception(_PRDC):
    """Precision/recall/density/coverage on the FID Inception's 2048-d features (clean-fid
    preprocessing); the value is ``headline`` (default coverage)."""

    name = "prdc"
    feature_nets = frozenset({"inception"})

    def _embedder(self) -> tuple[fx.FeatureNet, Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
        net = fx.inception(
            str(self.options.metric_weights), self.device, self.options.metric_weights_dir, "clean"
        )
        size = int(net.extra["size"])
        return net, lambda im: fx.fid_input(im, "clean", size), fx.preprocessing_record(size, "clean")

    def _forward(self, net: fx.FeatureNet, x: torch.Tensor) -> torch.Tensor:
        return net.module(x)


@METRICS.register("prdc_dinov2")
class PRDCDinov2(_PRDC):
    """Precision/recall/density/coverage on DINOv2 ViT-L/14 CLS features (dgm-eval preprocessing)."""

    name = "prdc_dinov2"
    feature_nets = frozenset({fx.PREFERENCE_NETS})

    def _embedder(self) -> tuple[fx.FeatureNet, Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
        net = dinov2_net(str(self.options.metric_weights), self.device, self.options.metric_weights_dir)
        return net, lambda im: dinov2_input(im, "dgm_eval"), {"mode": "dgm_eval", **_PRE["dgm_eval"]}

    def _forward(self, net: fx.FeatureNet, x: torch.Tensor) -> torch.Tensor:
        return net.module(pixel_values=x).pooler_output
