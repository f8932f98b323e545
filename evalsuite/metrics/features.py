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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.errors import UsageError, WeightsError
from evalsuite.vocab import FID_MODES, METRIC_WEIGHT_MODES, default_metric_weights

log = logging.getLogger(__name__)

MODES = METRIC_WEIGHT_MODES  # the names other modules import from here
ENV_DIR = "EVALSUITE_METRIC_WEIGHTS_DIR"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
PT_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
PT_INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PT_INCEPTION_FILE
)
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE
DEFAULT_CLIP = ("ViT-L-14", "openai")
#: ``feature_nets`` entry of the human-preference metrics: their files are listed (and checked) by
#: :mod:`evalsuite.metrics.preference_nets`, imported only when such a metric is asked for.
PREFERENCE_NETS = "preference"


class MetricWeightsError(UsageError, WeightsError, FileNotFoundError):
    """A feature-network weight file that cannot be found; the message names the file and the fix."""


def default_mode(policy: str) -> str:
    """``metric_weights`` mode for a generation weights policy: tiny → random, random → random_full, hub → real."""
    return default_metric_weights(policy)


def weights_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The metric weights folder: ``explicit``, else ``$EVALSUITE_METRIC_WEIGHTS_DIR``, else ``None``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else None


def offline() -> bool:
    """True when the Hugging Face hub is offline (``HF_HUB_OFFLINE``, read the way huggingface_hub
    reads it, at call time): nothing may be downloaded."""
    from huggingface_hub import is_offline_mode

    return bool(is_offline_mode())


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


_SOURCES = {INCEPTION_FILE: INCEPTION_URL, PT_INCEPTION_FILE: PT_INCEPTION_URL, ALEXNET_FILE: ALEXNET_URL}


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


def _clip_models(cls: Any, opts: dict[str, Any], default: tuple[str, str]) -> tuple[str, str]:
    base = getattr(cls, "default_clip", default)
    return (str(opts.get("model", base[0])), str(opts.get("pretrained", base[1])))


def required_weights(
    metric_names: Iterable[str],
    mode: str,
    clip_model: tuple[str, str] = DEFAULT_CLIP,
    metric_options: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[str, Any]]:
    """``(file, what)`` of every weight file the metrics need in ``real`` mode; ``what`` is
    ``("clip", model, pretrained)`` for CLIP checkpoints, else the download URL."""
    if mode != "real":
        return []
    from evalsuite.registry import METRICS

    out: list[tuple[str, Any]] = []
    for n in metric_names:
        cls = METRICS.get(n)
        opts = (metric_options or {}).get(n, {})
        nets = set(getattr(cls, "feature_nets", frozenset()))
        if "inception" in nets:
            f = inception_file(str(opts.get("mode", "clean")))
            out.append((f, _SOURCES[f]))
        if "lpips" in nets:
            out.append((ALEXNET_FILE, ALEXNET_URL))
        if "clip" in nets:
            m, p = _clip_models(cls, opts, clip_model)
            out.append((clip_file(m, p), ("clip", m, p)))
    seen: set[str] = set()
    return [x for x in out if not (x[0] in seen or seen.add(x[0]))]  # type: ignore[func-returns-value]


def required_files(
    metric_names: Iterable[str],
    mode: str,
    wdir: str | os.PathLike[str] | None = None,
    clip_model: tuple[str, str] = DEFAULT_CLIP,
    metric_options: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Names of the weight files the given metrics need in ``real`` mode (empty otherwise)."""
    return [f for f, _ in required_weights(metric_names, mode, clip_model, metric_options)]


def check_metric_weights(
    metric_names: Iterable[str],
    mode: str,
    wdir: str | os.PathLike[str] | None = None,
    clip_model: tuple[str, str] = DEFAULT_CLIP,
    metric_options: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Fail early (before any generation) when a ``real`` feature network cannot be loaded: a weight
    file is in neither the metric weights folder nor a cache, and downloads are off
    (``HF_HUB_OFFLINE``) or its host does not answer within 5 s. The human-preference metrics'
    files are checked by :func:`evalsuite.metrics.preference_nets.check_files` (also verifying a
    pinned sha256 of a file present).

    Raises:
        ValueError: for an unknown ``mode``.
        MetricWeightsError: one line naming the missing file and how to provide it.
    """
    if mode not in MODES:
        raise ValueError(f"metric_weights must be one of {', '.join(MODES)}, got {mode!r}")
    names = list(metric_names)
    _check_available(names, metric_options)
    d = weights_dir(wdir)
    for f, what in required_weights(names, mode, clip_model, metric_options):
        if isinstance(what, tuple):
            found = _find_clip(what[1], what[2], d)
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
    _check_preference_weights(names, mode, wdir)


def _check_available(names: list[str], metric_options: dict[str, dict[str, Any]] | None) -> None:
    """Each metric class's own ``check_available(options)`` classmethod, where it has one (the OCR
    metrics: is their engine's package installed), whatever the weights mode."""
    from evalsuite.registry import METRICS

    for n in names:
        check = getattr(METRICS.get(n), "check_available", None)
        if check is not None:
            check((metric_options or {}).get(n, {}))


def _check_preference_weights(names: list[str], mode: str, wdir: str | os.PathLike[str] | None) -> None:
    """The preference metrics' files (:func:`evalsuite.metrics.preference_nets.check_files`): offline,
    a missing one raises naming the file and its fetch command; online, its host must answer."""
    if mode != "real":
        return
    from evalsuite.registry import METRICS

    pref = [n for n in names if PREFERENCE_NETS in getattr(METRICS.get(n), "feature_nets", frozenset())]
    if not pref:
        return
    from evalsuite.metrics import preference_nets as pn

    files = {wf.path: wf for wfs in pn.WEIGHT_FILES.values() for wf in wfs}
    d = weights_dir(wdir)
    for f in pn.check_files(pref, mode, wdir):  # missing locally; downloaded when scoring
        url = files[f].url or "https://huggingface.co"
        if not _reachable(url):
            where = f"{d or 'no metric weights dir'}, {_hub_checkpoint('x').parent}, Hugging Face cache"
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

    Input: the normalised float tensor the FID mode's preprocessing produces (:func:`fid_input`),
    like the Inception. Weights come from a fixed seed, so features — and cached reference
    statistics — are reproducible.
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
        x = x.float()
        for c in self.convs:
            x = F.relu(c(x))
        return x.mean(dim=(2, 3))


_INCEPTION_LAYERS = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "MaxPool_1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "MaxPool_2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)


