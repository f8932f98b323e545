"""The tables and plots of an ``evalsuite profile`` run: ``profile.csv``, ``profile.md``,
``profile.json`` and ``latency_vs_resolution.png``, ``vram_by_memory_mode.png``, ``speedup.png``.

Pure functions of the stored results — the rows (one per measured point) and ``run.json`` (its
``profile`` block: peaks, timing, overhead goal) — so a stored run renders the same files again.
The scenario that measures them is :mod:`evalsuite.scenarios.profile`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evalsuite.paths import atomic_write_json
from evalsuite.report.formatting import cell, environment_lines, md_table
from evalsuite.report.plots import new_axes, save_png

__all__ = ["TABLE_COLUMNS", "render_markdown", "speedups", "write_plots", "write_profile"]

#: The goal the paired harness overhead is judged on when ``run.json`` does not record one.
DEFAULT_OVERHEAD_GOAL_PCT = 1.0

TABLE_COLUMNS = [
    ("config", "point"),
    ("status", "status"),
    ("first_call_s", "first s"),
    ("e2e_median_s", "warm s (median)"),
    ("e2e_ci_low_s", "CI low"),
    ("e2e_ci_high_s", "CI high"),
    ("e2e_p90_s", "p90"),
    ("n_warm", "n"),
    ("step_median_s", "s/step"),
    ("text_encode_s", "text s"),
    ("vae_encode_s", "vae enc s"),
    ("denoise_s", "denoise s"),
    ("vae_decode_s", "vae dec s"),
    ("peak_allocated_gib", "alloc GiB"),
    ("peak_reserved_gib", "reserved GiB"),
    ("nvml_peak_gib", "NVML GiB"),
    ("host_peak_rss_gib", "host RSS GiB"),
    ("energy_j_per_image", "J/image"),
    ("achieved_tflops", "TFLOP/s"),
    ("mfu", "MFU"),
    ("step_over_floor", "step/floor"),
]
"""The columns of the main table: row key → heading (those absent from the rows are left out)."""


def _ci_pct(r: Any) -> str:
    lo, hi = (
        r.get("harness_overhead_paired_ci_low_pct", math.nan),
        r.get("harness_overhead_paired_ci_high_pct", math.nan),
    )
    pairs = r.get("overhead_pairs_s")
    if isinstance(pairs, str):
        try:
            pairs = json.loads(pairs)
        except ValueError:
            pairs = None
    n = f" ({len(pairs)})" if isinstance(pairs, list | tuple) else ""
    if pd.isna(lo) or pd.isna(hi):
        return "—" + n
    return f"[{lo:+.2f}, {hi:+.2f}]{n}"


def _verdict(judged: float, ci_high: float, goal: float) -> str:
    """``yes`` when the overhead and the upper end of its CI are within the goal; ``unsettled`` when
    only the overhead is; ``NO`` otherwise."""
    if judged > goal:
        return "NO"
    if not pd.isna(ci_high) and ci_high > goal:
        return "unsettled (CI reaches past the goal)"
    return "yes"


def overhead_lines(df: pd.DataFrame, goal: float) -> list[str]:
    """The "Harness overhead" section of ``profile.md`` (empty without a baseline column)."""
    lines: list[str] = []
    if "baseline_median_s" in df.columns or "baseline_error" in df.columns:
        lines += [
            "",
            "## Harness overhead (runner + trackers vs the bare diffusers call)",
            "",
            f"Goal: ≤ {goal:g} % of end-to-end time.",
            "",
            "The goal is judged on the paired overhead: the median ratio of runner to bare call over",
            "alternating pairs (bare, runner, bare, runner, …), which cancels drift between blocks; the",
            "block overhead compares the point's own warm calls with a block of bare calls after them.",
            "The CI resamples the pairs; the goal is met only where its upper end is within it, too.",
            "",
        ]
        rows = []
        for _, r in df.iterrows():
            if isinstance(r.get("baseline_error"), str):
                rows.append(
                    [
                        cell(r["config"]),
                        cell(r.get("e2e_median_s")),
                        f"unavailable: {cell(r['baseline_error'])}",
                        "—",
                        "—",
                        "—",
                        "—",
                    ]
                )
            elif not pd.isna(r.get("baseline_median_s", math.nan)):
                ov = r["harness_overhead_pct"]
                paired = r.get("harness_overhead_paired_pct", math.nan)
                judged = ov if pd.isna(paired) else paired
                rows.append(
                    [
                        cell(r["config"]),
                        cell(r["e2e_median_s"]),
                        cell(r["baseline_median_s"]),
                        f"{ov:+.2f}",
                        "—" if pd.isna(paired) else f"{paired:+.2f}",
                        _ci_pct(r),
                        _verdict(judged, r.get("harness_overhead_paired_ci_high_pct", math.nan), goal),
                    ]
                )
        lines += md_table(
            [
                "point",
                "harness s",
                "bare diffusers s",
                "overhead % (block)",
                "overhead % (paired)",
                "paired 95 % CI (pairs)",
                "within goal",
            ],
            rows,
            blank_after=False,
        )
    return lines


def render_markdown(df: pd.DataFrame, meta: dict[str, Any]) -> str:
    """``profile.md``: the profile table with provenance, peaks, baseline overhead and speed-ups."""
    prof = meta.get("profile", {})
    goal = prof.get("overhead_goal_pct", DEFAULT_OVERHEAD_GOAL_PCT)
    lines = []
    if prof.get("plumbing_only"):
        lines += [
            "> **Weights are tiny/random: speed and memory are real for these architectures, but images "
            "carry no quality evidence; fp8/compile/step-count images prove the plumbing only.**",
            "",
        ]
    lines += [
        f"# evalsuite profile `{meta.get('run_id')}`",
        "",
        *environment_lines(meta),
        f"- timing: {prof.get('timing')}; latencies are per call (one batch); phases are medians per call",
        "- matmul peaks measured in this run: "
        + ", ".join(
            f"{k} {cell(v.get('tflops'))} TFLOP/s ({v.get('method') or v.get('reason')}, n={v.get('n')})"
            for k, v in prof.get("peaks", {}).items()
        ),
        "- MFU = FLOP per step (docs/flops.md) / median s per step (steps after the first) / measured peak; "
        "floor = FLOP per step / peak",
        "",
    ]
    cols = [(k, h) for k, h in TABLE_COLUMNS if k in df.columns]
    lines += md_table(
        [h for _, h in cols], [[cell(r.get(k)) for k, _ in cols] for _, r in df.iterrows()], blank_after=False
    )
    lines += overhead_lines(df, goal)
    sp = speedups(df)
    if not sp.empty:
        lines += [
            "",
            "## Speed-up per optimisation (vs the same point in bf16, all on GPU, eager)",
            "",
        ]
        lines += md_table(
            ["point", "reference", "speed-up"],
            [[str(r.config), str(r.reference), f"{r.speedup:.3g}×"] for r in sp.itertuples()],
            blank_after=False,
        )
    errs = df[df["status"] != "ok"] if "status" in df.columns else df.iloc[0:0]
    if len(errs):
        lines += ["", "## Points that failed", ""] + [
            f"- `{r['config']}`: {r['error']}" for _, r in errs.iterrows()
        ]
    notes = df["unavailable"].dropna().unique() if "unavailable" in df.columns else []
    if len(notes):
        lines += ["", "## Not measured", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """Each point's speed-up over its reference: same config/size/batch/steps, first dtype, ``gpu``, eager."""
    if df.empty or "e2e_median_s" not in df.columns:
        return pd.DataFrame(columns=["config", "reference", "speedup"])
    ok = df[df["status"] == "ok"]
    key = ["base_config", "width", "height", "batch", "steps"]
    is_ref = (ok["memory"] == "gpu") & (~ok["compile"].astype(bool)) & (ok["dtype"] != "fp8")
    first: dict[tuple[Any, ...], Any] = {}
    for _, r in ok[is_ref].iterrows():
        first.setdefault(tuple(r[k] for k in key), r)
    out = []
    for _, r in ok.iterrows():
        ref = first.get(tuple(r[k] for k in key))
        if ref is None or ref["config"] == r["config"]:
            continue
        out.append(
            {
                "config": r["config"],
                "reference": ref["config"],
                "speedup": ref["e2e_median_s"] / r["e2e_median_s"],
            }
        )
    return pd.DataFrame(out, columns=["config", "reference", "speedup"])


