"""The ``evalsuite compare`` subcommand (argument parsing only; the work is in :mod:`evalsuite.compare`).

Kept apart so that ``evalsuite --help`` does not import pandas/matplotlib.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_compare(args: argparse.Namespace) -> int:
    """``evalsuite compare``: print the verdict, write the files, return the exit code (0/1/2)."""
    from evalsuite.compare.engine import compare_runs, load_thresholds, write_compare
    from evalsuite.report.formatting import fmt

    thresholds = load_thresholds(args.thresholds) if args.thresholds else None
    cmp = compare_runs(args.run_a, args.run_b, thresholds, args.allow_different_data)
    out = Path(args.out) if args.out else Path(args.run_b) / f"compare-vs-{cmp.a.name}"
    write_compare(cmp, out, args.embed_images, args.top)
    for v in cmp.verdicts:
        if v.status != "pass":
            print(f"{v.status}: {v.config} {v.metric}: change {fmt(v.change)} ({v.rule})")
    print(f"compare: {out / 'compare.md'}")
    print(f"compare: {out / 'compare.html'}")
    print(cmp.verdict_text)
    return cmp.exit_code


def add_parser(sub: Any) -> None:
    """Register ``compare`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser(
        "compare",
        help="compare two runs (B against baseline A): paired deltas, ratios, verdict",
        description="Compare run B against baseline run A on the (configuration, case, seed) rows both "
        "have. Exit code 0: nothing regresses beyond its threshold; 1: something does (or "
        "rows ok in A fail in B); 2: unusable input.",
    )
    p.add_argument("run_a", help="baseline run directory")
    p.add_argument("run_b", help="candidate run directory")
    p.add_argument(
        "--thresholds",
        metavar="FILE",
        help="YAML list of {metric, max_regression, mode, direction, configs, require_significance} "
        "(the format the pytest baselines use too); see docs/reports.md#thresholds",
    )
    p.add_argument(
        "--allow-different-data",
        action="store_true",
        help="compare even when the dataset fingerprints differ (shared case ids only)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN_B/compare-vs-<run A id>)")
    p.add_argument("--top", type=int, default=6, help="cases in the most-changed grid (default 6)")
    p.add_argument(
        "--embed-images", action="store_true", help="embed images in compare.html (one shareable file)"
    )
    p.set_defaults(func=cmd_compare)
