"""The tables and plot of an ``evalsuite frontier`` run: ``frontier.csv``, ``frontier.md``,
``frontier.json`` and ``pareto.png`` (optionally mirrored into another folder).

Pure functions of the stored results — the rows (one per point, with its paired quality) and
``run.json`` (its ``frontier`` block) — so a stored run renders the same files again. The scenario
that measures the points is :mod:`evalsuite.scenarios.frontier`.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evalsuite.paths import atomic_write, atomic_write_json
from evalsuite.report.formatting import cell, environment_lines, md_table, missing
from evalsuite.report.plots import new_axes, pareto_front, save_png

__all__ = [
    "fastest_within",
    "frontier_frame",
    "pareto_mask",
    "render_markdown",
    "write_frontier",
    "write_pareto",
]


def pareto_mask(df: pd.DataFrame, x: str = "s_per_image", y: str = "lpips_mean") -> pd.Series:
    """Boolean mask of the rows on the Pareto front of (``x``, ``y``), both lower-is-better
    (:func:`evalsuite.report.plots.pareto_front`: a row with a missing value is never on it)."""
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    front = pd.Series(False, index=df.index)
    front.iloc[pareto_front(list(xs), list(ys), higher_is_better=False)] = True
    return front


def frontier_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a table with the columns the tables read, and ``front``: on its configuration's
    Pareto front of seconds per image vs paired LPIPS."""
    df = pd.DataFrame(list(rows))
    for col in ("lpips_mean", "s_per_image", "status", "base_config"):
        if col not in df.columns:
            df[col] = math.nan
    df["front"] = False
    for _base, g in df[df["status"] == "ok"].groupby("base_config", sort=False):
        df.loc[g.index, "front"] = pareto_mask(g)
    return df


