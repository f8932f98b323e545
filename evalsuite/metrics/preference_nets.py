"""Human-preference networks: LAION aesthetic v2, PickScore v1, HPS v2.1 and ImageReward v1.0.

Networks, their weight files, their preprocessing and pure scoring functions (float images in
[0, 1] in → one score per image out). Nothing here depends on the metric contract
(:mod:`evalsuite.metrics.base`); the registered metrics are thin wrappers in
:mod:`evalsuite.metrics.preference`.

The architectures are built from open_clip and transformers (no run-time dependency on the
``image-reward`` / ``hpsv2`` packages); every published file is read with safetensors or
``torch.load(weights_only=True)``. Modes as for the other feature networks
(:mod:`evalsuite.metrics.features`): ``real`` (published weights, found in the metric weights
folder ``--metric-weights-dir`` / ``$EVALSUITE_METRIC_WEIGHTS_DIR``), ``random`` (tiny random
networks, CPU tests) and ``random_full`` (full-size architectures with random weights, for cost
measurements). Random weights carry **no quality evidence**.

Preprocessing runs on the tensors (on the scoring device) and follows the published pipelines:
bicubic resize with antialias, crop/pad, mean/std. Where the reference resizes in PIL (aesthetic,
PickScore, ImageReward) the result is rounded to 8-bit levels as PIL's is, but it is not
bit-identical to PIL (different bicubic arithmetic on 8-bit data): tests bound the difference. HPS
v2 resizes float tensors with torch, which is reproduced exactly.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.metrics import features as fx

log = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# ImageReward v1.0 normalises the MLP output with these (ImageReward.py of THUDM/ImageReward).
IMAGEREWARD_MEAN = 0.16717362830052426
IMAGEREWARD_STD = 1.0333394966054072


# ---------------------------------------------------------------------------------------------
# weight files
@dataclass(frozen=True)
class WeightFile:
    """A published weight file.

    Attributes:
        path: where it lies inside the metric weights folder (what ``fetch`` produces there).
        source: hub repo id (``owner/name``) or GitHub repository, and the file in it.
        sha256: pinned digest, or ``None`` where no trustworthy published digest could be read
            (then the file is loaded unverified and its digest is recorded with the numbers).
        fetch: the command that puts the file into ``DIR`` on a connected machine.
        hub: ``(repo_id, filename)`` looked up in (and downloaded to) the Hugging Face cache.
        url: direct download URL (into the torch hub checkpoints folder) for files not on a hub.
    """

    path: str
    source: str
    sha256: str | None
    fetch: str
    hub: tuple[str, str] | None = None
    url: str | None = None


AESTHETIC_CLIP = ("ViT-L-14", "openai")  # open_clip model and pretrained tag under the aesthetic head
AESTHETIC_COMMIT = "6934dd81792f086e613a121dbce43082cb8be85e"
AESTHETIC_URL = (
    "https://raw.githubusercontent.com/christophschuhmann/improved-aesthetic-predictor/"
    f"{AESTHETIC_COMMIT}/sac%2Blogos%2Bava1-l14-linearMSE.pth"
)
AESTHETIC_FILE = WeightFile(
    path="sac+logos+ava1-l14-linearMSE.pth",
    source=f"github.com/christophschuhmann/improved-aesthetic-predictor@{AESTHETIC_COMMIT}",
    # sha256 of the git blob at that commit (3,714,759 bytes), computed from the repository.
    sha256="21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0",
    fetch=f"curl -L -o DIR/sac+logos+ava1-l14-linearMSE.pth {AESTHETIC_URL}",
    url=AESTHETIC_URL,
)
# The hub digests below are the Git LFS oids (sha256 of the file's bytes) that the Hugging Face
# pages of the files publish; each comment names the page.
PICKSCORE_FILE = WeightFile(
    path="PickScore_v1/model.safetensors",
    source="huggingface.co/yuvalkirstain/PickScore_v1 (model.safetensors)",
    # huggingface.co/yuvalkirstain/PickScore_v1/blob/a4e4367c6dfa7288a00c550414478f865b875800/
    # model.safetensors ("Git LFS Details", 3.94 GB; added in commit dc2ed37)
    sha256="ef31ef6fc5ff4d9bb90dd232df4e145887ba62c5a03aa2841415f8c25f18d52e",
    fetch="hf download yuvalkirstain/PickScore_v1 model.safetensors --local-dir DIR/PickScore_v1",
    hub=("yuvalkirstain/PickScore_v1", "model.safetensors"),
)
HPS_FILE = WeightFile(
    path="HPS_v2.1_compressed.pt",
    source="huggingface.co/xswu/HPSv2 (HPS_v2.1_compressed.pt)",
    # huggingface.co/xswu/HPSv2/commit/697403c78157020a1ae59d23f111aa58ced35b0a (the LFS pointer
    # the file was added with: size 1972490005)
    sha256="c57a38fb4a2f7e7c15bf00da2ea377cdf165448b4dd1052a484c215a998c9837",
    fetch="hf download xswu/HPSv2 HPS_v2.1_compressed.pt --local-dir DIR",
    hub=("xswu/HPSv2", "HPS_v2.1_compressed.pt"),
)
IMAGEREWARD_FILE = WeightFile(
    path="ImageReward.pt",
    source="huggingface.co/THUDM/ImageReward (ImageReward.pt)",
    # huggingface.co/THUDM/ImageReward/blob/main/ImageReward.pt ("Git LFS Details", 1.79 GB;
    # commit 7a9e21f)
    sha256="d71dc8d4912bc633c06ab8ef1ef6a81e8199d4369f14b47b29baf1d19de561f6",
    fetch="hf download THUDM/ImageReward ImageReward.pt --local-dir DIR",
    hub=("THUDM/ImageReward", "ImageReward.pt"),
)
# No sha256: vocab.txt is a plain git file (no LFS pointer), and no published sha256 of it was
# found; a digest is never guessed. The digest of the file actually loaded is recorded.
BERT_VOCAB_FILE = WeightFile(
    path="bert-base-uncased/vocab.txt",
    source="huggingface.co/google-bert/bert-base-uncased (vocab.txt; ImageReward's tokenizer)",
    sha256=None,
    fetch="hf download google-bert/bert-base-uncased vocab.txt --local-dir DIR/bert-base-uncased",
    hub=("google-bert/bert-base-uncased", "vocab.txt"),
)
WEIGHT_FILES = {
    "aesthetic": (AESTHETIC_FILE,),
    "pickscore": (PICKSCORE_FILE,),
    "hpsv21": (HPS_FILE,),
    "imagereward": (IMAGEREWARD_FILE, BERT_VOCAB_FILE),
}
for _wf in (AESTHETIC_FILE, PICKSCORE_FILE, HPS_FILE, IMAGEREWARD_FILE, BERT_VOCAB_FILE):
    fx._SOURCES[_wf.path] = f"{_wf.source}; command: {_wf.fetch}"  # names the fetch command in errors

_VERIFIED: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of ``path`` (memoised per path, size and mtime within the process)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def locate(wf: WeightFile, wdir: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Path of ``wf``: the metric weights folder, else the torch hub checkpoints folder, else the
    Hugging Face cache. When none has it, ``download`` is true and ``HF_HUB_OFFLINE`` is not set,
    it is downloaded (hub files into the Hugging Face cache, ``url`` files into the torch hub
    checkpoints folder). A pinned sha256 is checked on every file found or downloaded.

    Raises:
        MetricWeightsError: not found and ``HF_HUB_OFFLINE`` is set (or the download failed); the
            message names the file and the command that fetches it.
        ValueError: the file's sha256 differs from the pinned one.
    """
    d = fx.weights_dir(wdir)
    cands = [d / wf.path] if d is not None else []
    cands.append(fx._hub_checkpoint(Path(wf.path).name))
    path = next((c for c in cands if c.is_file()), None)
    if path is None and wf.hub is not None:
        try:
            from huggingface_hub import try_to_load_from_cache

            got = try_to_load_from_cache(*wf.hub)
            path = Path(got) if isinstance(got, str) else None
        except Exception:  # noqa: BLE001 - a broken cache is the same as no cache
            path = None
    if path is None:
        where = f"{d or 'no metric weights dir'}, {fx._hub_checkpoint('x').parent}, Hugging Face cache"
        if fx.offline() or not download or (wf.hub is None and wf.url is None):
            why = "HF_HUB_OFFLINE is set" if fx.offline() else "it is not downloaded yet"
            raise fx._missing(wf.path, where, d, why=why)
        try:
            if wf.hub is not None:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(*wf.hub))
            else:
                assert wf.url is not None
                path = fx._hub_checkpoint(Path(wf.path).name)
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(wf.url, str(path), hash_prefix=wf.sha256)
        except Exception as exc:  # noqa: BLE001 - any download failure: say what to fetch
            raise fx._missing(wf.path, where, d, why=f"the download failed ({exc})") from exc
    if wf.sha256 is not None:
        got_sha = file_sha256(path)
        if got_sha != wf.sha256:
            raise ValueError(
                f"metric weights file {path} has sha256 {got_sha}, expected {wf.sha256} "
                f"({wf.source}); replace it: {wf.fetch.replace('DIR', str(path.parent))}"
            )
    return path


