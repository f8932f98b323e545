"""ONE run lifecycle for every scenario: resolve → lock → scenario → store → score → report.

A *scenario* is what a run does with the runners between taking the run directory's lock and
writing its outputs: :class:`~evalsuite.scenarios.generate.GenerateScenario` (``evalsuite run``:
configurations × cases × seeds, resumable), :class:`~evalsuite.scenarios.profile.ProfileScenario`
(``evalsuite profile``: speed/memory sweeps), :class:`~evalsuite.scenarios.frontier.FrontierScenario`
(``evalsuite frontier``: acceleration points with their paired quality cost),
:class:`~evalsuite.scenarios.plan.PlanScenario` (``evalsuite plan``: memory strategies under budgets)
and :class:`~evalsuite.scenarios.score.ScoreScenario` (``evalsuite score``: a stored run scored again;
no *attempt* at the run, so its times and flags stay). Profile, frontier and plan are *sweeps*
(:mod:`evalsuite.scenarios.sweep`: one row per measured point). Each conforms to the
:class:`Scenario` Protocol, :func:`execute`'s parameter type.
:func:`execute` is the orchestrator they share::

    scenario.resolve()                     # arguments → configurations, dataset, device (usage errors)
    with RunLock(run_dir), StopOnSignals():
        meta = start_meta(...)             # the one run.json schema + provenance + this attempt
        scenario.plan(ctx)                 # what is pending; scenario fields of run.json
        scenario.run(ctx)                  # rows + images into the store; stops early on a signal
        scenario.score(ctx)                # summary
        store.write_samples(); run.json    # finished
        scenario.report(ctx)               # report.md / profile.md / frontier.md / plan.md / plots

Everything model-specific is a runner hook (:class:`~evalsuite.runners.base.Runner`); nothing here
branches on model families. Ctrl-C (SIGINT) and SIGTERM stop the same way: the current case is
finished, rows, ``samples.parquet``, ``run.json`` (``interrupted: true``) and the report are
written, the lock is released, and :class:`RunInterrupted` is raised (exit 130 / 143).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from evalsuite.engine import distributed
from evalsuite.engine.determinism import determinism_settings
from evalsuite.engine.lock import RunLock
from evalsuite.engine.provenance import environment
from evalsuite.errors import DiskFullError, InternalError
from evalsuite.paths import folder_size, is_no_space, no_space_error
from evalsuite.results.store import SCHEMA, RunStore
from evalsuite.results.types import RunMeta

log = logging.getLogger(__name__)

THREADS_ENV = "EVALSUITE_THREADS"
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def now() -> str:
    """UTC now, ISO 8601 to the second (the timestamps of run.json)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class InternalRunError(InternalError, RuntimeError):
    """An unexpected error after generation started (exit 1). The rows and images written so far are
    kept (a rerun resumes), ``run.json`` records the traceback under ``error``.

    Attributes:
        run_dir: the run directory.
    """

    def __init__(self, message: str, run_dir: Any) -> None:
        super().__init__(message)
        self.run_dir = run_dir


class RunInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C (SIGINT) or SIGTERM once the current case and every file are written.

    Attributes:
        result: what the scenario finished (for ``evalsuite run`` a
            :class:`~evalsuite.results.run.Run`; rerunning the same call resumes).
        signum: the signal that stopped the run.
        exit_code: 130 for SIGINT, 143 for SIGTERM (128 + signal number).
    """

    def __init__(self, result: Any, signum: int = signal.SIGINT) -> None:
        line = result.summary_line() if hasattr(result, "summary_line") else "partial results"
        where = getattr(result, "run_dir", result)
        super().__init__(f"interrupted; {line} so far in {where}")
        self.result = result
        self.signum = int(signum)
        self.exit_code = SIGNAL_EXIT.get(signal.Signals(self.signum), 128 + self.signum)


class StopOnSignals:
    """While active (main thread only), the first SIGINT or SIGTERM sets :attr:`requested` (and
    :attr:`signum`) instead of killing the process; a second one raises ``KeyboardInterrupt`` at once.
    Scenarios check :attr:`requested` between cases."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signum: int = signal.SIGINT
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        log.warning(
            "interrupt: finishing the current case, then writing everything and stopping (%s received; "
            "Ctrl-C again aborts at once; rerunning the same command resumes)",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}


