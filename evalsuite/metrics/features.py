"""Feature networks of the quality metrics, their weight files, and the reference-statistics cache.

Modes (``metric_weights``):

``real``
    The published networks: Inception-v3 (torch-fidelity's TF-ported FID weights), open_clip
    (default ``ViT-L-14`` / ``openai``) and LPIPS v0.1 on torchvision's AlexNet. Default for
    ``hub``-weights runs.
``random``
    Small random networks built in code (a 4-layer conv net for FID/KID features, a 2-layer
    CLIP, LPIPS with a random AlexNet trunk ``pnet_rand=True``): offline, CPU-fast, **no quality
    evidence**. Default for ``tiny``-weights runs (tests, the demo).
``random_full``
    The real architectures with random weights (same cost as ``real``, no download): for speed
    measurements. Default for ``random``-weights runs. **No quality evidence.**

Weight files for ``real`` (air-gapped machines): put them in one folder and pass
``--metric-weights-dir DIR`` or set ``EVALSUITE_METRIC_WEIGHTS_DIR``:

================================================  ==========================================================
file in DIR                                       where to get it
================================================  ==========================================================
``weights-inception-2015-12-05-6726825d.pth``     https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/
                                                  weights-inception-2015-12-05-6726825d.pth
``alexnet-owt-7be5be79.pth``                      https://download.pytorch.org/models/alexnet-owt-7be5be79.pth
``open_clip-ViT-L-14-openai.safetensors``         ``open_clip_model.safetensors`` of the Hugging Face repo
                                                  ``timm/vit_large_patch14_clip_224.openai`` (renamed); for
                                                  another CLIP model: ``open_clip-<MODEL>-<PRETRAINED>.safetensors``
================================================  ==========================================================

Without the folder, files are also found in the torch hub cache (``$TORCH_HOME/hub/checkpoints``)
and, for CLIP, in the Hugging Face cache; when none has them and the hub is reachable (no
``HF_HUB_OFFLINE``), they are downloaded there. ``.pth`` files are read with
``torch.load(weights_only=True)``; a ``.safetensors`` file of the same stem is preferred.
LPIPS' linear heads ship inside the ``lpips`` package.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

MODES = ("real", "random", "random_full")
ENV_DIR = "EVALSUITE_METRIC_WEIGHTS_DIR"
ENV_CACHE = "EVALSUITE_CACHE_DIR"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE
DEFAULT_CLIP = ("ViT-L-14", "openai")


class MetricWeightsError(FileNotFoundError):
    """A feature-network weight file that cannot be found; the message names the file and the fix."""


def default_mode(policy: str) -> str:
    """``metric_weights`` mode for a generation weights policy: tiny → random, random → random_full, hub → real."""
    return {"tiny": "random", "random": "random_full"}.get(policy, "real")


def weights_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The metric weights folder: ``explicit``, else ``$EVALSUITE_METRIC_WEIGHTS_DIR``, else ``None``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else None


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: nothing may be downloaded."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def cache_dir() -> Path:
    """User cache folder for reference statistics: ``$EVALSUITE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/evalsuite``, else ``~/.cache/evalsuite`` (never inside the package)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "evalsuite"


def clip_file(model: str, pretrained: str) -> str:
    """File name of an open_clip checkpoint in the metric weights folder."""
    return f"open_clip-{model}-{pretrained}.safetensors"


def _hub_checkpoint(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _missing(
    file: str, where: str, wdir: Path | None, why: str = "HF_HUB_OFFLINE is set"
) -> MetricWeightsError:
    d = f"--metric-weights-dir {wdir}" if wdir else f"--metric-weights-dir DIR (or ${ENV_DIR})"
    src = _SOURCES.get(file, "the Hugging Face repo named in docs/metrics.md")
    return MetricWeightsError(
        f"metric weights file {file!r} not found ({where}) and {why}: download it on a connected "
        f"machine ({src}) into a folder and pass {d}; or score with --metric-weights random (no quality evidence)"
    )


_SOURCES = {INCEPTION_FILE: INCEPTION_URL, ALEXNET_FILE: ALEXNET_URL}


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url``'s host answers within ``timeout`` seconds (a HEAD request; any HTTP status counts)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True
    except Exception:  # noqa: BLE001 - DNS failure, refused, timeout: unreachable
        return False


def _find(file: str, wdir: Path | None) -> Path | None:
    cands: list[Path] = []
    stem = Path(file).stem
    if wdir is not None:
        cands += [wdir / f"{stem}.safetensors", wdir / file]
    cands += [_hub_checkpoint(file)]
    return next((c for c in cands if c.is_file()), None)


def _real_state(file: str, url: str, wdir: str | os.PathLike[str] | None) -> dict[str, torch.Tensor]:
    """The state dict of ``file``: from the metric weights dir / caches, else downloaded from ``url``
    (``weights_only=True``).

    Raises:
        MetricWeightsError: the file is not found and the hub is offline.
    """
    d = weights_dir(wdir)
    path = _find(file, d)
    if path is not None:
        return _load_state(path)
    if offline():
        raise _missing(file, str(d), d)
    return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)


