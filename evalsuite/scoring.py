"""Scoring: run metrics over the stored rows/images of a run directory.

Scores read only what is on disk, so ``evalsuite score RUN_DIR`` re-scores a run without
regenerating. Per-sample values go into the rows (column = metric name); aggregates go into the
summary of ``run.json``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from .cases import Case
from .registry import METRICS
from .store import Key, RunStore, row_key

log = logging.getLogger(__name__)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def count_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts of rows by status, and the distinct error messages (up to 20)."""
    status = [r.get("status") for r in rows]
    errors = sorted({str(r.get("error")) for r in rows if r.get("status") == "error"})
    return {"n": len(rows), "ok": status.count("ok"), "error": status.count("error"),
            "skipped": status.count("skipped"), "errors": errors[:20]}


def score_run(
    store: RunStore,
    metric_names: Sequence[str],
    device: torch.device | str = "cpu",
    keys: set[Key] | None = None,
    progress: bool = False,
    cases: dict[str, Case] | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Compute ``metric_names`` for every configuration of the run in ``store``.

    Args:
        keys: restrict to these row keys (default: every row).
        cases: case id → :class:`Case`, needed by metrics that read sources/masks.

    Returns:
        ``{config: {"counts": {...}, "metrics": {name: {"value", "n", "unit", ...}}}}``
    """
    rows = [r for r in store.rows() if keys is None or row_key(r) in keys]
    by_config: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_config.setdefault(r["config"], []).append(r)
    summary: dict[str, Any] = {}
    updates: list[dict[str, Any]] = []
    for config, crow in by_config.items():
        ok = [r for r in crow if r.get("status") == "ok"]
        entry: dict[str, Any] = {"counts": count_summary(crow), "metrics": {}}
        for name in metric_names:
            metric = METRICS.get(name)(device=device)
            values: list[float] = []
            for i in range(0, len(ok), batch_size):
                chunk = ok[i : i + batch_size]
                batch = _batch(store, chunk, metric.needs, cases)
                vals = metric.update(batch)
                if metric.per_sample and vals is not None:
                    values += [float(v) for v in vals]
            res = metric.compute()
            entry["metrics"][name] = {**res.as_dict(), **metric.describe()}
            if metric.per_sample:
                for r, v in zip(ok, values, strict=False):
                    updates.append({"config": r["config"], "case_id": r["case_id"], "seed": r["seed"], name: v})
        summary[config] = entry
    store.update_rows(updates)
    return summary


def _batch(store: RunStore, rows: Sequence[dict[str, Any]], needs: frozenset[str], cases: dict[str, Case] | None) -> Any:
    from .metrics.base import MetricBatch

    images = None
    if "images" in needs:
        images = torch.stack([_to_tensor(Image.open(store.path / r["image"])) for r in rows])
    return MetricBatch(rows=rows, images=images, prompts=[str(r.get("prompt", "")) for r in rows])


def nan_to_none(x: float) -> float | None:
    """``None`` for NaN (JSON has no NaN)."""
    return None if isinstance(x, float) and math.isnan(x) else x
