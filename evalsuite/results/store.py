"""The results store: one run directory per run.

Layout of ``reports/<run-id>/``::

    run.json                 resolved configs, dataset, weights per config, environment, summary
    rows.jsonl               append-only journal: one JSON row per finished (config, case, seed)
    rows.rank-<r>.jsonl      the journal of rank r when a run is sharded (torchrun / accelerate)
    samples.parquet          the rows as a table (rebuilt from the journal; pandas-readable)
    images/<config>/<case-id>-<seed>.png

A row is appended to the journal only after its image has been written completely (temporary
file + fsync + atomic rename), and the journal line itself is written with a single ``write``
and fsync'd. On a rerun, rows whose key (config, case_id, seed) has ``status == "ok"`` and whose
image exists are skipped; a row that appears twice (e.g. an error then a success) keeps its last
version: a later generation line (one with ``status``) replaces the row, a later line without
``status`` (metric values appended by scoring) is merged into it. Each generation row records what
produced it (``config_hash``, ``case_hash``, ``dataset_fingerprint``), so a resumed run keeps a
finished row only when it would be generated the same way today (see docs/run-format.md).

A torn last journal line (a crash mid-write) is ignored, and cut off before the next append. A
corrupted line anywhere else is never dropped silently: reading the journal raises
:class:`JournalError` naming the file and line, and the next ``evalsuite run`` sets the line aside
in ``rows.jsonl.corrupt`` (:meth:`RunStore.repair_journal`) and regenerates its row. An unreadable
``samples.parquet`` is rebuilt from the journal with a warning. Temporary files of a killed
writer are removed when the next run opens the directory (:meth:`RunStore.clean_partial`), and a
run holds ``run.lock`` (:mod:`evalsuite.engine.lock`) while it writes.

``run.json`` carries ``schema: evalsuite.run/2``; directories written as ``evalsuite.run/1`` are
migrated when read (:func:`migrate_meta`); any other version is refused with :class:`RunFormatError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from evalsuite.errors import UsageError
from evalsuite.paths import atomic_write, atomic_write_json, atomic_writer_path, commit_tmp

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
JOURNAL = "rows.jsonl"
JOURNAL_TIME = "_journal_time"  # append time of a line; orders lines across journals
SAMPLES = "samples.parquet"
SCHEMA = "evalsuite.run/2"
SCHEMA_V1 = "evalsuite.run/1"
READABLE_SCHEMAS = (SCHEMA_V1, SCHEMA)
CORRUPT_SUFFIX = ".corrupt"
# fields of a generation row that say what produced it (resume and report check them)
PROVENANCE_FIELDS = ("config_hash", "case_hash", "dataset_fingerprint")

Key = tuple[str, str, int]
# json.loads without its per-call argument checks (a journal line is text, decoded from UTF-8 first)
_JSON_DECODE = json.JSONDecoder().decode


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (see :func:`evalsuite.paths.atomic_write_json`)."""
    atomic_write_json(path, data)


class RunFormatError(UsageError, ValueError):
    """A run directory this version cannot read, or whose ``run.json`` contradicts its rows."""


class NotARunDirError(UsageError, FileNotFoundError):
    """A folder given as a run directory that holds no ``run.json``; the message names it."""


class RowsLostError(RunFormatError):
    """Both copies of a run's rows are unusable (no journal rows and no readable ``samples.parquet``)
    while ``run.json`` counts rows; the message names the files and how to recover."""


class JournalError(RunFormatError):
    """A corrupted line in the middle of a journal (the message names the file, the line and the fix)."""

    def __init__(self, message: str, bad: dict[Path, list[int]]) -> None:
        super().__init__(message)
        self.bad = bad


def _canonical(obj: Any) -> str:
    return json.dumps(json.loads(json.dumps(obj, default=str)), sort_keys=True, default=str)