def check_files(
    metric_names: Sequence[str], mode: str, wdir: str | os.PathLike[str] | None = None
) -> list[str]:
    """Before generation (nothing is downloaded here): the weight files that the given preference
    metrics need in ``real`` mode and that are found nowhere locally — they will be downloaded when
    scoring. Empty when ``mode`` is not ``real``.

    Raises:
        MetricWeightsError: ``HF_HUB_OFFLINE`` is set and a file is missing (the message names the
            file and the command that fetches it).
        ValueError: a file is present with the wrong sha256.
    """
    if mode != "real":
        return []
    missing: list[str] = []
    for name in metric_names:
        for wf in WEIGHT_FILES.get(name.removesuffix("_masked"), ()):
            try:
                locate(wf, wdir, download=False)
            except fx.MetricWeightsError:
                if fx.offline():
                    raise
                missing.append(wf.path)
    return sorted(set(missing))


def weights_record(wf: WeightFile, path: Path) -> dict[str, Any]:
    """What is recorded beside the numbers about a loaded weight file."""
    if wf.sha256 is not None:
        return {"file": wf.path, "sha256": wf.sha256, "sha256_verified": True}
    return {"file": wf.path, "sha256": file_sha256(path), "sha256_verified": False}


def _state(path: Path) -> dict[str, torch.Tensor]:
    sd = fx._load_state(path)  # safetensors, or torch.load(weights_only=True); unwraps "state_dict"
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}


