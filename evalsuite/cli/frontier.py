"""``evalsuite frontier``: the acceleration frontier (speed, memory and paired quality per axis point)."""

from __future__ import annotations

import argparse
from typing import Any

from evalsuite.cli.common import add_sweep_args, run_sweep
from evalsuite.vocab import METRIC_WEIGHT_MODES

DEFAULT_POINTS = [
    "cache=taylorseer",
    "cache=pab",
    "cache=fbc",
    "precision=layerwise",
    "qkv",
    "precision=fp8,qkv,compile=regional",
]


def cmd_frontier(args: argparse.Namespace) -> int:
    import pandas as pd

    from evalsuite.scenarios.frontier import FrontierSpec, frontier

    spec = FrontierSpec(
        configs=args.configs,
        points=args.points,
        reference=args.reference,
        n_cases=args.cases,
        seeds=args.seeds,
        lpips_max=args.lpips_max,
        compile_mode=args.compile_mode,
        bootstrap_resamples=args.bootstrap,
        metric_weights=args.metric_weights,
        peers=args.peers,
        compile_cache=args.compile_cache,
    )
    path = run_sweep(frontier, spec, args, show="frontier.md")
    if isinstance(path, int):
        return path
    df = pd.read_csv(path / "frontier.csv")
    return 1 if (df["status"] == "error").any() else 0


def add_parser(sub: Any) -> None:
    """Register ``evalsuite frontier`` on an argparse sub-parser collection."""
    p = sub.add_parser(
        "frontier",
        help="acceleration frontier: each axis point's s/image, memory and paired quality vs the reference "
        "(Pareto plot, fastest within LPIPS ≤ X)",
        description="Runs in the same lifecycle as 'evalsuite run' (run lock, run.json evalsuite.run/2 with "
        "kind frontier, Ctrl-C/SIGTERM write what was measured and exit 130/143). Points are comma-separated axis=value lists, e.g. 'precision=fp8,qkv,compile=regional', "
        "'cache=taylorseer', 'attention=_native_cudnn', 'memory=te_cpu+vae_tiling', 'steps=8'. Axes: steps, "
        "lora (off), precision (bf16 fp8 fp8_tensor fp8_row int8wo nf4 gguf layerwise layerwise_all), qkv, attention (a diffusers "
        "backend), cache (fbc[:thr] taylorseer pab[:skip] mag[:thr] faster), memory (see evalsuite plan), "
        "compile (full regional), vae (channels_last compile), inductor (tuned autotune persistent: Inductor options for what the "
        "point compiles), cudagraph (each denoiser call replayed from a CUDA graph; CUDA, not with cache or memory). An axis that cannot run here is listed as unavailable with its reason.",
    )
    p.add_argument("--configs", nargs="+", default=["flux-dev"], metavar="NAME")
    p.add_argument("--points", nargs="+", default=DEFAULT_POINTS, metavar="POINT", help="accelerated points")
    p.add_argument(
        "--reference", default="ref", metavar="POINT", help="reference point (default: as configured)"
    )
    p.add_argument("--cases", type=int, default=2, help="usable cases of the dataset per point (default 2)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds per case (default 0)")
    p.add_argument(
        "--lpips-max",
        nargs="+",
        type=float,
        default=[0.05, 0.1, 0.2],
        metavar="X",
        help="thresholds of the 'fastest within paired LPIPS ≤ X' table",
    )
    p.add_argument(
        "--metric-weights",
        choices=METRIC_WEIGHT_MODES,
        default=None,
        help="LPIPS/CLIP feature weights (default: from --weights)",
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="also measure the recipes users copy: diffusers' bf16 'qkv,compile=regional' and the torchao "
        "fp8 recipe 'precision=fp8,qkv,compile=regional' (needs pip install 'evalsuite[accel]')",
    )
    p.add_argument("--compile-mode", default="default")
    p.add_argument(
        "--compile-cache",
        default=None,
        metavar="DIR",
        help="folder of torch.compile cache artifacts: loaded before the first compiled point (a fresh "
        "machine then skips the compile it already did elsewhere, same torch and GPU), and what this run "
        "compiles new is written there as <run id>-<k>.bin. The files hold compiled code: use only folders "
        "your own runs wrote",
    )
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples per CI")
    add_sweep_args(
        p,
        "frontier-<weights>-<time>",
        "where the cases come from: the first --cases usable ones",
    )
    p.set_defaults(func=cmd_frontier)
