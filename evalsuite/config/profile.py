"""Choices of ``evalsuite profile``'s sweep axes (light: the command line reads them without torch)."""

from __future__ import annotations

MEMORY_MODES = ("gpu", "model_offload", "sequential_offload", "vae_tiling")
DTYPES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "fp32": "float32",
    "float32": "float32",
    "fp8": "fp8",
}