def apply_thread_policy(device: torch.device, policy: str) -> int:
    """Set torch's intra-op thread count for this process and return it.

    Tiny models on a CPU are all per-operator overhead: with two or more OpenMP threads on a shared
    machine the threads spin against each other (measured on a 2-core machine with one other busy
    process: 0.59 s per tiny image with one thread, 13.9 s with two). So under ``tiny`` weights on the
    CPU evalsuite uses one thread unless the user asks otherwise with ``EVALSUITE_THREADS=N`` (or
    ``OMP_NUM_THREADS``, which torch reads itself). Other policies keep torch's default.
    """
    asked = os.environ.get(THREADS_ENV)
    if asked:
        from evalsuite.config.runconfig import RunConfigError

        try:
            n = int(asked)
        except ValueError as exc:
            raise RunConfigError(f"{THREADS_ENV}={asked!r}: expected a positive integer") from exc
        if n < 1:
            raise RunConfigError(f"{THREADS_ENV}={asked!r}: expected a positive integer")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if n > cores:
            log.warning(
                "%s=%d is more threads than the %d core(s) this process may use; threads beyond the cores "
                "spin against each other and slow every step (use at most %d)",
                THREADS_ENV,
                n,
                cores,
                cores,
            )
        torch.set_num_threads(n)
    elif policy == "tiny" and device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    return torch.get_num_threads()


@dataclass
class RunContext:
    """What a scenario works with while the lifecycle holds the run directory's lock.

    Attributes:
        store: the run directory.
        lock: the held lock (``took_over`` names a dead run's lock taken over).
        meta: ``run.json`` being built (written by the lifecycle; scenarios add their fields).
        device: the device the run uses.
        stop: set by SIGINT/SIGTERM; scenarios stop between cases when it is set.
        dist: the distributed group (a single process when not launched by torchrun/accelerate).
        state: scenario-private values carried between phases.
    """

    store: RunStore
    lock: RunLock
    meta: dict[str, Any]
    device: torch.device
    stop: StopOnSignals
    dist: distributed.Dist = field(default_factory=distributed.Dist)
    state: dict[str, Any] = field(default_factory=dict)

    def save_meta(self) -> None:
        """Write ``run.json`` (rank 0 only: other ranks report through ``rank-<r>.json``)."""
        if self.dist.is_main:
            self.store.write_meta(self.meta)


class Scenario(Protocol):
    """One way of using runners inside the run lifecycle (see the module docstring).

    Every member :func:`execute` uses is declared here; mypy checks that each scenario conforms
    (:class:`~evalsuite.scenarios.generate.GenerateScenario`, the sweeps through
    :class:`~evalsuite.scenarios.sweep.SweepScenario`, :class:`~evalsuite.scenarios.score.ScoreScenario`).
    """

    #: run.json ``kind`` (``generate``, ``profile``, ``frontier``, ``plan``; ``score`` keeps the run's)
    kind: str
    #: the lock file taken in the run directory (``run.lock``; a non-main rank takes its own)
    lock_name: str
    #: remove the partial files an interrupted run left (the directory's writer: rank 0)
    owns_directory: bool
    #: an attempt at making the run (generate, the sweeps): the lifecycle stamps run.json's
    #: ``finished``/``interrupted`` and clears a recorded ``error``; ``False`` for a scenario that
    #: works on a stored run (``evalsuite score``), whose times and flags stay as they are
    attempt: bool
    #: errors of the user's input that can surface only once the scenario works (``evalsuite score``:
    #: a ``--pair`` naming a configuration the run lacks): raised unchanged, not recorded as internal
    refusals: tuple[type[Exception], ...]
    #: set by :meth:`run` when this process has nothing more to do (a non-main rank: rank 0 scores)
    done: bool

    def plan(self, ctx: RunContext) -> None:
        """Under the lock, before anything is generated: record the scenario's fields in ``ctx.meta``."""

    def run(self, ctx: RunContext) -> None:
        """Generate rows into ``ctx.store``; return early (between cases) when ``ctx.stop.requested``."""

    def score(self, ctx: RunContext) -> dict[str, Any]:
        """The summary written to ``run.json`` (per configuration: counts and metric aggregates)."""

    def report(self, ctx: RunContext) -> None:
        """Write the scenario's outputs (report, tables, plots) from the stored run."""

    def interrupted(self, ctx: RunContext) -> dict[str, Any]:
        """The summary of what was finished when the run stopped on a signal."""

    def close(self, ctx: RunContext) -> None:
        """After the report of a finished run (e.g. release the other ranks)."""

    def result(self, ctx: RunContext) -> Any:
        """What :func:`execute` returns."""


