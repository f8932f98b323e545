"""``evalsuite report RUN_DIR``: regenerate report.md and report.html of a stored run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evalsuite.cli import EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from evalsuite.engine.lock import locked_run
    from evalsuite.report.report import check_writable, write_report
    from evalsuite.report.tables import read_run_meta
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


#: Where the report of each sweep kind lives, and the command that writes it.
SWEEP_REPORTS = {
    "profile": ("profile.md", "evalsuite profile"),
    "frontier": ("frontier.md", "evalsuite frontier"),
    "plan": ("plan.md", "evalsuite plan"),
}


def refuse_sweep_run(run_dir: Path, meta: dict[str, Any], command: str) -> None:
    """``evalsuite report``/``score`` work on ``evalsuite run`` directories: refuse a sweep's
    directory (profile, frontier, plan) naming its kind, its report and the command that fits,
    before anything is written.

    Raises:
        RunConfigError: for a sweep run (exit 2).
    """
    from evalsuite.config.runconfig import RunConfigError

    kind = meta.get("kind", "generate")
    if kind in SWEEP_REPORTS:
        md, writer = SWEEP_REPORTS[kind]
        raise RunConfigError(
            f"{run_dir} is a {kind} run (run.json kind {kind!r}); 'evalsuite {command}' works on 'evalsuite run' "
            f"directories. Its report is {run_dir / md}, written by '{writer}' (rerun it with the same "
            "arguments to rewrite it); compare two such runs with 'evalsuite compare'"
        )


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
