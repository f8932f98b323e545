"""The catalog database: :class:`Catalog` (one embedded DuckDB file; docs/catalog.md documents every
table and column).

Indexing reads a run directory only through :mod:`evalsuite.results` (:func:`read_run_meta`,
:meth:`RunStore.rows <evalsuite.results.store.RunStore.rows>`, the typed records), builds its
records column by column, and writes whole runs as Arrow tables in transactions of several runs
(:data:`BATCH_RUNS`, :data:`BATCH_RECORDS`): a crash mid-index leaves the transactions committed
before it and never part of a run, and the next index completes it.
A run is re-read only when its content hash (sha256 of ``run.json`` and the row journals) changed;
the files' sizes and modification times are checked first, so an unchanged run is not even hashed.
One writer at a time (a file lock next to the database, ``<catalog>.lock``); queries given by users
run on a read-only connection with external access disabled.

Every filter is a query parameter: no user text is ever formatted into SQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalsuite.errors import UsageError
from evalsuite.results.run import read_run_meta
from evalsuite.results.store import RUN_JSON, RunStore
from evalsuite.results.types import Row, RunMeta

log = logging.getLogger(__name__)

#: Version of the catalog's own schema: a catalog written with a higher one is refused, a lower one
#: is rebuilt from its run directories.
CATALOG_SCHEMA = 1
ENV = "EVALSUITE_CATALOG"
FILENAME = "catalog.duckdb"
LOCK_TIMEOUT_S = 120.0
#: Runs are written in transactions of whole runs: one transaction (one insert per table) once this
#: many runs, or this many records over all tables, are read (and at the end of an index). A commit
#: costs about 10 ms on the development machine (the WAL is synced) and each insert a few ms, so
#: writing run by run would cost about 25 ms per run.
BATCH_RUNS = 64
BATCH_RECORDS = 200_000

#: Row fields copied into typed columns of ``rows`` (besides the identity and provenance fields).
ROW_NUMBERS = (
    "batch_size",
    "latency_s",
    "step_median_s",
    "wall_s",
    "peak_allocated_gib",
    "peak_reserved_gib",
    "nvml_peak_gib",
    "host_peak_rss_gib",
    "energy_j",
    "s_per_image",
)
#: Aggregates whose per-run value is a median (the rest are means).
MEDIAN_METRICS = ("latency",)
#: aggregate name → the row column holding its per-image values, where they differ.
ROW_COLUMN = {"latency": "latency_s"}

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS catalog_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS roots (path VARCHAR PRIMARY KEY);
CREATE TABLE IF NOT EXISTS runs (
    run_key VARCHAR PRIMARY KEY, run_id VARCHAR, path VARCHAR, kind VARCHAR, label VARCHAR,
    schema VARCHAR, migrated_from VARCHAR, evalsuite_version VARCHAR, git_commit VARCHAR,
    created TIMESTAMP, started TIMESTAMP, finished TIMESTAMP, interrupted BOOLEAN,
    device_type VARCHAR, gpu_name VARCHAR, gpu_memory_gib DOUBLE, cuda VARCHAR, machine_id VARCHAR,
    platform VARCHAR, python_version VARCHAR, torch_version VARCHAR, diffusers_version VARCHAR,
    transformers_version VARCHAR, versions VARCHAR, weights_policy VARCHAR, metric_weights VARCHAR,
    dataset_name VARCHAR, dataset_fingerprint VARCHAR, dataset_size INTEGER, n_configs INTEGER,
    n_rows INTEGER, n_ok INTEGER, n_error INTEGER, has_error BOOLEAN,
    content_hash VARCHAR, file_stamp VARCHAR, indexed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS configs (
    run_key VARCHAR, config VARCHAR, runner VARCHAR, config_hash VARCHAR, weights VARCHAR,
    load_error VARCHAR, load_s DOUBLE, point VARCHAR, strategy VARCHAR, phase VARCHAR,
    description VARCHAR, params VARCHAR
);
CREATE TABLE IF NOT EXISTS rows (
    run_key VARCHAR, config VARCHAR, case_id VARCHAR, seed BIGINT, status VARCHAR, error VARCHAR,
    category VARCHAR, mask_family VARCHAR, weights VARCHAR, quality_evidence BOOLEAN,
    config_hash VARCHAR, case_hash VARCHAR, dataset_fingerprint VARCHAR, image VARCHAR,
    first_call BOOLEAN, rank INTEGER,
    batch_size DOUBLE, latency_s DOUBLE, step_median_s DOUBLE, wall_s DOUBLE, peak_allocated_gib DOUBLE,
    peak_reserved_gib DOUBLE, nvml_peak_gib DOUBLE, host_peak_rss_gib DOUBLE, energy_j DOUBLE,
    s_per_image DOUBLE
);
CREATE TABLE IF NOT EXISTS row_values (
    run_key VARCHAR, config VARCHAR, case_id VARCHAR, seed BIGINT, name VARCHAR, value DOUBLE
);
CREATE TABLE IF NOT EXISTS aggregates (
    run_key VARCHAR, config VARCHAR, metric VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
    n INTEGER, statistic VARCHAR, unit VARCHAR, higher_is_better BOOLEAN, quality_evidence BOOLEAN
);
CREATE TABLE IF NOT EXISTS frontier_points (
    run_key VARCHAR, config VARCHAR, base_config VARCHAR, point VARCHAR, is_reference BOOLEAN,
    status VARCHAR, reason VARCHAR, s_per_image DOUBLE, s_ci_low DOUBLE, s_ci_high DOUBLE,
    nvml_peak_gib DOUBLE, alloc_peak_gib DOUBLE, reserved_peak_gib DOUBLE,
    lpips_mean DOUBLE, lpips_ci_low DOUBLE, lpips_ci_high DOUBLE
);
CREATE TABLE IF NOT EXISTS plan_rows (
    run_key VARCHAR, config VARCHAR, base_config VARCHAR, strategy VARCHAR, phase VARCHAR,
    status VARCHAR, reason VARCHAR, s_per_image DOUBLE, first_call_s DOUBLE, nvml_peak_gib DOUBLE,
    alloc_peak_gib DOUBLE, estimated_resident_gib DOUBLE
);
CREATE OR REPLACE VIEW metric_meta AS
    SELECT metric, bool_or(higher_is_better) AS higher_is_better, any_value(unit) AS unit,
           count(DISTINCT run_key) AS n_runs
    FROM aggregates GROUP BY metric;
"""