def _find_clip(model: str, pretrained: str, wdir: Path | None) -> Path | None:
    if wdir is not None and (wdir / clip_file(model, pretrained)).is_file():
        return wdir / clip_file(model, pretrained)
    import open_clip

    hub = open_clip.get_pretrained_cfg(model, pretrained).get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            got = try_to_load_from_cache(hub.rstrip("/"), "open_clip_model.safetensors")
            if isinstance(got, str):
                return Path(got)
        except Exception:  # noqa: BLE001 - a broken cache is the same as no cache
            return None
    return None


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return sd.get("state_dict", sd) if isinstance(sd, dict) else sd


def required_files(
    metric_names: Iterable[str],
    mode: str,
    wdir: str | os.PathLike[str] | None = None,
    clip_model: tuple[str, str] = DEFAULT_CLIP,
) -> list[str]:
    """Names of the weight files the given metrics need in ``real`` mode (empty otherwise)."""
    if mode != "real":
        return []
    from evalsuite.registry import METRICS

    nets: set[str] = set()
    for n in metric_names:
        nets |= set(getattr(METRICS.get(n), "feature_nets", frozenset()))
    files = []
    if "inception" in nets:
        files.append(INCEPTION_FILE)
    if "lpips" in nets:
        files.append(ALEXNET_FILE)
    if "clip" in nets:
        files.append(clip_file(*clip_model))
    return files


def check_metric_weights(
    metric_names: Iterable[str],
    mode: str,
    wdir: str | os.PathLike[str] | None = None,
    clip_model: tuple[str, str] = DEFAULT_CLIP,
) -> None:
    """Fail early (before any generation) when a ``real`` feature network cannot be loaded: a weight
    file is in neither the metric weights folder nor a cache, and downloads are off
    (``HF_HUB_OFFLINE``) or its host does not answer within 5 s.

    Raises:
        ValueError: for an unknown ``mode``.
        MetricWeightsError: one line naming the missing file and how to provide it.
    """
    if mode not in MODES:
        raise ValueError(f"metric_weights must be one of {', '.join(MODES)}, got {mode!r}")
    d = weights_dir(wdir)
    for f in required_files(metric_names, mode, d, clip_model):
        if f.startswith("open_clip-"):
            found = _find_clip(*clip_model, d)
            where = f"{d or 'no metric weights dir'}, Hugging Face cache"
            url = "https://huggingface.co"
        else:
            found = _find(f, d)
            where = f"{d or 'no metric weights dir'}, {_hub_checkpoint(f).parent}"
            url = _SOURCES[f]
        if found is None:
            if offline():
                raise _missing(f, where, d)
            if not _reachable(url):
                raise _missing(f, where, d, why=f"{url.split('/')[2]} is unreachable")


# ---------------------------------------------------------------------------------------------
# networks
_NETS: dict[tuple[Any, ...], Any] = {}


@dataclass
class FeatureNet:
    """A loaded feature network plus the facts recorded with its numbers.

    Attributes:
        module: the network (eval mode, no grad).
        id: identity string (architecture, weights, mode) — part of reference-statistics cache keys.
        quality_evidence: False for random weights.
        extra: anything the metric needs (tokenizer, mean/std, input size...).
    """

    module: nn.Module
    id: str
    quality_evidence: bool
    extra: dict[str, Any]


