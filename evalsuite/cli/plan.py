"""``evalsuite plan CONFIG --budget 22GiB``: the fastest measured memory strategy under each budget."""

from __future__ import annotations

import argparse
from typing import Any

from evalsuite.cli.common import add_sweep_args, run_sweep


def cmd_plan(args: argparse.Namespace) -> int:
    from evalsuite.scenarios.plan import DEFAULT_STRATEGIES, PlanSpec, parse_gib, plan

    spec = PlanSpec(
        config=args.config,
        budgets=[parse_gib(b) for b in args.budget],
        strategies=args.strategies or list(DEFAULT_STRATEGIES),
        reps=args.reps,
        verify=not args.no_verify,
    )
    path = run_sweep(plan, spec, args, show="plan.md")
    if isinstance(path, int):
        return path
    import json

    choices = json.loads((path / "run.json").read_text(encoding="utf-8"))["plan"]["choices"]
    return 0 if all(c["strategy"] for c in choices) else 1


def add_parser(sub: Any) -> None:
    """Register ``evalsuite plan`` on an argparse sub-parser collection."""
    p = sub.add_parser(
        "plan",
        help="fit a memory budget: measure component sizes and memory strategies, print the fastest under "
        "each budget and verify it under an enforced cap",
        description="Strategies are points with precision= and memory= axes, e.g. 'memory=te_cpu', "
        "'precision=layerwise,memory=te_cpu+group_block:1:stream'. memory parts: resident te_offload te_cpu "
        "model_offload sequential group_block[:N][:stream] group_leaf[:stream] vae_tiling vae_slicing "
        "empty_cache. The exit code is 1 when some budget has no fitting strategy. Runs in the same lifecycle as "
        "'evalsuite run' (run lock, run.json evalsuite.run/2 with kind plan, Ctrl-C/SIGTERM exit 130/143).",
    )
    p.add_argument("config", help="configuration name")
    p.add_argument("--budget", nargs="+", default=["22GiB"], metavar="SIZE", help="e.g. 22GiB 16GiB 12GiB")
    p.add_argument(
        "--strategies", nargs="+", default=None, metavar="STRATEGY", help="default: a built-in list"
    )
    p.add_argument(
        "--reps", type=int, default=2, help="warm calls per strategy after one cold call (default 2)"
    )
    p.add_argument("--no-verify", action="store_true", help="skip the run under an enforced cap")
    add_sweep_args(p, "plan-<config>-<weights>-<time>", "where the case comes from: the first usable one")
    p.set_defaults(func=cmd_plan)