#: Tables holding one run's records (deleted and rewritten together when the run is re-read).
RUN_TABLES = ("runs", "configs", "rows", "row_values", "aggregates", "frontier_points", "plan_rows")


class CatalogError(UsageError):
    """A catalog that cannot be used (not a DuckDB file, written by a newer evalsuite, busy) or a
    run/label it does not hold; the message names the file or name and the fix (exit 2)."""


def default_path(out_root: str | os.PathLike[str] | None = None) -> Path:
    """The catalog file: ``EVALSUITE_CATALOG`` when set, else ``<out_root>/catalog.duckdb``
    (``reports/`` when ``out_root`` is ``None``)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    return Path(out_root if out_root is not None else "reports") / FILENAME


@dataclass
class IndexReport:
    """What one :meth:`Catalog.index` did: run directories added, re-read, unchanged, removed,
    and skipped (path → why)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} re-read, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped"
        )


def _connect(path: Path, read_only: bool) -> Any:
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = (
        {"enable_external_access": False, "lock_configuration": True} if read_only else {}
    )
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise CatalogError(
                f"{path}: another process has the catalog open for writing ({exc}); try again when it has finished"
            ) from exc
        raise CatalogError(
            f"{path}: cannot open the catalog ({exc}); if this is not an evalsuite catalog, pass another "
            f"--catalog (or {ENV}); to recreate it, run 'evalsuite catalog rebuild'"
        ) from exc