# ---------------------------------------------------------------------------------------------
# preprocessing
def _quantise(x: torch.Tensor) -> torch.Tensor:
    """What PIL's 8-bit resize outputs (uint8): clamp to [0, 1], round to 1/255 steps."""
    return (x.clamp(0, 1) * 255).round() / 255


def resize_shortest(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) → shortest side ``size``, longer side ``int(size · long / short)`` (torchvision's
    and transformers' rule), bicubic with antialias, quantised to 8 bits."""
    h, w = x.shape[-2:]
    if h <= w:
        new = (size, int(size * w / h))
    else:
        new = (int(size * h / w), size)
    if (h, w) != new:
        x = F.interpolate(x.float(), size=new, mode="bicubic", antialias=True, align_corners=False)
    return _quantise(x)


def center_crop(x: torch.Tensor, size: int, rule: str = "round") -> torch.Tensor:
    """Centre ``size``² crop. ``rule``: ``round`` = torchvision's ``CenterCrop`` (offset
    ``int(round(margin / 2))``), ``floor`` = transformers' ``center_crop`` (``margin // 2``)."""
    h, w = x.shape[-2:]
    if rule == "round":
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    else:
        top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def resize_longest_pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """HPS v2's evaluation transform: scale so the longest side is ``size`` (new sides rounded),
    bicubic with antialias on the float image (HPS resizes the ``ToTensor`` output: no clamp, no
    8-bit rounding, unlike the PIL pipelines), then pad with black to ``size``² (left/top get
    ``pad // 2``). Equal to HPS v2's own transform under torchvision ≥ 0.17 (tensor antialias on)."""
    h, w = x.shape[-2:]
    scale = size / float(max(h, w))
    nh, nw = round(h * scale), round(w * scale)
    if (h, w) != (nh, nw):
        x = F.interpolate(x.float(), size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
    ph, pw = size - nh, size - nw
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=0.0)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


@dataclass(frozen=True)
class Preprocess:
    """A published image transform, applied to float (N, 3, H, W) images in [0, 1].

    Attributes:
        size: network input side.
        resize: ``shortest`` (resize the shortest side, centre crop) or ``longest_pad``.
        crop: centre-crop offset rule (``round``: torchvision, ``floor``: transformers).
        mean, std: normalisation.
    """

    size: int
    resize: str = "shortest"
    crop: str = "round"
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD

    def describe(self) -> str:
        if self.resize == "longest_pad":
            geo = f"float, longest side to {self.size} (bicubic antialias), black pad to {self.size}²"
        else:
            geo = (
                f"shortest side to {self.size} (bicubic antialias, rounded to 8 bits), "
                f"centre crop {self.size}² ({self.crop})"
            )
        return f"{geo}, mean/std {self.mean}/{self.std}"


# The resized (pre-crop, pre-normalise) tensors of the last few image batches, so metrics whose
# networks take the same input size and resize rule (aesthetic, ImageReward, PickScore at 224²,
# shortest-side resize) resize each batch once.
_RESIZED: OrderedDict[tuple[Any, ...], tuple[weakref.ref[torch.Tensor], torch.Tensor]] = OrderedDict()


def _resized(img: torch.Tensor, size: int, how: str, device: torch.device) -> torch.Tensor:
    """``img`` (N, 3, H, W) resized by ``how`` on ``device``, cached by the identity of the storage it
    views (slices of the same batch tensor hit the same entry; a freed tensor never does)."""
    base = img._base if img._base is not None else img
    key = (
        img.data_ptr(),
        tuple(img.shape),
        img.stride(),
        img._version,
        str(img.device),
        str(device),
        size,
        how,
    )
    hit = _RESIZED.get(key)
    if hit is not None and hit[0]() is base:
        return hit[1]
    x = img.to(device)
    out = resize_shortest(x, size) if how == "shortest" else resize_longest_pad(x, size)
    _RESIZED[key] = (weakref.ref(base), out)
    while len(_RESIZED) > 8:
        _RESIZED.popitem(last=False)
    return out


def preprocess(
    images: torch.Tensor | Sequence[torch.Tensor], spec: Preprocess, device: torch.device
) -> torch.Tensor:
    """Network input (N, 3, size, size) for ``images``: one (N, 3, H, W) tensor (resized as one batch,
    and only once for all metrics with the same size and resize rule) or a list of (3, H, W)
    regions of any size (resized one by one)."""
    if isinstance(images, torch.Tensor):
        xs = [_resized(images, spec.size, spec.resize, device)]
    else:
        xs = [_resized(r[None], spec.size, spec.resize, device) for r in images]
    if spec.resize == "shortest":
        xs = [center_crop(x, spec.size, spec.crop) for x in xs]
    return normalise(torch.cat(xs).float(), spec.mean, spec.std)


# ---------------------------------------------------------------------------------------------
# networks
class RegressionHead(nn.Module):
    """The 5-layer linear MLP of the LAION aesthetic predictor v2 and of ImageReward:
    ``Linear, Dropout(0.2), Linear, Dropout(0.2), Linear, Dropout(0.1), Linear, Linear`` (no
    activations; state-dict keys ``layers.{0,2,4,6,7}``). Dropout is inactive at evaluation."""

    def __init__(self, dims: Sequence[int] = (768, 1024, 128, 64, 16, 1)) -> None:
        super().__init__()
        a, b, c, d, e, f = dims
        self.layers = nn.Sequential(
            nn.Linear(a, b),
            nn.Dropout(0.2),
            nn.Linear(b, c),
            nn.Dropout(0.2),
            nn.Linear(c, d),
            nn.Dropout(0.1),
            nn.Linear(d, e),
            nn.Linear(e, f),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@dataclass
class PrefNet:
    """A loaded preference network.

    Attributes:
        name: metric family (``aesthetic``, ``pickscore``, ``hpsv21``, ``imagereward``).
        modules: the networks (eval mode, no grad), by role.
        tokenize: prompts → token tensors (``None`` for image-only scores).
        pre: the image transform.
        id: identity string (architecture, weights, mode).
        quality_evidence: False for random weights.
        weights: records of the weight files loaded (empty for random weights).
        text_cache: prompt → text embedding (CLIP-family metrics; bounded).
    """

    name: str
    modules: dict[str, nn.Module]
    tokenize: Callable[[Sequence[str]], Any] | None
    pre: Preprocess
    id: str
    quality_evidence: bool
    weights: list[dict[str, Any]] = field(default_factory=list)
    text_cache: OrderedDict[str, torch.Tensor] = field(default_factory=OrderedDict)


_NETS: dict[tuple[Any, ...], PrefNet] = {}


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)  # inside a loader: see _rng_isolated


def _rng_isolated(fn: Callable[..., PrefNet]) -> Callable[..., PrefNet]:
    """Run a loader on a forked CPU RNG: its fixed seeds do not change the caller's random stream."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> PrefNet:
        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)

    return wrapper


def _open_clip_model(name: str, mode: str, seed: int, device: str = "cpu") -> nn.Module:
    import open_clip

    _seeded(seed)
    if mode == "random":
        from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

        return CLIP(
            embed_dim=32,
            vision_cfg=CLIPVisionCfg(layers=2, width=32, head_width=16, patch_size=16, image_size=32),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
        )
    logging.disable(logging.WARNING)  # open_clip logs "initialized randomly" to root: weights follow
    try:
        return open_clip.create_model(name, pretrained=None, load_weights=False, device=device)
    finally:
        logging.disable(logging.NOTSET)


def clip_hf_tokenizer() -> Callable[[Sequence[str]], Any]:
    """transformers' ``CLIPTokenizer`` (what PickScore's processor runs) on the CLIP BPE vocabulary,
    built from the vocabulary file open_clip bundles (the 49,408 tokens: 256 byte symbols, the same
    with ``</w>``, the 48,894 merges, start/end), so no tokenizer download is needed. Unlike
    open_clip's tokenizer it does not ``ftfy``-fix or HTML-unescape the text (``&amp;``, curly
    quotes stay as typed), exactly as the reference. Pads with the end token to 77, truncates."""
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)  # type: ignore[arg-type]

    def tokenize(prompts: Sequence[str]) -> Any:
        return tok(list(prompts), padding="max_length", truncation=True, max_length=77, return_tensors="pt")

    return _with_length(tokenize, lambda p: len(tok(p)["input_ids"]), 77)


def _with_length(
    tokenize: Callable[[Sequence[str]], Any], n_tokens: Callable[[str], int], context: int
) -> Callable[[Sequence[str]], Any]:
    """Attach ``n_tokens(prompt)`` (untruncated, with special tokens) and ``context_length``."""
    tokenize.n_tokens = n_tokens  # type: ignore[attr-defined]
    tokenize.context_length = context  # type: ignore[attr-defined]
    return tokenize


def truncated(net: PrefNet, prompts: Sequence[str]) -> list[bool]:
    """For each prompt, whether the network's tokenizer cuts it (more tokens than its context)."""
    tok: Any = net.tokenize
    if tok is None:
        return [False] * len(prompts)
    return [tok.n_tokens(p) > tok.context_length for p in prompts]