def config_hash(runner: str | None, params: dict[str, Any], weights: str | None) -> str:
    """What identifies how a configuration generates: its runner, resolved parameters and weights policy."""
    doc = {"runner": runner, "params": params, "weights": weights}
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()[:16]


def inputs_hash(
    case_id: str,
    prompt: str | None,
    category: str | None,
    mask_family: str | None,
    image: str | os.PathLike[str] | None,
    mask: str | os.PathLike[str] | None,
) -> str:
    """A row's ``case_hash``: what identifies a case's inputs to generation — its id, prompt, labels
    and the bytes of its image and mask (sha256, 16 hex digits). Scoring checks the inputs a row
    records against it before using them."""
    h = hashlib.sha256()
    doc = {"id": case_id, "prompt": prompt, "category": category, "mask_family": mask_family}
    h.update(json.dumps(doc, sort_keys=True).encode())
    for p in (image, mask):
        h.update(b"\0")
        if p is not None:
            try:
                h.update(Path(p).read_bytes())
            except OSError as exc:  # unreadable now: the row fails with its own error when generated
                h.update(f"unreadable: {exc}".encode())
    return h.hexdigest()[:16]


def meta_config_hash(entry: dict[str, Any]) -> str:
    """:func:`config_hash` of a ``run.json`` ``configs`` entry."""
    return config_hash(entry.get("runner"), entry.get("params") or {}, entry.get("weights"))


def migrate_meta(meta: dict[str, Any], where: Path | str = "run.json") -> dict[str, Any]:
    """``run.json`` in the current schema: ``evalsuite.run/1`` is migrated (fields added with their
    old meaning), the current one passes; anything else raises :class:`RunFormatError`."""
    schema = meta.get("schema", SCHEMA_V1)
    if schema == SCHEMA:
        return meta
    if schema != SCHEMA_V1:
        raise RunFormatError(
            f"{where}: schema {schema!r} is not one this evalsuite reads ({', '.join(READABLE_SCHEMAS)}); "
            "it was written by another evalsuite version: read it with that version, or upgrade"
        )
    out = dict(meta)
    out["schema"] = SCHEMA
    out["migrated_from"] = SCHEMA_V1
    out.setdefault("kind", "profile" if "profile" in meta else "generate")
    out.setdefault("interrupted", False)
    out.setdefault("attempts", [])
    out.setdefault("finished", None)
    out.setdefault("configs", {})
    out.setdefault("weights", {})
    for entry in out["configs"].values():
        if isinstance(entry, dict) and "config_hash" not in entry and out["kind"] == "generate":
            entry["config_hash"] = meta_config_hash(entry)
    return out


def check_meta_against_rows(meta: dict[str, Any], rows: list[dict[str, Any]], where: Path) -> None:
    """Raise :class:`RunFormatError` when ``run.json`` does not describe the rows of the journal:
    rows of a configuration run.json does not list, rows generated from another dataset fingerprint
    or with other configuration parameters than run.json records (an edited or foreign run.json).
    Rows without provenance fields (``evalsuite.run/1``, profile points) are not checked."""
    configs = meta.get("configs") or {}
    unknown = sorted({str(r["config"]) for r in rows} - set(configs))
    if unknown:
        raise RunFormatError(
            f"{where}: rows.jsonl holds rows of configuration(s) {', '.join(unknown)} that run.json does "
            "not list: run.json was edited or belongs to another run; restore it, or rerun `evalsuite run`"
        )
    want_fp = (meta.get("dataset") or {}).get("fingerprint")
    other = [r for r in rows if r.get("dataset_fingerprint") and r["dataset_fingerprint"] != want_fp]
    if other:
        got = other[0]["dataset_fingerprint"]
        raise RunFormatError(
            f"{where}: run.json says dataset {(meta.get('dataset') or {}).get('name')!r} (fingerprint "
            f"{str(want_fp)[:12]}…), but {len(other)} row(s) of rows.jsonl were generated from dataset "
            f"fingerprint {str(got)[:12]}…: run.json was edited or belongs to another run; restore it, or "
            "rerun `evalsuite run` to regenerate"
        )
    for name, entry in configs.items():
        if not isinstance(entry, dict) or not entry.get("params"):
            continue
        hashes = {r.get("config_hash") for r in rows if r["config"] == name and r.get("config_hash")}
        want = meta_config_hash(entry)
        if hashes - {want}:
            n = sum(1 for r in rows if r["config"] == name and r.get("config_hash") not in (None, want))
            raise RunFormatError(
                f"{where}: run.json's runner/parameters/weights for configuration {name!r} are not the ones "
                f"its {n} row(s) were generated with: run.json was edited or belongs to another run; restore "
                "it, or rerun `evalsuite run` to regenerate"
            )


