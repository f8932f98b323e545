"""The ``evalsuite`` command line: a thin layer over the Python API.

One module per subcommand (:mod:`evalsuite.cli.run`, ``runners``, ``datasets``, ``report``,
``compare``, ``claims``, ``score``, ``profile``, ``frontier``, ``plan``, ``catalog``); this one builds the parser, sets up logging and maps errors
to exit codes. Heavy modules (torch, diffusers, pandas) are imported inside the command functions.

Exit codes: 0 success; 1 the run finished but some rows failed (or a comparison regressed);
2 unusable input (unknown configuration/metric/dataset, invalid manifest or override);
3 the run directory is locked by another live run; 130 interrupted (Ctrl-C), 143 stopped by SIGTERM,
after writing everything. An internal error after generation started exits 1 (rows and images kept).
The code is chosen by the exception's class (:mod:`evalsuite.errors`), never by a built-in base: an
evalsuite error prints one line ``evalsuite: error: …`` (traceback at DEBUG, ``-v``); any other
exception is a bug and exits 1 with its traceback.

Logging: ``evalsuite`` messages at INFO and other libraries' at WARNING by default; ``-v`` shows
evalsuite's DEBUG messages; ``-vv`` also the libraries' (diffusers, transformers, huggingface_hub...).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from evalsuite.cli import EXIT_FAILED_ROWS, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from evalsuite.cli import catalog as catalog_cli
from evalsuite.cli import claims as claims_cli
from evalsuite.cli import compare as compare_cli
from evalsuite.cli import datasets as datasets_cli
from evalsuite.cli import frontier as frontier_cli
from evalsuite.cli import plan as plan_cli
from evalsuite.cli import profile as profile_cli
from evalsuite.cli import report as report_cli
from evalsuite.cli import run as run_cli
from evalsuite.cli import runners as runners_cli
from evalsuite.cli import score as score_cli
from evalsuite.cli.report import cmd_report
from evalsuite.cli.run import cmd_run
from evalsuite.cli.runners import cmd_runners
from evalsuite.errors import EvalsuiteError, exit_code_of

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED_ROWS",
    "EXIT_USAGE",
    "EXIT_LOCKED",
    "EXIT_INTERRUPTED",
    "build_parser",
    "main",
    "cmd_run",
    "cmd_runners",
    "cmd_report",
]

log = logging.getLogger("evalsuite")

#: Libraries whose INFO chatter is hidden unless ``-vv``.
NOISY_LOGGERS = ("httpx", "urllib3", "diffusers", "transformers", "huggingface_hub", "filelock", "PIL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalsuite",
        description="Evaluate and benchmark diffusion inpainting models. With no subcommand: run the built-in "
        "smoke suite (every configuration, tiny weights, CPU).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging: -v evalsuite's debug messages, -vv also those of diffusers, transformers, "
        "huggingface_hub (default: evalsuite at INFO, libraries at WARNING)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_cli.add_parser(sub)
    runners_cli.add_parser(sub)
    datasets_cli.add_parser(sub)
    report_cli.add_parser(sub)
    compare_cli.add_parser(sub)
    claims_cli.add_parser(sub)
    score_cli.add_parser(sub)
    profile_cli.add_parser(sub)
    frontier_cli.add_parser(sub)
    plan_cli.add_parser(sub)
    catalog_cli.add_parser(sub)
    return parser


def configure_logging(verbose: int) -> None:
    """Logging of the command line: see the module docstring."""
    root_level = logging.DEBUG if verbose >= 2 else logging.WARNING
    logging.basicConfig(level=root_level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(root_level)  # also when a handler was installed before (embedding, pytest)
    logging.getLogger("evalsuite").setLevel(logging.DEBUG if verbose >= 1 else logging.INFO)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.NOTSET if verbose >= 2 else logging.ERROR)


def report_error(exc: BaseException) -> int:
    """Print ``exc`` the way every command reports a failure and return its exit code (see
    :mod:`evalsuite.errors`): an :class:`~evalsuite.errors.EvalsuiteError` is one line
    ``evalsuite: error: <message>`` (its traceback is logged at DEBUG, shown with ``-v``); any other
    exception is a bug: its traceback is printed, exit 1."""
    from evalsuite.paths import no_space_cause, no_space_error

    full = no_space_cause(exc)
    if full is not None and not isinstance(exc, EvalsuiteError):  # a full disk is no bug: one line
        log.debug("traceback of the full disk", exc_info=exc)
        where = Path(str(full.filename)).parent if full.filename else Path.cwd()
        exc = no_space_error(full, where, "writing", 0, out=False)
    if isinstance(exc, EvalsuiteError):
        print(f"evalsuite: error: {exc}", file=sys.stderr)
        log.debug("traceback of the error above", exc_info=exc)
    else:
        print(
            "evalsuite: internal error (a bug; please report it with the traceback below):", file=sys.stderr
        )
        traceback.print_exception(exc, file=sys.stderr)
    return exit_code_of(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``evalsuite`` / ``python -m evalsuite``; returns the exit code.

    Exit codes come from the exception's class only (:func:`evalsuite.errors.exit_code_of`): a usage
    error 2, a locked run 3, any other error 1 (a non-evalsuite exception is a bug: traceback shown).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("evalsuite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return report_error(exc)


if __name__ == "__main__":
    raise SystemExit(main())
