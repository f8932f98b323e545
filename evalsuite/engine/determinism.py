"""What decides whether two runs produce the same bytes, recorded in ``run.json``.

Every sample draws its starting noise from its own ``torch.Generator("cpu").manual_seed(seed)``
(:meth:`evalsuite.runners.base.Runner.generators`), so the noise depends neither on the device nor
on the batch size. On CPU, the same configuration, seed and software versions give identical PNG
bytes from run to run and at batch sizes 1 and 2 (tested). On GPU, what can still differ is
described in ``docs/reliability.md``; the settings that matter are recorded by
:func:`determinism_settings`.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def determinism_settings(device: torch.device) -> dict[str, Any]:
    """The process's reproducibility-relevant settings (deterministic algorithms, TF32, cuDNN, threads)."""
    out: dict[str, Any] = {
        "noise_generator_device": "cpu",
        "seeding": "one torch.Generator('cpu').manual_seed(seed) per sample",
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "cuda_matmul_allow_bf16_reduced_precision_reduction": bool(
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
        ),
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "torch_num_threads": torch.get_num_threads(),
        "device_type": device.type,
    }
    return out
