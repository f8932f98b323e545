"""Acceleration and memory axes applied to a loaded runner, and the scenarios built on them.

* :mod:`evalsuite.accel.axes` — one function per axis (precision, fused QKV, attention backend,
  diffusers cache hooks, compile, memory strategy), each applied to a *loaded* runner through its
  hooks (:meth:`~evalsuite.runners.base.Runner.denoisers`, ``components()``, ``pipe``); a point is
  a composition of axes (``precision=fp8,qkv,compile=regional``). An axis that cannot run raises
  :class:`~evalsuite.accel.axes.Unavailable` with the reason, which the scenarios record.
* :mod:`evalsuite.accel.counters` — denoiser passes computed vs reused, per image.
* :mod:`evalsuite.accel.frontier` — ``evalsuite frontier``: speed, memory and paired quality of
  each point against the configuration's reference point; Pareto plot, "fastest within LPIPS ≤ X".
* :mod:`evalsuite.accel.plan` — ``evalsuite plan``: component sizes, memory strategies measured,
  the fastest under a budget verified under an enforced cap.

This lives apart from :mod:`evalsuite.engine` on purpose: the engine owns the run lifecycle
(store, lock, ``run.json``, signals, exit codes), this package owns what is done *to* a loaded
model. Its two scenarios (:class:`~evalsuite.accel.frontier.FrontierScenario`,
:class:`~evalsuite.accel.plan.PlanScenario`) run inside the engine's lifecycle as sweeps
(:mod:`evalsuite.engine.sweep`).
"""
