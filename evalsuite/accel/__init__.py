"""Acceleration and memory axes applied to a loaded runner (the axis library).

* :mod:`evalsuite.accel.axes` — one function per axis (precision, fused QKV, attention backend,
  diffusers cache hooks, compile, memory strategy), each applied to a *loaded* runner through its
  hooks (:meth:`~evalsuite.runners.base.Runner.denoisers`, ``components()``, ``pipe``); a point is
  a composition of axes (``precision=fp8,qkv,compile=regional``). An axis that cannot run raises
  :class:`~evalsuite.accel.axes.Unavailable` with the reason, which the scenarios record.
* :mod:`evalsuite.accel.counters` — denoiser passes computed vs reused, per image.

This lives apart from :mod:`evalsuite.engine` on purpose: the engine owns the run lifecycle
(store, lock, ``run.json``, signals, exit codes), this package owns what is done *to* a loaded
model. The scenarios that use it (:class:`~evalsuite.scenarios.frontier.FrontierScenario`,
:class:`~evalsuite.scenarios.plan.PlanScenario`) run inside the engine's lifecycle as sweeps
(:mod:`evalsuite.scenarios.sweep`).
"""