def fastest_within(df: pd.DataFrame, thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Per configuration and threshold X: the fastest ok point whose mean paired LPIPS ≤ X."""
    out = []
    for base, g in df[df["status"] == "ok"].groupby("base_config", sort=False):
        ref_s = g.loc[g["is_reference"], "s_per_image"]
        for x in thresholds:
            ok = g[g["lpips_mean"].notna() & (g["lpips_mean"] <= x)]
            if ok.empty:
                out.append({"base_config": base, "lpips_max": x, "point": None})
                continue
            best = ok.loc[ok["s_per_image"].idxmin()]
            out.append(
                {
                    "base_config": base,
                    "lpips_max": x,
                    "point": best["point"],
                    "s_per_image": best["s_per_image"],
                    "lpips_mean": best["lpips_mean"],
                    "speedup": (float(ref_s.iloc[0]) / best["s_per_image"]) if len(ref_s) else math.nan,
                    "speed_depends_on_weights": bool(best["speed_depends_on_weights"]),
                }
            )
    return out


def _ci(r: Any, k: str) -> str:
    """``mean [low, high]`` of the paired quantity ``k`` of row ``r`` (the CI at 3 digits)."""
    m = r.get(f"{k}_mean")
    if missing(m):
        return "—"
    lo, hi = r.get(f"{k}_ci_low"), r.get(f"{k}_ci_high")
    if missing(lo):
        return cell(m)
    return f"{cell(m)} [{cell(lo, 3)}, {cell(hi, 3)}]"


HEADINGS = [
    "configuration",
    "point",
    "status",
    "s/image [CI]",
    "cold s",
    "start s",
    "compile s",
    "× FLOP floor",
    "NVML GiB",
    "alloc GiB",
    "passes computed / reused",
    "LPIPS",
    "PSNR dB",
    "SSIM",
    "LPIPS masked",
    "CLIP Δ",
    "front",
    "speed depends on weights",
]


def _peak_lines(peaks: dict[str, Any]) -> list[str]:
    """The matmul peaks measured in the run (the FLOP floor's reference), one line."""
    parts = [
        f"{d} {cell(p.get('tflops'))} TFLOP/s"
        if not pd.isna(p.get("tflops", math.nan))
        else f"{d}: {p.get('reason', 'no peak')}"
        for d, p in peaks.items()
    ]
    return [f"- matmul peaks measured in this run: {'; '.join(parts)}"] if parts else []


def start_seconds(r: Any) -> float:
    """Seconds from nothing to the first image: load + apply the axes (quantise, fuse, wrap) + the cold
    call (compile and first image); NaN when one of them is missing."""
    parts = [r.get(k, math.nan) for k in ("load_s", "apply_s", "first_call_s")]
    if any(v is None or pd.isna(v) for v in parts):
        return math.nan
    return float(sum(parts))


def _point_cells(r: Any) -> list[str]:
    """One row of the points table."""
    peer = r.get("peer")
    label = f"`{r['point']}`" + (f" ({peer})" if isinstance(peer, str) and peer else "")
    head = [str(r["base_config"]), label]
    weights = cell(bool(r["speed_depends_on_weights"]))
    if r["status"] != "ok":
        return [*head, f"{r['status']}: {cell(r.get('reason'))}", *["—"] * 14, weights]
    passes = (
        f"{cell(r.get('passes_computed'), 3)} / {cell(r.get('passes_reused'), 3)}"
        if not pd.isna(r.get("passes_computed", math.nan))
        else cell(r.get("passes_note"))
    )
    return [
        *head,
        "ok",
        f"{cell(r['s_per_image'])} [{cell(r.get('s_ci_low'), 3)}, {cell(r.get('s_ci_high'), 3)}]",
        cell(r.get("first_call_s")),
        cell(start_seconds(r)),
        cell(r.get("compile_s")),
        f"{cell(r.get('floor_ratio'), 3)}×" if not pd.isna(r.get("floor_ratio", math.nan)) else "—",
        cell(r.get("nvml_peak_gib")),
        cell(r.get("alloc_peak_gib")),
        passes,
        *[_ci(r, k) for k in ("lpips", "psnr", "ssim", "lpips_masked", "clip_delta")],
        "**front**" if r.get("front") else "",
        weights,
    ]


def _fastest_cells(f: dict[str, Any]) -> list[str]:
    """One row of the "fastest within paired LPIPS ≤ X" table."""
    if f.get("point") is None:
        return [str(f["base_config"]), f"{f['lpips_max']:g}", "none within X", *["—"] * 4]
    return [
        str(f["base_config"]),
        f"{f['lpips_max']:g}",
        f"`{f['point']}`",
        cell(f["s_per_image"]),
        cell(f["lpips_mean"]),
        f"{cell(f['speedup'], 3)}×",
        cell(f["speed_depends_on_weights"]),
    ]


def render_markdown(df: pd.DataFrame, meta: dict[str, Any]) -> str:
    """``frontier.md``: the points, the fastest point within each LPIPS threshold, what depends on
    the weights, and the points not measured."""
    fr = meta.get("frontier", {})
    lines: list[str] = []
    if fr.get("plumbing_only"):
        lines += [
            "> **Weights are tiny/random: speed and memory are real for these architectures; the paired "
            "quality numbers prove the plumbing only (they say how far the numerics move, not how good "
            "the images are). Threshold caches (FirstBlockCache, MagCache) reuse differently on real weights.**",
            "",
        ]
    lines += [
        f"# evalsuite frontier `{meta.get('run_id')}`",
        "",
        *environment_lines(meta),
        *_peak_lines(fr.get("peaks") or {}),
        f"- weights: {fr.get('weights')}; cases × seeds per point: {fr.get('pairs')}; reference: `{fr.get('reference')}`",
        "- s/image: median of one timed call per (case, seed) after one cold call (95 % order-statistic CI); "
        "cold s = the first call (compile + first image); start s = load + apply axes + cold call, the time from "
        "nothing to the first image; compile s = cold − warm median; × FLOP floor = s/image ÷ (FLOP of one image, every pass computed, "
        "at the matmul peak measured in this run for the point's dtype: fp8 for fp8 precisions, else bf16 on "
        "CUDA); quality: mean over pairs vs the reference image at the same case and seed [95 % percentile "
        "bootstrap CI]",
        "",
    ]
    lines += md_table(HEADINGS, [_point_cells(r) for _, r in df.iterrows()], blank_after=False)
    lines += [
        "",
        "## Fastest point within paired LPIPS ≤ X",
        "",
    ]
    lines += md_table(
        [
            "configuration",
            "X",
            "point",
            "s/image",
            "LPIPS",
            "speed-up vs reference",
            "speed depends on weights",
        ],
        [_fastest_cells(f) for f in fr.get("fastest", [])],
        blank_after=False,
    )
    lines += [
        "",
        "## Which speed figures depend on the weight values",
        "",
        "Steps, precision, fused QKV, compile, attention backend and the schedule-based caches (TaylorSeer, "
        "PyramidAttentionBroadcast, FasterCache) do the same work whatever the weights: their speed measured on "
        "random weights holds for real ones. FirstBlockCache and MagCache skip a step when an activation "
        "difference is under a threshold: how often that happens — and so their speed — depends on the weights "
        "(random weights change a lot between steps, so they reuse little); MagCache's ratios are calibrated "
        "per configuration in the run (`frontier.json` → `mag_ratios`).",
    ]
    bad = df[df["status"] != "ok"]
    if len(bad):
        lines += ["", "## Not measured", ""] + [
            f"- `{r['config']}`: {r['status']}: {r['reason']}" for _, r in bad.iterrows()
        ]
    return "\n".join(lines) + "\n"


def write_pareto(df: pd.DataFrame, path: Path) -> Path | None:
    """``pareto.png``: paired LPIPS against seconds per image per point, each configuration's front
    ringed and joined; ``None`` (nothing written) without an ok point with LPIPS."""
    ok = df[(df["status"] == "ok") & df["lpips_mean"].notna()] if "lpips_mean" in df.columns else df.iloc[0:0]
    if ok.empty:
        return None
    fig, ax = new_axes((7, 4.5))
    for base, g in ok.groupby("base_config", sort=False):
        sc = ax.scatter(g["s_per_image"], g["lpips_mean"], label=base, alpha=0.7)
        fr = g[g["front"]].sort_values("s_per_image")
        ax.plot(
            fr["s_per_image"], fr["lpips_mean"], "-o", color=sc.get_facecolor()[0], lw=2, mfc="none", ms=11
        )
        for _, r in g.iterrows():
            ax.annotate(
                r["point"],
                (r["s_per_image"], r["lpips_mean"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xlabel("seconds per image (median)")
    ax.set_ylabel("paired LPIPS vs reference (mean)")
    ax.set_title("Acceleration frontier (front: ringed, joined)")
    ax.legend(fontsize=7)
    return save_png(fig, path)


def write_frontier(run_dir: Path, df: pd.DataFrame, meta: dict[str, Any], mirror: Path | None = None) -> None:
    """``frontier.csv``, ``frontier.md``, ``frontier.json`` and ``pareto.png`` of ``df``
    (:func:`frontier_frame`) into ``run_dir``; with ``mirror``, a copy of the Markdown, the JSON and
    the plot there, named after the run directory."""
    flat = df.drop(columns=[c for c in ("images", "notes", "cudagraph") if c in df.columns])
    flat.to_csv(run_dir / "frontier.csv", index=False)
    atomic_write(run_dir / "frontier.md", render_markdown(df, meta))
    atomic_write_json(
        run_dir / "frontier.json",
        json.loads(json.dumps({"meta": meta, "rows": df.to_dict("records")}, default=str)),
    )
    write_pareto(df, run_dir / "pareto.png")
    if mirror is not None:
        mirror.mkdir(parents=True, exist_ok=True)
        for name in ("frontier.md", "frontier.json", "pareto.png"):
            if (run_dir / name).exists():
                stem, ext = name.rsplit(".", 1)
                shutil.copy(run_dir / name, mirror / f"{stem}-{run_dir.name}.{ext}")