class TinyConvFeatures(nn.Module):
    """Small random conv net (64-d features) standing in for Inception in ``random`` mode.

    Input: uint8 (N, 3, H, W); the same scaling as Inception ((x − 128) / 128). Weights come from
    a fixed seed, so features — and cached reference statistics — are reproducible.
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        chans = [3, 16, 32, 64, dim]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans, chans[1:], strict=False)
        )
        with torch.no_grad():
            for c in self.convs:
                conv: Any = c
                conv.weight.copy_(
                    torch.randn(conv.weight.shape, generator=g) * (2.0 / (9 * conv.in_channels)) ** 0.5
                )
                conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - 128) / 128
        for c in self.convs:
            x = F.relu(c(x))
        return x.mean(dim=(2, 3))


class _InceptionPool(nn.Module):
    """torch-fidelity's FID Inception-v3 returning the 2048-d pool features for uint8 input."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return (out[0] if isinstance(out, tuple | list) else out).reshape(x.shape[0], -1)


def _build_inception(state: dict[str, torch.Tensor] | None) -> nn.Module:
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    class _Quiet(fe.FeatureExtractorInceptionV3):  # type: ignore[misc]
        def load_state_dict(self, sd: Any, strict: bool = True, assign: bool = False) -> Any:
            if sd is None:  # random_full: keep the random initialisation
                return None
            return super().load_state_dict(sd, strict=strict)

    # torch-fidelity would fetch (or torch.load(weights_only=False)) the file itself; hand it the
    # state dict we read safely instead.
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: state):
        net = _Quiet("inception-v3-compat", ["2048"])
    return _InceptionPool(net)


def inception(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> FeatureNet:
    """The FID/KID feature network for ``mode`` (see module doc), cached per process.

    Raises:
        MetricWeightsError: ``real`` mode, offline, file not found.
    """
    key = ("inception", mode, str(device), str(weights_dir(wdir)))
    if key not in _NETS:
        if mode == "random":
            net: nn.Module = TinyConvFeatures()
            fid = "tiny-conv-64d-seed0"
            size, dim = 64, 64
        else:
            state = None
            if mode == "real":
                state = _real_state(INCEPTION_FILE, INCEPTION_URL, wdir)
            else:
                torch.manual_seed(0)
            net = _build_inception(state)
            fid = "inception-v3-compat-torch-fidelity" + ("" if mode == "real" else "-random")
            size, dim = 299, 2048
        net = net.to(device).eval().requires_grad_(False)
        _NETS[key] = FeatureNet(net, fid, mode == "real", {"size": size, "dim": dim})
    return _NETS[key]


def lpips_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> FeatureNet:
    """LPIPS v0.1 on AlexNet: real trunk from ``alexnet-owt-7be5be79.pth`` or a random trunk
    (``pnet_rand=True``; ``random`` and ``random_full`` are the same, AlexNet is small).

    Raises:
        MetricWeightsError: ``real`` mode, offline, file not found.
    """
    import lpips

    key = ("lpips", "real" if mode == "real" else "random", str(device), str(weights_dir(wdir)))
    if key not in _NETS:
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # torchvision's 'pretrained' deprecation inside lpips
            net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        if mode == "real":
            sd = _real_state(ALEXNET_FILE, ALEXNET_URL, wdir)
            mapped = {}
            for k in net.net.state_dict():
                _, idx, param = k.split(".")  # sliceK.I.weight ← features.I.weight
                mapped[k] = sd[f"features.{idx}.{param}"]
            net.net.load_state_dict(mapped)
        net = net.to(device).eval().requires_grad_(False)
        _NETS[key] = FeatureNet(
            net, "lpips-v0.1-alex" + ("" if mode == "real" else "-random-trunk"), mode == "real", {}
        )
    return _NETS[key]


def clip_net(
    mode: str,
    device: torch.device,
    wdir: str | os.PathLike[str] | None = None,
    model: str = DEFAULT_CLIP[0],
    pretrained: str = DEFAULT_CLIP[1],
) -> FeatureNet:
    """An open_clip model and its tokenizer. ``random``: a 2-layer, 64-wide CLIP built in code;
    ``random_full``: ``model`` with random weights; ``real``: ``model``/``pretrained``.

    ``extra`` holds ``tokenizer``, ``context_length``, ``size`` (input side), ``mean``, ``std``.

    Raises:
        MetricWeightsError: ``real`` mode, offline, file not found.
    """
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    key = ("clip", mode, model, pretrained, str(device), str(weights_dir(wdir)))
    if key not in _NETS:
        torch.manual_seed(0)
        if mode == "random":
            from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

            net: nn.Module = CLIP(
                embed_dim=64,
                vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=16, image_size=64),
                text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
            )
            tok = open_clip.tokenizer.SimpleTokenizer()
            cid, size = "open_clip-tiny-random", 64
        else:
            pcfg = open_clip.get_pretrained_cfg(model, pretrained)
            logging.disable(
                logging.WARNING
            )  # open_clip logs to root ("initialized randomly": weights follow)
            try:
                net = open_clip.create_model(
                    model,
                    pretrained=None,
                    load_weights=False,
                    force_quick_gelu=bool(pcfg.get("quick_gelu", False)),
                )
                tok = open_clip.get_tokenizer(model)
            finally:
                logging.disable(logging.NOTSET)
            cid = f"open_clip-{model}-" + (pretrained if mode == "real" else "random")
            if mode == "real":
                d = weights_dir(wdir)
                path = _find_clip(model, pretrained, d)
                if path is None:
                    if offline():
                        raise _missing(clip_file(model, pretrained), f"{d}, Hugging Face cache", d)
                    from huggingface_hub import hf_hub_download

                    hub = open_clip.get_pretrained_cfg(model, pretrained).get("hf_hub", "").rstrip("/")
                    if not hub:
                        raise MetricWeightsError(
                            f"open_clip has no hub weights for {model}/{pretrained}; "
                            f"put {clip_file(model, pretrained)} into --metric-weights-dir"
                        )
                    path = Path(hf_hub_download(hub, "open_clip_model.safetensors"))
                net.load_state_dict(_load_state(path))
            vis = getattr(net, "visual", None)
            img_size = getattr(vis, "image_size", 224)
            size = int(img_size[0] if isinstance(img_size, tuple | list) else img_size)
        net = net.to(device).eval().requires_grad_(False)
        ctx = int(getattr(tok, "context_length", 77) or 77)
        pc = open_clip.get_pretrained_cfg(model, pretrained) if mode != "random" else {}
        _NETS[key] = FeatureNet(
            net,
            cid,
            mode == "real",
            {
                "tokenizer": tok,
                "context_length": ctx,
                "size": size,
                "mean": tuple(pc.get("mean") or OPENAI_DATASET_MEAN),
                "std": tuple(pc.get("std") or OPENAI_DATASET_STD),
            },
        )
    return _NETS[key]


