"""GPU batch for docs/benchmarks/frontier-h200.md: matmul peak, sdxl harness-overhead diagnosis, frontier.

Usage (repository root, on the GPU machine; DEVICE=cpu WEIGHTS=tiny for a dry run on a laptop)::

    python benchmarks/gpu_frontier.py [peak] [sdxl] [frontier:CONFIG] ...

Writes flat files into $OUT (or reports/gpu-frontier): ``peak.json`` (new and old peak methods),
``sdxl_overhead.json`` (interleaved variants: bare pipeline, bare + DeviceMonitor, runner without
monitor, runner + monitor, runner without step callback / VAE-encode timing), and per frontier
``frontier-<config>.md`` / ``.json`` / ``pareto-<config>.png``. Progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

OUT = Path(os.environ.get("OUT") or "reports/gpu-frontier")
DEVICE = os.environ.get("DEVICE", "cuda")
WEIGHTS = os.environ.get("WEIGHTS", "random")
RUNS = Path(os.environ.get("RUNS", "/tmp/evalsuite-runs"))
log = logging.getLogger("gpu_frontier")


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def peak() -> None:
    from evalsuite.trackers.flops import measure_peak_tflops

    dev = torch.device(DEVICE)
    res = {"new_bf16": measure_peak_tflops(dev, "bfloat16", min_seconds=4.0 if dev.type == "cuda" else 0.1)}
    res["new_fp8"] = measure_peak_tflops(dev, "fp8", min_seconds=2.0 if dev.type == "cuda" else 0.1)
    # the old method: one warm-up, then products with a synchronisation every 4, perf_counter
    n = 8192 if dev.type == "cuda" else 256
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    a @ b
    _sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < (2.0 if dev.type == "cuda" else 0.1):
        a @ b
        reps += 1
        if reps % 4 == 0:
            _sync()
    _sync()
    res["old_method_bf16"] = {"tflops": 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12, "reps": reps}
    # the reference's plain loop: 3 warm-ups, 20 products, one sync, perf_counter
    for _ in range(3):
        a @ b
    _sync()
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    _sync()
    res["plain_loop_20_bf16"] = {"tflops": 2 * n**3 * 20 / (time.perf_counter() - t0) / 1e12}
    (OUT / "peak.json").write_text(json.dumps(res, indent=1, default=str))
    log.info("peak: %s", {k: round(v["tflops"], 1) for k, v in res.items()})


def sdxl(rounds: int = int(os.environ.get("SDXL_ROUNDS", "4"))) -> None:
    """Interleaved (ABCD…ABCD…) timing of the sdxl-inpaint harness variants, so drift hits all alike."""
    import evalsuite.runners.sdxl as sdxl_mod
    from evalsuite.config import configuration as cfg
    from evalsuite.data.registry import load_dataset
    from evalsuite.registry import RUNNERS
    from evalsuite.runners.weights import Weights
    from evalsuite.scenarios.profile import bare_call, pick_cases
    from evalsuite.trackers.tracking import DeviceMonitor, Tracker

    conf = cfg.resolve("sdxl-inpaint")
    r = RUNNERS.get(conf.runner)(conf.params, Weights(WEIGHTS), DEVICE)
    r.load()
    cases, seeds = pick_cases(r, list(load_dataset("smoke").cases), 1)
    dev = torch.device(DEVICE)
    probe = DeviceMonitor(dev)

    def monitored(fn, interval=0.02):
        def run():
            mon = DeviceMonitor(
                dev, interval_s=interval, gpu_reader=probe.gpu_reader, energy_reader=probe.energy_reader
            )
            with mon.watch():
                fn()

        return run

    def no_callback():
        saved = Tracker.step_callback
        Tracker.step_callback = None  # type: ignore[assignment]
        try:
            r.generate(cases, seeds)
        finally:
            Tracker.step_callback = saved  # type: ignore[method-assign]

    def no_encode_timer():
        saved = sdxl_mod.timed_vae_encode
        sdxl_mod.timed_vae_encode = lambda vae, tracker: contextlib.nullcontext(type("C", (), {"calls": 0})())
        try:
            r.generate(cases, seeds)
        finally:
            sdxl_mod.timed_vae_encode = saved

    variants = {
        "bare": lambda: bare_call(r, cases, seeds),
        "bare+monitor": monitored(lambda: bare_call(r, cases, seeds)),
        "runner": lambda: r.generate(cases, seeds),
        "runner+monitor": monitored(lambda: r.generate(cases, seeds)),
        "runner+monitor@200ms": monitored(lambda: r.generate(cases, seeds), 0.2),
        "runner-no-step-callback": no_callback,
        "runner-no-vae-encode-timer": no_encode_timer,
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():  # warm every path once
        fn()
    for i in range(rounds):
        for k, fn in variants.items():
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            times[k].append(time.perf_counter() - t0)
        log.info("sdxl round %d/%d done", i + 1, rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {
        "median_s": med,
        "overhead_pct_vs_bare": {k: 100 * (v / med["bare"] - 1) for k, v in med.items()},
        "times": times,
        "rounds": rounds,
    }
    (OUT / "sdxl_overhead.json").write_text(json.dumps(res, indent=1))
    log.info("sdxl overhead %%: %s", {k: round(v, 2) for k, v in res["overhead_pct_vs_bare"].items()})
    r.close()


def frontier(config: str, points: list[str], n_cases: int = 2) -> None:
    from evalsuite.scenarios.frontier import FrontierSpec
    from evalsuite.scenarios.frontier import frontier as run

    mode = os.environ.get("COMPILE_MODE", "default")
    spec = FrontierSpec(
        configs=[config],
        points=points,
        n_cases=n_cases,
        seeds=[0],
        bootstrap_resamples=1000,
        compile_mode=mode,
    )
    over = ["tiny_size=32", "steps=3"] if WEIGHTS == "tiny" else []
    run(
        spec,
        weights=WEIGHTS,
        device=DEVICE,
        out=RUNS,
        run_id=f"frontier-{config}" + ("" if mode == "default" else f"-{mode}"),
        overrides=over,
        mirror=OUT,
    )


def budget(config: str, budgets: list[float], max_seconds: float) -> None:
    from evalsuite.scenarios.plan import PlanSpec, plan

    over = ["tiny_size=32", "steps=2"] if WEIGHTS == "tiny" else []
    spec = PlanSpec(config, budgets, reps=int(os.environ.get("PLAN_REPS", "2")), max_seconds=max_seconds)
    if os.environ.get("PLAN_STRATEGIES"):
        spec.strategies = os.environ["PLAN_STRATEGIES"].split(";")
    path = plan(spec, weights=WEIGHTS, device=DEVICE, out=RUNS, run_id=f"plan-{config}", overrides=over)
    for name in ("plan.md", "plan.json", "plan.png"):
        stem, ext = name.rsplit(".", 1)
        shutil.copy(path / name, OUT / f"{stem}-{config}.{ext}")


FLUX_POINTS = [
    "cache=taylorseer",
    "cache=pab",
    "cache=fbc",
    "cache=mag",
    "cache=faster",
    "attention=_native_cudnn",
    "steps=8",
    "qkv,compile=regional",
    "precision=fp8,qkv,compile=regional",
]


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    for task in argv or ["peak", "sdxl", "frontier:flux-dev"]:
        t0 = time.perf_counter()
        log.info("=== %s", task)
        try:
            if task == "peak":
                peak()
            elif task == "sdxl":
                sdxl()
            elif task.startswith("plan:"):
                name, _, secs = task.removeprefix("plan:").partition("=")
                budgets = [float(b) for b in os.environ.get("PLAN_BUDGETS", "22 16 12").split()]
                budget(name, budgets, float(secs or "inf"))
            elif task.startswith("frontier:"):
                name, _, pts = task.removeprefix("frontier:").partition("=")
                frontier(name, pts.split(";") if pts else FLUX_POINTS)
        except Exception as exc:
            log.exception("%s failed: %s", task, exc)
        log.info("=== %s: %.1f s", task, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
