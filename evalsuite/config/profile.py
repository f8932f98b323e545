"""Choices of ``evalsuite profile``'s sweep axes (light: the command line reads them without torch),
and how dtype fp8, memory modes and compile map to the axis points of :mod:`evalsuite.accel.axes`."""

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

#: each memory mode as a memory strategy of the accel axes (``gpu``: everything resident, no axis)
MEMORY_AXIS = {
    "gpu": "",
    "model_offload": "model_offload",
    "sequential_offload": "sequential",
    "vae_tiling": "vae_tiling",
}
#: ``--fp8-backend`` as a precision of the accel axes (``auto``: torchao's when it is installed)
FP8_PRECISION = {"torchao": "fp8", "scaled_mm": "fp8_tensor"}