def _open_clip_tokenizer() -> Callable[[Sequence[str]], torch.Tensor]:
    import open_clip

    tok = open_clip.tokenizer.SimpleTokenizer()
    return _with_length(lambda prompts: tok(list(prompts)), lambda p: len(tok.encode(p)) + 2, 77)


def _finish(net: PrefNet, device: torch.device) -> PrefNet:
    for k, m in net.modules.items():
        net.modules[k] = m.to(device).eval().requires_grad_(False)
    return net


@_rng_isolated
def aesthetic_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> PrefNet:
    """LAION aesthetic predictor v2: the linear MLP ``sac+logos+ava1-l14-linearMSE`` on the
    L2-normalised image embedding of CLIP ViT-L/14 (OpenAI weights, the same open_clip network and
    file as ``clip_score``'s default; ``random``: its 2-layer random CLIP with a 64-d head)."""
    key = ("aesthetic", mode, str(device), str(fx.weights_dir(wdir)))
    if key not in _NETS:
        path = locate(AESTHETIC_FILE, wdir) if mode == "real" else None  # fail before building
        clip = fx.clip_net(mode, device, wdir, *AESTHETIC_CLIP)
        dim = 64 if mode == "random" else 768
        _seeded(11)
        head = RegressionHead((dim, 32, 16, 8, 4, 1) if mode == "random" else (768, 1024, 128, 64, 16, 1))
        weights: list[dict[str, Any]] = []
        if path is not None:
            head.load_state_dict(_state(path))
            weights.append(weights_record(AESTHETIC_FILE, path))
        net = PrefNet(
            "aesthetic",
            {"clip": clip.module, "head": head},
            None,
            Preprocess(int(clip.extra["size"])),
            f"laion-aesthetic-v2-linearMSE on {clip.id}" + ("" if mode == "real" else " (random head)"),
            mode == "real",
            weights,
        )
        _NETS[key] = _finish(net, device)
    return _NETS[key]