def start_meta(
    store: RunStore,
    kind: str,
    dataset: Any,
    device: torch.device,
    *,
    seeds: Sequence[int] | str | None,
    metrics: Sequence[str],
    metric_weights: str | None,
    weights_dir: Any = None,
    lock: RunLock | None = None,
    dist: distributed.Dist | None = None,
    dataset_note: str | None = None,
) -> dict[str, Any]:
    """The fields of ``run.json`` every scenario writes (docs/run-format.md), continuing the previous
    attempt's ``run.json`` when the directory already holds one, with this attempt appended.

    A sweep (every kind but ``generate``) keeps the previous attempt's ``weights`` and ``configs``:
    its journal still holds the earlier attempt's rows, which ``run.json`` must keep describing.
    ``evalsuite run`` lists its configurations anew (its scenario checks what is still valid)."""
    meta = RunMeta.from_dict(store.read_meta(check=False)) if store.exists() else RunMeta()
    keep = kind != "generate"
    started = now()
    meta.schema = SCHEMA
    meta.kind = kind
    meta.run_id = store.path.name
    meta.created = meta.created or started
    meta.started = started
    meta.finished = None
    meta.interrupted = False
    meta.dataset = {
        "name": dataset.name,
        "size": len(dataset),
        "fingerprint": dataset.fingerprint,
        "source": dataset.source,
        **({"selection": dataset_note} if dataset_note else {}),
    }
    meta.seeds = list(seeds) if isinstance(seeds, list | tuple) else (str(seeds) if seeds else "per-case")
    meta.generator = {"device": "cpu", "kind": "torch.Generator per sample, manual_seed(seed)"}
    meta.determinism = determinism_settings(device)
    meta.weights = meta.weights if keep else {}
    meta.weights_dir = str(weights_dir) if weights_dir else None
    meta.metrics = list(metrics)
    meta.metric_weights = metric_weights
    meta.environment = environment(device)
    meta.configs = meta.configs if keep else {}
    dist = dist or distributed.Dist()
    meta.distributed = {"world_size": dist.world_size}
    meta.attempts = [
        *meta.attempts,
        {
            "started": started,
            "pid": os.getpid(),
            "kind": kind,
            "took_over_stale_lock_of_pid": ((lock.took_over if lock else None) or {}).get("pid"),
            "world_size": dist.world_size,
        },
    ]
    return meta.to_dict()


ContextFactory = Callable[[RunStore, RunLock, StopOnSignals], RunContext]


def context_factory(
    kind: str,
    dataset: Any,
    device: torch.device,
    *,
    dist: distributed.Dist | None = None,
    **fields: Any,
) -> ContextFactory:
    """The ``ctx_factory`` of :func:`execute`: once the lock is held, ``run.json``'s common fields
    (:func:`start_meta` with ``fields``: ``seeds``, ``metrics``, ``metric_weights``, ``weights_dir``,
    ``dataset_note``) and the :class:`RunContext`."""
    group = dist or distributed.Dist()

    def make(store: RunStore, lock: RunLock, stop: StopOnSignals) -> RunContext:
        meta = start_meta(store, kind, dataset, device, lock=lock, dist=group, **fields)
        return RunContext(store, lock, meta, device, stop, group)

    return make


def _space_needed(scenario: Scenario, ctx: RunContext | None, store: RunStore) -> int:
    """About how many bytes the rest of the run writes: the images still to generate (a scenario's
    ``space_needed(ctx)``, when it has one) and a rewrite of the table, run.json and the report."""
    rest = folder_size(
        store.path, "samples.parquet", "run.json", "report.md", "report.html", "summary.csv", "plots", "grids"
    )
    more = getattr(scenario, "space_needed", None)
    try:
        return rest + (int(more(ctx)) if more is not None and ctx is not None else 0)
    except Exception:  # noqa: BLE001 - an estimate: never hide the full disk behind another error
        return rest


