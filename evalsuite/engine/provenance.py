"""What a run ran on: versions, device, git commit (recorded in ``run.json``)."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    "evalsuite",
    "torch",
    "diffusers",
    "transformers",
    "peft",
    "accelerate",
    "torchmetrics",
    "open_clip_torch",
    "lpips",
    "torch-fidelity",
    "numpy",
    "pandas",
    "safetensors",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that change numbers (``None`` when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: Path | None = None) -> str | None:
    """The git commit of evalsuite's own source checkout (with ``-dirty`` when modified), or ``None``.

    Only a checkout whose top level holds this very package counts: an installed evalsuite
    (site-packages, perhaps inside some other repository) has no commit — its version is in
    ``versions``. The current directory plays no part.
    """
    root = path or Path(__file__).resolve().parents[2]  # evalsuite/engine/provenance.py → checkout
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            return None
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_info(device: torch.device) -> dict[str, Any]:
    """Name and memory of ``device`` (CPU: processor description and core count)."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        return {
            "type": "cuda",
            "name": props.name,
            "memory_gib": props.total_memory / 2**30,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
        }
    import os

    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def environment(device: torch.device) -> dict[str, Any]:
    """Everything recorded about the software and hardware of a run."""
    return {
        "versions": package_versions(),
        "device": device_info(device),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "argv": sys.argv,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