class InceptionFeatures(nn.Module):
    """The FID Inception-v3 (the 2015-12-05 TensorFlow graph as ported by torch-fidelity) from its
    first convolution to the 2048-d average pool, for an already resized and normalised float
    input (N, 3, 299, 299): the resize and the scaling belong to the FID mode (:func:`fid_input`).

    ``inner`` is torch-fidelity's ``FeatureExtractorInceptionV3``; its state-dict keys are
    torchvision's, so torch-fidelity's weight file and pytorch-fid's ``pt_inception`` file both load.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in _INCEPTION_LAYERS:
            x = getattr(self.inner, name)(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


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
    return InceptionFeatures(net)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes (in name order): the identity of
    loaded weights, whatever file format they came from."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def inception_file(fid_mode: str) -> str:
    """Weight file of the FID Inception for ``fid_mode``: pytorch-fid's for ``legacy_pytorch``,
    torch-fidelity's (the same TF graph as clean-fid's TorchScript model) otherwise."""
    return PT_INCEPTION_FILE if fid_mode == "legacy_pytorch" else INCEPTION_FILE


def inception_dim(mode: str) -> int:
    """Feature dimension of the FID network for a ``metric_weights`` mode (64 random, else 2048)."""
    return 64 if mode == "random" else 2048


def inception(
    mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None, fid_mode: str = "clean"
) -> FeatureNet:
    """The FID/KID feature network for ``mode`` (see module doc) and ``fid_mode``, cached per process.

    Raises:
        MetricWeightsError: ``real`` mode, offline, file not found.
    """
    if fid_mode not in FID_MODES:
        raise ValueError(f"FID mode must be one of {', '.join(FID_MODES)}, got {fid_mode!r}")
    file = inception_file(fid_mode)
    key = ("inception", mode, file if mode == "real" else "", str(device), str(weights_dir(wdir)))
    if key not in _NETS:
        if mode == "random":
            net: nn.Module = TinyConvFeatures()
            fid = "tiny-conv-64d-seed0"
            size = 64
        else:
            state = None
            if mode == "real":
                url = PT_INCEPTION_URL if file == PT_INCEPTION_FILE else INCEPTION_URL
                state = _real_state(file, url, wdir)
            else:
                torch.manual_seed(0)
            net = _build_inception(state)
            if mode == "real":
                # the weights' digest is part of the id, and so of every reference-statistics cache
                # key: a replaced or damaged file with the same name never reuses stale features
                fid = (
                    "inception-v3-2015-12-05-"
                    + ("pytorch-fid" if file == PT_INCEPTION_FILE else "torch-fidelity")
                    + f"@{state_digest(state or {})[:16]}"
                )
            else:
                fid = "inception-v3-2015-12-05-random"
            size = 299
        net = net.to(device).eval().requires_grad_(False)
        _NETS[key] = FeatureNet(net, fid, mode == "real", {"size": size, "dim": inception_dim(mode)})
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
def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float (N, 3, H, W) in [0, 1] → uint8: round(x·255). Exact for images read from 8-bit files."""
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8)


def _pil_bicubic_float(u8: torch.Tensor, size: int) -> torch.Tensor:
    """clean-fid's "clean" resize: each channel as a 32-bit float PIL image, bicubic to size², clipped to [0, 255]."""
    from PIL import Image

    arr = u8.permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty((arr.shape[0], 3, size, size), np.float32)
    for i, img in enumerate(arr):
        for c in range(3):
            ch = Image.fromarray(np.ascontiguousarray(img[:, :, c]).astype(np.float32))
            out[i, c] = np.asarray(ch.resize((size, size), resample=Image.Resampling.BICUBIC)).clip(0, 255)
    return torch.from_numpy(out)