@torch.no_grad()
def aesthetic_scores(net: PrefNet, x: torch.Tensor) -> torch.Tensor:
    """Aesthetic score (≈ 1–10) of preprocessed images ``x``: head(E / ‖E‖), E = CLIP image embedding
    (a zero embedding is left unnormalised, as the reference does)."""
    clip: Any = net.modules["clip"]
    e = clip.encode_image(x).float()
    n = e.norm(dim=-1, keepdim=True)
    e = e / torch.where(n == 0, torch.ones_like(n), n)
    return net.modules["head"](e).squeeze(-1)


# PickScore v1 is a fine-tune of laion/CLIP-ViT-H-14-laion2B-s32B-b79K in transformers' CLIPModel format.
def pickscore_config(mode: str) -> Any:
    """transformers ``CLIPConfig`` of PickScore v1 (CLIP ViT-H-14; ``random``: 2-layer, 32-wide)."""
    from transformers import CLIPConfig

    if mode == "random":
        text: dict[str, Any] = dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
        )
        vision: dict[str, Any] = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        )
        proj = 16
    else:
        text = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
        vision = dict(
            hidden_size=1280,
            intermediate_size=5120,
            num_hidden_layers=32,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
        )
        proj = 1024
    text.update(
        vocab_size=49408,
        max_position_embeddings=77,
        hidden_act="gelu",
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )
    vision.update(hidden_act="gelu")
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)


