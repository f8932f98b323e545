"""Stored results: the floor every reader stands on (metrics' scoring, report, compare, the pytest
plugin). :mod:`evalsuite.results.types` holds the typed records (``RunMeta``, ``ConfigEntry``,
``Summary``, ``Row``); :mod:`evalsuite.results.store` the run directory store: the rows journal, the
``samples.parquet`` table, ``run.json``, migration of older formats and the checks made on reading;
:mod:`evalsuite.results.run` the one loader of a run directory (``Run``, what ``evalsuite.load_run``
returns). Nothing here imports engine, runners, scenarios, metrics, report or compare
(``tests/test_layers.py``).
"""
