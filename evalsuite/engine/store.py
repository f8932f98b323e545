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
version. A torn last journal line (a crash mid-write) is ignored. Temporary files of a killed
writer are removed when the next run opens the directory (:meth:`RunStore.clean_partial`), and a
run holds ``run.lock`` (:mod:`evalsuite.lock`) while it writes.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from evalsuite.paths import atomic_write_json

RUN_JSON = "run.json"
JOURNAL = "rows.jsonl"
JOURNAL_TIME = "_journal_time"  # append time of a line; orders lines across journals
SAMPLES = "samples.parquet"
SCHEMA = "evalsuite.run/1"

Key = tuple[str, str, int]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (see :func:`evalsuite.paths.atomic_write_json`)."""
    atomic_write_json(path, data)


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
        junk = [*self.path.glob(f".{RUN_JSON}.*"), *self.path.glob(".samples.*")]
        if (self.path / "images").is_dir():
            junk += (self.path / "images").rglob(".*.tmp")
        for p in junk:
            p.unlink(missing_ok=True)
        return len(junk)

    # -- run.json --------------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any]:
        """The contents of ``run.json``.

        Raises:
            FileNotFoundError: naming the directory when it is not a run directory.
        """
        if not self.run_json.is_file():
            raise FileNotFoundError(f"{self.path} is not a run directory (no {RUN_JSON})")
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def write_meta(self, meta: dict[str, Any]) -> None:
        meta = {"schema": SCHEMA, **{k: v for k, v in meta.items() if k != "schema"}}
        write_json_atomic(self.run_json, meta)

    # -- rows ------------------------------------------------------------------------------
    def append_row(self, row: dict[str, Any]) -> None:
        """Append one row to the journal (one write, fsync'd)."""
        self.path.mkdir(parents=True, exist_ok=True)
        row = {**row, JOURNAL_TIME: time.time()}
        line = (json.dumps(row, default=_json_default, allow_nan=True) + "\n").encode("utf-8")
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # a previous crash may have left a torn line without newline: start on a fresh line
            if os.fstat(fd).st_size:
                with open(self.journal, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def rows(self) -> list[dict[str, Any]]:
        """The rows of every journal, the last version of each key (by append time), in first-seen order.

        A later line for a key is merged into the earlier one (so metric values appended by
        scoring join their row); lines from several ranks' journals are ordered by append time.
        """
        lines: list[tuple[float, int, int, dict[str, Any]]] = []
        for fi, journal in enumerate(self.journals()):
            for li, line in enumerate(journal.read_text(encoding="utf-8", errors="replace").splitlines()):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    row_key(row)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # torn line from an interrupted write
                lines.append((float(row.pop(JOURNAL_TIME, 0.0)), fi, li, row))
        lines.sort(key=lambda t: t[:3])
        latest: dict[Key, dict[str, Any]] = {}
        for *_, row in lines:
            key = row_key(row)
            latest[key] = row if key not in latest else {**latest[key], **row}
        return list(latest.values())

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
        """Rebuild ``samples.parquet`` from the journal (atomically) and return the table."""
        df = rows_to_frame(self.rows())
        fd, tmp = tempfile.mkstemp(prefix=".samples.", suffix=".parquet", dir=self.path)
        os.close(fd)
        try:
            df.to_parquet(tmp, index=False)
            os.replace(tmp, self.samples_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return df

    def samples(self) -> pd.DataFrame:
        """``samples.parquet`` if present, else the table built from the journal."""
        if self.samples_path.is_file():
            return pd.read_parquet(self.samples_path)
        return rows_to_frame(self.rows())


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