@_rng_isolated
def pickscore_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> PrefNet:
    """PickScore v1 (``yuvalkirstain/PickScore_v1``) as a transformers ``CLIPModel`` built from
    :func:`pickscore_config`; prompts through :func:`clip_hf_tokenizer` (the tokenizer of its
    processor, ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``), pooled at the first end token."""
    key = ("pickscore", mode, str(device), str(fx.weights_dir(wdir)))
    if key not in _NETS:
        from transformers import CLIPModel

        path = locate(PICKSCORE_FILE, wdir) if mode == "real" else None  # fail before building
        _seeded(12)
        cfg = pickscore_config(mode)
        model = CLIPModel(cfg)
        weights: list[dict[str, Any]] = []
        if path is not None:
            sd = _state(path)
            sd.pop("text_model.embeddings.position_ids", None)
            sd.pop("vision_model.embeddings.position_ids", None)
            model.load_state_dict(sd)
            weights.append(weights_record(PICKSCORE_FILE, path))
        net = PrefNet(
            "pickscore",
            {"clip": model},
            clip_hf_tokenizer(),
            Preprocess(int(cfg.vision_config.image_size), crop="floor"),
            "pickscore-v1-clip-vit-h-14" + ("" if mode == "real" else f"-{mode}"),
            mode == "real",
            weights,
        )
        _NETS[key] = _finish(net, device)
    return _NETS[key]


def _text_features(
    net: PrefNet, prompts: Sequence[str], encode: Callable[[Any], torch.Tensor]
) -> torch.Tensor:
    """Normalised text embeddings of ``prompts``, cached per prompt (seeds repeat prompts)."""
    todo = sorted({p for p in prompts if p not in net.text_cache})
    if todo:
        feats = F.normalize(encode(net.tokenize(todo)).float(), dim=-1)  # type: ignore[misc]
        for p, f in zip(todo, feats, strict=True):
            net.text_cache[p] = f
        while len(net.text_cache) > 4096:
            net.text_cache.popitem(last=False)
    return torch.stack([net.text_cache[p] for p in prompts])


