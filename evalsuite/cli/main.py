"""The ``evalsuite`` command line: a thin layer over the Python API.

Exit codes: 0 success; 1 the run finished but some rows failed (or a comparison regressed);
2 unusable input (unknown configuration/metric/dataset, invalid manifest or override);
3 the run directory is locked by another live run; 130 interrupted (Ctrl-C), 143 stopped by SIGTERM,
after writing everything. An internal error after generation started exits 1 (rows and images kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

import yaml

from evalsuite.cli import score as score_cli
from evalsuite.cli.compare import add_parser as add_compare_parser
from evalsuite.cli.score import add_metric_weight_args

log = logging.getLogger("evalsuite")

EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


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
        choices=["tiny", "random", "hub"],
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
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[CONFIG.]FIELD=VALUE",
        help="override a configuration parameter, e.g. --set flux-cn-beta.steps=20 (repeatable; "
        "without CONFIG. it applies to every selected configuration that has FIELD)",
    )
    p.add_argument(
        "--config-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="extra folder of configuration YAML files (repeatable)",
    )
    p.add_argument(
        "--metrics",
        nargs="*",
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
    add_metric_weight_args(p)


def cmd_run(args: argparse.Namespace) -> int:
    from evalsuite.config.runconfig import RunConfig
    from evalsuite.engine.generate import InternalRunError, RunInterrupted, run

    try:
        result = run(RunConfig.from_args(args))
    except RunInterrupted as exc:
        print(f"run directory: {exc.result.run_dir}")
        print(
            f"INTERRUPTED: {exc.result.summary_line()} written; rerun the same command to resume",
            file=sys.stderr,
        )
        return exc.exit_code  # 130 after Ctrl-C, 143 after SIGTERM
    except InternalRunError as exc:
        print(f"evalsuite: error: {exc}", file=sys.stderr)
        return EXIT_FAILED_ROWS
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


def cmd_runners(args: argparse.Namespace) -> int:
    from evalsuite.config import configuration as cfg
    from evalsuite.registry import RUNNERS

    names = args.names or cfg.available(args.config_dir)
    ovs = [cfg.Override.parse(o) for o in args.overrides]
    out = {}
    for name in names:
        c = cfg.resolve(name, ovs, args.config_dir)
        out[name] = {
            "runner": c.runner,
            "task": RUNNERS.get(c.runner).task,
            "description": c.description,
            "source": c.source,
            "params": c.params_dict(),
        }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(yaml.safe_dump(out, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from evalsuite.engine.lock import locked_run
    from evalsuite.report.report import write_report

    with locked_run(args.run_dir, "report"):  # refused, naming the holder, while a run writes it
        path = write_report(args.run_dir, embed_images=args.embed_images)
    print(f"report: {path}")
    print(f"report: {path.with_name('report.html')}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalsuite",
        description="Evaluate and benchmark diffusion inpainting models. With no subcommand: run the built-in "
        "smoke suite (every configuration, tiny weights, CPU).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="generate images for configurations × cases × seeds, score, report")
    _add_run_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("runners", help="list configurations with their fully resolved parameters")
    p.add_argument("names", nargs="*", help="configurations to show (default: all)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[CONFIG.]FIELD=VALUE",
        help="show the parameters after this override",
    )
    p.add_argument(
        "--config-dir", action="append", default=[], metavar="DIR", help="extra folder of configuration YAML"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(func=cmd_runners)

    from evalsuite.cli.datasets import add_parser as add_datasets_parser

    add_datasets_parser(sub)

    p = sub.add_parser("report", help="regenerate the report of a run directory")
    p.add_argument("run_dir", help="run directory (holds run.json)")
    p.add_argument(
        "--embed-images",
        action="store_true",
        help="embed plots and grids in report.html (one shareable file)",
    )
    p.set_defaults(func=cmd_report)
    add_compare_parser(sub)
    score_cli.add_parser(sub)
    from evalsuite.engine.profile import add_parser as add_profile_parser

    add_profile_parser(sub)
    return parser


def _usage_errors() -> tuple[type[BaseException], ...]:
    from evalsuite.config.configuration import ConfigError
    from evalsuite.data.cases import ManifestError
    from evalsuite.registry import RegistryError

    return (ConfigError, ManifestError, RegistryError, FileNotFoundError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``evalsuite`` / ``python -m evalsuite``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "urllib3", "diffusers", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    import evalsuite  # noqa: F401  (registers built-ins)
    from evalsuite.engine.lock import RunLockedError

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except _usage_errors() as exc:
        print(f"evalsuite: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunLockedError as exc:
        print(f"evalsuite: error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except KeyboardInterrupt:
        print("evalsuite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
