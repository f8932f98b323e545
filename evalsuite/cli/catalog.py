"""``evalsuite catalog``: the results catalog (docs/catalog.md) — ``list``, ``index``, ``rebuild``,
``label``, ``trend``, ``regressions``, ``site``, ``query``.

Light: duckdb, pandas and matplotlib are imported inside the commands (``evalsuite catalog --help``
imports none of them). The catalog file is ``--catalog PATH``, else ``EVALSUITE_CATALOG``, else
``reports/catalog.duckdb``. ``regressions`` exits like ``evalsuite compare``: 0 nothing regressed,
1 a regression, 2 unusable input.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from evalsuite.cli import EXIT_OK


def _catalog_path(args: argparse.Namespace) -> Path:
    from evalsuite.catalog.db import default_path

    return Path(args.catalog) if args.catalog else default_path(None)


def _print_table(cols: list[str], rows: list[Any], fmt: str = "table") -> None:
    if fmt == "json":
        print(json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str, indent=1))
        return
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows([["" if v is None else v for v in r] for r in rows])
        return
    text = [[("–" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in text:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import Catalog

    with Catalog(_catalog_path(args), read_only=True) as cat:
        runs = cat.list_runs(
            args.config, args.dataset, args.device, args.kind, args.label, args.since, args.limit
        )
    cols = ["run_id", "kind", "label", "started", "configs", "dataset_name", "gpu_name", "weights_policy",
            "git_commit", "n_rows", "n_ok", "n_error"]  # fmt: skip
    if args.paths:
        cols.append("path")
    _print_table(cols, [[r[c] for c in cols] for r in runs], args.format)
    return EXIT_OK


def cmd_index(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import Catalog

    path = _catalog_path(args)
    with Catalog(path) as cat:
        if args.command_name == "rebuild":
            report = cat.rebuild(args.dirs or ([] if cat.roots() else [str(path.parent)]))
        else:
            report = cat.index(args.dirs or cat.roots() or [str(path.parent)])
    for where, why in report.skipped.items():
        print(f"skipped {where}: {why}", file=sys.stderr)
    print(f"{path}: {report.line()}")
    return EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import Catalog

    with Catalog(_catalog_path(args)) as cat:
        where = cat.set_label(args.run, args.label)
    print(f"{where}: label {args.label}")
    return EXIT_OK


def cmd_trend(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import Catalog
    from evalsuite.catalog.history import plot_trend, trend, trend_table

    with Catalog(_catalog_path(args), read_only=True) as cat:
        t = trend(cat, args.metric, args.config, args.dataset, args.device)
    print(trend_table(t))
    if args.plot:
        print(f"plot: {plot_trend(t, args.plot)}")
    return EXIT_OK


def cmd_regressions(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import Catalog
    from evalsuite.catalog.history import regressions, regressions_table
    from evalsuite.compare.thresholds import load_thresholds

    thresholds = load_thresholds(args.thresholds) if args.thresholds else None
    with Catalog(_catalog_path(args), read_only=True) as cat:
        res = regressions(cat, thresholds, args.window, args.config, args.latest)
    print(regressions_table(res, args.all))
    return res.exit_code


def cmd_site(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import Catalog
    from evalsuite.catalog.site import write_site
    from evalsuite.compare.thresholds import load_thresholds

    thresholds = load_thresholds(args.thresholds) if args.thresholds else None
    with Catalog(_catalog_path(args), read_only=True) as cat:
        index = write_site(cat, args.out_dir, thresholds)
    print(f"site: {index}")
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    from evalsuite.catalog.db import query

    cols, rows = query(_catalog_path(args), args.sql)
    _print_table(cols, rows, args.format)
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``evalsuite catalog`` and its subcommands."""
    p = sub.add_parser(
        "catalog",
        help="every run in one DuckDB catalog: list, trends across releases, regressions in history, SQL",
        description="The results catalog (docs/catalog.md): an embedded DuckDB file indexing run directories "
        "(run, profile, frontier, plan). The run directories stay the source of truth: 'rebuild' recreates it.",
    )
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    cs = p.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--catalog",
            default=None,
            metavar="PATH",
            help="the catalog file (default: EVALSUITE_CATALOG, else reports/catalog.duckdb)",
        )

    def fmt(q: argparse.ArgumentParser) -> None:
        q.add_argument("--format", choices=["table", "csv", "json"], default="table", help="default table")

    q = cs.add_parser("list", help="runs, newest first, filtered")
    common(q)
    q.add_argument("--config", default=None, help="runs holding this configuration")
    q.add_argument("--dataset", default=None, help="dataset name or fingerprint")
    q.add_argument("--device", default=None, help="device type (cuda, cpu) or part of the GPU/CPU name")
    q.add_argument("--kind", default=None, choices=["generate", "profile", "frontier", "plan"])
    q.add_argument("--label", default=None)
    q.add_argument("--since", default=None, metavar="DATE", help="started on or after (ISO date or time)")
    q.add_argument("--limit", type=int, default=None)
    q.add_argument("--paths", action="store_true", help="also show each run directory")
    fmt(q)
    q.set_defaults(func=cmd_list)

    for name, helptext in (
        ("index", "index run directories incrementally (changed runs only); DIR: a run or a folder of runs"),
        ("rebuild", "recreate the catalog from the run directories (its known folders, and DIR...)"),
    ):
        q = cs.add_parser(name, help=helptext)
        common(q)
        q.add_argument(
            "dirs",
            nargs="*",
            metavar="DIR",
            help="run directories or folders of them (default: the folders indexed before, else the catalog's folder)",
        )
        q.set_defaults(func=cmd_index, command_name=name)

    q = cs.add_parser("label", help="label a run (e.g. a release): written into its run.json and re-indexed")
    common(q)
    q.add_argument("run", help="a run directory or a run id of the catalog")
    q.add_argument("label")
    q.set_defaults(func=cmd_label)

    q = cs.add_parser("trend", help="a metric of a configuration across runs/releases, with CIs")
    common(q)
    q.add_argument("metric")
    q.add_argument("--config", required=True)
    q.add_argument("--dataset", default=None, help="dataset name or fingerprint")
    q.add_argument("--device", default=None, help="device type or part of the GPU name")
    q.add_argument("--plot", default=None, metavar="FILE", help="also write the plot (.png or .svg)")
    q.set_defaults(func=cmd_trend)

    q = cs.add_parser(
        "regressions",
        help="flag runs worse than the previous comparable run (paired) or the rolling median; exit 0/1/2",
    )
    common(q)
    q.add_argument("--thresholds", default=None, metavar="FILE", help="threshold YAML of 'evalsuite compare'")
    q.add_argument(
        "--window",
        type=int,
        default=1,
        help="1: against the previous comparable run, rows paired (default); N: against the median of the "
        "previous N runs' aggregates",
    )
    q.add_argument("--config", default=None, help="only this configuration")
    q.add_argument("--latest", action="store_true", help="judge only the newest run of each series")
    q.add_argument("--all", action="store_true", help="also list the checks that passed")
    q.set_defaults(func=cmd_regressions)

    q = cs.add_parser(
        "site", help="a static dashboard (index.html: regressions, trends, runs, frontier and plan per GPU)"
    )
    common(q)
    q.add_argument("out_dir", metavar="OUT_DIR")
    q.add_argument(
        "--thresholds", default=None, metavar="FILE", help="threshold YAML for the regressions list"
    )
    q.set_defaults(func=cmd_site)

    q = cs.add_parser("query", help="DuckDB SQL over the catalog on a read-only connection")
    common(q)
    q.add_argument("sql")
    fmt(q)
    q.set_defaults(func=cmd_query)