def fid_input(images: torch.Tensor, fid_mode: str, size: int) -> torch.Tensor:
    """The network input of an FID mode: float (N, 3, H, W) in [0, 1] (8-bit images) → normalised
    float32 (N, 3, size, size). Generated and reference images go through the same function.

    ``clean`` (clean-fid)
        uint8 → per channel, 32-bit float PIL image, PIL bicubic to size² → clip [0, 255] →
        (x − 128)/128 (no quantisation after the resize).
    ``legacy_pytorch`` (pytorch-fid; MLPerf's SDXL check)
        uint8/255 → ``F.interpolate(bilinear, align_corners=False)`` (no antialias) → 2x − 1.
    ``legacy_tensorflow`` (torch-fidelity; the original TF FID)
        uint8 as float → torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` → (x − 128)/128.
    """
    u8 = to_uint8(images)
    if fid_mode == "clean":
        return (_pil_bicubic_float(u8, size).to(images.device) - 128) / 128
    if fid_mode == "legacy_pytorch":
        x = F.interpolate(u8.float() / 255, size=(size, size), mode="bilinear", align_corners=False)
        return 2 * x - 1
    if fid_mode == "legacy_tensorflow":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(u8.float(), size=(size, size), align_corners=False)
        return (x - 128) / 128
    raise ValueError(f"FID mode must be one of {', '.join(FID_MODES)}, got {fid_mode!r}")


_FID_RECORDS = {
    "clean": {
        "compatible_with": "clean-fid mode='clean'",
        "resize": "PIL bicubic on 32-bit float channels to {s}x{s}, clip [0,255], no quantisation",
        "network_input": "(x−128)/128",
    },
    "legacy_pytorch": {
        "compatible_with": "pytorch-fid (MLPerf SDXL accuracy check)",
        "resize": "torch bilinear (align_corners=False, no antialias) to {s}x{s} on x/255",
        "network_input": "2x−1",
    },
    "legacy_tensorflow": {
        "compatible_with": "torch-fidelity / original TensorFlow FID",
        "resize": "torch-fidelity's TF1.x-compatible bilinear to {s}x{s} on uint8 values",
        "network_input": "(x−128)/128",
    },
}


def preprocessing_record(size: int, fid_mode: str = "clean") -> dict[str, Any]:
    """What :func:`fid_input` does for ``fid_mode``, as recorded beside FID/KID (and in cache keys)."""
    r = _FID_RECORDS[fid_mode]
    return {
        "mode": fid_mode,
        "input": "8-bit image → uint8",
        "resize": r["resize"].format(s=size),
        "network_input": r["network_input"],
        "compatible_with": r["compatible_with"],
    }


def stats_key(fingerprint: str, what: str, net_id: str, preprocessing: dict[str, Any]) -> str:
    """Cache key of reference features: sha256 of dataset fingerprint, which images, network, preprocessing."""
    blob = json.dumps({"fp": fingerprint, "what": what, "net": net_id, "pre": preprocessing}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _reference_folder() -> Path | None:
    from evalsuite.paths import cache_dir

    return cache_dir("reference-features")


def cached_reference_features(
    fingerprint: str, what: str, net_id: str, preprocessing: dict[str, Any], compute: Callable[[], np.ndarray]
) -> tuple[np.ndarray, str]:
    """Reference features from the cache (:func:`stats_key` of the four parts), else ``compute()``d
    and cached; returns ``(features, key)``. The one cache path of FID/KID and the distribution
    metrics."""
    key = stats_key(fingerprint, what, net_id, preprocessing)
    feats = load_reference_features(key)
    if feats is None:
        feats = compute()
        save_reference_features(
            key, feats, {"fingerprint": fingerprint, "what": what, "net": net_id, "pre": preprocessing}
        )
    return feats, key


def load_reference_features(key: str) -> np.ndarray | None:
    """Cached (N, D) reference features for ``key`` or ``None`` (``.npz``, read with ``allow_pickle=False``;
    also ``None`` when the cache root cannot be used — :func:`evalsuite.paths.cache_dir` warned)."""
    folder = _reference_folder()
    if folder is None:
        return None
    path = folder / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["features"], np.float64)
    except Exception as exc:  # noqa: BLE001 - a corrupt cache entry is recomputed, not fatal
        log.warning("ignoring unreadable reference cache %s: %s", path, exc)
        return None


def save_reference_features(key: str, feats: np.ndarray, meta: dict[str, Any]) -> Path | None:
    """Write reference features (+ JSON metadata) atomically under the cache root's
    ``reference-features/``; ``None`` (with a warning) when the cache cannot be written — the
    caller goes on with the features it computed."""
    import io

    from evalsuite.paths import atomic_write

    folder = _reference_folder()
    if folder is None:
        return None
    buf = io.BytesIO()
    np.savez(buf, features=feats.astype(np.float64), meta=np.array(json.dumps(meta, default=str)))
    try:
        return atomic_write(folder / f"{key}.npz", buf.getvalue())
    except OSError as exc:
        log.warning("cannot write the reference cache in %s (%s); continuing without caching", folder, exc)
        return None
