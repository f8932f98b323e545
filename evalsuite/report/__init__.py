"""Every rendered view, as pure functions of stored results (nothing here imports the engine, the
runners or the scenarios).

A run's report (``report``: report.md, report.html, summary.csv; ``tables``, ``plots``, ``grids``,
``html``); the sweep scenarios' files (``profile``, ``frontier``, ``plan``); ``evalsuite compare``'s
files (``compare``); and the one set of helpers they share: ``formatting`` (numbers, Markdown cells
and tables) and the figure helpers of ``plots``.
"""