def row_key(row: dict[str, Any]) -> Key:
    """The identity of a row: (config, case_id, seed)."""
    return (str(row["config"]), str(row["case_id"]), int(row["seed"]))


class RunStore:
    """Reads and writes one run directory (see module doc)."""

    def __init__(self, path: str | os.PathLike[str], shard: int | None = None) -> None:
        self.path = Path(path)
        self.shard = shard

    # -- paths -----------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    @property
    def journal(self) -> Path:
        """The journal this process appends to (``rows.rank-<r>.jsonl`` for a shard)."""
        return self.path / (JOURNAL if self.shard is None else f"rows.rank-{self.shard}.jsonl")

    def journals(self) -> list[Path]:
        """Every journal of the run (single-process and per-rank), read together by :meth:`rows`."""
        return sorted(p for p in self.path.glob("rows*.jsonl") if p.is_file())

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES

    def image_relpath(self, config: str, case_id: str, seed: int) -> str:
        """Image path relative to the run directory."""
        return f"images/{config}/{case_id}-{seed}.png"

    def exists(self) -> bool:
        return self.run_json.is_file()

    def clean_partial(self) -> int:
        """Delete temporary files a killed writer left behind (``.*.tmp`` images, ``.run.json.*``,
        ``.samples.*``); returns how many. Call only while holding the run's lock."""
        if not self.path.is_dir():
            return 0
        junk = [
            *self.path.glob(f".{RUN_JSON}.*"),
            *self.path.glob(".samples.*"),
            *self.path.glob(".rows*.tmp"),
        ]
        if (self.path / "images").is_dir():
            junk += (self.path / "images").rglob(".*.tmp")
        for p in junk:
            p.unlink(missing_ok=True)
        return len(junk)

    # -- run.json --------------------------------------------------------------------------
    def read_meta(self, check: bool = True, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The contents of ``run.json`` in the current schema (older versions migrated).

        With ``check`` (the default), a finished or interrupted run's ``run.json`` is checked against
        its rows (:func:`check_meta_against_rows`), and the journal must be readable. ``rows``: the
        journal's rows (:meth:`rows`) when the caller has read them (else they are read here).

        Raises:
            NotARunDirError: naming the directory when it is not a run directory (a FileNotFoundError).
            RunFormatError: unreadable or unknown ``run.json``, a journal with a corrupted line
                (:class:`JournalError`), or a ``run.json`` that contradicts the rows.
        """
        if not self.run_json.is_file():
            raise NotARunDirError(f"{self.path} is not a run directory (no {RUN_JSON})")
        try:
            meta = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunFormatError(f"{self.run_json}: not valid JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise RunFormatError(f"{self.run_json}: expected a JSON object, got {type(meta).__name__}")
        meta = migrate_meta(meta, self.run_json)
        if check and (meta.get("finished") or meta.get("interrupted")):
            check_meta_against_rows(meta, self.rows() if rows is None else rows, self.run_json)
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        meta = {"schema": SCHEMA, **{k: v for k, v in meta.items() if k != "schema"}}
        write_json_atomic(self.run_json, meta)

    # -- rows ------------------------------------------------------------------------------
    def append_row(self, row: dict[str, Any]) -> None:
        """Append one row to the journal (one write, fsync'd)."""
        self.path.mkdir(parents=True, exist_ok=True)
        row = {**row, JOURNAL_TIME: time.time()}
        line = (json.dumps(row, default=_json_default, allow_nan=True) + "\n").encode("utf-8")
        self._cut_torn_tail(self.journal)
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _cut_torn_tail(journal: Path) -> None:
        """A previous crash may have left a torn last line (no newline): cut it off, so that the next
        line starts clean and the torn one never becomes a corrupted line in the middle."""
        try:
            size = journal.stat().st_size
        except FileNotFoundError:
            return
        if not size:
            return
        with open(journal, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            data_tail = min(size, 1 << 20)
            f.seek(size - data_tail)
            chunk = f.read()
            cut = chunk.rfind(b"\n")
            new_size = (size - data_tail + cut + 1) if cut >= 0 else 0
            log.warning("%s: cut off a torn last line left by an interrupted write", journal)
            f.truncate(new_size)
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def _parse_journal(journal: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, bytes]]]:
        """(line number, row) of every valid line and (line number, bytes) of every corrupted line in
        the middle; a torn last line (no newline) is left out of both."""
        data = journal.read_bytes()
        pieces = data.split(b"\n")
        n_pieces = len(pieces)
        torn_last = not data.endswith(b"\n")
        good, bad = [], []
        decode = _JSON_DECODE
        for n, raw in enumerate(pieces, 1):
            try:
                row = decode(raw.decode("utf-8"))
                if not isinstance(row, dict):
                    raise TypeError("not an object")
                row_key(row)
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
                # a blank line (the piece after the last newline among them) is no row and no damage
                if raw.strip() and not (n == n_pieces and torn_last):
                    bad.append((n, raw))
                continue
            if n == n_pieces and torn_last:
                continue  # complete JSON but no newline: an interrupted write; ignored like any torn line
            good.append((n, row))
        return good, bad

    def rows(self) -> list[dict[str, Any]]:
        """The rows of every journal, the last version of each key (by append time), in first-seen order.

        A later generation line (with ``status``) replaces its row; a later line without ``status``
        (metric values appended by scoring) is merged into it. Lines from several ranks' journals are
        ordered by append time.

        Raises:
            JournalError: a corrupted line in the middle of a journal (a torn last line is ignored).
        """
        lines: list[tuple[float, int, int, dict[str, Any]]] = []
        corrupt: dict[Path, list[int]] = {}
        for fi, journal in enumerate(self.journals()):
            good, bad = self._parse_journal(journal)
            if bad:
                corrupt[journal] = [n for n, _ in bad]
            for li, row in good:
                lines.append((float(row.pop(JOURNAL_TIME, 0.0)), fi, li, row))
        if corrupt:
            where = "; ".join(f"{p} line(s) {', '.join(map(str, ns))}" for p, ns in corrupt.items())
            raise JournalError(
                f"corrupted journal: {where} cannot be read as rows; nothing was dropped. Rerun "
                f"`evalsuite run` with the same arguments: it sets the line(s) aside in "
                f"<journal>{CORRUPT_SUFFIX} and regenerates their rows",
                corrupt,
            )
        lines.sort(key=lambda t: t[:3])
        latest: dict[Key, dict[str, Any]] = {}
        for *_, row in lines:
            key = row_key(row)
            if key not in latest or "status" in row:
                latest[key] = row
            else:
                latest[key] = {**latest[key], **row}
        return list(latest.values())

    def repair_journal(self) -> int:
        """Set corrupted middle lines aside in ``<journal>.corrupt`` and rewrite the journal without
        them (atomically), loudly; returns how many lines were set aside. Call only while holding the
        run's lock. Their rows are then pending and get regenerated."""
        moved = 0
        for journal in self.journals():
            self._cut_torn_tail(journal)
            good, bad = self._parse_journal(journal)
            if not bad:
                continue
            aside = journal.with_name(journal.name + CORRUPT_SUFFIX)
            with open(aside, "ab") as f:
                for _, raw in bad:
                    f.write(raw.rstrip(b"\n") + b"\n")
                f.flush()
                os.fsync(f.fileno())
            keep = set(n for n, _ in good)
            lines = journal.read_bytes().split(b"\n")
            kept = b"".join(ln + b"\n" for i, ln in enumerate(lines, 1) if i in keep)
            atomic_write(journal, kept)
            moved += len(bad)
            log.warning(
                "%s: line(s) %s are corrupted; set aside in %s (nothing deleted); their rows are "
                "regenerated by this run",
                journal,
                ", ".join(str(n) for n, _ in bad),
                aside.name,
            )
        return moved

    def done_keys(self) -> set[Key]:
        """Keys with ``status == "ok"`` whose image file exists."""
        return {
            row_key(r)
            for r in self.rows()
            if r.get("status") == "ok" and r.get("image") and (self.path / r["image"]).is_file()
        }

    def update_rows(self, updates: Iterable[dict[str, Any]]) -> None:
        """Merge fields (e.g. metric values) into existing rows by key, via the journal."""
        for u in updates:
            self.append_row(u)

    def write_samples(self) -> pd.DataFrame:
        """Rebuild ``samples.parquet`` from the journal (atomically) and return the table. Fields
        holding a JSON object (a sweep point's ``notes``/``images``) are stored as JSON text."""
        df = _objects_as_json(rows_to_frame(self.rows()))
        tmp, final = atomic_writer_path(self.samples_path)
        try:
            df.to_parquet(tmp, index=False)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        commit_tmp(tmp, final)  # the umask's mode, like every other file of the run
        return df

    def samples(self) -> pd.DataFrame:
        """``samples.parquet`` if present and readable, else the table rebuilt from the journal (an
        unreadable ``samples.parquet`` is reported with a warning, not fatal: the journal holds every
        row; when no journal holds a row either, the warning says so instead)."""
        df, why = self.read_table()
        if df is not None:
            return df
        rows = self.rows()
        if why != "missing":
            if rows:
                log.warning(
                    "%s is unreadable (%s); rebuilt the table from %s instead (`evalsuite score %s` "
                    "rewrites the file)",
                    self.samples_path,
                    why,
                    ", ".join(p.name for p in self.journals()),
                    self.path,
                )
            else:
                log.warning(
                    "%s is unreadable (%s) and %s: the run has no readable rows",
                    self.samples_path,
                    why,
                    self._journal_state(),
                )
        return rows_to_frame(rows)

    # -- the two copies of the rows: the journal and the table ---------------------------------------
    def read_table(self) -> tuple[pd.DataFrame | None, str]:
        """``(samples.parquet, "")`` when it is readable, else ``(None, why)``: ``"missing"`` or the
        reason it cannot be read."""
        if not self.samples_path.is_file():
            return None, "missing"
        try:
            return pd.read_parquet(self.samples_path), ""
        except Exception as exc:  # noqa: BLE001 - any unreadable parquet
            first = str(exc).splitlines()[0] if str(exc) else ""
            return None, f"{type(exc).__name__}: {first}"

    def _journal_state(self) -> str:
        journals = self.journals()
        if not journals:
            return f"there is no {JOURNAL}"
        return f"{', '.join(p.name for p in journals)} hold(s) no row ({sum(p.stat().st_size for p in journals)} bytes)"

    def table_only_rows(
        self, table: pd.DataFrame | None = None, rows: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """The rows ``samples.parquet`` (or ``table``) holds whose key no journal holds: the journal
        was emptied, truncated or deleted after the table was written (the table is written from the
        journal, so it never holds more on its own). Each as a journal row (empty cells left out).
        ``rows``: the journal's rows when the caller has read them.

        Raises:
            JournalError: a corrupted line in the middle of a journal (that has its own repair).
        """
        df = table if table is not None else self.read_table()[0]
        if df is None or not len(df) or not {"config", "case_id", "seed"} <= set(df.columns):
            return []
        have = {row_key(r) for r in (self.rows() if rows is None else rows)}
        out = []
        for rec in df.to_dict("records"):
            if row_key(rec) not in have:
                out.append(_row_from_table(rec))
        return out

    def restore_journal(self) -> int:
        """Append to the journal the rows only ``samples.parquet`` still holds
        (:meth:`table_only_rows`), loudly; returns how many. Nothing is removed or rewritten. Call
        only while holding the run's lock."""
        try:
            rows = self.table_only_rows()
        except JournalError:
            return 0  # corrupted lines: repair_journal sets them aside and their rows are regenerated
        if not rows:
            return 0
        state = self._journal_state() if not self.rows() else f"{JOURNAL} lacks them"
        for r in rows:
            self.append_row(r)
        log.warning(
            "%s holds %d row(s) that no journal holds (%s: the journal was emptied, truncated or deleted); "
            "restored them into %s from %s",
            self.samples_path,
            len(rows),
            state,
            self.journal,
            SAMPLES,
        )
        return len(rows)

    def check_rows_present(self, meta: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> None:
        """Raise :class:`RowsLostError` when neither copy of the rows can be read (no journal row and
        no readable, non-empty ``samples.parquet``) while ``run.json``'s summary counts rows.

        Raises:
            JournalError: a corrupted line in the middle of a journal.
        """
        expected = 0
        for entry in (meta.get("summary") or {}).values():
            n = ((entry or {}).get("counts") or {}).get("n") if isinstance(entry, dict) else None
            expected += int(n) if isinstance(n, int | float) and not isinstance(n, bool) else 0
        if not expected or (self.rows() if rows is None else rows):
            return
        df, why = self.read_table()
        if df is not None and len(df):
            return
        table = "is missing" if why == "missing" else (f"cannot be read ({why})" if why else "holds no row")
        raise RowsLostError(
            f"{self.path}: the run's rows are lost: {self._journal_state()} and {SAMPLES} {table}, while "
            f"run.json counts {expected} row(s); nothing was changed. Restore {JOURNAL} or {SAMPLES} from a "
            f"copy of the run directory (either one is enough: the other is rebuilt from it), or regenerate "
            f"the rows by rerunning `evalsuite run` with the same arguments"
        )


def _objects_as_json(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every dict-valued cell as JSON text: parquet cannot store an empty struct, nor
    structs whose keys differ from row to row."""
    for col in [c for c in df.columns if df[c].dtype == "object"]:
        if df[col].map(lambda v: isinstance(v, dict)).any():
            df[col] = df[col].map(
                lambda v: json.dumps(v, default=_json_default, sort_keys=True) if isinstance(v, dict) else v
            )
    return df


def _row_from_table(rec: dict[str, Any]) -> dict[str, Any]:
    """A row of ``samples.parquet`` as the journal line it was written from: empty cells (NaN, None)
    left out, numpy values as Python ones."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        if v is None or (isinstance(v, float) and v != v):
            continue
        out[k] = v
    out["seed"] = int(out["seed"])
    return out


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


ORDER = [
    "config",
    "case_id",
    "seed",
    "status",
    "error",
    "category",
    "mask_family",
    "prompt",
    "image",
    "weights",
]


def rows_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with the identity columns first and rows sorted by key."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=ORDER)
    cols = [c for c in ORDER if c in df.columns] + sorted(c for c in df.columns if c not in ORDER)
    df = df[cols]
    return df.sort_values(["config", "case_id", "seed"], kind="stable").reset_index(drop=True)
