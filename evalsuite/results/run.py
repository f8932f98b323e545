"""ONE loader of a stored run directory: :class:`Run`.

``evalsuite.load_run`` and ``evalsuite.run`` return it (its public name there is ``RunResult``); the
report, ``evalsuite compare``, ``evalsuite score`` and the pytest plugin read runs through it. It
gives ``run.json`` as stored (:attr:`Run.meta`) and typed (:attr:`Run.run_meta`, :attr:`Run.configs`,
:attr:`Run.summaries`), the rows as a table (:attr:`Run.samples`) and typed (:meth:`Run.rows`), and
can be narrowed to one configuration (:meth:`Run.select`: what the pytest plugin's ``evalsuite_run``
fixture returns), whose rows, summary, weights and parameters it then shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.results.store import RunStore
from evalsuite.results.types import ConfigEntry, Row, RunMeta, Summary

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "RunResult", "load_run", "read_run_meta"]

log = logging.getLogger(__name__)

_DAMAGED = "the run's metadata is damaged: restore it from a copy, or run again into a new run directory"


def read_run_meta(store: RunStore, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``run.json`` of ``store`` (checked against its rows), with the fix named when it is damaged.
    ``rows``: the journal's rows (:meth:`RunStore.rows`) when the caller has read them.

    Raises:
        NotARunDirError: not a run directory.
        RunFormatError: ``run.json`` is not valid JSON or not an object (naming the file and the fix),
            is of an unknown schema, or contradicts its rows; a corrupted journal.
    """
    from evalsuite.results.store import RunFormatError

    try:
        return store.read_meta(rows=rows)
    except RunFormatError as exc:
        msg = str(exc)
        if msg.startswith(f"{store.run_json}: ") and (
            "not valid JSON" in msg or "expected a JSON object" in msg
        ):
            raise RunFormatError(f"{msg}; {_DAMAGED}") from exc
        raise  # a corrupted journal or a run.json that contradicts its rows: the message says what to do


