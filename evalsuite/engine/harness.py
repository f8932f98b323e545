"""Compatibility name of :mod:`evalsuite.engine.generate` (the ``evalsuite run`` scenario) and of the
lifecycle helpers that used to live here; import from those modules in new code."""

from __future__ import annotations

from evalsuite.config.runconfig import DEFAULT_OUT, RunConfig, RunConfigError, check_seeds
from evalsuite.engine.generate import (
    GenerateScenario,
    RunResult,
    _generate_batch,
    default_run_id,
    free_memory,
    is_oom,
    load_run,
    run,
    work_items,
)
from evalsuite.engine.lifecycle import (
    THREADS_ENV,
    InternalRunError,
    RunInterrupted,
    StopOnSignals,
    apply_thread_policy,
    pick_device,
)

__all__ = [
    "DEFAULT_OUT",
    "THREADS_ENV",
    "GenerateScenario",
    "InternalRunError",
    "RunConfig",
    "RunConfigError",
    "RunInterrupted",
    "RunResult",
    "StopOnSignals",
    "_generate_batch",
    "apply_thread_policy",
    "check_seeds",
    "default_run_id",
    "free_memory",
    "is_oom",
    "load_run",
    "pick_device",
    "run",
    "work_items",
]
