"""Release comparison of two runs: ``evalsuite compare RUN_A RUN_B [--thresholds FILE]``.

Only (configuration, case, seed) rows that are ``ok`` in both runs are compared (paired).

* Metrics (and other per-image numbers): mean delta B − A with a paired-bootstrap 95 % CI and
  the two-sided p-value of a paired sign-flip permutation test.
* Speed, memory, energy: ratios B / A — medians of paired images with a paired-bootstrap CI;
  peak memory compares the maxima.
* Thresholds (YAML, :func:`~evalsuite.compare.thresholds.load_thresholds`) give the verdict. Exit codes: 0 nothing regresses
  beyond its threshold; 1 something does (or rows that were ok in A fail in B); 2 unusable input
  (no shared rows, different dataset fingerprints without ``--allow-different-data``, a threshold
  naming something neither run measured, a bad thresholds file).

:func:`write_compare` writes ``compare.md``, ``compare.html``, ``compare.json``, both runs' plots
side by side, a forest plot of relative changes, and a grid of the most changed cases
(:func:`most_changed`: by per-image LPIPS when both runs have it on every paired row, else by
pixels; it says which); the rendering is :mod:`evalsuite.report.compare`.

Thresholds are :mod:`evalsuite.compare.thresholds` (the model the pytest baselines use too);
statistics are :mod:`evalsuite.trackers.stats` (scipy.stats).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from evalsuite.compare.thresholds import (
    CompareInputError,
    Threshold,
    ThresholdError,
    Verdict,
    judge,
    load_thresholds,
    resolve_direction,
)
from evalsuite.data.imageio import ImageError, load_image
from evalsuite.report.tables import PEAK_COLUMNS, Quantity, load_view, quantities
from evalsuite.results.run import Run
from evalsuite.trackers.stats import bootstrap_mean, paired_ratio_of_medians, sign_flip_pvalue

log = logging.getLogger(__name__)

__all__ = [
    "EXIT_OK",
    "EXIT_REGRESSED",
    "EXIT_UNUSABLE",
    "Change",
    "CompareInputError",
    "Comparison",
    "Threshold",
    "ThresholdError",
    "Verdict",
    "compare_runs",
    "load_thresholds",
    "most_changed",
    "paired_change",
    "write_compare",
]

EXIT_OK, EXIT_REGRESSED, EXIT_UNUSABLE = 0, 1, 2
ALIASES = {"latency": "latency_s"}  # the latency metric is compared through its column (as a ratio)


@dataclass
class Change:
    """One compared quantity of one configuration.

    ``kind`` ``delta``: ``a``/``b`` are means over the paired images, ``change`` = mean(B − A) with
    its CI, ``relative`` = change / |a|, ``p_value`` from the sign-flip test. ``kind`` ``ratio``:
    ``a``/``b`` are medians (maxima for peak memory), ``ratio`` = b / a with its CI,
    ``change`` = b − a, ``relative`` = ratio − 1.
    """

    config: str
    quantity: str
    label: str
    unit: str
    higher_is_better: bool | None
    kind: str
    n: int
    a: float
    b: float
    change: float
    low: float
    high: float
    relative: float
    p_value: float = math.nan
    ratio: float = math.nan


@dataclass
class Comparison:
    """The result of :func:`compare_runs`."""

    a: Run
    b: Run
    shared: dict[str, int]
    changes: list[Change]
    verdicts: list[Verdict]
    new_failures: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    thresholds_given: bool = False

    @property
    def unpaired(self) -> list[str]:
        """Configurations in both runs with no (case, seed) row ok in both: nothing of them was
        compared, so they fail the comparison (a gate must not pass on no data)."""
        return [c for c, n in self.shared.items() if n == 0]

    @property
    def exit_code(self) -> int:
        """0 nothing regressed, 1 a regression, new failures or a configuration with 0 shared ok
        rows, 2 a threshold without data."""
        if any(v.status == "no data" for v in self.verdicts):
            return EXIT_UNUSABLE
        if any(v.status == "REGRESSION" for v in self.verdicts) or len(self.new_failures) or self.unpaired:
            return EXIT_REGRESSED
        return EXIT_OK

    @property
    def verdict_text(self) -> str:
        """One line: PASS / REGRESSION / UNUSABLE with counts."""
        code = self.exit_code
        n_reg = sum(v.status == "REGRESSION" for v in self.verdicts)
        if code == EXIT_UNUSABLE:
            return "UNUSABLE: a threshold could not be evaluated (no paired data); see the verdict table"
        if code == EXIT_REGRESSED:
            parts = []
            if n_reg:
                parts.append(f"{n_reg} threshold(s) exceeded")
            if len(self.new_failures):
                parts.append(f"{len(self.new_failures)} row(s) ok in A fail in B")
            if self.unpaired:
                parts.append(
                    f"0 rows ok in both runs for configuration(s) {', '.join(self.unpaired)} (not compared)"
                )
            return "REGRESSION: " + "; ".join(parts)
        if not self.thresholds_given:
            return "PASS (no thresholds given: only new failures are checked)"
        return f"PASS: {len(self.verdicts)} threshold check(s), none exceeded"


def _key_frame(view: Run) -> pd.DataFrame:
    df = view.samples.copy()
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    return df.drop_duplicates(["config", "case_id", "seed"], keep="last")


def _quantity_union(a: Run, b: Run) -> list[Quantity]:
    qa = {q.name: q for q in quantities(a)}
    out = []
    for q in quantities(b):
        if q.name in qa and q.column and qa[q.name].column:
            hib = q.higher_is_better if q.higher_is_better is not None else qa[q.name].higher_is_better
            out.append(
                Quantity(
                    q.column,
                    q.name,
                    q.label,
                    q.unit or qa[q.name].unit,
                    hib,
                    q.kind,
                    q.quality_evidence and qa[q.name].quality_evidence,
                )
            )
    if any(q.name == "latency_s" for q in out):
        out = [q for q in out if not (q.name == "latency" and q.kind == "metric")]
    return out


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    thresholds: Sequence[Threshold] | None = None,
    allow_different_data: bool = False,
) -> Comparison:
    """Compare run B against run A on their shared ok rows.

    Raises:
        FileNotFoundError: when a path is not a run directory.
        CompareInputError: different dataset fingerprints (unless ``allow_different_data``), no shared
            ok rows, or a threshold naming a quantity or configuration that is not in both runs.
    """
    a, b = load_view(run_a), load_view(run_b)
    notes: list[str] = []
    fa, fb = a.dataset.get("fingerprint"), b.dataset.get("fingerprint")
    if fa != fb:
        msg = f"the runs used different data: dataset fingerprint {fa} (A: {a.path}) vs {fb} (B: {b.path})"
        if not allow_different_data:
            raise CompareInputError(
                msg + "; compare runs on the same dataset, or pass --allow-different-data "
                "to compare the cases and seeds they share anyway"
            )
        notes.append(msg + " (allowed by --allow-different-data: shared case ids may hold different images)")
    wa, wb = a.policies, b.policies
    for c in sorted(set(wa) & set(wb)):
        if wa[c] != wb[c]:
            notes.append(f"{c}: weights policy differs ({wa[c]} in A, {wb[c]} in B)")

    only_a, only_b = (
        [c for c in a.config_names if c not in b.config_names],
        [c for c in b.config_names if c not in a.config_names],
    )
    if only_a or only_b:
        notes.append(
            f"not compared: configurations only in A: {', '.join(only_a) or 'none'}; "
            f"only in B: {', '.join(only_b) or 'none'}"
        )
    da, db = _key_frame(a), _key_frame(b)
    keys = ["config", "case_id", "seed"]
    both = da.merge(db, on=keys, how="inner", suffixes=("_a", "_b"))
    paired = both[(both["status_a"] == "ok") & (both["status_b"] == "ok")]
    shared = {str(c): int((paired["config"] == c).sum()) for c in b.config_names if c in a.config_names}
    if paired.empty:
        raise CompareInputError(
            f"no (configuration, case, seed) row is ok in both runs: A ({a.path}) has configurations "
            f"{', '.join(a.config_names) or 'none'}, B ({b.path}) has {', '.join(b.config_names) or 'none'}; compare runs of the "
            "same configurations over the same cases and seeds"
        )
    new_fail = both[(both["status_a"] == "ok") & (both["status_b"] == "error")]
    new_failures = pd.DataFrame(
        {
            "config": new_fail["config"],
            "case_id": new_fail["case_id"],
            "seed": new_fail["seed"],
            "error": new_fail.get("error_b"),
        }
    ).reset_index(drop=True)

    changes: list[Change] = []
    for config in shared:
        sub = paired[paired["config"] == config]
        if sub.empty:
            continue
        for q in _quantity_union(a, b):
            col = q.column
            if f"{col}_a" not in sub.columns or f"{col}_b" not in sub.columns:
                continue
            va, vb = _num(sub[f"{col}_a"]), _num(sub[f"{col}_b"])
            keep = np.isfinite(va) & np.isfinite(vb)
            va, vb = va[keep], vb[keep]
            if va.size == 0:
                continue
            changes.append(paired_change(config, q, va, vb))
    verdicts = _verdicts(thresholds or [], changes, shared)
    return Comparison(a, b, shared, changes, verdicts, new_failures, notes, thresholds is not None)


def paired_change(config: str, q: Quantity, va: np.ndarray, vb: np.ndarray) -> Change:
    """``q`` of ``config`` compared on paired values ``va`` (A) and ``vb`` (B), finite on both sides.

    Resources (speed, memory): a ratio B / A of paired medians with a paired-bootstrap CI (peak
    memory: of the maxima, no CI). Everything else: the mean paired delta B − A with its bootstrap
    CI and the sign-flip p-value. Also used by the report's headline (B = a configuration, A = its
    reference configuration).
    """
    if q.kind == "resource":
        if q.name in PEAK_COLUMNS:
            xa, xb = float(va.max()), float(vb.max())
            ratio = xb / xa if xa else math.nan
            low = high = math.nan
        else:
            est = paired_ratio_of_medians(va, vb)
            xa, xb, ratio, low, high = (
                float(np.median(va)),
                float(np.median(vb)),
                est.value,
                est.low,
                est.high,
            )
        return Change(
            config,
            q.name,
            q.label,
            q.unit,
            q.higher_is_better,
            "ratio",
            int(va.size),
            xa,
            xb,
            xb - xa,
            low,
            high,
            ratio - 1 if math.isfinite(ratio) else math.nan,
            ratio=ratio,
        )
    d = vb - va
    est = bootstrap_mean(d)
    ma = float(va.mean())
    rel = est.value / abs(ma) if ma else math.nan
    return Change(
        config,
        q.name,
        q.label,
        q.unit,
        q.higher_is_better,
        "delta",
        est.n,
        ma,
        float(vb.mean()),
        est.value,
        est.low,
        est.high,
        rel,
        sign_flip_pvalue(d),
    )


def _verdicts(
    thresholds: Sequence[Threshold], changes: Sequence[Change], shared: dict[str, int]
) -> list[Verdict]:
    """Each threshold judged on each configuration it names (:func:`~evalsuite.compare.thresholds.judge`).

    Raises:
        CompareInputError: a threshold on a quantity or configuration not in both runs.
        DirectionError: a threshold on a quantity whose direction nobody declared.
    """
    by = {(c.config, c.quantity): c for c in changes}
    measured = {c.quantity for c in changes}
    out = []
    for t in thresholds:
        if t.metric not in measured and ALIASES.get(t.metric) in measured:
            t = t.renamed(ALIASES[t.metric])
        if t.metric not in measured and _set_level(t.metric):
            raise CompareInputError(
                f"threshold on {t.metric!r}: {t.metric} is a set-level metric (one value per configuration, "
                "not one per row), so it cannot be gated per row; compare its values in the two reports' "
                "summaries, or gate a per-image metric (measured in both runs: "
                f"{', '.join(sorted(measured)) or 'none'})"
            )
        if t.metric not in measured:
            raise CompareInputError(
                f"threshold on {t.metric!r}: not measured in both runs on shared rows; available: "
                f"{', '.join(sorted(measured)) or 'none'} (score the metric in both runs, or fix the name)"
            )
        configs = list(t.configs) if t.configs else [c for c in shared if shared[c]]
        missing = [c for c in configs if c not in shared]
        if missing:
            raise CompareInputError(
                f"threshold on {t.metric!r} names configuration(s) not in both runs: "
                f"{', '.join(missing)}; shared: {', '.join(shared) or 'none'}"
            )
        for config in configs:
            c = by.get((config, t.metric))
            if c is None:
                out.append(
                    Verdict(
                        config,
                        t.metric,
                        t.describe(),
                        math.nan,
                        math.nan,
                        t.max_regression,
                        "no data",
                        "no paired values for this configuration",
                        t.mode,
                    )
                )
                continue
            hib = resolve_direction(t.metric, t, c.higher_is_better)
            out.append(judge(t, config, c.a, c.b, hib, _change_ci(c)))
    return out


def _set_level(name: str) -> bool:
    """Whether ``name`` is a registered set-level metric (``per_sample = False``, e.g. FID)."""
    from evalsuite.registry import METRICS

    try:
        return METRICS.get(name).per_sample is False
    except Exception:  # not a metric name (a column such as latency_s): not set-level
        return False


def _change_ci(c: Change) -> tuple[float, float] | None:
    """The 95 % CI of B − A in absolute units (a ratio's CI scaled by A)."""
    if not (math.isfinite(c.low) and math.isfinite(c.high)):
        return None
    if c.kind == "ratio":
        return ((c.low - 1) * c.a, (c.high - 1) * c.a)
    return (c.low, c.high)


# -- changed cases ---------------------------------------------------------------------------------
def _small(path: Path) -> np.ndarray:
    img = load_image(path)
    return np.asarray(img.resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


LPIPS_COLUMNS = ("lpips", "unmasked_lpips", "lpips_pair", "lpips_pair_masked")
"""Per-image LPIPS columns the most-changed ranking uses, in order of preference."""


def _lpips_column(both: pd.DataFrame) -> tuple[str | None, str]:
    """The first :data:`LPIPS_COLUMNS` entry with a finite value in both runs on every paired row,
    and, when there is none, why (for the ranking's description)."""
    reasons = []
    for col in LPIPS_COLUMNS:
        if f"{col}_a" not in both.columns or f"{col}_b" not in both.columns:
            continue
        ok = np.isfinite(_num(both[f"{col}_a"])) & np.isfinite(_num(both[f"{col}_b"]))
        if ok.all():
            return col, ""
        reasons.append(f"{col} is missing for {int((~ok).sum())} of {len(both)} paired rows")
    return None, "; ".join(reasons) or "no per-image LPIPS column in both runs"


def most_changed(cmp: Comparison, k: int = 6) -> tuple[pd.DataFrame, str]:
    """The ``k`` paired rows that changed most between the runs.

    Ranked by the change of a per-image LPIPS column (|LPIPS(B) − LPIPS(A)|, the first of
    :data:`LPIPS_COLUMNS` that both runs have on every paired row), else by the mean absolute
    pixel difference of the two images (0–1, at 128²). The returned description says which, and
    why when it is pixels.

    Returns:
        (table with config, case_id, seed, image_a, image_b, score; score description).
    """
    da, db = _key_frame(cmp.a), _key_frame(cmp.b)
    both = da.merge(db, on=["config", "case_id", "seed"], suffixes=("_a", "_b"))
    both = both[(both["status_a"] == "ok") & (both["status_b"] == "ok")].copy()
    if both.empty:
        return both, ""
    col, why = _lpips_column(both)
    if col is not None:
        both["score"] = np.abs(_num(both[f"{col}_b"]) - _num(both[f"{col}_a"]))
        what = f"ranked by |LPIPS(B) − LPIPS(A)| per paired image (column {col})"
    else:
        scores = []
        for r in both.to_dict("records"):
            try:
                scores.append(
                    float(
                        np.abs(_small(cmp.b.path / r["image_b"]) - _small(cmp.a.path / r["image_a"])).mean()
                    )
                )
            except (ImageError, TypeError, OSError):
                scores.append(math.nan)
        both["score"] = scores
        what = f"ranked by mean |B − A| pixel difference (0–1, images resized to 128²), not LPIPS: {why}"
    both = both[np.isfinite(both["score"])].sort_values(
        ["score", "config", "case_id"], ascending=[False, True, True]
    )
    cols = ["config", "case_id", "seed", "image_a", "image_b", "score"]
    return both[cols].head(k).reset_index(drop=True), what


def write_compare(cmp: Comparison, out: str | Path, embed_images: bool = False, k: int = 6) -> Path:
    """Write ``compare.md``, ``compare.html``, ``compare.json``, the plots and the grid of the ``k``
    most changed rows (:func:`most_changed`) into ``out`` (:mod:`evalsuite.report.compare`); return
    ``out``."""
    from evalsuite.report.compare import write_compare as write

    top, what = most_changed(cmp, k)
    return write(cmp, out, top, what, embed_images)
