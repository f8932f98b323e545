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

Writes ``compare.md``, ``compare.html``, ``compare.json``, both runs' plots side by side, a
forest plot of relative changes, and a grid of the most changed cases (:func:`most_changed`:
by per-image LPIPS when both runs have it on every paired row, else by pixels; it says which).

Thresholds are :mod:`evalsuite.compare.thresholds` (the model the pytest baselines use too);
statistics are :mod:`evalsuite.trackers.stats` (scipy.stats).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
from evalsuite.data.imageio import ImageError, load_image, load_mask
from evalsuite.paths import atomic_write
from evalsuite.report import html as H
from evalsuite.report.grids import Tile, compose, mask_overlay
from evalsuite.report.plots import Plot, _save, _txt, all_plots, legend
from evalsuite.report.report import banner_text, fmt, md, md_table, run_cases
from evalsuite.report.tables import Quantity, load_view, quantities
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
    "write_compare",
]

EXIT_OK, EXIT_REGRESSED, EXIT_UNUSABLE = 0, 1, 2
_MAX_QUANTITIES = ("peak_allocated_gib", "peak_reserved_gib", "peak_device_gib")
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
    def exit_code(self) -> int:
        """0 nothing regressed, 1 a regression or new failures, 2 a threshold without data."""
        if any(v.status == "no data" for v in self.verdicts):
            return EXIT_UNUSABLE
        if any(v.status == "REGRESSION" for v in self.verdicts) or len(self.new_failures):
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
            changes.append(_change(config, q, va, vb))
    verdicts = _verdicts(thresholds or [], changes, shared)
    return Comparison(a, b, shared, changes, verdicts, new_failures, notes, thresholds is not None)


def _change(config: str, q: Quantity, va: np.ndarray, vb: np.ndarray) -> Change:
    if q.kind == "resource":
        if q.name in _MAX_QUANTITIES:
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


def changed_grid(cmp: Comparison, top: pd.DataFrame, what: str, path: Path) -> bool:
    """Write the grid: source | mask | A | B | |A − B| (×4) for the rows of ``top``. False when empty."""
    if top.empty:
        return False
    known, _notes = run_cases(cmp.b)
    cases = {c.id: c for c in known or []}
    rows = []
    for r in top.to_dict("records"):
        case = cases.get(str(r["case_id"]))
        tiles: list[Tile] = []
        src = mask = None
        if case is not None and case.is_inpainting:
            try:
                src, mask = load_image(case.image), load_mask(case.mask)  # type: ignore[arg-type]
            except ImageError as exc:
                log.warning("compare grid: %s", exc)
        tiles.append(
            Tile(src, "no source (text-to-image)" if case is None or not case.is_inpainting else "unreadable")
        )
        tiles.append(
            Tile(mask_overlay(src, mask) if src is not None and mask is not None else None, "no mask")
        )
        try:
            ia, ib = load_image(cmp.a.path / r["image_a"]), load_image(cmp.b.path / r["image_b"])
            if ib.size != ia.size:
                ib = ib.resize(ia.size, Image.Resampling.LANCZOS)
            diff = np.abs(np.asarray(ia, np.int16) - np.asarray(ib, np.int16)).mean(axis=2)
            heat = Image.fromarray(np.clip(diff * 4, 0, 255).astype(np.uint8), "L").convert("RGB")
            tiles += [Tile(ia), Tile(ib), Tile(heat)]
        except ImageError as exc:
            tiles += [Tile(None, str(exc))] * 3
        rows.append((f"{r['config']} / {r['case_id']} (seed {r['seed']}) change {r['score']:.4g}", tiles))
    compose(["source", "mask (red)", "run A", "run B", "|A − B| ×4"], rows, f"Most changed: {what}").save(
        path
    )
    return True


