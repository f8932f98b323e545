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
    try:
        with locked_run(args.run_dir, "report"):  # refused, naming the holder, while a run writes it
            path = write_report(
                args.run_dir,
                embed_images=args.embed_images,
                reference=args.reference_config,
                claims=args.claims,
            )
    except OSError as exc:  # the lock on a full disk (write_report says it for its own files)
        from evalsuite.paths import folder_size, is_no_space, no_space_error
        from evalsuite.report.report import REPORT_FILES

        if not is_no_space(exc):
            raise
        needed = folder_size(args.run_dir, *REPORT_FILES)
        raise no_space_error(exc, args.run_dir, "writing the report", needed, out=False) from exc
    _print_headline(args)
    print(f"report: {path}")
    print(f"report: {path.with_name('report.html')}")
    return EXIT_OK


def _print_headline(args: argparse.Namespace) -> None:
    """The headline and the claims' verdicts on the terminal (what report.md opens on)."""
    from evalsuite.report.headline import headline_text
    from evalsuite.report.report import build

    data = build(args.run_dir, assets=False, reference=args.reference_config, claims=args.claims)
    if data.headline is not None and data.headline.rows:
        print(headline_text(data.headline))
    if data.claims:
        print(f"\nclaims ({data.claims_name}):")
        for r in data.claims:
            print(f"  {r.verdict.upper():<15} {r.claim.id}: {r.reason}")
    elif data.claims_note:
        print(f"\n{data.claims_note}")
    print()


def add_parser(sub: Any) -> None:
    """Register ``report`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser("report", help="regenerate the report of a run directory")
    p.add_argument("run_dir", help="run directory (holds run.json)")
    p.add_argument(
        "--embed-images",
        action="store_true",
        help="embed plots and grids in report.html (one shareable file)",
    )
    p.add_argument(
        "--reference-config",
        metavar="NAME",
        default=None,
        help="configuration every other one is compared with in the headline (speed-up, paired quality "
        "deltas); default: each configuration's 28-step sibling (same runner, fewest other differences)",
    )
    p.add_argument(
        "--claims",
        metavar="FILE",
        default=None,
        help="claims YAML (or a shipped name) whose verdicts the report shows under the headline "
        "(default: the run directory's claims.yaml, else alimama-flux); see 'evalsuite claims'",
    )
    p.set_defaults(func=cmd_report)
