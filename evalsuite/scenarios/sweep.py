"""What the sweep scenarios share inside the run lifecycle (:mod:`evalsuite.engine.lifecycle`).

A *sweep* measures points — ``evalsuite profile`` (:mod:`evalsuite.scenarios.profile`), ``evalsuite
frontier`` (:mod:`evalsuite.scenarios.frontier`) and ``evalsuite plan`` (:mod:`evalsuite.scenarios.plan`)
— and writes one row per point (``config`` = the point's label, ``case_id`` ``-``, ``seed`` 0 where
a point covers several cases). They share, besides :func:`~evalsuite.engine.lifecycle.execute`:

* :class:`Sweep`: the common arguments (a :class:`~evalsuite.config.runconfig.SweepConfig`) resolved
  before the lock (run id, output folder, weights policy, dataset, device and thread policy — every
  usage error surfaces here, exit 2), the run
  directory's default name, and the call of the lifecycle with ``run.json``'s common fields;
* :class:`SweepScenario`: counts per configuration as the summary, the run directory as the
  result, and :meth:`SweepScenario.record` (a row and its ``configs`` entry, so ``run.json``
  describes every row);
* :func:`usable_cases`: the cases a runner accepts.

Their tables and plots are rendered in :mod:`evalsuite.report` (``profile``, ``frontier``, ``plan``)
from the stored rows and ``run.json``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.config.runconfig import SweepConfig
from evalsuite.engine.lifecycle import RunContext, Scenario
from evalsuite.results.store import RunStore
from evalsuite.results.types import ConfigEntry, Row

if TYPE_CHECKING:
    import torch

    from evalsuite.config.configuration import Configuration
    from evalsuite.data.cases import Case, Dataset
    from evalsuite.runners.base import Runner
    from evalsuite.runners.weights import Weights

log = logging.getLogger(__name__)


@dataclass
class Sweep:
    """The resolved common arguments of a sweep command (see :meth:`resolve`).

    Attributes:
        kind: ``run.json``'s ``kind`` (``profile``, ``frontier``, ``plan``).
        weights: the weights policy.
        device: the device the sweep runs on (its thread policy applied).
        dataset: the dataset the cases come from (read and fingerprinted once).
        out: the root of run directories.
        run_id: the run directory's name, or ``None`` for :meth:`store`'s default.
    """

    kind: str
    weights: Weights
    device: torch.device
    dataset: Dataset
    out: Path
    run_id: str | None

    @classmethod
    def from_config(cls, kind: str, config: SweepConfig) -> Sweep:
        """Check (:meth:`SweepConfig.validate`) and resolve the common arguments, before the lock and
        before anything is loaded.

        Raises:
            RunConfigError: an unknown weights policy, a run id that is not a folder name, an ``out``
                that cannot be written, a device evalsuite does not accept or this machine lacks.
            ValueError, FileNotFoundError, ManifestError: an unknown or damaged dataset.
        """
        from evalsuite.data.registry import load_dataset
        from evalsuite.device import resolve_device
        from evalsuite.engine.lifecycle import apply_thread_policy
        from evalsuite.runners.weights import Weights

        config.validate()
        w = Weights(config.weights, config.weights_dir)  # type: ignore[arg-type]
        ds = load_dataset(config.dataset)  # hashed once: cases and fingerprint from the same read
        dev = resolve_device(config.device, w.policy)
        apply_thread_policy(dev, w.policy)
        return cls(kind, w, dev, ds, config.out, config.run_id)

    @classmethod
    def resolve(
        cls,
        kind: str,
        weights: str,
        device: str | torch.device | None,
        out: str | Path,
        run_id: str | None,
        dataset: str,
        weights_dir: str | Path | None = None,
    ) -> Sweep:
        """:meth:`from_config` with the :class:`SweepConfig` fields as arguments."""
        config = SweepConfig(
            weights=weights,
            dataset=dataset,
            device=device,
            out=Path(out),
            run_id=run_id,
            weights_dir=Path(weights_dir) if weights_dir else None,
        )
        return cls.from_config(kind, config)

    def store(self, *name: str) -> RunStore:
        """The run directory: ``out/run_id``, by default ``out/<kind>[-<name>…]-<weights>-<UTC time>``."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        return RunStore(self.out / (self.run_id or "-".join([self.kind, *name, self.weights.policy, stamp])))

    def execute(
        self,
        scenario: Scenario,
        store: RunStore,
        *,
        seeds: Sequence[int] | str,
        metrics: Sequence[str],
        metric_weights: str | None = None,
        dataset_note: str | None = None,
    ) -> Any:
        """Run ``scenario`` in ``store`` through the shared lifecycle (lock, ``run.json`` schema and
        provenance, SIGINT/SIGTERM handling, internal errors recorded).

        Raises:
            RunLockedError: another live process uses the run directory.
            RunInterrupted: after SIGINT/SIGTERM, everything measured so far written.
            InternalRunError: an unexpected error after the sweep started (rows kept, exit 1).
        """
        from evalsuite.engine.lifecycle import context_factory, execute

        context = context_factory(
            self.kind,
            self.dataset,
            self.device,
            seeds=seeds,
            metrics=metrics,
            metric_weights=metric_weights,
            weights_dir=self.weights.weights_dir,
            dataset_note=dataset_note,
        )
        return execute(scenario, store, context)


