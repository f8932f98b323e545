"""Arguments and error handling the subcommands share (light: no torch, diffusers or pandas here).

* :func:`add_config_args`: ``--set`` and ``--config-dir`` (``run``, ``runners``, ``profile``,
  ``frontier``, ``plan``);
* :func:`add_sweep_args`: the arguments of the sweep commands (``profile``, ``frontier``, ``plan``):
  weights policy, dataset, device, output folder, run id, and :func:`add_config_args`;
* :func:`run_sweep`: call a sweep through the shared run lifecycle and map its outcome to an
  exit code the way ``evalsuite run`` does (130 after Ctrl-C, 143 after SIGTERM); every error
  propagates to :func:`evalsuite.cli.main.main`, which maps it by class (:mod:`evalsuite.errors`:
  2 for a usage error, 1 for an internal error after the sweep started, with the rows kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalsuite.vocab import WEIGHT_POLICIES


class NameList(argparse.Action):
    """``--metrics a b c`` and ``--metrics a,b,c`` alike: names split on commas and spaces, empty
    names dropped (docs and users write both)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        items = [values] if isinstance(values, str) else list(values or [])
        setattr(namespace, self.dest, [n.strip() for v in items for n in str(v).split(",") if n.strip()])


def add_config_args(p: argparse.ArgumentParser, set_help: str | None = None) -> None:
    """``--set [CONFIG.]FIELD=VALUE`` (repeatable) and ``--config-dir DIR`` (repeatable)."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[CONFIG.]FIELD=VALUE",
        help=set_help
        or "override a configuration parameter, e.g. --set flux-cn-beta.steps=20 (repeatable; without "
        "CONFIG. it applies to every selected configuration that has FIELD)",
    )
    p.add_argument(
        "--config-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="extra folder of configuration YAML files (repeatable)",
    )


def add_sweep_args(p: argparse.ArgumentParser, default_id: str, dataset_help: str) -> None:
    """The arguments every sweep command takes (see the module docstring)."""
    p.add_argument(
        "--weights",
        choices=WEIGHT_POLICIES,
        default="random",
        help="weights policy (default random: full-size architectures, no download)",
    )
    p.add_argument("--dataset", default="smoke", help=f"{dataset_help} (default smoke)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--out", default="reports", metavar="DIR", help="root of run directories")
    p.add_argument(
        "--run-id",
        default=None,
        help=f"run directory name under --out (a name: no path separators, not '..'; default {default_id})",
    )
    add_config_args(p)


def sweep_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a sweep's Python entry point from :func:`add_sweep_args`' options."""
    return {
        "weights": args.weights,
        "device": args.device,
        "out": args.out,
        "run_id": args.run_id,
        "overrides": args.overrides,
        "config_dirs": args.config_dir,
        "dataset": args.dataset,
    }


def run_sweep(
    entry: Callable[..., Path], spec: Any, args: argparse.Namespace, show: str, **extra: Any
) -> Path | int:
    """``entry(spec, **sweep_kwargs(args), **extra)``, then print the run's ``show`` file (its
    Markdown table) and directory; returns the run directory, or the exit code when the sweep was
    stopped by a signal (130/143; what was measured is written)."""
    from evalsuite.engine.lifecycle import RunInterrupted

    try:
        path = entry(spec, **sweep_kwargs(args), **extra)
    except RunInterrupted as exc:
        print(f"run directory: {exc.result}")
        print("INTERRUPTED: the points measured so far are written", file=sys.stderr)
        return exc.exit_code
    print((path / show).read_text(encoding="utf-8"))
    print(f"run directory: {path}")
    return path
