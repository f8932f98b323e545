"""``evalsuite report RUN_DIR``: regenerate report.md and report.html of a stored run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evalsuite.cli import EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from evalsuite.engine.lock import locked_run
    from evalsuite.report.report import check_writable, refuse_sweep_run, write_report
    from evalsuite.results.run import read_run_meta
    from evalsuite.results.store import RunStore

    if (Path(args.run_dir) / "run.json").is_file():  # refuse a damaged or read-only run before locking it
        meta = read_run_meta(RunStore(args.run_dir))
        refuse_sweep_run(Path(args.run_dir), meta, "report")
        check_writable(args.run_dir, "report", "report.md, report.html, summary.csv, plots/ and grids/")
    with locked_run(args.run_dir, "report"):  # refused, naming the holder, while a run writes it
        path = write_report(args.run_dir, embed_images=args.embed_images)
    print(f"report: {path}")
    print(f"report: {path.with_name('report.html')}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``report`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser("report", help="regenerate the report of a run directory")
    p.add_argument("run_dir", help="run directory (holds run.json)")
    p.add_argument(
        "--embed-images",
        action="store_true",
        help="embed plots and grids in report.html (one shareable file)",
    )
    p.set_defaults(func=cmd_report)