def execute(scenario: Scenario, store: RunStore, ctx_factory: ContextFactory, report: bool = True) -> Any:
    """Run ``scenario`` in ``store`` under the run lock (see the module docstring).

    Args:
        ctx_factory: ``(store, lock, stop) -> RunContext``: builds the context (and ``run.json``'s
            common fields) once the lock is held.
        report: write the scenario's report at the end.

    Raises:
        RunLockedError: another live process holds the run directory.
        RunInterrupted: after SIGINT/SIGTERM, once everything is written and the lock released.
    """
    try:
        return _execute(scenario, store, ctx_factory, report)
    except OSError as exc:  # the lock, run.json at the start: a full disk is one line there too
        if not is_no_space(exc):
            raise
        log.debug("no space left in %s", store.path, exc_info=True)
        raise no_space_error(
            exc,
            store.path,
            "starting the run",
            _space_needed(scenario, None, store),
            out=scenario.kind != "score",
        ) from exc


def _execute(scenario: Scenario, store: RunStore, ctx_factory: ContextFactory, report: bool) -> Any:
    store.path.mkdir(parents=True, exist_ok=True)
    with RunLock(store.path, scenario.lock_name, purpose=scenario.kind) as lock, StopOnSignals() as stop:
        removed = store.clean_partial() if scenario.owns_directory else 0
        if removed:
            log.info("removed %d partial file(s) left by an interrupted run", removed)
        ctx: RunContext = ctx_factory(store, lock, stop)
        scenario.plan(ctx)
        ctx.save_meta()
        phase = "generation"
        try:
            scenario.run(ctx)
            if stop.requested:
                phase = "writing the interrupted run"
                ctx.meta["summary"] = scenario.interrupted(ctx)
                if scenario.attempt:
                    ctx.meta["interrupted"] = True
                if ctx.dist.is_main:
                    store.write_samples()
                ctx.save_meta()
                if report and ctx.dist.is_main:
                    scenario.report(ctx)
                raise RunInterrupted(scenario.result(ctx), stop.signum)
            if scenario.done:  # e.g. a non-main rank: rank 0 scores and reports
                return scenario.result(ctx)
            phase = "scoring"
            ctx.meta["summary"] = scenario.score(ctx)
            store.write_samples()
            if scenario.attempt:
                ctx.meta["finished"] = now()
                ctx.meta.pop("error", None)
            ctx.save_meta()
            phase = "the report"
            if report:
                scenario.report(ctx)
            scenario.close(ctx)
            return scenario.result(ctx)
        except (KeyboardInterrupt, InternalRunError):
            raise
        except Exception as exc:
            if isinstance(exc, scenario.refusals):
                raise  # the user's input, found while working: nothing to record, exit as its class says
            if isinstance(exc, DiskFullError):
                raise  # already one line naming the disk (the report's writer)
            if is_no_space(exc):  # a full disk: one line naming it and the space needed; rows kept
                log.debug("no space left during %s in %s", phase, store.path, exc_info=True)
                doing = {"generation": "generating", "the report": "writing the report"}.get(phase, phase)
                raise no_space_error(
                    exc, store.path, doing, _space_needed(scenario, ctx, store), out=scenario.kind != "score"
                ) from exc
            # an internal error after generation started: keep rows and images, record it, exit 1
            tb = traceback.format_exc()
            log.error("internal error during %s in %s:\n%s", phase, store.path, tb)
            ctx.meta["error"] = {"phase": phase, "message": f"{type(exc).__name__}: {exc}", "traceback": tb}
            try:
                ctx.save_meta()
            except Exception:  # noqa: BLE001 - the original error matters more
                log.debug("could not record the error in run.json", exc_info=True)
            raise InternalRunError(
                f"internal error during {phase}: {type(exc).__name__}: {exc} (rows and images written so far "
                f"are kept in {store.path}; rerunning the same command resumes; traceback above and in "
                "run.json 'error')",
                store.path,
            ) from exc
