"""Stored results: the floor every reader stands on (metrics' scoring, report, compare, the pytest
plugin). :mod:`evalsuite.results.store` holds the run directory store: the rows journal, the
``samples.parquet`` table, ``run.json``, migration of older formats and the checks made on reading.
Nothing here imports runners, scenarios, metrics or report.
"""
