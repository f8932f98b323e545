"""The results catalog: every run directory in one embedded DuckDB database (docs/catalog.md).

* :mod:`evalsuite.catalog.db` — :class:`~evalsuite.catalog.db.Catalog`: the database file, its
  schema (tables ``runs``, ``configs``, ``rows``, ``row_values``, ``aggregates``, ``frontier_points``,
  ``plan_rows``; view ``metric_meta``), incremental and idempotent indexing of run directories,
  ``rebuild``, labels and read-only SQL.
* :mod:`evalsuite.catalog.history` — trends of a metric over runs and releases, and regressions
  found in the history with :mod:`evalsuite.compare`'s paired statistics and thresholds, and the
  pytest plugin's baselines from the catalog.
* :mod:`evalsuite.catalog.site` — ``evalsuite catalog site``: a static, self-contained dashboard.
* :mod:`evalsuite.catalog.register` — what ``run``, ``profile``, ``frontier`` and ``plan`` call at
  the end to register their run (a failure warns, never fails the run).

The catalog is one more reader of stored runs: it reads run directories only through
:mod:`evalsuite.results` and holds nothing a run directory does not (``evalsuite catalog rebuild``
recreates it from them). It imports duckdb, so the command line imports it inside its commands.
"""
