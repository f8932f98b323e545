"""``evalsuite profile``: speed/VRAM/energy sweeps (the scenario is :mod:`evalsuite.scenarios.profile`).

torch, diffusers and pandas are imported inside :func:`cmd_profile`, not here.
"""

from __future__ import annotations

import argparse
from typing import Any

from evalsuite.cli.common import add_sweep_args, run_sweep
from evalsuite.config.profile import DTYPES, MEMORY_MODES


def _on_off(v: str) -> bool:
    if v not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {v!r}")
    return v == "on"


def cmd_profile(args: argparse.Namespace) -> int:
    import pandas as pd

    from evalsuite.scenarios.profile import ProfileSpec, profile

    spec = ProfileSpec(
        configs=args.configs,
        resolutions=args.resolutions or [],
        batches=args.batches,
        steps=args.steps or [],
        dtypes=args.dtypes,
        memory_modes=args.memory_modes,
        compile=args.compile,
        compile_mode=args.compile_mode,
        fp8_backend=args.fp8_backend,
        min_reps=args.min_reps,
        min_seconds=args.min_seconds,
        max_reps=args.max_reps,
        baseline=not args.no_baseline,
        overhead_pairs=args.overhead_pairs,
        save_images=args.save_images,
        peak_seconds=args.peak_seconds,
    )
    path = run_sweep(profile, spec, args, show="profile.md")
    if isinstance(path, int):
        return path
    df = pd.read_csv(path / "profile.csv")
    return 1 if (df["status"] != "ok").any() else 0


def add_parser(sub: Any) -> None:
    """Register ``evalsuite profile`` on an argparse sub-parser collection."""
    p = sub.add_parser(
        "profile",
        help="speed/VRAM/energy sweep: configs × resolution × batch × steps × dtype × "
        "memory mode × compile (random weights by default)",
    )
    p.add_argument(
        "--configs", nargs="+", default=["flux-dev"], metavar="NAME", help="configurations (default flux-dev)"
    )
    p.add_argument(
        "--resolutions",
        nargs="+",
        type=int,
        default=None,
        metavar="PX",
        help="square sides in pixels (default: each configuration's own)",
    )
    p.add_argument("--batches", nargs="+", type=int, default=[1], metavar="N", help="batch sizes (default 1)")
    p.add_argument(
        "--steps",
        nargs="+",
        type=int,
        default=None,
        metavar="N",
        help="denoising steps (default: each configuration's own)",
    )
    p.add_argument("--dtypes", nargs="+", default=["bf16"], choices=sorted(DTYPES), help="default bf16")
    p.add_argument("--memory-modes", nargs="+", default=["gpu"], choices=MEMORY_MODES, help="default gpu")
    p.add_argument(
        "--compile",
        nargs="+",
        type=_on_off,
        default=[False],
        metavar="on|off",
        help="torch.compile the denoiser: off, on, or 'off on' for both (default off)",
    )
    p.add_argument(
        "--compile-mode",
        default="default",
        help="torch.compile mode (default; max-autotune-no-cudagraphs takes minutes to compile)",
    )
    p.add_argument(
        "--fp8-backend",
        default="auto",
        choices=["auto", "torchao", "scaled_mm"],
        help="fp8 matmul implementation for dtype fp8 (auto: torchao if installed, else torch._scaled_mm)",
    )
    p.add_argument("--min-reps", type=int, default=3, help="minimum warm calls per point (default 3)")
    p.add_argument(
        "--overhead-pairs",
        type=int,
        default=0,
        metavar="N",
        help="alternating (bare call, harness call) pairs for the paired harness overhead and its CI "
        "(default max(3, --min-reps))",
    )
    p.add_argument(
        "--min-seconds", type=float, default=5.0, help="minimum warm seconds per point (default 5)"
    )
    p.add_argument("--max-reps", type=int, default=50, help="maximum warm calls per point (default 50)")
    p.add_argument("--peak-seconds", type=float, default=2.0, help="seconds per matmul peak measurement")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare diffusers baseline")
    p.add_argument(
        "--save-images",
        action="store_true",
        help="store one image per point (to price fp8/compile/steps with a paired metric)",
    )
    add_sweep_args(p, "profile-<weights>-<time>", "where the profile case comes from")
    p.set_defaults(func=cmd_profile)
