"""Loading a LoRA (e.g. alimama-creative/FLUX.1-Turbo-Alpha) through diffusers' LoRA API and fusing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from ..weights import Weights, WeightsError


class LoraError(ValueError):
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
                ) from None
    if not path.is_file():
        raise WeightsError(f"LoRA file not found: {path}")
    return load_file(str(path)), str(path)


def fuse_lora(pipe: Any, ref: str, weight_name: str, scale: float, weights: Weights) -> None:
    """Load the LoRA ``ref`` into ``pipe`` with ``load_lora_weights`` and fuse it at ``scale``.

    Raises:
        LoraError: if no key of the file matches the pipeline's transformer (diffusers would
            otherwise ignore such keys silently).
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    state, path = read_lora(ref, weight_name, weights)
    pipe.load_lora_weights(state, adapter_name="evalsuite_lora")
    layers = sum(isinstance(m, BaseTunerLayer) for m in pipe.transformer.modules())
    if layers == 0:
        raise LoraError(
            f"LoRA {path}: none of its {len(state)} keys match the pipeline's transformer "
            "(expected keys like 'transformer.transformer_blocks.0.attn.to_q.lora_A.weight'); "
            "check that the file is a FLUX LoRA"
        )
    pipe.fuse_lora(lora_scale=scale, components=["transformer"], adapter_names=["evalsuite_lora"])
    pipe.unload_lora_weights()