@dataclass
class Run:
    """A stored run directory (or, after :meth:`select`, one configuration of it).

    Attributes:
        path: the run directory.
        meta: ``run.json`` as stored (older schemas migrated); :attr:`run_meta` is the typed record.
        samples: one row per (configuration, case, seed) as in ``samples.parquet`` (after
            :meth:`select`, only that configuration's rows).
        config: the configuration this run is narrowed to, ``None`` for the whole run.
        cache: values readers derive from the run once (e.g. the report's quantities).
        whole: after :meth:`select`, the run it was narrowed from.
    """

    path: Path
    meta: dict[str, Any]
    samples: pd.DataFrame
    config: str | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    whole: Run | None = field(default=None, repr=False, compare=False)
    table_rows: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """Read the run directory ``path`` (``run.json`` checked against the rows, then the table).

        Raises:
            FileNotFoundError: when ``path`` holds no ``run.json``.
            RunFormatError: a damaged or foreign ``run.json``, or a corrupted journal (see
                :func:`read_run_meta`).
        """
        store = RunStore(path)
        meta = read_run_meta(store)
        journal = store.rows()
        store.check_rows_present(meta, journal)  # both copies of the rows lost: say so, never show 0 rows
        df = store.samples()
        table_rows = store.table_only_rows(df, journal)
        if table_rows:
            log.warning(
                "%s: %d row(s) of %s are in no journal (rows.jsonl was emptied, truncated or deleted); "
                "read them from %s. `evalsuite score %s` (or rerunning `evalsuite run`) restores the "
                "journal from it",
                store.path,
                len(table_rows),
                store.samples_path.name,
                store.samples_path.name,
                store.path,
            )
        return cls(store.path, meta, df, table_rows=table_rows)

    def select(self, config: str) -> Run:
        """This run narrowed to ``config``: :attr:`samples`, :attr:`summary`, :attr:`weights` and
        :attr:`params` are then that configuration's."""
        df = self.samples
        rows = df[df["config"] == config].reset_index(drop=True) if len(df) else df
        return replace(self, samples=rows, config=config, cache={}, whole=self.whole or self)

    @property
    def result(self) -> Run:
        """The whole run (the run this one was narrowed from by :meth:`select`, else itself)."""
        return self.whole or self

    # -- where ---------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """The run directory (same as :attr:`path`)."""
        return self.path

    @property
    def store(self) -> RunStore:
        return RunStore(self.path)

    @property
    def name(self) -> str:
        """The run id (the directory name when ``run.json`` has none)."""
        return str(self.meta.get("run_id") or self.path.name)

    # -- typed run.json --------------------------------------------------------------------------
    @property
    def run_meta(self) -> RunMeta:
        """``run.json`` as a :class:`~evalsuite.results.types.RunMeta` (read once)."""
        if "run_meta" not in self.cache:
            self.cache["run_meta"] = RunMeta.from_dict(self.meta)
        meta: RunMeta = self.cache["run_meta"]
        return meta

    @property
    def configs(self) -> dict[str, ConfigEntry]:
        """``configs`` of ``run.json``: configuration (or sweep point) → its entry."""
        return self.run_meta.configs

    @property
    def config_names(self) -> list[str]:
        """Configurations in ``run.json`` order, then any others found in the rows."""
        if self.config is not None:
            return [self.config]
        names = list(self.configs)
        for c in self.samples["config"].dropna().unique() if len(self.samples) else []:
            if c not in names:
                names.append(str(c))
        return names

    @property
    def summaries(self) -> dict[str, Summary]:
        """``summary`` of ``run.json``: configuration → counts and metric aggregates."""
        return self.run_meta.summary or {}

    @property
    def policies(self) -> dict[str, str]:
        """Configuration → weights policy (``run.json`` ``weights``)."""
        return dict(self.run_meta.weights or {})

    @property
    def summary(self) -> dict[str, Any]:
        """``run.json`` ``summary`` as stored (configuration → ``counts`` and ``metrics``); after
        :meth:`select`, that configuration's entry."""
        whole = self.meta.get("summary") or {}
        return dict(whole.get(self.config, {})) if self.config is not None else whole

    # -- one configuration (after select) ------------------------------------------------------
    @property
    def selected(self) -> str:
        """The configuration this run is narrowed to (:meth:`select`).

        Raises:
            ValueError: for a run not narrowed to one configuration.
        """
        if self.config is None:
            raise ValueError(f"{self.path}: select a configuration first (Run.select(name))")
        return self.config

    @property
    def weights(self) -> str:
        """The selected configuration's weights policy."""
        return str(self.policies[self.selected])

    @property
    def dataset(self) -> dict[str, Any]:
        """``run.json`` ``dataset`` (name, size, fingerprint, source)."""
        return dict(self.run_meta.dataset or {})

    @property
    def params(self) -> dict[str, Any]:
        """The selected configuration's resolved parameters."""
        return dict(self.configs[self.selected].params)

    def keys(self) -> list[str]:
        """``<case_id>-<seed>`` of every row of :attr:`samples`, in order."""
        return [f"{r.case_id}-{int(r.seed)}" for r in self.samples.itertuples()]

    # -- rows ----------------------------------------------------------------------------------
    def rows(self, config: str | None = None) -> list[Row]:
        """The rows of the journal as :class:`~evalsuite.results.types.Row` (of ``config``, or of the
        selected configuration, or all), in journal order."""
        want = config if config is not None else self.config
        rows = [*self.store.rows(), *self.table_rows]  # table_rows: rows only samples.parquet still holds
        return [Row.from_dict(r) for r in rows if want is None or r["config"] == want]

    @property
    def ok_samples(self) -> pd.DataFrame:
        """Rows of :attr:`samples` whose status is ``ok``."""
        df = self.samples
        return df[df["status"] == "ok"] if len(df) else df

    @property
    def n_errors(self) -> int:
        """Rows whose status is ``error``."""
        return int((self.samples["status"] == "error").sum()) if len(self.samples) else 0

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return self.n_errors == 0

    def summary_line(self) -> str:
        """One line with the row counts by status, e.g. ``12 rows: 10 ok, 1 error, 1 skipped``."""
        status = list(self.samples["status"]) if len(self.samples) else []
        counts = ", ".join(f"{status.count(k)} {k}" for k in ("ok", "error", "skipped"))
        return f"{len(status)} rows: {counts}"


RunResult = Run
"""What :func:`evalsuite.run` and :func:`load_run` return (the public name of :class:`Run`)."""


def load_run(path: str | Path) -> Run:
    """Read a run directory back (``run.json`` + ``samples.parquet``): :meth:`Run.load`.

    Raises:
        FileNotFoundError: if ``path`` is not a run directory.
        RunFormatError: a damaged or foreign ``run.json``, or a corrupted journal.
    """
    return Run.load(path)
