"""Tables of a stored run: what was measured, per configuration and per group, with bootstrap CIs.

Pure functions of a run directory (``run.json`` + ``samples.parquet``): nothing here generates or
scores. The columns shown are discovered from the data, so metrics and trackers added later
(``clip_score``, ``energy_j``, ``mfu``...) appear without changes here; the lists below only fix a
pleasant order and units for names we know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evalsuite.report.formatting import arrow
from evalsuite.results.run import Run
from evalsuite.results.types import RunMeta
from evalsuite.trackers.stats import Estimate, bootstrap_mean, finite, quantile
from evalsuite.vocab import NO_QUALITY_EVIDENCE

# Columns that identify a row or carry text, never shown as numbers.
IDENTITY = frozenset(
    {
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
        "source",
        "mask",
        "quality_evidence",
        "steps_s",
        "batch_size",
    }
)

# Bookkeeping columns of the rows, never shown as measurements (and ``*_truncated`` flags).
INTERNAL = frozenset({"rank", "first_call"})


def internal(col: str) -> bool:
    """A bookkeeping column (:data:`INTERNAL`, ``*_truncated``) rather than a measurement."""
    return col in INTERNAL or col.endswith("_truncated")


# Preferred order of metrics (others follow alphabetically).
METRIC_ORDER = (
    "clip_score",
    "image_reward",
    "hpsv2",
    "pickscore",
    "aesthetic",
    "lpips",
    "psnr",
    "ssim",
    "masked_psnr",
    "unmasked_psnr",
    "fid",
    "kid",
    "latency",
)

# Known per-sample measurements: column → (label, unit, higher_is_better).
RESOURCES: dict[str, tuple[str, str, bool | None]] = {
    "latency_s": ("latency", "s", False),
    "step_median_s": ("s/step (median)", "s", False),
    "text_encode_s": ("text encode", "s", False),
    "vae_encode_s": ("VAE encode", "s", False),
    "denoise_s": ("denoise", "s", False),
    "vae_decode_s": ("VAE decode", "s", False),
    "peak_allocated_gib": ("peak VRAM allocated", "GiB", False),
    "peak_reserved_gib": ("peak VRAM reserved", "GiB", False),
    "peak_device_gib": ("peak device memory (NVML)", "GiB", False),
    "energy_j": ("energy per image", "J", False),
    "energy_wh": ("energy per image", "Wh", False),
    "power_w": ("mean power", "W", False),
    "mfu": ("MFU", "", True),
}
_SUFFIX_UNITS = {
    "_s": "s",
    "_ms": "ms",
    "_j": "J",
    "_wh": "Wh",
    "_w": "W",
    "_gib": "GiB",
    "_mib": "MiB",
    "_pct": "%",
    "_db": "dB",
}

GROUPINGS = ("category", "mask_family")

#: Peak-memory columns: summarised and compared by their maximum over rows, not a mean or median.
PEAK_COLUMNS = ("peak_allocated_gib", "peak_reserved_gib", "peak_device_gib")


@dataclass(frozen=True)
class Quantity:
    """A number shown in reports.

    Attributes:
        column: the ``samples.parquet`` column (``None`` for set-level metrics without one).
        name: the metric or column name.
        label: human label.
        unit: unit string (``""`` when unitless).
        higher_is_better: direction, ``None`` when unknown.
        kind: ``metric`` (scored by a metric), ``resource`` (timing/memory/energy) or ``other``.
        quality_evidence: ``False`` when a metric's feature network had random weights.
    """

    column: str | None
    name: str
    label: str
    unit: str
    higher_is_better: bool | None
    kind: str
    quality_evidence: bool = True

    @property
    def title(self) -> str:
        """``label (unit)`` for axis labels and table heads."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` when lower is, ``""`` when unknown."""
        return arrow(self.higher_is_better)


def load_view(run_dir: str | Path) -> Run:
    """The run directory ``run_dir`` as the report reads it: :meth:`Run.load
    <evalsuite.results.run.Run.load>` with the columns reports rely on present (:func:`normalise`).

    Raises:
        NotARunDirError: when ``run_dir`` holds no ``run.json``.
        RunFormatError: a damaged or foreign ``run.json`` (naming the file and the fix).
    """
    run = Run.load(run_dir)
    return replace(run, samples=normalise(run.samples))