def write_plots(df: pd.DataFrame, run_dir: Path) -> list[Path]:
    """Latency vs resolution, memory per memory mode and speed-ups as PNGs; returns the files written."""
    ok = df[df["status"] == "ok"] if "status" in df.columns else df.iloc[0:0]
    written: list[Path] = []
    if ok.empty:
        return written
    fig, ax = new_axes((6, 4))
    for key, g in ok.groupby(["base_config", "dtype", "memory", "compile", "batch", "steps"]):
        g = g.sort_values("width")
        ax.plot(g["width"], g["per_image_s"], marker="o", label="/".join(str(k) for k in key))
    ax.set_xlabel("resolution (px, square)")
    ax.set_ylabel("s per image (median)")
    ax.set_title("Latency vs resolution")
    ax.legend(fontsize=6)
    written.append(save_png(fig, run_dir / "latency_vs_resolution.png"))

    mem_col = next(
        (
            c
            for c in ("peak_reserved_gib", "nvml_peak_gib", "host_peak_rss_gib")
            if c in ok.columns and ok[c].notna().any()
        ),
        None,
    )
    if mem_col:
        fig, ax = new_axes((6, 4))
        g = ok.groupby(["base_config", "memory"])[mem_col].max().reset_index()
        ax.bar([f"{a}\n{b}" for a, b in zip(g.base_config, g.memory, strict=True)], g[mem_col])
        ax.set_ylabel(f"{mem_col} (max)")
        ax.set_title("Memory per memory mode")
        ax.tick_params(axis="x", labelsize=6)
        written.append(save_png(fig, run_dir / "vram_by_memory_mode.png"))

    sp = speedups(df)
    if not sp.empty:
        fig, ax = new_axes((6, 4))
        ax.barh(sp["config"], sp["speedup"])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xlabel("speed-up × (vs bf16, all on GPU, eager)")
        ax.set_title("Speed-up per optimisation")
        ax.tick_params(axis="y", labelsize=6)
        written.append(save_png(fig, run_dir / "speedup.png"))
    return written


def write_profile(run_dir: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> None:
    """``profile.csv``, ``profile.md``, ``profile.json`` and the plots of ``rows`` into ``run_dir``."""
    df = pd.DataFrame(list(rows))
    df.to_csv(run_dir / "profile.csv", index=False)
    (run_dir / "profile.md").write_text(render_markdown(df, meta), encoding="utf-8")
    atomic_write_json(run_dir / "profile.json", {"meta": meta, "rows": df.to_dict("records")})
    write_plots(df, run_dir)
