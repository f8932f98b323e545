"""What is measured over a runner, each a scenario on the engine's one lifecycle
(:func:`evalsuite.engine.lifecycle.execute`, which takes a :class:`~evalsuite.engine.lifecycle.Scenario`):

* :mod:`evalsuite.scenarios.generate` — ``evalsuite run``: every configuration over a dataset, one
  row per (configuration, case, seed), then scored and reported;
* :mod:`evalsuite.scenarios.profile` — ``evalsuite profile``: a sweep of resolution × batch × steps ×
  precision × memory × compile, each point against the bare diffusers call;
* :mod:`evalsuite.scenarios.frontier` — ``evalsuite frontier``: acceleration points (the axes of
  :mod:`evalsuite.accel`) priced against the configuration's reference point with paired quality;
* :mod:`evalsuite.scenarios.plan` — ``evalsuite plan``: memory strategies measured, the fastest under
  each budget verified under an enforced cap;
* :mod:`evalsuite.scenarios.sweep` — what the sweep scenarios share (argument resolution, one row per
  point, the run.json entries of their points).
"""
