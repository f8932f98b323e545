"""``evalsuite run``: generate images for configurations × cases × seeds, score them, write the report.

torch, diffusers and pandas are imported inside :func:`cmd_run` (through the engine), not here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from evalsuite.cli import EXIT_FAILED_ROWS, EXIT_OK
from evalsuite.cli.common import NameList, add_catalog_args, add_config_args, register
from evalsuite.cli.score import add_metric_weight_args
from evalsuite.vocab import WEIGHT_POLICIES


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--configs",
        nargs="+",
        default=None,
        metavar="NAME",
        help="configurations to run ('all' = every configuration; default: all). See 'evalsuite runners'.",
    )
    p.add_argument(
        "--dataset",
        default="smoke",
        help="dataset name (see 'evalsuite datasets') or a folder/manifest.jsonl path (default: smoke)",
    )
    p.add_argument(
        "--weights",
        choices=WEIGHT_POLICIES,
        default="tiny",
        help="weights policy: tiny (small random models, CPU), random (full-size random weights: "
        "speed/VRAM only), hub (real checkpoints). Default: tiny",
    )
    p.add_argument(
        "--weights-dir",
        default=None,
        metavar="DIR",
        help="folder of pre-downloaded model folders for air-gapped machines "
        "(also EVALSUITE_WEIGHTS_DIR); a model id org/name is looked up as DIR/org/name",
    )
    p.add_argument(
        "--out", default="reports", metavar="DIR", help="root of run directories (default: reports)"
    )
    p.add_argument(
        "--run-id",
        default=None,
        help="run directory name under --out (a name: no path separators, not '..'); default is derived "
        "from configs, dataset, weights and seeds, so rerunning the same command resumes the same run "
        "(finished rows made with other parameters or case bytes are regenerated)",
    )
    p.add_argument(
        "--run-dir", default=None, metavar="DIR", help="explicit run directory (overrides --out/--run-id)"
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds per case (default: each case's own seed from the manifest)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:N, mps (where torch has it), or auto (cuda if available and --weights is not "
        "tiny; else cpu)",
    )
    add_config_args(p)
    p.add_argument(
        "--metrics",
        nargs="*",
        action=NameList,
        default=None,
        metavar="NAME",
        help="metrics to score at the end (default: every metric that applies to the configurations' "
        "tasks, see 'evalsuite score --help'); pass --metrics with no name to skip",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N cases of the dataset (N ≥ 1)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--allow-outside-paths",
        action="store_true",
        help="let manifest image/mask paths point outside the dataset folder (refused by default)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="build full-size random/hub weights on the CPU even when their estimated size exceeds the "
        "available memory (refused by default, with the estimate)",
    )
    add_metric_weight_args(p)
    add_catalog_args(p)


def cmd_run(args: argparse.Namespace) -> int:
    from evalsuite.config.runconfig import RunConfig
    from evalsuite.scenarios.generate import RunInterrupted, run

    try:
        result = run(RunConfig.from_args(args))
    except RunInterrupted as exc:
        print(f"run directory: {exc.result.run_dir}")
        print(
            f"INTERRUPTED: {exc.result.summary_line()} written; rerun the same command to resume",
            file=sys.stderr,
        )
        return exc.exit_code  # 130 after Ctrl-C, 143 after SIGTERM
    # any error propagates to evalsuite.cli.main.main, which maps it by class (InternalRunError: 1)
    register(args, result.run_dir)
    n = len(result.samples)
    print(f"run directory: {result.run_dir}")
    print(f"report: {result.run_dir / 'report.md'} (and report.html)")
    if not result.ok:
        print(
            f"FAILED: {result.n_errors} of {n} rows failed ({result.summary_line()}; see the report's "
            "Failures section)",
            file=sys.stderr,
        )
        return EXIT_FAILED_ROWS
    print(f"{result.summary_line()}; no failures")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``run`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser("run", help="generate images for configurations × cases × seeds, score, report")
    _add_run_args(p)
    p.set_defaults(func=cmd_run)
