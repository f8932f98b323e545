"""GPU kernel-time breakdown of one warm image of a frontier point (docs/benchmarks/frontier-h200.md).

Usage (repository root, on the GPU machine; DEVICE=cpu WEIGHTS=tiny for a dry run)::

    python benchmarks/gpu_breakdown.py CONFIG=POINT [CONFIG=POINT ...]

For each ``CONFIG=POINT`` (point text as in ``evalsuite frontier --points``): build the runner, apply the
point (:func:`evalsuite.accel.axes.apply_point`; ``COMPILE_MODE`` sets the ``torch.compile`` mode),
one cold call (the compile, where there is one), two warm calls timed (the faster is kept), then one
warm call under ``torch.profiler`` whose device kernels are summed by kind (:func:`kind_of`), with
the device-idle gaps of :func:`idle_gaps`. Writes ``breakdown-<config>-<n>.json`` (n: the task's
place in the list) and prints a markdown table to stdout. The profiled call's wall time is inflated
by the profiler; the shares come from kernel times, the wall from the unprofiled warm calls.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

OUT = Path(os.environ.get("OUT") or "reports/gpu-breakdown")
DEVICE = os.environ.get("DEVICE", "cuda")
WEIGHTS = os.environ.get("WEIGHTS", "random")
COMPILE_MODE = os.environ.get("COMPILE_MODE", "default")
log = logging.getLogger("gpu_breakdown")

KINDS = (
    "fp8 GEMM",
    "bf16/fp16 GEMM, conv",
    "attention",
    "Triton: fp8 quantisation + fused",
    "Triton: other fused",
    "other",
)


def kind_of(name: str) -> str:
    """The kind of a device kernel, from its name.

    cuBLAS's Hopper kernels are ``nvjet_sm90_*``; ``qq`` in their name marks fp8 (e4m3) inputs, with
    ``ovscale`` the per-row (outer-vector) scales of ``torch._scaled_mm``. Inductor's kernels start
    with ``triton_`` and name the ops they fused: those that fuse ``_scaled_mm``'s input are the
    dynamic activation quantisation (amax, scale, cast) with the element-wise work around it.
    """
    n = name.lower()
    if n.startswith("triton"):
        return "Triton: fp8 quantisation + fused" if "_scaled_mm" in n else "Triton: other fused"
    if n.startswith("nvjet") and "_qq" in n or any(k in n for k in ("e4m3", "f8f8", "fp8", "scaled_mm")):
        return "fp8 GEMM"
    if any(k in n for k in ("flash", "fmha", "sdpa", "attention")):
        return "attention"
    if any(k in n for k in ("gemm", "nvjet", "cutlass", "xmma", "cublas", "wgmma", "matmul")):
        return "bf16/fp16 GEMM, conv"
    return "other"


def breakdown(config: str, point: str) -> dict:
    from evalsuite.accel.axes import ApplyContext, PointSpec, apply_point, load_params
    from evalsuite.config import configuration as cfg
    from evalsuite.registry import RUNNERS
    from evalsuite.scenarios.sweep import Sweep, usable_cases

    sweep = Sweep.resolve("frontier", WEIGHTS, DEVICE, "/tmp/evalsuite-breakdown", None, "smoke")
    conf = cfg.resolve_many([config], [cfg.Override.parse(o) for o in _overrides()])[0]
    spec = PointSpec.parse(point)
    runner = RUNNERS.get(conf.runner)(load_params(conf.params, spec), sweep.weights, sweep.device)
    runner.load()
    case = usable_cases(runner, list(sweep.dataset.cases), 1)[0]
    notes = apply_point(runner, spec, ApplyContext(compile_mode=COMPILE_MODE, config=conf.name))
    sync = torch.cuda.synchronize if sweep.device.type == "cuda" else (lambda: None)

    def call() -> float:
        sync()
        t0 = time.perf_counter()
        runner.generate([case], [0])
        sync()
        return time.perf_counter() - t0

    cold = call()
    log.info("%s[%s]: cold %.2f s", config, point, cold)
    warm = min(call(), call())
    acts = [torch.profiler.ProfilerActivity.CPU]
    if sweep.device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        call()
    by_kind: dict[str, float] = defaultdict(float)
    top: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for ev in prof.events():
        if ev.device_type != torch.autograd.DeviceType.CUDA:
            continue
        us = float(ev.time_range.elapsed_us())
        by_kind[kind_of(ev.name)] += us
        top[ev.name] += us
        calls[ev.name] += 1
    total_us = sum(by_kind.values())
    gaps = idle_gaps(prof.events())
    res = {
        "config": config,
        "point": point,
        "steps": int(runner.params.steps),
        "notes": {k: str(v) for k, v in notes.items()},
        "cold_s": cold,
        "warm_s": warm,
        "kernel_s": total_us / 1e6,
        "by_kind_s": {k: by_kind.get(k, 0.0) / 1e6 for k in KINDS},
        "compile_mode": COMPILE_MODE,
        "device_idle_s": sum(g["s"] for g in gaps),
        "largest_idle_gaps": gaps[:12],
        "top_kernels_s": dict(sorted(((k, v / 1e6) for k, v in top.items()), key=lambda kv: -kv[1])[:25]),
        "top_kernel_calls": {k: calls[k] for k in sorted(top, key=lambda k: -top[k])[:25]},
        "triton_s_by_shape": triton_shapes(top),
        "device": torch.cuda.get_device_name(sweep.device) if sweep.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "weights": WEIGHTS,
    }
    runner.close()
    return res


def triton_shapes(kernel_us: dict[str, float]) -> dict[str, float]:
    """Seconds of Inductor's Triton kernels by the shape Inductor names them with: ``poi`` (pointwise),
    ``per`` (persistent reduction: each row read once) and ``red`` (looped reduction: a row read once
    per pass over it); other Triton kernels (templates) count as ``other``."""
    out: dict[str, float] = defaultdict(float)
    for name, us in kernel_us.items():
        if name.startswith("triton"):
            shape = name.split("_")[1] if name.count("_") > 1 else ""
            out[shape if shape in ("poi", "per", "red") else "other"] += us / 1e6
    return dict(out)


def idle_gaps(events, min_us: float = 200.0) -> list[dict]:
    """Device-idle intervals (no kernel running) of at least ``min_us``, largest first, each with the
    outermost CPU ops that overlap it: where the host kept the GPU waiting."""
    dev = sorted(
        (e.time_range.start, e.time_range.end)
        for e in events
        if e.device_type == torch.autograd.DeviceType.CUDA
    )
    cpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU and e.cpu_parent is None]
    out, end = [], None
    for start, stop in dev:
        if end is not None and start - end >= min_us:
            over = sorted({e.name for e in cpu if e.time_range.start < start and e.time_range.end > end})
            out.append({"s": (start - end) / 1e6, "cpu_ops": over[:6]})
        end = stop if end is None else max(end, stop)
    return sorted(out, key=lambda g: -g["s"])


def _overrides() -> list[str]:
    return ["tiny_size=32", "steps=2"] if WEIGHTS == "tiny" else []


def markdown(rows: list[dict]) -> str:
    head = "| configuration | point | warm s | kernel s | device idle s | " + " | ".join(KINDS) + " |"
    lines = [head, "|" + "---|" * (5 + len(KINDS))]
    for r in rows:
        ks = r["kernel_s"] or 1.0
        cells = [f"{r['by_kind_s'][k]:.3f} ({100 * r['by_kind_s'][k] / ks:.0f} %)" for k in KINDS]
        lines.append(
            f"| {r['config']} | `{r['point']}` | {r['warm_s']:.3f} | {r['kernel_s']:.3f} | {r['device_idle_s']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in argv:
        config, _, point = task.partition("=")
        try:
            r = breakdown(config, point or "ref")
        except Exception as exc:  # one failing point never sinks the batch
            log.exception("%s failed: %s", task, exc)
            continue
        rows.append(r)
        (OUT / f"breakdown-{config}-{len(rows)}.json").write_text(json.dumps(r, indent=1))
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    print(markdown(rows))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
