"""``evalsuite score RUN_DIR``: re-score a stored run from its images, inside the run lifecycle.

:class:`ScoreScenario` runs through :func:`evalsuite.engine.lifecycle.execute` like every other
scenario: the run directory's lock (refused, naming the holder, while another process writes it),
``run.json`` written by the lifecycle's writer, SIGINT/SIGTERM handled by the lifecycle (a first
signal lets the scoring pass finish and be written; a second aborts at once), and an unexpected
error recorded in ``run.json`` (``error``, phase ``scoring`` or ``the report``; exit 1).

Unlike ``evalsuite run`` and the sweeps it is no *attempt* at the run: it regenerates nothing, its
``run.json`` keeps its ``kind``, times, attempts and ``interrupted`` flag. Per-sample values are
merged into ``rows.jsonl``/``samples.parquet``; aggregates replace the same metrics in ``run.json``'s
summary (other metrics are kept); ``report.md`` is rewritten. Unusable input (a device this machine
lacks, an unknown metric, a damaged or read-only run directory) is refused before the lock is taken,
so nothing is written; what only scoring can find (a ``--pair`` naming a configuration the run
lacks, a moved dataset, an unknown metric option) is raised unchanged (exit 2), not recorded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.engine.lifecycle import RunContext

if TYPE_CHECKING:
    import torch

    from evalsuite.data.cases import Dataset
    from evalsuite.engine.lifecycle import StopOnSignals
    from evalsuite.engine.lock import RunLock
    from evalsuite.results.store import RunStore

log = logging.getLogger(__name__)

WRITES = "scores into rows.jsonl, run.json and samples.parquet, and the report,"


def _refusals() -> tuple[type[Exception], ...]:
    """The user-input errors scoring can raise once it works (they leave the run unchanged)."""
    from evalsuite.metrics.base import MetricOptionError
    from evalsuite.metrics.features import MetricWeightsError
    from evalsuite.metrics.scoring import ScoringError
    from evalsuite.registry import RegistryError
    from evalsuite.results.store import RunFormatError

    return (ScoringError, MetricOptionError, MetricWeightsError, RegistryError, RunFormatError)


class ScoreScenario:
    """Score a stored run again (see the module docstring); :meth:`result` is the new summary
    (only the metrics scored in this call)."""

    kind = "score"
    lock_name = "run.lock"
    owns_directory = False  # partial files belong to the run that left them: its rerun cleans them
    attempt = False
    done = False

    def __init__(
        self,
        metrics: list[str] | None,
        device: torch.device,
        metric_weights: str | None = None,
        dataset: str | Path | None = None,
        **score_kw: Any,
    ) -> None:
        self.metrics, self.device, self.metric_weights = metrics, device, metric_weights
        self.dataset_path = dataset
        self.score_kw = score_kw  # metric_weights_dir, pairs, metric_options, batch_size
        self.names: list[str] = []
        self.mode = ""
        self.dataset: Dataset | None = None
        self.summary: dict[str, Any] = {}
        self.changes: list[str] = []  # FID reference sets that changed since the last scoring
        self.refusals: tuple[type[Exception], ...] = _refusals()

    def plan(self, ctx: RunContext) -> None:
        """Under the lock: the run is still writable and readable, the metrics and their weights exist."""
        from evalsuite.metrics.features import check_metric_weights
        from evalsuite.metrics.scoring import _default_mode, config_tasks, default_metrics, run_dataset
        from evalsuite.registry import METRICS
        from evalsuite.report.report import check_writable

        check_writable(ctx.store.path, "score", WRITES)
        meta = ctx.meta
        ctx.store.check_rows_present(meta)  # both copies lost: refuse, overwrite nothing
        ctx.store.restore_journal()  # rows only samples.parquet still holds: back into the journal first
        self.names = self.metrics or default_metrics(list(config_tasks(meta).values()))
        for n in self.names:
            METRICS.get(n)
        self.mode = self.metric_weights or _default_mode(meta)
        check_metric_weights(
            self.names,
            self.mode,
            self.score_kw.get("metric_weights_dir"),
            metric_options=self.score_kw.get("metric_options"),
        )
        self.dataset = run_dataset(meta, self.dataset_path) if self.dataset_path else None

    def run(self, ctx: RunContext) -> None:
        """Nothing is generated: the images are the run's."""

    def score(self, ctx: RunContext) -> dict[str, Any]:
        """Score, and merge the new aggregates into the run's summary (other metrics kept)."""
        from evalsuite.metrics.scoring import score_run

        meta = ctx.meta
        before = json.loads(json.dumps(meta.get("summary") or {}))
        self.summary = score_run(
            ctx.store,
            self.names,
            device=self.device,
            dataset=self.dataset,
            metric_weights=self.mode,
            **self.score_kw,
        )
        from evalsuite.metrics.scoring import reference_changes

        self.changes = reference_changes(before, self.summary)
        for line in self.changes:
            log.warning("%s", line)
        old = meta.get("summary", {})
        for config, entry in self.summary.items():
            prev = old.setdefault(config, {"counts": entry["counts"], "metrics": {}})
            prev["counts"] = entry["counts"]
            if entry.get("scoring_errors"):
                prev["scoring_errors"] = entry["scoring_errors"]
            else:
                prev.pop("scoring_errors", None)
            prev.setdefault("metrics", {}).update(entry["metrics"])
        meta["metric_weights"] = self.mode
        meta["metrics"] = sorted(set(meta.get("metrics", [])) | set(self.names))
        if (meta.get("error") or {}).get("phase") in ("scoring", "the report"):
            meta.pop("error")  # an earlier scoring's internal error, now scored and reported
        return old

    def interrupted(self, ctx: RunContext) -> dict[str, Any]:
        """A signal before scoring started: the run's summary as it was."""
        log.warning("interrupted before scoring: %s is unchanged", ctx.store.path)
        return dict(ctx.meta.get("summary", {}))

    def report(self, ctx: RunContext) -> None:
        from evalsuite.report.report import write_report

        write_report(ctx.store.path)

    def close(self, ctx: RunContext) -> None:
        """Nothing to release."""

    def result(self, ctx: RunContext) -> dict[str, Any]:
        return self.summary


