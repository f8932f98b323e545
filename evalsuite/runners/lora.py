"""Loading a LoRA (e.g. alimama-creative/FLUX.1-Turbo-Alpha) through diffusers' LoRA API and fusing it.

Under the ``hub`` policy (or when the reference is an existing local file or folder) the real file
is read. Under ``tiny``/``random`` weights the real LoRA cannot be used (its shapes belong to the
full-size transformer and it cannot be downloaded), so :func:`synthetic_lora` builds a seeded
state dict in the published key format for the pipeline's own transformer, and it goes through
exactly the same ``load_lora_weights`` → ``fuse_lora`` → ``unload_lora_weights`` path.

The published Turbo-Alpha file (``diffusion_pytorch_model.safetensors``, 694,082,424 bytes) is
loaded with ``pipe.load_lora_weights(repo)`` on its model card, i.e. diffusers/PEFT keys
``transformer.<module>.lora_A.weight`` / ``.lora_B.weight``. Its rank and targets are not
documented; the file size pins them: rank 64 in bf16 on **every** ``nn.Linear`` of the FLUX.1-dev
transformer (504 modules: 693,944,320 bytes of tensors + a ~130 kB header = 694.07 MB; the block
Linears alone would give 687.3 MB). :data:`PUBLISHED_RANK` / :data:`PUBLISHED_TARGETS` follow that
reading; the key names themselves could not be read offline.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from evalsuite.errors import UsageError
from evalsuite.runners.weights import Weights, WeightsError

log = logging.getLogger(__name__)

PUBLISHED_RANK = 64
"""Rank of the synthetic LoRA by default (inferred for FLUX.1-Turbo-Alpha, see the module docstring)."""
PUBLISHED_TARGETS = ("",)
"""Module-name prefixes whose ``nn.Linear`` layers the synthetic LoRA adapts (``""``: every Linear)."""

_LORA_KEY = re.compile(
    r"^(?P<prefix>[A-Za-z_0-9]+\.)?(?P<module>.+)\.lora_[AB](\.[A-Za-z_0-9]+)?\.(weight|bias)$"
)


class LoraError(UsageError, ValueError):
    """A LoRA file that does not apply to the pipeline (e.g. no key matches the transformer)."""


def read_lora(ref: str, weight_name: str, weights: Weights) -> tuple[dict[str, Any], str]:
    """Read a LoRA state dict from a ``.safetensors`` file, a local folder or a hub id.

    Returns the state dict and the path it was read from.

    Raises:
        WeightsError: when the file cannot be found offline.
    """
    p = Path(ref)
    if p.suffix == ".safetensors" and p.is_file():
        path = p
    else:
        folder = Path(weights.resolve(ref)) if weights.policy == "hub" or Path(ref).exists() else None
        if folder is not None and folder.is_dir():
            path = folder / weight_name
        else:
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(ref, weight_name))
            except Exception as exc:
                raise WeightsError(
                    f"LoRA {ref!r} ({weight_name}) not found locally and could not be downloaded: {exc}; "
                    "pass a local .safetensors file or --weights-dir"
                ) from exc
    if not path.is_file():
        raise WeightsError(f"LoRA file not found: {path}")
    return load_file(str(path)), str(path)


def synthetic_lora(
    transformer: torch.nn.Module,
    rank: int = PUBLISHED_RANK,
    seed: int = 0,
    targets: tuple[str, ...] = PUBLISHED_TARGETS,
    prefix: str = "transformer.",
) -> dict[str, torch.Tensor]:
    """A seeded LoRA state dict in the published diffusers/PEFT key format for ``transformer``.

    Every ``nn.Linear`` whose name starts with one of ``targets`` gets ``lora_A`` (rank × in, scaled
    by 1/√in) and ``lora_B`` (out × rank, scaled by 0.01), generated on the transformer's device in
    its dtype (no CPU copy at full size). No ``alpha`` keys, so diffusers uses alpha = rank (scale 1).

    Raises:
        ValueError: if ``rank`` < 1.
    """
    if rank < 1:
        raise ValueError(f"lora_rank must be ≥ 1, got {rank}")
    param = next(transformer.parameters())
    gen = torch.Generator(param.device).manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, mod in transformer.named_modules():
        if not (isinstance(mod, torch.nn.Linear) and name.startswith(targets)):
            continue
        a = torch.randn(rank, mod.in_features, generator=gen, device=param.device, dtype=torch.float32)
        b = torch.randn(mod.out_features, rank, generator=gen, device=param.device, dtype=torch.float32)
        state[f"{prefix}{name}.lora_A.weight"] = (a / mod.in_features**0.5).to(param.dtype)
        state[f"{prefix}{name}.lora_B.weight"] = (b * 0.01).to(param.dtype)
    return state


def _module_of(key: str) -> tuple[str | None, str] | None:
    m = _LORA_KEY.match(key)
    if m is None:
        return None
    return (m["prefix"][:-1] if m["prefix"] else None), m["module"]


def prefix_transformer_keys(
    state: dict[str, Any], transformer: torch.nn.Module
) -> tuple[dict[str, Any], int]:
    """Add the ``transformer.`` prefix to PEFT-format keys that name a transformer module without it.

    diffusers ignores such keys silently; a key is rewritten only when its module path (e.g.
    ``transformer_blocks.0.attn.to_q``) is a module of ``transformer``. Returns the new state dict
    and the number of keys rewritten.
    """
    modules = {n for n, _ in transformer.named_modules()}
    out: dict[str, Any] = {}
    fixed = 0
    for k, v in state.items():
        full = _LORA_KEY.match(k)
        if full is not None and k.split(".", 1)[0] not in ("transformer", "text_encoder"):
            bare = re.sub(r"\.lora_[AB](\.[A-Za-z_0-9]+)?\.(weight|bias)$", "", k)
            if bare in modules:
                out[f"transformer.{k}"] = v
                fixed += 1
                continue
        out[k] = v
    return out, fixed


def fuse_lora(
    pipe: Any,
    ref: str,
    weight_name: str,
    scale: float,
    weights: Weights,
    *,
    rank: int = PUBLISHED_RANK,
    seed: int = 0,
) -> dict[str, Any]:
    """Load the LoRA ``ref`` into ``pipe`` with ``load_lora_weights`` and fuse it at ``scale``.

    ``ref`` is read from disk when it is an existing file/folder or the policy is ``hub``;
    otherwise (``tiny``/``random``) a synthetic LoRA of ``rank`` (seeded by ``seed``) in the
    published key format replaces it. Returns what was fused, for the run's effective parameters:
    ``{"lora_source": "file"|"synthetic", "lora_path", "lora_rank", "lora_modules", "lora_prefixed_keys"}``.

    Raises:
        LoraError: if no key matches the pipeline's transformer, if some keys would be dropped
            (they name no transformer module), or if the file holds text-encoder LoRA keys.
        WeightsError: if the file cannot be found.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    transformer = pipe.transformer
    if weights.policy == "hub" or Path(ref).exists():
        state, path = read_lora(ref, weight_name, weights)
        source, used_rank = "file", None
    else:
        state = synthetic_lora(transformer, rank=rank, seed=seed)
        path, source, used_rank = f"synthetic:{ref}", "synthetic", rank
        log.info(
            "%s weights: fusing a synthetic rank-%d LoRA in %s's key format (seed %d)",
            weights.policy,
            rank,
            ref,
            seed,
        )
    state, fixed = prefix_transformer_keys(state, transformer)
    if fixed:
        log.warning(
            "LoRA %s: %d keys had no 'transformer.' prefix; added it (they name transformer modules)",
            path,
            fixed,
        )
    # what diffusers will load, after its own format conversions (kohya, xlabs, ...)
    converted = pipe.lora_state_dict(dict(state))
    wanted: set[str] = set()
    stray: list[str] = []
    text_keys: list[str] = []
    for k in converted:
        parsed = _module_of(k)
        if parsed is None:
            continue
        owner, module = parsed
        if owner == "transformer":
            wanted.add(module)
        elif owner in ("text_encoder", "text_encoder_2"):
            text_keys.append(k)
        else:
            stray.append(k)
    if not wanted:
        raise LoraError(
            f"LoRA {path}: none of its {len(state)} keys match the pipeline's transformer "
            "(expected keys like 'transformer.transformer_blocks.0.attn.to_q.lora_A.weight'); "
            "check that the file is a FLUX LoRA"
        )
    if stray or text_keys:
        bad = stray or text_keys
        what = (
            "name no transformer module"
            if stray
            else "target a text encoder (only transformer LoRAs are fused)"
        )
        raise LoraError(
            f"LoRA {path}: {len(bad)} of its {len(state)} keys {what} and would be dropped, e.g. {bad[0]!r}"
        )
    pipe.load_lora_weights(state, adapter_name="evalsuite_lora")
    adapted = {n for n, m in transformer.named_modules() if isinstance(m, BaseTunerLayer)}
    missing = sorted(wanted - adapted)
    if missing:
        pipe.unload_lora_weights()
        raise LoraError(
            f"LoRA {path}: {len(missing)} modules named in the file were not adapted, e.g. {missing[0]!r}"
        )
    pipe.fuse_lora(lora_scale=scale, components=["transformer"], adapter_names=["evalsuite_lora"])
    pipe.unload_lora_weights()
    if used_rank is None:
        ranks = {int(v.shape[0]) for k, v in state.items() if ".lora_A." in k and getattr(v, "ndim", 0) == 2}
        used_rank = ranks.pop() if len(ranks) == 1 else None
    return {
        "lora_source": source,
        "lora_path": path,
        "lora_rank": used_rank,
        "lora_modules": len(wanted),
        "lora_prefixed_keys": fixed,
        "lora_scale": scale,
    }