def count_truncated(tokenizer: Any, prompts: Iterable[str], context_length: int) -> list[bool]:
    """For each prompt, whether the tokenizer drops tokens: BPE tokens + start + end > ``context_length``."""
    enc = getattr(tokenizer, "encode", None)
    out = []
    for p in prompts:
        if enc is not None:
            n = len(enc(p)) + 2
        else:  # HF-style tokenizers
            n = len(tokenizer.tokenizer(p)["input_ids"])
        out.append(n > context_length)
    return out


# ---------------------------------------------------------------------------------------------
# preprocessing and reference statistics
def inception_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float (N, 3, H, W) in [0, 1] → uint8 (N, 3, size, size): bicubic with antialias (torch,
    float32), clamp, ×255, round. Applied identically to generated and reference images."""
    x = images.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def preprocessing_record(size: int) -> dict[str, Any]:
    """What :func:`inception_input` does, as recorded beside FID/KID."""
    return {
        "input": "8-bit PNG → float32 [0,1]",
        "resize": f"bicubic antialias (torch) to {size}x{size}",
        "quantise": "round(x·255) → uint8",
        "network_input": "uint8, scaled (x−128)/128 inside the network",
    }


def stats_key(fingerprint: str, what: str, net_id: str, preprocessing: dict[str, Any]) -> str:
    """Cache key of reference features: sha256 of dataset fingerprint, which images, network, preprocessing."""
    blob = json.dumps({"fp": fingerprint, "what": what, "net": net_id, "pre": preprocessing}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def load_reference_features(key: str) -> np.ndarray | None:
    """Cached (N, D) reference features for ``key`` or ``None`` (``.npz``, read with ``allow_pickle=False``)."""
    path = cache_dir() / "reference-features" / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["features"], np.float64)
    except Exception as exc:  # noqa: BLE001 - a corrupt cache entry is recomputed, not fatal
        log.warning("ignoring unreadable reference cache %s: %s", path, exc)
        return None


def save_reference_features(key: str, feats: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write reference features (+ JSON metadata) atomically under :func:`cache_dir`."""
    folder = cache_dir() / "reference-features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    tmp = folder / f".{key}.{os.getpid()}.tmp.npz"
    np.savez(tmp, features=feats.astype(np.float64), meta=np.array(json.dumps(meta, default=str)))
    os.replace(tmp, path)
    return path
