"""Registration of a finished run in the catalog: what ``evalsuite run``, ``profile``, ``frontier``
and ``plan`` call at the end (unless ``--no-catalog``). A failure here warns and never changes the
run's outcome or exit code: the run directory is complete without the catalog, and
``evalsuite catalog rebuild`` indexes it later.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def register_run(
    run_dir: str | os.PathLike[str],
    catalog: str | os.PathLike[str] | None = None,
    label: str | None = None,
    enabled: bool = True,
) -> Path | None:
    """Write ``label`` (if any) into ``run_dir``'s ``run.json`` and, when ``enabled``, index the run
    in ``catalog`` (default :func:`~evalsuite.catalog.db.default_path` of the run's parent folder).
    Returns the catalog file, or ``None`` when disabled or when registration failed (warned)."""
    run_dir = Path(run_dir)
    try:
        from evalsuite.catalog.db import write_label

        if label:
            write_label(run_dir, label)
    except Exception as exc:  # never fail the run
        log.warning("could not label %s %r: %s", run_dir, label, exc)
    if not enabled:
        return None
    try:
        from evalsuite.catalog.db import Catalog, default_path

        path = Path(catalog) if catalog else default_path(run_dir.resolve().parent)
        with Catalog(path, lock_timeout=30.0) as cat:
            report = cat.index([run_dir], prune=False)
        if report.skipped:
            log.warning(
                "catalog %s: %s not registered: %s", path, run_dir, next(iter(report.skipped.values()))
            )
            return None
        log.debug("registered in the catalog %s", path)
        return path
    except Exception as exc:  # never fail the run
        log.warning(
            "could not register %s in the catalog (%s); the run is complete: index it later with "
            "'evalsuite catalog rebuild %s'",
            run_dir,
            exc,
            run_dir.parent,
        )
        return None