def _context(device: torch.device) -> Any:
    """The lifecycle's ``ctx_factory``: ``run.json`` as stored (read again under the lock)."""
    from evalsuite.results.run import read_run_meta

    def make(store: RunStore, lock: RunLock, stop: StopOnSignals) -> RunContext:
        return RunContext(store, lock, read_run_meta(store), device, stop)

    return make


def rescore(run_dir: str | Path, metrics: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """Score ``run_dir`` again and write the results back; returns the new summary.

    Keyword arguments go to :func:`evalsuite.metrics.scoring.score_run` (``device``,
    ``metric_weights``, ``metric_weights_dir``, ``pairs``, ``metric_options``, ``batch_size``) plus
    ``dataset`` (a path).

    Raises:
        NotARunDirError: not a run directory. WrongRunKind: a sweep's run directory. RunConfigError: the run directory cannot be written
            (checked before the lock). RunFormatError: a damaged ``run.json`` or journal.
            RunLockedError: another live process holds the run directory. ScoringError,
            MetricOptionError, MetricWeightsError: see ``score_run``. RunInterrupted: a signal before
            scoring started (the run is unchanged). InternalRunError: an unexpected error while scoring
            or reporting (recorded in ``run.json``).
    """
    from evalsuite.device import resolve_device
    from evalsuite.engine.lifecycle import execute
    from evalsuite.report.report import check_writable, refuse_sweep_run
    from evalsuite.results.run import read_run_meta
    from evalsuite.results.store import NotARunDirError, RunStore

    # unusable input is refused before the lock is taken, so that nothing is written
    device = resolve_device(kw.pop("device", "auto"))  # auto: CUDA when available
    if metrics:
        from evalsuite.registry import METRICS

        for n in metrics:
            METRICS.get(n)
    store = RunStore(run_dir)
    if not (store.path / "run.json").is_file():
        raise NotARunDirError(f"{store.path} is not a run directory (no run.json)")
    meta = read_run_meta(store)  # a damaged run.json
    store.check_rows_present(meta)  # neither rows.jsonl nor samples.parquet holds the rows
    refuse_sweep_run(store.path, meta, "score")  # a profile/frontier/plan run is not scored as a run
    check_writable(store.path, "score", WRITES)  # a read-only run
    scenario = ScoreScenario(metrics, device, **kw)
    result: dict[str, Any] = execute(scenario, store, _context(device))
    return result
