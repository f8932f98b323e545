"""Arguments and error handling the subcommands share (light: no torch, diffusers or pandas here).

* :func:`add_config_args`: ``--set`` and ``--config-dir`` (``run``, ``runners``, ``profile``,
  ``frontier``, ``plan``);
* :func:`add_sweep_args`: the arguments of the sweep commands (``profile``, ``frontier``, ``plan``):
  weights policy, dataset, device, output folder, run id, and :func:`add_config_args`, built from the
  fields of :class:`~evalsuite.config.runconfig.SweepConfig` (their help text lives there);
* :func:`add_catalog_args` / :func:`register`: ``--label``, ``--catalog`` and ``--no-catalog`` of
  the commands that register their run in the results catalog at the end (:mod:`evalsuite.catalog`);
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


class NameList(argparse.Action):
    """``--metrics a b c`` and ``--metrics a,b,c`` alike: names split on commas and spaces, empty
    names dropped (docs and users write both)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        items = [values] if isinstance(values, str) else list(values or [])
        setattr(namespace, self.dest, [n.strip() for v in items for n in str(v).split(",") if n.strip()])


def _add_field(p: argparse.ArgumentParser, f: Any, help: str | None = None, **fill: str) -> None:
    """The option of a :class:`~evalsuite.config.runconfig.SweepConfig` field, from its metadata."""
    import dataclasses

    md = f.metadata
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    p.add_argument(md["flag"], default=default, help=help or md["help"].format(**fill), **md["argparse"])


def _field(name: str) -> Any:
    from evalsuite.config.runconfig import SweepConfig

    return next(f for f in SweepConfig.cli_fields() if f.name == name)


def add_config_args(p: argparse.ArgumentParser, set_help: str | None = None) -> None:
    """``--set [CONFIG.]FIELD=VALUE`` (repeatable) and ``--config-dir DIR`` (repeatable), from
    :class:`~evalsuite.config.runconfig.SweepConfig`'s ``overrides`` and ``config_dirs``."""
    _add_field(p, _field("overrides"), set_help)
    _add_field(p, _field("config_dirs"))


def add_sweep_args(p: argparse.ArgumentParser, default_id: str, dataset_help: str) -> None:
    """The arguments every sweep command takes: one per field of
    :class:`~evalsuite.config.runconfig.SweepConfig`, with the help its metadata carries
    (``default_id`` and ``dataset_help`` filled in)."""
    from evalsuite.config.runconfig import SweepConfig

    for f in SweepConfig.cli_fields():
        if f.name not in ("overrides", "config_dirs"):
            _add_field(p, f, default_id=default_id, dataset_help=dataset_help)
    add_config_args(p)
    add_catalog_args(p)


def add_catalog_args(p: argparse.ArgumentParser) -> None:
    """``--label``, ``--catalog PATH`` and ``--no-catalog`` (``run``, ``profile``, ``frontier``, ``plan``)."""
    p.add_argument(
        "--label",
        default=None,
        metavar="LABEL",
        help="name the run (e.g. a release, v0.4.0): written into run.json; the catalog's trends and "
        "regressions show labels where given, commits otherwise",
    )
    p.add_argument(
        "--catalog",
        default=None,
        metavar="PATH",
        help="the results catalog to register the run in (default: EVALSUITE_CATALOG, else "
        "catalog.duckdb in the run directory's parent folder)",
    )
    p.add_argument(
        "--no-catalog",
        action="store_true",
        help="do not register the run in the results catalog",
    )


def register(args: argparse.Namespace, run_dir: Path) -> None:
    """Register ``run_dir`` in the catalog as :func:`add_catalog_args`' options say (a failure warns)."""
    from evalsuite.catalog.register import register_run

    register_run(run_dir, args.catalog, args.label, enabled=not args.no_catalog)


def sweep_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a sweep's Python entry point from :func:`add_sweep_args`' options."""
    from evalsuite.config.runconfig import SweepConfig

    return SweepConfig.from_args(args).entry_kwargs()


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
    register(args, path)
    print((path / show).read_text(encoding="utf-8"))
    print(f"run directory: {path}")
    return path