class SweepScenario:
    """Base of the sweep scenarios: rows kept in :attr:`rows`, counts per configuration as the
    summary (``evalsuite profile`` adds its latency aggregates), the run directory as the result."""

    kind = "sweep"
    lock_name = "run.lock"
    owns_directory = True
    attempt = True
    refusals: tuple[type[Exception], ...] = ()
    done = False

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(
        self,
        ctx: RunContext,
        row: dict[str, Any],
        conf: Configuration,
        policy: str,
        save: bool = True,
        **entry: Any,
    ) -> dict[str, Any]:
        """Append ``row`` to the journal and to :attr:`rows`, list its ``config`` in ``run.json``
        (``configs`` entry: runner, description, source, resolved params, weights, and ``entry``) and,
        with ``save``, write ``run.json``."""
        row.setdefault("case_id", "-")
        row.setdefault("seed", 0)
        row.setdefault("weights", policy)
        typed = Row.from_dict(row)  # the point's own fields stay in order, in ``extra``
        ctx.store.append_row(typed.to_dict())
        self.rows.append(row)
        label = str(typed.config)
        ctx.meta["weights"][label] = policy
        config_entry = ConfigEntry.from_dict(
            {
                "runner": conf.runner,
                "description": conf.description,
                "source": conf.source,
                "params": conf.params_dict(),
                "weights": policy,
                **entry,  # explicit values (``load_error=None`` too) are written as given
            }
        )
        ctx.meta["configs"][label] = config_entry.to_dict()
        if save:
            ctx.save_meta()
        return row

    def counts(self) -> dict[str, Any]:
        """``{config: {"counts": …, "metrics": {}}}`` over the rows so far."""
        from evalsuite.metrics.scoring import count_summary

        configs = dict.fromkeys(str(r["config"]) for r in self.rows)
        return {
            c: {"counts": count_summary([r for r in self.rows if r["config"] == c]), "metrics": {}}
            for c in configs
        }

    def score(self, ctx: RunContext) -> dict[str, Any]:
        return self.counts()

    def interrupted(self, ctx: RunContext) -> dict[str, Any]:
        log.warning(
            "interrupted: %d %s point(s) measured; their rows and tables are written",
            len(self.rows),
            self.kind,
        )
        return self.counts()

    def close(self, ctx: RunContext) -> None:
        """Nothing to release after the report."""

    def result(self, ctx: RunContext) -> Path:
        return ctx.store.path


def usable_cases(runner: Runner, pool: Sequence[Case], n: int) -> list[Case]:
    """The first ``n`` cases of ``pool`` the runner accepts (its inputs load).

    Raises:
        CaseError: when none is usable.
    """
    from evalsuite.runners.base import CaseError

    out = []
    for case in pool:
        try:
            runner.check_case(case)
            if runner.task == "inpaint":
                runner.load_inputs(case)
        except CaseError:
            continue
        out.append(case)
        if len(out) == n:
            break
    if not out:
        raise CaseError(f"none of the {len(pool)} cases is usable by {type(runner).__name__}")
    return out