def forest_plot(cmp: Comparison, out_dir: Path) -> Plot | None:
    """Relative change (%) with 95 % CI for each (configuration, metric) delta and each ratio."""
    from matplotlib.figure import Figure

    items = [c for c in cmp.changes if math.isfinite(c.relative)]
    if not items:
        return None
    fig = Figure(figsize=(7.2, 0.32 * len(items) + 1.6))
    ax = fig.subplots()
    ys = np.arange(len(items))[::-1]
    for y, c in zip(ys, items, strict=True):
        if c.kind == "ratio":
            lo, hi = (c.low - 1, c.high - 1)
        else:
            lo, hi = (c.low / abs(c.a), c.high / abs(c.a)) if c.a else (math.nan, math.nan)
        better = None if c.higher_is_better is None else (c.relative > 0) == c.higher_is_better
        color = "0.4" if better is None or c.relative == 0 else ("tab:green" if better else "tab:red")
        xerr = (
            None
            if not (math.isfinite(lo) and math.isfinite(hi))
            else [[100 * (c.relative - lo)], [100 * (hi - c.relative)]]
        )
        ax.errorbar(
            [100 * c.relative], [y], xerr=xerr, fmt="o" if c.kind == "delta" else "s", color=color, capsize=3
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(
        ys,
        [_txt(f"{c.config} · {c.label}" + (" (ratio)" if c.kind == "ratio" else "")) for c in items],
        fontsize=8,
    )
    ax.set_xlabel("change of B relative to A (%)  [95 % CI]")
    ax.set_ylabel("configuration · quantity")
    title = "Relative change B vs A"
    ax.set_title(title)
    from matplotlib.lines import Line2D

    legend(
        ax,
        handles=[
            Line2D([], [], color="tab:green", marker="o", linestyle="", label="better"),
            Line2D([], [], color="tab:red", marker="o", linestyle="", label="worse"),
            Line2D([], [], color="0.4", marker="s", linestyle="", label="ratio (square) / no direction"),
        ],
        fontsize=7,
    )
    ax.grid(True, axis="x", alpha=0.3)
    return _save(
        fig,
        out_dir,
        "plots",
        "relative_change",
        title,
        "Mean delta (metrics, circles) or median ratio (speed/memory, squares) relative to run A.",
    )


# -- rendering -------------------------------------------------------------------------------------
def _change_rows(cmp: Comparison, kind: str) -> list[list[str]]:
    rows = []
    for c in cmp.changes:
        if c.kind != kind:
            continue
        arrow = {True: "↑", False: "↓"}.get(c.higher_is_better, "")  # type: ignore[arg-type]
        name = f"{c.label} ({c.unit}) {arrow}" if c.unit else f"{c.label} {arrow}"
        if kind == "delta":
            ci = f"[{fmt(c.low)}, {fmt(c.high)}]" if math.isfinite(c.low) else "—"
            rows.append(
                [
                    c.config,
                    name.strip(),
                    str(c.n),
                    fmt(c.a),
                    fmt(c.b),
                    fmt(c.change),
                    ci,
                    f"{100 * c.relative:+.2f} %" if math.isfinite(c.relative) else "—",
                    fmt(c.p_value, 3),
                ]
            )
        else:
            ci = f"[{fmt(c.low)}, {fmt(c.high)}]" if math.isfinite(c.low) else "—"
            stat = "max" if c.quantity in _MAX_QUANTITIES else "median"
            rows.append([c.config, name.strip(), stat, str(c.n), fmt(c.a), fmt(c.b), fmt(c.ratio), ci])
    return rows


DELTA_HEADS = [
    "configuration",
    "quantity",
    "N pairs",
    "mean A",
    "mean B",
    "Δ mean (B − A)",
    "95 % CI",
    "relative",
    "p",
]
RATIO_HEADS = ["configuration", "quantity", "statistic", "N pairs", "A", "B", "ratio B/A", "95 % CI"]
VERDICT_HEADS = ["configuration", "metric", "rule", "change", "worsening", "status", "detail"]


def _verdict_rows(cmp: Comparison) -> list[list[str]]:
    def f(x: float, mode: str) -> str:
        return f"{100 * x:+.2f} %" if mode == "relative" and math.isfinite(x) else fmt(x)

    return [
        [v.config, v.metric, v.rule, f(v.change, v.mode), f(v.worsening, v.mode), v.status, v.detail]
        for v in cmp.verdicts
    ]


def _param_changes(cmp: Comparison) -> list[list[str]]:
    ca, cb = cmp.a.configs, cmp.b.configs
    rows = []
    for config in sorted(set(ca) & set(cb)):
        pa, pb = ca[config].params or {}, cb[config].params or {}
        for k in sorted(set(pa) | set(pb)):
            if pa.get(k) != pb.get(k):
                rows.append([config, k, str(pa.get(k)), str(pb.get(k))])
    return rows


def _run_line(label: str, v: Run) -> str:
    ds = v.dataset
    env = v.run_meta.environment or {}
    dev = (env.get("device") or {}).get("name")
    return (
        f"{label}: {v.name} ({v.path}) — dataset {ds.get('name')} {str(ds.get('fingerprint'))[:12]}…, "
        f"weights {', '.join(sorted(set(v.policies.values())))}, device {dev}, "
        f"commit {env.get('git_commit')}, finished {v.run_meta.finished}"
    )


@dataclass
class CompareAssets:
    """Files written for a comparison (paths relative to its folder)."""

    pairs: list[tuple[str, Plot | None, Plot | None]]
    forest: Plot | None
    grid: str | None
    grid_what: str
    top: pd.DataFrame


def write_assets(cmp: Comparison, out: Path, k: int = 6) -> CompareAssets:
    """Plots of both runs (same kinds, side by side), the forest plot and the most-changed grid."""
    pa = {p.key: p for p in all_plots(cmp.a, out / "plots" / "a", "plots/a")}
    pb = {p.key: p for p in all_plots(cmp.b, out / "plots" / "b", "plots/b")}
    pairs = [(key, pa.get(key), pb.get(key)) for key in list(dict.fromkeys([*pa, *pb]))]
    forest = forest_plot(cmp, out / "plots")
    top, what = most_changed(cmp, k)
    grid = "most_changed.png" if changed_grid(cmp, top, what, out / "most_changed.png") else None
    return CompareAssets(pairs, forest, grid, what, top)


def render_markdown(cmp: Comparison, assets: CompareAssets | None = None) -> str:
    """``compare.md``."""
    lines: list[str] = []
    for v in (cmp.a, cmp.b):
        title, detail = banner_text(v.meta)
        if title:
            lines += [f"> **WARNING ({md(v.name)}): {md(title)}** {md(detail)}", ""]
    lines += [
        f"# evalsuite compare: `{md(cmp.b.name)}` vs `{md(cmp.a.name)}`",
        "",
        f"**Verdict: {md(cmp.verdict_text)}** (exit code {cmp.exit_code})",
        "",
        f"- {md(_run_line('A (baseline)', cmp.a))}",
        f"- {md(_run_line('B (candidate)', cmp.b))}",
        "- shared ok (configuration, case, seed) rows: "
        + ", ".join(f"{md(c)} {n}" for c, n in cmp.shared.items()),
        "- Δ: mean of paired differences B − A with a paired-bootstrap 95 % CI (2000 resamples); p: two-sided "
        "paired sign-flip permutation test; ratios: B / A with a paired-bootstrap CI.",
        "",
    ]
    lines += [f"- note: {md(n)}" for n in cmp.notes] + ([""] if cmp.notes else [])
    if cmp.verdicts:
        lines += ["## Thresholds", ""] + md_table(
            VERDICT_HEADS, [[md(x) for x in r] for r in _verdict_rows(cmp)]
        )
    if len(cmp.new_failures):
        lines += ["## New failures (ok in A, error in B)", ""] + md_table(
            ["configuration", "case", "seed", "error in B"],
            [
                [md(r["config"]), md(r["case_id"]), str(r["seed"]), md(r["error"])]
                for r in cmp.new_failures.to_dict("records")
            ],
        )
    pc = _param_changes(cmp)
    if pc:
        lines += ["## Configuration changes", ""] + md_table(
            ["configuration", "parameter", "A", "B"], [[md(x) for x in r] for r in pc]
        )
    lines += ["## Metrics: paired deltas", ""] + md_table(
        DELTA_HEADS, [[md(x) for x in r] for r in _change_rows(cmp, "delta")]
    )
    lines += ["## Speed and memory: ratios", ""] + md_table(
        RATIO_HEADS, [[md(x) for x in r] for r in _change_rows(cmp, "ratio")]
    )
    if assets:
        if assets.forest:
            lines += [f"![{md(assets.forest.title)}]({assets.forest.png})", "", md(assets.forest.caption), ""]
        lines += ["## Plots (A | B)", "", "| A | B |", "|---|---|"]
        for _key, p1, p2 in assets.pairs:
            cell = [f"![{md(p.title)}]({p.png})" if p else "—" for p in (p1, p2)]
            lines.append(f"| {cell[0]} | {cell[1]} |")
        lines.append("")
        if assets.grid:
            lines += [
                "## Most changed cases",
                "",
                md(assets.grid_what),
                "",
                f"![most changed]({assets.grid})",
                "",
            ]
    return "\n".join(lines) + "\n"


def render_html(cmp: Comparison, assets: CompareAssets, base: Path, embed: bool = False) -> str:
    """``compare.html``: self-contained (inline CSS, no scripts, every text escaped)."""
    body: list[object] = []
    for v in (cmp.a, cmp.b):
        title, detail = banner_text(v.meta)
        if title:
            body.append(
                H.Markup(
                    f'<div class="banner">WARNING ({H.esc(v.name)}): {H.esc(title)}<small>{H.esc(detail)}</small></div>'
                )
            )
    body.append(H.tag("h1", f"evalsuite compare: {cmp.b.name} vs {cmp.a.name}"))
    body.append(
        H.tag(
            "p",
            f"Verdict: {cmp.verdict_text} (exit code {cmp.exit_code})",
            cls="ok" if cmp.exit_code == 0 else "fail",
        )
    )
    items = [
        ("A (baseline)", _run_line("A", cmp.a)),
        ("B (candidate)", _run_line("B", cmp.b)),
        ("shared rows", ", ".join(f"{c} {n}" for c, n in cmp.shared.items())),
        (
            "statistics",
            "Δ: mean of paired differences B − A, paired-bootstrap 95 % CI (2000 resamples); p: two-sided "
            "paired sign-flip permutation test; ratios B / A with a paired-bootstrap CI.",
        ),
    ]
    items += [("note", n) for n in cmp.notes]
    body.append(
        H.Markup(
            '<dl class="kv">' + "".join(f"<dt>{H.esc(k)}</dt><dd>{H.esc(v)}</dd>" for k, v in items) + "</dl>"
        )
    )
    if cmp.verdicts:
        body += [
            H.tag("h2", "Thresholds"),
            H.table(
                VERDICT_HEADS,
                _verdict_rows(cmp),
                row_classes=["bad" if v.status != "pass" else "" for v in cmp.verdicts],
            ),
        ]
    if len(cmp.new_failures):
        body += [
            H.tag("h2", "New failures (ok in A, error in B)"),
            H.table(
                ["configuration", "case", "seed", "error in B"], cmp.new_failures.astype(str).values.tolist()
            ),
        ]
    pc = _param_changes(cmp)
    if pc:
        body += [H.tag("h2", "Configuration changes"), H.table(["configuration", "parameter", "A", "B"], pc)]
    body += [
        H.tag("h2", "Metrics: paired deltas"),
        H.table(DELTA_HEADS, _change_rows(cmp, "delta"), numeric=[False, False] + [True] * 7),
    ]
    body += [
        H.tag("h2", "Speed and memory: ratios"),
        H.table(RATIO_HEADS, _change_rows(cmp, "ratio"), numeric=[False] * 3 + [True] * 5),
    ]
    if assets.forest:
        body.append(
            H.figure(H.img(assets.forest.png, assets.forest.title, base, embed), assets.forest.caption)
        )
    body.append(H.tag("h2", "Plots (A | B)"))
    for _key, p1, p2 in assets.pairs:
        cells = [
            H.figure(H.img(p.png, p.title, base, embed), f"{label}: {p.caption}")
            if p
            else H.tag("p", f"{label}: no data")
            for label, p in (("A", p1), ("B", p2))
        ]
        body.append(H.Markup(f'<div class="side"><div>{cells[0]}</div><div>{cells[1]}</div></div>'))
    if assets.grid:
        body += [
            H.tag("h2", "Most changed cases"),
            H.tag("p", assets.grid_what, cls="note"),
            H.figure(H.img(assets.grid, "most changed cases", base, embed), assets.grid_what),
            H.table(
                [
                    "configuration",
                    "case",
                    "seed",
                    "|Δ LPIPS|" if assets.grid_what.startswith("ranked by |LPIPS") else "pixel |Δ| (0–1)",
                ],
                [
                    [r["config"], r["case_id"], r["seed"], fmt(r["score"])]
                    for r in assets.top.to_dict("records")
                ],
            ),
        ]
    return H.page(f"evalsuite compare {cmp.b.name} vs {cmp.a.name}", body)


def write_compare(cmp: Comparison, out: str | Path, embed_images: bool = False, k: int = 6) -> Path:
    """Write ``compare.md``, ``compare.html``, ``compare.json`` and plots/grids into ``out``; return ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    assets = write_assets(cmp, out, k)
    atomic_write(out / "compare.md", render_markdown(cmp, assets))
    atomic_write(out / "compare.html", render_html(cmp, assets, out, embed_images))
    doc = {
        "run_a": str(cmp.a.path),
        "run_b": str(cmp.b.path),
        "exit_code": cmp.exit_code,
        "verdict": cmp.verdict_text,
        "shared": cmp.shared,
        "notes": cmp.notes,
        "changes": [asdict(c) for c in cmp.changes],
        "verdicts": [asdict(v) for v in cmp.verdicts],
        "new_failures": cmp.new_failures.astype(str).to_dict("records"),
        "most_changed": {
            "ranked_by": assets.grid_what,
            "rows": assets.top.drop(columns=["image_a", "image_b"], errors="ignore")
            .astype({"seed": "int64"}, errors="ignore")
            .to_dict("records"),
        },
    }
    atomic_write(out / "compare.json", json.dumps(_jsonable(doc), indent=2, allow_nan=False))
    return out


def _jsonable(o: Any) -> Any:
    """``o`` with NaN/inf as ``None`` and numpy scalars as Python numbers."""
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, str):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if o is None or isinstance(o, bool | int | float | str):
        return o
    return str(o)