class Catalog:
    """The catalog at ``path`` (created when missing, unless ``read_only``).

    A writable catalog holds the writer lock (``<path>.lock``) until :meth:`close`.

    Raises:
        CatalogError: the file is not a DuckDB database, was written by a newer evalsuite, is missing
            (read-only), or another writer holds it longer than :data:`LOCK_TIMEOUT_S`.
    """

    def __init__(
        self, path: str | os.PathLike[str], read_only: bool = False, lock_timeout: float = LOCK_TIMEOUT_S
    ):
        self.path = Path(path)
        self.read_only = read_only
        self._known: dict[str, tuple[str, str]] = {}  # run_key → (file stamp, content hash), per index()
        self._types: dict[str, list[tuple[str, str]]] = {}  # table → its (column, DuckDB type)
        self._pending: list[tuple[str, dict[str, Any], bool]] = []  # runs read, not yet written
        self._pending_records = 0
        self._lock: Any = None
        if read_only:
            if not self.path.is_file():
                raise CatalogError(
                    f"{self.path}: no catalog here; index run directories with 'evalsuite catalog rebuild' "
                    f"(or pass --catalog / {ENV})"
                )
        else:
            from filelock import FileLock, Timeout

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.path) + ".lock")
            try:
                self._lock.acquire(timeout=lock_timeout)
            except Timeout as exc:
                raise CatalogError(
                    f"{self.path}: another evalsuite process is writing the catalog (lock {self._lock.lock_file}); "
                    "try again when it has finished"
                ) from exc
        try:
            self.con = _connect(self.path, read_only)
            self._check_schema()
        except BaseException:
            self._release()
            raise

    # -- opening ------------------------------------------------------------------------------------
    def _check_schema(self) -> None:
        import duckdb

        con = self.con
        try:
            have = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'catalog_meta'"
            ).fetchone()[0]
            version = None
            if have:
                got = con.execute("SELECT value FROM catalog_meta WHERE key = 'schema'").fetchone()
                version = int(got[0]) if got else None
        except (duckdb.Error, ValueError) as exc:
            raise CatalogError(f"{self.path}: not an evalsuite catalog ({exc})") from exc
        if version is not None and version > CATALOG_SCHEMA:
            raise CatalogError(
                f"{self.path}: written by a newer evalsuite (catalog schema {version}; this version reads "
                f"up to {CATALOG_SCHEMA}); upgrade evalsuite, or delete the file and run "
                "'evalsuite catalog rebuild' to recreate it for this version"
            )
        if self.read_only:
            if version is None:
                raise CatalogError(f"{self.path}: not an evalsuite catalog (no catalog_meta table)")
            if version < CATALOG_SCHEMA:
                raise CatalogError(
                    f"{self.path}: written by an older evalsuite (catalog schema {version}); run "
                    "'evalsuite catalog rebuild' to update it"
                )
            return
        if version is not None and version < CATALOG_SCHEMA:
            roots = [r[0] for r in con.execute("SELECT path FROM roots").fetchall()]
            log.warning(
                "%s: catalog schema %s is older than %s: rebuilding it", self.path, version, CATALOG_SCHEMA
            )
            self._drop_all()
            self._create()
            self.index(roots)
            return
        if version is None:
            user_tables = con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0]
            if user_tables:
                raise CatalogError(
                    f"{self.path}: a DuckDB database that is not an evalsuite catalog; pass another --catalog"
                )
        self._create()

    def _create(self) -> None:
        self.con.execute(SCHEMA_SQL)
        self.con.execute("INSERT OR REPLACE INTO catalog_meta VALUES ('schema', ?)", [str(CATALOG_SCHEMA)])

    def _drop_all(self) -> None:
        self._types = {}
        self.con.execute("DROP VIEW IF EXISTS metric_meta")
        for t in (*RUN_TABLES, "roots", "catalog_meta"):
            self.con.execute(f"DROP TABLE IF EXISTS {t}")  # fixed names, never user text

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- indexing -----------------------------------------------------------------------------------
    def roots(self) -> list[str]:
        """Folders indexed so far (``rebuild`` scans them again)."""
        return [r[0] for r in self.con.execute("SELECT path FROM roots ORDER BY path").fetchall()]

    def index(self, paths: Iterable[str | os.PathLike[str]], prune: bool = True) -> IndexReport:
        """Index run directories: each path is a run directory or a folder of run directories (a
        *root*, remembered for :meth:`rebuild`). Unchanged runs are not re-read; a damaged one is
        skipped with one warning naming it and why; with ``prune``, runs of a scanned root whose
        directory is gone are removed."""
        report = IndexReport()
        self._known = {
            k: (stamp, digest)
            for k, stamp, digest in self.con.execute(
                "SELECT run_key, file_stamp, content_hash FROM runs"
            ).fetchall()
        }
        self._pending, self._pending_records = [], 0
        for p in paths:
            path = Path(p).resolve()
            if (path / RUN_JSON).is_file():
                self._add_root(path.parent)
                self._index_run(path, report)
                continue
            if not path.is_dir():
                report.skipped[str(path)] = "not a folder"
                log.warning("catalog: skipped %s: not a folder", path)
                continue
            self._add_root(path)
            for run_dir in _run_dirs(path):
                self._index_run(run_dir, report)
            self._flush()
            if prune:
                self._prune(path, report)
        self._flush()
        return report

    def rebuild(self, paths: Iterable[str | os.PathLike[str]] = ()) -> IndexReport:
        """Recreate the catalog from the run directories of its roots (and ``paths``)."""
        roots = [*self.roots(), *(str(Path(p).resolve()) for p in paths)]
        self._drop_all()
        self._create()
        return self.index(dict.fromkeys(roots))

    def _add_root(self, root: Path) -> None:
        self.con.execute("INSERT OR IGNORE INTO roots VALUES (?)", [str(root)])

    def _prune(self, root: Path, report: IndexReport) -> None:
        prefix = str(root) + os.sep
        known = self.con.execute(
            "SELECT run_key FROM runs WHERE starts_with(run_key, ?)", [prefix]
        ).fetchall()
        for (key,) in known:
            if not (Path(key) / RUN_JSON).is_file():
                self._delete(key)
                self._known.pop(key, None)
                report.removed.append(key)

    def _delete(self, key: str) -> None:
        for t in RUN_TABLES:
            self.con.execute(f"DELETE FROM {t} WHERE run_key = ?", [key])  # fixed table names

    def _index_run(self, path: Path, report: IndexReport) -> None:
        key = str(path)
        store = RunStore(path)
        files = [store.run_json, *store.journals()]
        stamp = json.dumps([[f.name, *_stat(f)] for f in files])
        got = self._known.get(key)
        if got and got[0] == stamp:
            report.unchanged.append(key)
            return
        digest = content_hash(files)
        if got and got[1] == digest:
            self.con.execute("UPDATE runs SET file_stamp = ? WHERE run_key = ?", [stamp, key])
            self._known[key] = (stamp, digest)
            report.unchanged.append(key)
            return
        try:
            raw = store.rows()
            meta = read_run_meta(store, rows=raw)  # checked against the rows just read
            rows = [Row.from_dict(r) for r in raw]  # typed; ``raw`` as stored (from_dict round-trips)
            records = _records(key, path, RunMeta.from_dict(meta), rows, raw)
            records["runs"].update(
                content_hash=[digest],
                file_stamp=[stamp],
                indexed_at=[datetime.now(UTC).replace(tzinfo=None)],
            )
            tables = {t: _arrow(self._columns(t), cols) for t, cols in records.items()}
        except Exception as exc:  # a broken, foreign or half-written directory: skip it, lose nothing else
            why = str(exc) or type(exc).__name__
            report.skipped[key] = why
            log.warning("catalog: skipped %s: %s", path, why)
            return
        self._pending.append((key, tables, got is not None))
        self._pending_records += sum(t.num_rows for t in tables.values())
        if len(self._pending) >= BATCH_RUNS or self._pending_records >= BATCH_RECORDS:
            self._flush()
        self._known[key] = (stamp, digest)
        (report.updated if got else report.added).append(key)

    def _columns(self, table: str) -> list[tuple[str, str]]:
        """(column, DuckDB type) of ``table``, as created (read once per catalog)."""
        if table not in self._types:
            self._types[table] = [
                (str(c), str(t))
                for c, t in self.con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
            ]
        return self._types[table]

    def _flush(self) -> None:
        """Write the runs read so far (:meth:`_write`)."""
        if self._pending:
            batch, self._pending, self._pending_records = self._pending, [], 0
            self._write(batch)

    def _write(self, batch: Sequence[tuple[str, dict[str, Any], bool]]) -> None:
        """Write whole runs in one transaction: each run's old records deleted first when it was in
        the catalog (``(run_key, table → Arrow table, replace)``), then one insert per table of every
        run's records. A crash before the commit leaves none of them (the next index reads them
        again)."""
        import pyarrow as pa

        con = self.con
        con.begin()
        try:
            for key, _, replace in batch:
                if replace:
                    self._delete(key)
            for table in RUN_TABLES:
                parts = [
                    tables[table] for _, tables, _ in batch if table in tables and tables[table].num_rows
                ]
                if not parts:
                    continue
                data = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
                con.register("_catalog_frame", data)
                try:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _catalog_frame")  # fixed names
                finally:
                    con.unregister("_catalog_frame")
            con.commit()
        except BaseException:
            con.rollback()
            raise

    # -- labels -------------------------------------------------------------------------------------
    def resolve_run(self, run: str) -> str:
        """The catalog key (absolute path) of ``run``: a run directory path or a run id.

        Raises:
            CatalogError: no such run, or a run id that names several runs.
        """
        p = Path(run)
        if (p / RUN_JSON).is_file():
            return str(p.resolve())
        keys = [r[0] for r in self.con.execute("SELECT run_key FROM runs WHERE run_id = ?", [run]).fetchall()]
        if not keys:
            raise CatalogError(
                f"run {run!r}: not in the catalog {self.path} (give a run directory, or index it first "
                "with 'evalsuite catalog rebuild DIR'; 'evalsuite catalog list' shows the runs)"
            )
        if len(keys) > 1:
            raise CatalogError(
                f"run id {run!r} names {len(keys)} runs ({', '.join(keys)}); give the directory"
            )
        return keys[0]

    def set_label(self, run: str, label: str) -> str:
        """Label ``run`` (a path or run id): written into its ``run.json`` (``label``; the run
        directory stays the source of truth) and the run re-indexed. Returns the run directory."""
        if not label or not label.strip():
            raise CatalogError("a label must not be empty")
        key = self.resolve_run(run)
        write_label(Path(key), label)
        self.index([key], prune=False)
        return key

    def labels(self) -> list[str]:
        return [
            r[0]
            for r in self.con.execute(
                "SELECT label FROM runs WHERE label IS NOT NULL GROUP BY label ORDER BY min(started)"
            ).fetchall()
        ]

    def resolve_ref(self, ref: str, like: str | None = None) -> str:
        """The run directory a ``catalog:REF`` names (``REF`` without the prefix): ``latest`` — the
        newest ``evalsuite run`` run, or with ``like`` (a run directory) the newest other run
        comparable to it (same dataset fingerprint and device, a configuration in common); a label —
        the newest run with that label; else a run id.

        Raises:
            CatalogError: nothing matches (the message lists the labels).
        """
        if ref == "latest":
            if like is None:
                got = self.con.execute(
                    "SELECT path FROM runs WHERE kind = 'generate' ORDER BY started DESC NULLS LAST, run_id DESC LIMIT 1"
                ).fetchone()
            else:
                key = str(Path(like).resolve())
                got = self.con.execute(
                    """SELECT r.path FROM runs r, runs k
                    WHERE k.run_key = ? AND r.run_key <> k.run_key AND r.kind = 'generate'
                      AND r.dataset_fingerprint IS NOT DISTINCT FROM k.dataset_fingerprint
                      AND coalesce(r.gpu_name, r.device_type) IS NOT DISTINCT FROM coalesce(k.gpu_name, k.device_type)
                      AND EXISTS (SELECT 1 FROM configs a JOIN configs b ON a.config = b.config
                                  WHERE a.run_key = r.run_key AND b.run_key = k.run_key)
                    ORDER BY r.started DESC NULLS LAST, r.run_id DESC LIMIT 1""",
                    [key],
                ).fetchone()
            if got is None:
                raise CatalogError(
                    f"catalog:latest: no {'run comparable to ' + str(like) if like else 'run'} in the catalog "
                    f"{self.path} (same dataset fingerprint and device, a configuration in common)"
                )
            return str(got[0])
        got = self.con.execute(
            "SELECT path FROM runs WHERE label = ? ORDER BY started DESC NULLS LAST, run_id DESC LIMIT 1",
            [ref],
        ).fetchone()
        if got is not None:
            return str(got[0])
        keys = self.con.execute("SELECT path FROM runs WHERE run_id = ?", [ref]).fetchall()
        if len(keys) == 1:
            return str(keys[0][0])
        labels = ", ".join(self.labels()) or "none"
        raise CatalogError(
            f"catalog:{ref}: no run with that label or run id in the catalog {self.path} (labels: {labels}; "
            "use catalog:latest, catalog:LABEL or catalog:RUN_ID)"
        )

    # -- reading ------------------------------------------------------------------------------------
    def list_runs(
        self,
        config: str | None = None,
        dataset: str | None = None,
        device: str | None = None,
        kind: str | None = None,
        label: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, filtered (every filter a parameter): ``config`` one of its
        configurations, ``dataset`` its name or fingerprint, ``device`` part of the GPU/CPU name or
        the device type, ``since`` an ISO date or time (runs started then or later)."""
        where: list[str] = []
        params: list[Any] = []
        if config is not None:
            where.append("EXISTS (SELECT 1 FROM configs c WHERE c.run_key = r.run_key AND c.config = ?)")
            params.append(config)
        if dataset is not None:
            where.append("(r.dataset_name = ? OR r.dataset_fingerprint = ?)")
            params += [dataset, dataset]
        if device is not None:
            where.append("(r.device_type = ? OR contains(lower(r.gpu_name), lower(?)))")
            params += [device, device]
        if kind is not None:
            where.append("r.kind = ?")
            params.append(kind)
        if label is not None:
            where.append("r.label = ?")
            params.append(label)
        if since is not None:
            where.append("r.started >= ?")
            params.append(_parse_time(since, "--since"))
        sql = (
            "SELECT r.run_id, r.kind, r.label, r.started, r.dataset_name, r.gpu_name, r.weights_policy, "
            "r.git_commit, r.n_rows, r.n_ok, r.n_error, r.path, "
            "(SELECT string_agg(c.config, ',' ORDER BY c.config) FROM configs c WHERE c.run_key = r.run_key) "
            "AS configs FROM runs r"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.started DESC NULLS LAST, r.run_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self.dicts(sql, params)

    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` (run with ``params``) as dictionaries."""
        cur = self.con.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def query(path: str | os.PathLike[str], sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run the user's ``sql`` on a read-only connection to the catalog at ``path`` (external
    access disabled: no ATTACH, COPY or file reads); returns (column names, rows).

    Raises:
        CatalogError: a missing or foreign catalog, or a statement DuckDB refuses (a write among
            them: the connection is read-only).
    """
    import duckdb

    cat = Catalog(path, read_only=True)
    try:
        cur = cat.con.execute(sql)
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.Error as exc:
        raise CatalogError(f"query refused: {exc}") from exc
    finally:
        cat.close()


# -- reading a run directory ---------------------------------------------------------------------------
def _run_dirs(root: Path) -> Iterator[Path]:
    """Run directories directly under ``root`` (sorted), skipping hidden folders."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        log.warning("catalog: cannot list %s: %s", root, exc)
        return
    for e in entries:
        if e.is_dir() and not e.name.startswith(".") and os.path.isfile(os.path.join(e.path, RUN_JSON)):
            yield Path(e.path)


def _stat(f: Path) -> list[int]:
    try:
        st = f.stat()
    except FileNotFoundError:
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


def content_hash(files: Sequence[Path]) -> str:
    """sha256 of the files' names and bytes (a missing file counts as absent)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        try:
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        except FileNotFoundError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def write_label(run_dir: Path, label: str) -> None:
    """Set ``label`` in ``run_dir``'s ``run.json`` (atomically, through the results store)."""
    store = RunStore(run_dir)
    meta = read_run_meta(store)
    meta["label"] = label
    store.write_meta(meta)


def _parse_time(value: Any, what: str = "time") -> datetime | None:
    if value is None or value == "":
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise CatalogError(
            f"{what} {value!r}: not an ISO date or time (e.g. 2026-01-31 or 2026-01-31T12:00)"
        ) from exc
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t  # stored as UTC without a zone


def _num(v: Any) -> float | None:
    """``v`` as a float when it is a finite number (not a boolean), else ``None``."""
    t = type(v)
    if t is float:
        return v if v - v == 0.0 else None  # NaN and ±inf give NaN
    if t is int:
        return float(v)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _text(v: Any) -> str | None:
    """``v`` for a VARCHAR column: text as it is, anything else as JSON text (``None`` stays)."""
    if v is None or type(v) is str:
        return v
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


def _bool(v: Any) -> bool | None:
    """``v`` for a BOOLEAN column: a boolean, else ``None``."""
    return v if isinstance(v, bool) else None


def _texts(values: Iterable[Any]) -> list[str | None]:
    return [v if v is None or type(v) is str else _text(v) for v in values]


def machine_id(env: dict[str, Any]) -> str | None:
    """A short id of the machine a run recorded: sha256 of its platform string, device type and name
    and (GPU) memory — run directories record no host name."""
    dev = env.get("device") or {}
    if not env and not dev:
        return None
    parts = [env.get("platform"), dev.get("type"), dev.get("name"), dev.get("memory_gib"), dev.get("cores")]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def _base(config: str) -> str:
    return config.split("[", 1)[0]


#: Numbers of frontier and plan rows copied into their tables' typed columns.
FRONTIER_NUMBERS = (
    "s_per_image",
    "s_ci_low",
    "s_ci_high",
    "nvml_peak_gib",
    "alloc_peak_gib",
    "reserved_peak_gib",
    "lpips_mean",
    "lpips_ci_low",
    "lpips_ci_high",
)
PLAN_NUMBERS = ("s_per_image", "first_call_s", "nvml_peak_gib", "alloc_peak_gib", "estimated_resident_gib")
#: Row fields that are numbers but not measurements (left out of ``row_values``).
NOT_VALUES = frozenset({"seed", "rank"})

Columns = dict[str, list[Any]]


def _records(
    key: str, path: Path, meta: RunMeta, rows: Sequence[Row], raw: Sequence[dict[str, Any]]
) -> dict[str, Columns]:
    """The catalog records of one run, column by column: table name → column → values (``rows``:
    the journal rows typed; ``raw``: the same rows as stored)."""
    env = meta.environment or {}
    dev = env.get("device") or {}
    versions = env.get("versions") or {}
    policies = set((meta.weights or {}).values())
    status = [r.status for r in rows]
    dataset = meta.dataset or {}
    run: dict[str, Any] = {
        "run_key": key,
        "run_id": _text(meta.run_id or path.name),
        "path": str(path),
        "kind": _text(meta.kind or ("profile" if meta.profile else "generate")),
        "label": _text(meta.label),
        "schema": _text(meta.schema),
        "migrated_from": _text(meta.migrated_from),
        "evalsuite_version": _text(versions.get("evalsuite")),
        "git_commit": _text(env.get("git_commit")),
        "created": _time_or_none(meta.created),
        "started": _time_or_none(meta.started),
        "finished": _time_or_none(meta.finished),
        "interrupted": _bool(meta.interrupted),
        "device_type": _text(dev.get("type")),
        "gpu_name": _text(dev.get("name")),
        "gpu_memory_gib": _num(dev.get("memory_gib")),
        "cuda": _text(dev.get("cuda")),
        "machine_id": machine_id(env),
        "platform": _text(env.get("platform")),
        "python_version": _text(versions.get("python")),
        "torch_version": _text(versions.get("torch")),
        "diffusers_version": _text(versions.get("diffusers")),
        "transformers_version": _text(versions.get("transformers")),
        "versions": _text(versions) if versions else None,
        "weights_policy": _text(policies.pop() if len(policies) == 1 else ("mixed" if policies else None)),
        "metric_weights": _text(meta.metric_weights),
        "dataset_name": _text(dataset.get("name")),
        "dataset_fingerprint": _text(dataset.get("fingerprint")),
        "dataset_size": _int(dataset.get("size")),
        "n_configs": len(meta.configs),
        "n_rows": len(rows),
        "n_ok": status.count("ok"),
        "n_error": status.count("error"),
        "has_error": meta.error is not None,
    }
    entries = list(meta.configs.items())
    configs: Columns = {
        "run_key": [key] * len(entries),
        "config": [name for name, _ in entries],
        "runner": _texts(e.runner for _, e in entries),
        "config_hash": _texts(e.config_hash for _, e in entries),
        "weights": _texts(e.weights for _, e in entries),
        "load_error": _texts(e.load_error for _, e in entries),
        "load_s": [_num(e.load_s) for _, e in entries],
        "point": _texts(e.point for _, e in entries),
        "strategy": _texts(e.strategy for _, e in entries),
        "phase": _texts(e.phase for _, e in entries),
        "description": _texts(e.description for _, e in entries),
        "params": [_text(e.params) for _, e in entries],
    }
    keys = [key] * len(rows)
    config = [str(r.config) for r in rows]
    case_id = [str(r.case_id) for r in rows]
    seed = [_int(r.seed) for r in rows]
    row_cols: Columns = {
        "run_key": keys,
        "config": config,
        "case_id": case_id,
        "seed": seed,
        "status": _texts(status),
        "error": [_text(r.error) for r in rows],
        "category": _texts(r.category for r in rows),
        "mask_family": _texts(r.mask_family for r in rows),
        "weights": _texts(r.weights for r in rows),
        "quality_evidence": [_bool(r.quality_evidence) for r in rows],
        "config_hash": _texts(r.config_hash for r in rows),
        "case_hash": _texts(r.case_hash for r in rows),
        "dataset_fingerprint": _texts(r.dataset_fingerprint for r in rows),
        "image": _texts(r.image for r in rows),
        "first_call": [_bool(r.first_call) for r in rows],
        "rank": [_int(r.rank) for r in rows],
    }
    for k in ROW_NUMBERS:
        row_cols[k] = [_num(d.get(k)) for d in raw]
    owner, names, values = _row_values(raw)
    out: dict[str, Columns] = {
        "runs": {k: [v] for k, v in run.items()},
        "configs": configs,
        "rows": row_cols,
        "row_values": {
            "run_key": [key] * len(owner),
            "config": [config[i] for i in owner],
            "case_id": [case_id[i] for i in owner],
            "seed": [seed[i] for i in owner],
            "name": names,
            "value": values,
        },
        "aggregates": _aggregates(key, meta, rows, raw),
    }
    if meta.kind == "frontier":
        out["frontier_points"] = {
            "run_key": keys,
            "config": config,
            "base_config": [_base(c) for c in config],
            "point": [_text(d.get("point")) for d in raw],
            "is_reference": [
                bool(d["is_reference"]) if d.get("is_reference") is not None else None for d in raw
            ],
            "status": _texts(status),
            "reason": [_text(d.get("reason")) for d in raw],
            **{k: [_num(d.get(k)) for d in raw] for k in FRONTIER_NUMBERS},
        }
    elif meta.kind == "plan":
        out["plan_rows"] = {
            "run_key": keys,
            "config": config,
            "base_config": [_base(c) for c in config],
            "strategy": [_text(d.get("strategy")) for d in raw],
            "phase": [_text(d.get("phase")) for d in raw],
            "status": _texts(status),
            "reason": [
                _text(d.get("reason") if d.get("reason") is not None else r.error)
                for r, d in zip(rows, raw, strict=True)
            ],
            **{k: [_num(d.get(k)) for d in raw] for k in PLAN_NUMBERS},
        }
    return out


def _row_values(raw: Sequence[dict[str, Any]]) -> tuple[list[int], list[str], list[float]]:
    """Every finite number of every row (not booleans, not ``seed``/``rank``), column by column:
    (index of its row, field name, value)."""
    owner: list[int] = []
    names: list[str] = []
    values: list[float] = []
    for i, d in enumerate(raw):
        for name, v in d.items():
            t = type(v)
            if t is float:
                if v - v != 0.0:  # NaN, ±inf
                    continue
            elif t is int:
                v = float(v)
            elif v is None or t is str or t is bool or t is list or t is dict:
                continue
            else:
                v = _num(v)
                if v is None:
                    continue
            if name in NOT_VALUES:
                continue
            owner.append(i)
            names.append(name)
            values.append(v)
    return owner, names, values


def _aggregates(key: str, meta: RunMeta, rows: Sequence[Row], raw: Sequence[dict[str, Any]]) -> Columns:
    """``summary.<config>.metrics`` with a 95 % CI: the one the run recorded (scoring records
    ``ci_low``/``ci_high`` for per-sample metrics), else — a run written before scoring recorded
    them — the percentile bootstrap that scoring would have recorded: of the median for latency, the
    mean otherwise, over the configuration's ok rows in row-key order (the order of
    ``samples.parquet``), when the value is that statistic of them
    (:func:`~evalsuite.trackers.stats.bootstrap_statistics`: one vectorised pass for all of the run's
    metrics, without scipy). ``NULL`` for a set-level metric, fewer than 2 values, or a value that is
    not their mean/median (as ``compare``'s :func:`~evalsuite.compare.baselines.metric_ci` decides)."""
    cols: Columns = {
        c: []
        for c in (
            "run_key", "config", "metric", "value", "ci_low", "ci_high", "n", "statistic", "unit",
            "higher_is_better", "quality_evidence",
        )
    }  # fmt: skip
    ok_rows: dict[str, list[dict[str, Any]]] = {}
    pending: list[tuple[int, list[float], str]] = []  # (position, per-image values, statistic)

    def ok(config: str) -> list[dict[str, Any]]:
        """The configuration's ok rows, sorted by key (the order of ``samples.parquet``)."""
        if config not in ok_rows:
            got = sorted(
                ((r.key, d) for r, d in zip(rows, raw, strict=True) if r.config == config and r.ok),
                key=_first,
            )
            ok_rows[config] = [d for _, d in got]
        return ok_rows[config]

    for config, summ in (meta.summary or {}).items():
        for metric, entry in (summ.metrics or {}).items():
            if not isinstance(entry, dict):
                continue
            statistic = "median" if metric in MEDIAN_METRICS else "mean"
            low, high = _num(entry.get("ci_low")), _num(entry.get("ci_high"))
            if low is None or high is None:
                col = ROW_COLUMN.get(metric, metric)
                per = [x for x in (_num(d.get(col)) for d in ok(config)) if x is not None]
                if len(per) >= 2:
                    pending.append((len(cols["metric"]), per, statistic))
            hib = entry.get("higher_is_better")
            cols["run_key"].append(key)
            cols["config"].append(config)
            cols["metric"].append(metric)
            cols["value"].append(_num(entry.get("value")))
            cols["ci_low"].append(low)
            cols["ci_high"].append(high)
            cols["n"].append(_int(entry.get("n")))
            cols["statistic"].append(statistic)
            cols["unit"].append(_text(entry.get("unit")))
            cols["higher_is_better"].append(_bool(hib))
            cols["quality_evidence"].append(_bool(entry.get("quality_evidence")))
    if pending:
        from evalsuite.trackers.stats import bootstrap_statistics

        ests = bootstrap_statistics([p for _, p, _ in pending], [s for *_, s in pending])
        for (i, _, _), est in zip(pending, ests, strict=True):
            value = cols["value"][i]
            if value is not None and abs(est.value - value) <= 1e-9 * max(1.0, abs(value)):
                cols["ci_low"][i], cols["ci_high"][i] = _num(est.low), _num(est.high)
    return cols


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _arrow(columns: Sequence[tuple[str, str]], data: Columns) -> Any:
    """``data`` (column → values) as an Arrow table with ``columns``' types (every column given)."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "DOUBLE": pa.float64(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    names = [c for c, _ in columns]
    if set(data) != set(names):
        raise ValueError(f"records do not match the table's columns: {sorted(set(data) ^ set(names))}")
    return pa.table([pa.array(data[c], type=types[t]) for c, t in columns], names=names)


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _time_or_none(v: Any) -> datetime | None:
    try:
        return _parse_time(v)
    except CatalogError:
        return None
