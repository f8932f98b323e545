"""The ``evalsuite compare`` subcommand (argument parsing only; the work is in :mod:`evalsuite.compare`).

Kept apart so that ``evalsuite --help`` does not import pandas/matplotlib.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def cmd_compare(args: argparse.Namespace) -> int:
    """``evalsuite compare``: print the verdict, write the files, return the exit code (0/1/2)."""
    from evalsuite.compare.engine import compare_runs, load_thresholds, write_compare
    from evalsuite.report.formatting import fmt

    resolve_catalog_refs(args)
    for run in (args.run_a, args.run_b):
        _check_finished(Path(run), args.allow_unfinished)
    thresholds = load_thresholds(args.thresholds) if args.thresholds else None
    cmp = compare_runs(args.run_a, args.run_b, thresholds, args.allow_different_data)
    out = Path(args.out) if args.out else Path(args.run_b) / f"compare-vs-{cmp.a.name}"
    _check_out(out, explicit=bool(args.out), run_b=Path(args.run_b))
    _check_replace(out, thresholds is not None, args.force)
    write_compare(cmp, out, args.embed_images, args.top)
    for v in cmp.verdicts:
        if v.status != "pass":
            print(f"{v.status}: {v.config} {v.metric}: change {fmt(v.change)} ({v.rule})")
    for c in cmp.unpaired:
        print(f"FAILED: {c}: no (case, seed) row is ok in both runs, so nothing of it was compared")
    print(f"compare: {out / 'compare.md'}")
    print(f"compare: {out / 'compare.html'}")
    print(cmp.verdict_text)
    return cmp.exit_code


PREFIX = "catalog:"


def resolve_catalog_refs(args: argparse.Namespace) -> None:
    """Replace ``catalog:REF`` in ``run_a``/``run_b`` by the run directory the catalog resolves
    (:meth:`~evalsuite.catalog.db.Catalog.resolve_ref`); ``catalog:latest`` next to another run
    is the newest run comparable to it. Prints what each name resolved to."""
    refs = {k: getattr(args, k) for k in ("run_a", "run_b") if str(getattr(args, k)).startswith(PREFIX)}
    if not refs:
        return
    from evalsuite.catalog.db import Catalog, default_path

    path = Path(args.catalog) if args.catalog else default_path(None)
    with Catalog(path, read_only=True) as cat:
        order = sorted(refs, key=lambda k: refs[k] == PREFIX + "latest")  # a label or id first
        for k in order:
            other = "run_b" if k == "run_a" else "run_a"
            like = getattr(args, other)
            like = None if str(like).startswith(PREFIX) else like
            setattr(args, k, cat.resolve_ref(refs[k][len(PREFIX) :], like))
            print(f"{'A' if k == 'run_a' else 'B'}: {refs[k]} = {getattr(args, k)}")


def _check_finished(run: Path, allow_unfinished: bool) -> None:
    """Refuse a run that a live process is writing (exit 3) or that did not finish (exit 2, unless
    ``--allow-unfinished``): a gate must not pass on partial data."""
    import json

    from evalsuite.config.runconfig import RunConfigError
    from evalsuite.engine.lock import refuse_if_live

    refuse_if_live(run, "compare")
    try:
        meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # compare_runs names the missing or damaged run.json
    if not isinstance(meta, dict) or allow_unfinished:
        return
    if meta.get("interrupted"):
        why = "was interrupted"
    elif meta.get("error"):
        why = f"stopped on an internal error ({meta['error'].get('phase', 'unknown phase')})"
    elif not meta.get("finished"):
        why = "has not finished (no 'finished' time in run.json)"
    else:
        return
    raise RunConfigError(
        f"{run}: the run {why}, so its rows are incomplete; rerun the same command to finish it, or pass "
        "--allow-unfinished to compare the rows it has"
    )


def _check_out(out: Path, explicit: bool, run_b: Path) -> None:
    """The output folder must be a folder that can be written (named in one line, nothing written)."""
    from evalsuite.config.runconfig import RunConfigError

    if out.exists() and not out.is_dir():
        raise RunConfigError(
            f"--out {out}: is a file, not a folder; pass a folder for compare.md and compare.html"
        )
    probe = out if out.is_dir() else out.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK) or _read_only_fs(probe):
        where = f"--out {out}" if explicit else f"the default output {out} (inside run B)"
        raise RunConfigError(
            f"{where}: cannot write in {probe}; pass --out DIR with a writable folder for the comparison"
        )


def _check_replace(out: Path, gated: bool, force: bool) -> None:
    """An earlier comparison in ``out`` is replaced with a line saying so; one that had thresholds is
    not replaced by one without (its verdicts would be lost) unless ``force``."""
    import json

    from evalsuite.config.runconfig import RunConfigError

    try:
        doc = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    earlier = doc.get("verdicts") if isinstance(doc, dict) else None
    if earlier and not gated and not force:
        raise RunConfigError(
            f"{out} holds an earlier comparison with thresholds ({len(earlier)} check(s): "
            f"{doc.get('verdict', '?')}); this one has no thresholds and would replace it: pass the same "
            "--thresholds FILE, --out DIR to write it elsewhere, or --force to replace it"
        )
    print(f"compare: replacing the earlier comparison in {out}")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def add_parser(sub: Any) -> None:
    """Register ``compare`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser(
        "compare",
        help="compare two runs (B against baseline A): paired deltas, ratios, verdict",
        description="Compare run B against baseline run A on the (configuration, case, seed) rows both "
        "have. Exit code 0: nothing regresses beyond its threshold; 1: something does (or "
        "rows ok in A fail in B); 2: unusable input (also: a run that did not finish); 3: a run is "
        "being written by a live evalsuite process.",
    )
    p.add_argument(
        "run_a",
        help="baseline run directory, or catalog:LABEL / catalog:RUN_ID / catalog:latest (see 'evalsuite catalog')",
    )
    p.add_argument(
        "run_b",
        help="candidate run directory, or catalog:REF (catalog:latest: the newest run comparable to A)",
    )
    p.add_argument(
        "--catalog",
        default=None,
        metavar="PATH",
        help="the catalog that resolves catalog:REF (default: EVALSUITE_CATALOG, else reports/catalog.duckdb)",
    )
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
    p.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="compare runs that were interrupted or did not finish (refused by default: exit 2)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN_B/compare-vs-<run A id>)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier comparison with thresholds in the output folder by one without",
    )
    p.add_argument("--top", type=int, default=6, help="cases in the most-changed grid (default 6)")
    p.add_argument(
        "--embed-images", action="store_true", help="embed images in compare.html (one shareable file)"
    )
    p.set_defaults(func=cmd_compare)
