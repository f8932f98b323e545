"""Attention kernels at FLUX's shapes: which one a lower-precision attention route would have to beat.

Usage (repository root, on the GPU machine; ``--device cpu`` runs the plumbing on a tiny shape)::

    python benchmarks/gpu_attention.py [--device cuda] [--reps 30] [--out DIR]

For each shape (FLUX at 1024² and 768²: 4,096 or 2,304 image tokens + 512 text tokens, 24 heads of
128), times ``scaled_dot_product_attention`` under each of its CUDA backends (cuDNN, flash, memory-
efficient, and the default choice) and, when the ``sageattention`` package is importable, its
``sageattn`` (INT8 QK, fp16 PV; Triton), in bf16. Each kernel: 5 warm-up calls, then ``--reps`` calls
each timed by CUDA events; the median is reported with TFLOP/s = 4·B·H·S²·D / time. Accuracy: the
relative L2 error and max abs error of each output against float32 math attention on the same inputs.

Writes ``attention.json`` and ``attention.md`` into ``--out`` (default ``$OUT`` or
``reports/gpu-attention``). A kernel that cannot run here is listed with its error, not skipped
silently.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

SHAPES = {"flux 1024²": (1, 24, 4096 + 512, 128), "flux 768²": (1, 24, 2304 + 512, 128)}
TINY = {"tiny": (1, 2, 64, 32)}


def attention_flop(b: int, h: int, s: int, d: int) -> float:
    """FLOP of one non-causal attention forward: QKᵀ and PV, 2·S²·D multiply-adds each per head."""
    return 4.0 * b * h * s * s * d


def _sdpa(backend: object | None) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    from torch.nn.attention import sdpa_kernel

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if backend is None:
            return F.scaled_dot_product_attention(q, k, v)
        with sdpa_kernel([backend]):  # type: ignore[list-item]
            return F.scaled_dot_product_attention(q, k, v)

    return run


def kernels(device: str) -> dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]]:
    from torch.nn.attention import SDPBackend

    out = {"sdpa default": _sdpa(None), "sdpa math": _sdpa(SDPBackend.MATH)}
    if device.startswith("cuda"):
        out["sdpa cuDNN"] = _sdpa(SDPBackend.CUDNN_ATTENTION)
        out["sdpa flash (FA2)"] = _sdpa(SDPBackend.FLASH_ATTENTION)
        out["sdpa memory-efficient"] = _sdpa(SDPBackend.EFFICIENT_ATTENTION)
        if importlib.util.find_spec("sageattention") is not None:
            from sageattention import sageattn

            # sageattn subtracts K's mean in place ("smooth_k"): give it its own copy of K
            out["sageattn 1.x (INT8 QK, fp16 PV)"] = lambda q, k, v: sageattn(
                q, k.clone(), v, tensor_layout="HND"
            )
    return out


def time_kernel(fn: Callable[[], object], device: str, reps: int) -> list[float]:
    for _ in range(5):
        fn()
    times = []
    if device.startswith("cuda"):
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    else:
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


def errors(got: torch.Tensor, want: torch.Tensor) -> dict[str, float]:
    g, w = got.float(), want.float()
    return {
        "rel_l2": float((g - w).norm() / w.norm()),
        "max_abs": float((g - w).abs().max()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--out", default=os.environ.get("OUT") or "reports/gpu-attention")
    args = ap.parse_args(argv)
    dev = args.device
    cuda = dev.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("gpu_attention: no CUDA device here; use --device cpu for a dry run", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if cuda else torch.float32
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "reps": args.reps,
        "shapes": {},
    }
    if importlib.util.find_spec("sageattention") is not None:
        from importlib.metadata import version

        result["sageattention"] = version("sageattention")
    lines = [
        f"# Attention kernels on {result['device']} (torch {torch.__version__}, {result['dtype']})",
        "",
        "| shape (B, H, S, D) | kernel | median ms | TFLOP/s | rel. L2 error vs fp32 | max abs error |",
        "|---|---|---|---|---|---|",
    ]
    for name, shape in (SHAPES if cuda else TINY).items():
        g = torch.Generator(device=dev).manual_seed(0)
        q, k, v = (torch.randn(shape, device=dev, dtype=dtype, generator=g) for _ in range(3))
        want = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        rows = {}
        for kname, fn in kernels(dev).items():
            if kname == "sdpa math" and cuda:
                continue  # the fp32 reference is math attention already; bf16 math is not a contender
            try:
                got = fn(q, k, v)
                err = errors(got, want)
                t = statistics.median(time_kernel(functools.partial(fn, q, k, v), dev, args.reps))
            except Exception as exc:  # a backend this build or GPU lacks: listed with its reason
                rows[kname] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
                lines.append(f"| {name} {shape} | {kname} | unavailable: {rows[kname]['error']} | | | |")
                continue
            tf = attention_flop(*shape) / t / 1e12
            rows[kname] = {"median_s": t, "tflops": tf, **err}
            lines.append(
                f"| {name} {shape} | {kname} | {t * 1e3:.3f} | {tf:.0f} | {err['rel_l2']:.2e} | {err['max_abs']:.2e} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
        result["shapes"][name] = {"shape": list(shape), "kernels": rows}  # type: ignore[index]
    (out / "attention.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "attention.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