@torch.no_grad()
def pickscore_scores(net: PrefNet, x: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """PickScore: ``exp(logit_scale) · cos(E_img, E_txt)`` (≈ 100 × cosine for the released weights)."""
    m: Any = net.modules["clip"]
    dev = x.device
    img = F.normalize(m.visual_projection(m.vision_model(pixel_values=x).pooler_output).float(), dim=-1)
    txt = _text_features(
        net,
        prompts,
        lambda t: m.text_projection(
            m.text_model(
                input_ids=t["input_ids"].to(dev), attention_mask=t["attention_mask"].to(dev)
            ).pooler_output
        ),
    )
    return m.logit_scale.exp().float() * (img * txt).sum(-1)


@_rng_isolated
def hps_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> PrefNet:
    """HPS v2.1: open_clip ViT-H-14 with the weights of ``HPS_v2.1_compressed.pt`` (key ``state_dict``)."""
    key = ("hpsv21", mode, str(device), str(fx.weights_dir(wdir)))
    if key not in _NETS:
        path = locate(HPS_FILE, wdir) if mode == "real" else None  # fail before building
        model = _open_clip_model("ViT-H-14", mode, seed=13)
        weights: list[dict[str, Any]] = []
        if path is not None:
            sd = _state(path)
            sd = {k: v.float() for k, v in sd.items() if isinstance(v, torch.Tensor)}
            model.load_state_dict(sd)
            weights.append(weights_record(HPS_FILE, path))
        vis: Any = model.visual
        size = vis.image_size
        size = int(size[0] if isinstance(size, tuple | list) else size)
        net = PrefNet(
            "hpsv21",
            {"clip": model},
            _open_clip_tokenizer(),
            Preprocess(size, resize="longest_pad"),
            "hps-v2.1-open_clip-ViT-H-14" + ("" if mode == "real" else f"-{mode}"),
            mode == "real",
            weights,
        )
        _NETS[key] = _finish(net, device)
    return _NETS[key]


@torch.no_grad()
def hps_scores(net: PrefNet, x: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """HPS v2.1: cosine of the normalised image and text features (the reference's
    ``image_features @ text_features.T`` diagonal; no logit scale)."""
    m: Any = net.modules["clip"]
    img = F.normalize(m.encode_image(x).float(), dim=-1)
    txt = _text_features(net, prompts, lambda ids: m.encode_text(ids.to(x.device)))
    return (img * txt).sum(-1)


# ImageReward v1.0: BLIP ViT-L/16 image encoder, BLIP's BERT-base text encoder with cross-attention
# to the image tokens in every layer ("med" config), and the 5-layer head on the [CLS] output.
def imagereward_configs(mode: str) -> tuple[Any, Any]:
    """transformers ``(BlipVisionConfig, BlipTextConfig)`` of ImageReward v1.0 (BLIP ``vit='large'``,
    ``image_size=224``; text = BLIP's ``med_config.json``: BERT-base, vocabulary 30524 with ``[DEC]``
    and ``[ENC]``, cross-attention width 1024). ``random``: 2-layer, 32-wide."""
    from transformers import BlipTextConfig, BlipVisionConfig

    if mode == "random":
        v = BlipVisionConfig(
            hidden_size=32,
            intermediate_size=128,  # BLIP's ViT has mlp_ratio 4
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
            layer_norm_eps=1e-6,
        )
        t = BlipTextConfig(
            vocab_size=len(_TINY_VOCAB),
            hidden_size=32,
            encoder_hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
            layer_norm_eps=1e-12,
            bos_token_id=None,
            sep_token_id=None,
            pad_token_id=0,
        )
        return v, t
    v = BlipVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=16,
        hidden_act="gelu",
        layer_norm_eps=1e-6,  # BLIP's timm-style ViT
    )
    t = BlipTextConfig(
        vocab_size=30524,
        hidden_size=768,
        encoder_hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=512,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
    )
    return v, t


_TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
_TINY_VOCAB += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + [",", ".", "-", "'"]


def imagereward_state(sd: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split ImageReward.pt's keys (``blip.visual_encoder.*`` in BLIP's timm-style naming,
    ``blip.text_encoder.*`` in BERT naming, ``mlp.layers.*``) into transformers' Blip vision and
    text model state dicts and the head's. BLIP's projections (``vision_proj``/``text_proj``) are
    not used by the score and dropped."""
    vis, txt, head = {}, {}, {}
    ren = {
        "norm1": "layer_norm1",
        "norm2": "layer_norm2",
        "attn.qkv": "self_attn.qkv",
        "attn.proj": "self_attn.projection",
        "mlp.fc1": "mlp.fc1",
        "mlp.fc2": "mlp.fc2",
    }
    for k, v in sd.items():
        if k.startswith("blip.visual_encoder."):
            r = k[len("blip.visual_encoder.") :]
            if r == "cls_token":
                vis["embeddings.class_embedding"] = v
            elif r == "pos_embed":
                vis["embeddings.position_embedding"] = v
            elif r.startswith("patch_embed.proj."):
                vis["embeddings.patch_embedding." + r.rsplit(".", 1)[1]] = v
            elif r.startswith("norm."):
                vis["post_layernorm." + r.rsplit(".", 1)[1]] = v
            elif r.startswith("blocks."):
                _, i, rest = r.split(".", 2)
                name, param = rest.rsplit(".", 1)
                vis[f"encoder.layers.{i}.{ren[name]}.{param}"] = v
            else:
                raise KeyError(f"unexpected ImageReward vision key {k}")
        elif k.startswith("blip.text_encoder."):
            r = k[len("blip.text_encoder.") :]
            if not r.startswith("pooler.") and not r.endswith("position_ids"):
                txt[r] = v
        elif k.startswith("mlp."):
            head[k[len("mlp.") :]] = v
    return vis, txt, head


class _BlipReward(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        from transformers.models.blip.modeling_blip import BlipVisionModel
        from transformers.models.blip.modeling_blip_text import BlipTextModel

        vcfg, tcfg = imagereward_configs(mode)
        self.vision = BlipVisionModel(vcfg)
        self.text = BlipTextModel(tcfg, add_pooling_layer=False)
        w = tcfg.hidden_size
        self.head = RegressionHead((w, 1024, 128, 64, 16, 1) if mode != "random" else (w, 32, 16, 8, 4, 1))
        if mode == "random":  # BERT's std-0.02 init makes a tiny model nearly blind to the image
            for mod in self.modules():
                if isinstance(mod, nn.Linear):
                    nn.init.normal_(mod.weight, std=0.3)


def bert_tokenizer(vocab: str | dict[str, int]) -> Callable[[Sequence[str]], Any]:
    """ImageReward's prompt tokenizer: BERT WordPiece (lower case) from a ``vocab.txt`` path or a
    token → id dict; ``[CLS] … [SEP]``, padded and truncated to 35 tokens, with attention mask.
    (BLIP also adds ``[DEC]``/``[ENC]`` as ids 30522/30523; the score never uses them.)"""
    from transformers import BertTokenizer

    tok = BertTokenizer(vocab=vocab, do_lower_case=True)

    def tokenize(prompts: Sequence[str]) -> Any:
        return tok(list(prompts), padding="max_length", truncation=True, max_length=35, return_tensors="pt")

    return _with_length(tokenize, lambda p: len(tok(p)["input_ids"]), 35)


@_rng_isolated
def imagereward_net(mode: str, device: torch.device, wdir: str | os.PathLike[str] | None = None) -> PrefNet:
    """ImageReward v1.0 on transformers' Blip vision/text models (see :func:`imagereward_configs`);
    the tokenizer is BERT-base-uncased WordPiece (``random``: a tiny character vocabulary)."""
    key = ("imagereward", mode, str(device), str(fx.weights_dir(wdir)))
    if key not in _NETS:
        files = (locate(IMAGEREWARD_FILE, wdir), locate(BERT_VOCAB_FILE, wdir)) if mode == "real" else None
        _seeded(14)
        model = _BlipReward(mode)
        weights: list[dict[str, Any]] = []
        if files is not None:
            path, vocab = files
            vis, txt, head = imagereward_state(_state(path))
            model.vision.load_state_dict(vis)
            model.text.load_state_dict(txt)
            model.head.load_state_dict(head)
            tokenize = bert_tokenizer(str(vocab))
            weights += [weights_record(IMAGEREWARD_FILE, path), weights_record(BERT_VOCAB_FILE, vocab)]
        else:
            tokenize = bert_tokenizer({t: i for i, t in enumerate(_TINY_VOCAB)})
        net = PrefNet(
            "imagereward",
            {"blip": model},
            tokenize,
            Preprocess(int(model.vision.config.image_size)),  # type: ignore[arg-type]
            "imagereward-v1.0-blip-vit-l" + ("" if mode == "real" else f"-{mode}"),
            mode == "real",
            weights,
        )
        _NETS[key] = _finish(net, device)
    return _NETS[key]


@torch.no_grad()
def imagereward_scores(net: PrefNet, x: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """ImageReward: head(text encoder [CLS] output, cross-attending to all image tokens), then
    ``(r − 0.16717362830052426) / 1.0333394966054072``. Prompts: BERT tokens, padded/truncated to 35."""
    m: Any = net.modules["blip"]
    tok = net.tokenize(prompts)  # type: ignore[misc]
    img = m.vision(pixel_values=x).last_hidden_state
    out = m.text(
        input_ids=tok["input_ids"].to(x.device),
        attention_mask=tok["attention_mask"].to(x.device),
        encoder_hidden_states=img,
        encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long, device=x.device),
    ).last_hidden_state[:, 0, :]
    r = m.head(out.float()).squeeze(-1)
    return (r - IMAGEREWARD_MEAN) / IMAGEREWARD_STD


LOADERS: dict[str, Callable[..., PrefNet]] = {
    "aesthetic": aesthetic_net,
    "pickscore": pickscore_net,
    "hpsv21": hps_net,
    "imagereward": imagereward_net,
}


def score(
    name: str,
    images: torch.Tensor | Sequence[torch.Tensor],
    prompts: Sequence[str],
    mode: str = "real",
    device: torch.device | str = "cpu",
    wdir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
) -> list[float]:
    """Scores of one family for float images in [0, 1] (a (N, 3, H, W) tensor, or a list of
    (3, H, W) regions), in chunks of ``batch_size`` through the network."""
    dev = torch.device(device)
    net = LOADERS[name](mode, dev, wdir)
    n = len(images)
    if name != "aesthetic" and len(prompts) != n:
        raise ValueError(f"{name}: {n} images but {len(prompts)} prompts")
    out: list[float] = []
    for s in range(0, n, max(1, batch_size)):
        chunk = images[s : s + batch_size]
        x = preprocess(chunk, net.pre, dev)
        p = list(prompts[s : s + batch_size])
        if name == "aesthetic":
            v = aesthetic_scores(net, x)
        elif name == "pickscore":
            v = pickscore_scores(net, x, p)
        elif name == "hpsv21":
            v = hps_scores(net, x, p)
        else:
            v = imagereward_scores(net, x, p)
        out += [float(t) if math.isfinite(float(t)) else math.nan for t in v.double().cpu()]
    return out