def quantities(view: Run) -> list[Quantity]:
    """Metrics (ordered), known resources (ordered), then other numeric columns (alphabetical);
    computed once per loaded run."""
    if "quantities" not in view.cache:
        view.cache["quantities"] = discover_quantities(view.meta, view.samples)
    found: list[Quantity] = view.cache["quantities"]
    return found


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with the columns reports rely on present (``status``, ``config``, ``category``...)."""
    df = df.copy()
    for col, default in (
        ("config", None),
        ("case_id", None),
        ("seed", 0),
        ("status", "ok"),
        ("error", None),
        ("category", "general"),
        ("mask_family", None),
        ("prompt", ""),
        ("image", None),
    ):
        if col not in df.columns:
            df[col] = default
    return df


def metric_info(meta: dict[str, Any] | RunMeta) -> dict[str, dict[str, Any]]:
    """Per metric name: unit, direction, quality evidence and headline value per configuration."""
    rm = meta if isinstance(meta, RunMeta) else RunMeta.from_dict(meta)
    info: dict[str, dict[str, Any]] = {}
    for m in rm.metrics or []:
        info.setdefault(str(m), {"values": {}})
    for config, s in (rm.summary or {}).items():
        for name, r in (s.metrics or {}).items():
            entry = info.setdefault(name, {"values": {}})
            for k in ("unit", "higher_is_better"):
                if k in r and k not in entry:
                    entry[k] = r[k]
            entry["quality_evidence"] = (
                entry.get("quality_evidence", True) and r.get("quality_evidence", True) is not False
            )
            entry["values"][config] = r
    return info


def _metric_key(name: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), name)


def _guess_unit(col: str) -> str:
    for suffix, unit in _SUFFIX_UNITS.items():
        if col.endswith(suffix):
            return unit
    return ""


def _numeric(df: pd.DataFrame, col: str) -> bool:
    if col not in df.columns:
        return False
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        return False
    if pd.api.types.is_numeric_dtype(s):
        return True
    return bool(pd.to_numeric(s.dropna(), errors="coerce").notna().all()) and s.notna().any()


def discover_quantities(meta: dict[str, Any] | RunMeta, samples: pd.DataFrame) -> list[Quantity]:
    """Every quantity a report shows, from ``run.json`` metrics and the numeric columns of the rows.

    A scenario whose rows are summaries (``evalsuite frontier``: one row per point) declares its
    quantities in ``run.json`` ``quantities`` (column → label, unit, higher_is_better, kind,
    quality_evidence); then exactly those, in that order, are shown and compared.
    """
    rm = meta if isinstance(meta, RunMeta) else RunMeta.from_dict(meta)
    declared = rm.quantities
    if isinstance(declared, dict) and declared:
        return [
            Quantity(
                col,
                col,
                str(d.get("label", col)),
                str(d.get("unit", "")),
                d.get("higher_is_better"),
                str(d.get("kind", "metric")),
                bool(d.get("quality_evidence", True)),
            )
            for col, d in declared.items()
            if isinstance(d, dict) and _numeric(samples, col) and samples[col].notna().any()
        ]
    info = metric_info(rm)
    out: list[Quantity] = []
    for name in sorted(info, key=_metric_key):
        e = info[name]
        col = name if _numeric(samples, name) else None
        if col is None and not e["values"]:
            continue
        out.append(
            Quantity(
                col,
                name,
                name,
                str(e.get("unit", "") or ""),
                e.get("higher_is_better"),
                "metric",
                bool(e.get("quality_evidence", True)),
            )
        )
    taken = {q.name for q in out}
    for col, (label, unit, hib) in RESOURCES.items():
        if col not in taken and _numeric(samples, col) and samples[col].notna().any():
            out.append(Quantity(col, col, label, unit, hib, "resource"))
            taken.add(col)
    for col in sorted(samples.columns):
        if col in taken or col in IDENTITY or internal(col):
            continue
        if not _numeric(samples, col) or not samples[col].notna().any():
            continue
        out.append(Quantity(col, col, col, _guess_unit(col), None, "other"))
    return out


def values(df: pd.DataFrame, q: Quantity) -> np.ndarray:
    """The finite per-sample values of ``q`` in ``df``."""
    if q.column is None or q.column not in df.columns:
        return np.empty(0)
    return finite(pd.to_numeric(df[q.column], errors="coerce").to_numpy(dtype=np.float64))


def estimate(df: pd.DataFrame, q: Quantity) -> Estimate:
    """Mean of ``q`` over ``df`` with its bootstrap 95 % CI."""
    return bootstrap_mean(values(df, q))


def summary_frame(view: Run) -> pd.DataFrame:
    """The long table written to ``summary.csv``: one row per (configuration, grouping, group, quantity).

    Columns: config, weights, group_by (``all``/``category``/``mask_family``), group, quantity, label,
    unit, higher_is_better, kind, quality_evidence, mean, ci95_low, ci95_high, n, median, p90,
    headline (the metric's own aggregate from ``run.json``, e.g. the median for latency or a
    set-level FID; only on ``all`` rows).
    """
    ok = view.ok_samples
    policies = view.policies
    info = metric_info(view.run_meta)
    records: list[dict[str, Any]] = []
    for config in view.config_names:
        crows = ok[ok["config"] == config] if len(ok) else ok
        groups: list[tuple[str, str, pd.DataFrame]] = [("all", "all", crows)]
        for g in GROUPINGS:
            if g in crows.columns and crows[g].notna().any():
                for value, sub in crows.groupby(crows[g].fillna("none"), sort=True):
                    groups.append((g, str(value), sub))
        for group_by, group, sub in groups:
            for q in quantities(view):
                v = values(sub, q)
                est = bootstrap_mean(v)
                head = info.get(q.name, {}).get("values", {}).get(config, {}) if group_by == "all" else {}
                if est.n == 0 and not head:
                    continue
                records.append(
                    {
                        "config": config,
                        "weights": policies.get(config),
                        "group_by": group_by,
                        "group": group,
                        "quantity": q.name,
                        "label": q.label,
                        "unit": q.unit,
                        "higher_is_better": q.higher_is_better,
                        "kind": q.kind,
                        "quality_evidence": q.quality_evidence
                        and policies.get(config) not in NO_QUALITY_EVIDENCE,
                        "mean": est.value,
                        "ci95_low": est.low,
                        "ci95_high": est.high,
                        "n": est.n,
                        "median": quantile(v, 0.5),
                        "p90": quantile(v, 0.9),
                        "headline": _num(head.get("value")),
                        "headline_n": head.get("n"),
                    }
                )
    cols = [
        "config",
        "weights",
        "group_by",
        "group",
        "quantity",
        "label",
        "unit",
        "higher_is_better",
        "kind",
        "quality_evidence",
        "mean",
        "ci95_low",
        "ci95_high",
        "n",
        "median",
        "p90",
        "headline",
        "headline_n",
    ]
    return pd.DataFrame.from_records(records, columns=cols)


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def status_table(view: Run) -> pd.DataFrame:
    """Per configuration: rows, ok, errors, skipped."""
    df = view.samples
    records = []
    for config in view.config_names:
        sub = df[df["config"] == config] if len(df) else df
        st = sub["status"].value_counts() if len(sub) else pd.Series(dtype=int)
        records.append(
            {
                "config": config,
                "rows": len(sub),
                "ok": int(st.get("ok", 0)),
                "error": int(st.get("error", 0)),
                "skipped": int(st.get("skipped", 0)),
            }
        )
    return pd.DataFrame.from_records(records, columns=["config", "rows", "ok", "error", "skipped"])


def failure_table(view: Run) -> pd.DataFrame:
    """Errors and skips grouped by (configuration, status, reason) with their count and case ids."""
    df = view.samples
    bad = df[df["status"].isin(["error", "skipped"])] if len(df) else df
    records = []
    if len(bad):
        for (config, status, reason), sub in bad.groupby(
            [bad["config"], bad["status"], bad["error"].fillna("(no reason recorded)").astype(str)], sort=True
        ):
            ids = [f"{c}#{s}" for c, s in zip(sub["case_id"], sub["seed"], strict=True)]
            records.append(
                {"config": config, "status": status, "reason": reason, "count": len(sub), "cases": ids}
            )
    for config, c in view.configs.items():
        if c.load_error and not any(r["config"] == config for r in records):
            records.append(
                {
                    "config": config,
                    "status": "error",
                    "reason": f"load: {c.load_error}",
                    "count": 0,
                    "cases": [],
                }
            )
    return pd.DataFrame.from_records(records, columns=["config", "status", "reason", "count", "cases"])


def speed_table(view: Run) -> pd.DataFrame:
    """Per configuration: latency median and p90 (s), s/step, peak VRAM (GiB), energy and MFU when present.

    ``s/step`` is the median over every denoising step of every ok row (from ``steps_s``), falling
    back to ``step_median_s``. Peak VRAM is the maximum over rows. Energy and MFU are means.
    """
    ok = view.ok_samples
    records = []
    for config in view.config_names:
        sub = ok[ok["config"] == config] if len(ok) else ok
        lat = _col(sub, "latency_s")
        steps = step_matrix(sub)
        flat = (
            finite(np.concatenate([s for s in steps if len(s)]))
            if any(len(s) for s in steps)
            else _col(sub, "step_median_s")
        )
        rec: dict[str, Any] = {
            "config": config,
            "n": int(lat.size),
            "latency_median_s": quantile(lat, 0.5),
            "latency_p90_s": quantile(lat, 0.9),
            "s_per_step": quantile(flat, 0.5),
        }
        for col in PEAK_COLUMNS:
            v = _col(sub, col)
            rec[col] = float(v.max()) if v.size else math.nan
        for col in ("energy_j", "energy_wh", "power_w", "mfu"):
            v = _col(sub, col)
            rec[col] = float(v.mean()) if v.size else math.nan
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    if len(df):
        optional = [
            "peak_allocated_gib",
            "peak_reserved_gib",
            "peak_device_gib",
            "energy_j",
            "energy_wh",
            "power_w",
            "mfu",
        ]
        df = df.drop(columns=[c for c in optional if df[c].isna().all()])
    return df


SPEED_COLUMNS = {
    "n": ("N", ""),
    "latency_median_s": ("latency median", "s"),
    "latency_p90_s": ("latency p90", "s"),
    "s_per_step": ("s/step", "s"),
    "peak_allocated_gib": ("peak VRAM alloc.", "GiB"),
    "peak_reserved_gib": ("peak VRAM reserved", "GiB"),
    "peak_device_gib": ("peak device mem.", "GiB"),
    "energy_j": ("energy/image", "J"),
    "energy_wh": ("energy/image", "Wh"),
    "power_w": ("mean power", "W"),
    "mfu": ("MFU", ""),
}


def _col(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.empty(0)
    return finite(pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64))


def step_matrix(df: pd.DataFrame) -> list[np.ndarray]:
    """Per row, its per-step seconds (``steps_s``) as a float array (empty when absent)."""
    if "steps_s" not in df.columns:
        return [np.empty(0) for _ in range(len(df))]
    out = []
    for s in df["steps_s"]:
        if s is None or (isinstance(s, float) and math.isnan(s)):
            out.append(np.empty(0))
        else:
            out.append(np.asarray(list(s), dtype=np.float64))
    return out


def quality_caveats(meta: dict[str, Any] | RunMeta) -> tuple[dict[str, str], list[str]]:
    """(configurations with tiny/random weights → policy, metrics whose feature networks are random)."""
    rm = meta if isinstance(meta, RunMeta) else RunMeta.from_dict(meta)
    weak = {c: p for c, p in (rm.weights or {}).items() if p in NO_QUALITY_EVIDENCE}
    random_metrics = sorted(n for n, e in metric_info(rm).items() if e.get("quality_evidence") is False)
    return weak, random_metrics
