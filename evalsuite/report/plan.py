"""The tables and plot of an ``evalsuite plan`` run: ``plan.csv``, ``plan.md``, ``plan.json`` and
``plan.png``.

Pure functions of the stored results — the measured strategies (one row each) and ``run.json``
(its ``plan`` block: component sizes, choices and their verification) — so a stored run renders
the same files again. The scenario that measures the strategies is :mod:`evalsuite.scenarios.plan`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evalsuite.paths import atomic_write, atomic_write_json
from evalsuite.report.formatting import cell, environment_lines, md_table
from evalsuite.report.plots import new_axes, save_png

__all__ = ["render_markdown", "write_plan", "write_plot"]


def _strategy_cells(r: Any) -> list[str]:
    """One row of the strategies table."""
    st = r["status"] if r["status"] == "ok" else f"{r['status']}: {cell(r.get('reason'))}"
    return [
        f"`{r['strategy']}`",
        str(st),
        cell(r.get("s_per_image")),
        cell(r.get("first_call_s")),
        cell(r.get("nvml_peak_gib")),
        cell(r.get("alloc_peak_gib")),
        cell(r.get("resident_alloc_gib")),
        cell(r.get("estimated_resident_gib"), 3),
    ]


def _choice_cells(c: dict[str, Any]) -> list[str]:
    """One row of the "fastest under each budget" table."""
    if c["strategy"] is None:
        return [f"{c['budget_gib']:g}", "none measured fits", *["—"] * 5]
    return [
        f"{c['budget_gib']:g}",
        f"`{c['strategy']}`",
        cell(c["s_per_image"]),
        cell(c.get("vs_resident"), 3),
        cell(c["nvml_peak_gib"]),
        str(c.get("peak_basis")),
        cell(c.get("verified")),
    ]


def render_markdown(df: pd.DataFrame, meta: dict[str, Any]) -> str:
    """``plan.md``: sizes, every strategy measured (or skipped, with why), the choice per budget and
    its verification."""
    p = meta["plan"]
    lines = [
        f"# evalsuite plan `{meta['run_id']}`",
        "",
        *environment_lines(meta),
        f"- weights: {p.get('weights') or ', '.join(sorted(set(meta['weights'].values())))}",
        "- component weights (GiB): "
        + ", ".join(f"{k} {v:.3g}" for k, v in p.get("component_gib", {}).items()),
        f"- activations at the configuration's resolution (resident allocator peak − weights): {cell(p.get('activation_gib'))} GiB",
        "- device peak = NVML `used` sampled every 20 ms over all calls (cold included; CUDA context included)",
        "",
    ]
    lines += md_table(
        [
            "strategy",
            "status",
            "s/image",
            "cold s",
            "device peak GiB (NVML)",
            "alloc peak GiB",
            "resident after apply GiB",
            "estimate GiB",
        ],
        [_strategy_cells(r) for _, r in df.iterrows()],
        blank_after=False,
    )
    lines += ["", "## Fastest under each budget", ""]
    lines += md_table(
        ["budget GiB", "strategy", "s/image", "× resident", "device peak GiB", "peak basis", "verification"],
        [_choice_cells(c) for c in p.get("choices", [])],
        blank_after=False,
    )
    return "\n".join(lines) + "\n"


def write_plot(df: pd.DataFrame, budgets: Sequence[float], path: Path) -> Path | None:
    """``plan.png``: seconds per image against device peak (or the estimate without NVML) per ok
    strategy, the budgets drawn; ``None`` (nothing written) without an ok strategy."""
    ok = df[(df["status"] == "ok")] if "status" in df.columns else df.iloc[0:0]
    if ok.empty:
        return None
    x = (
        ok["nvml_peak_gib"]
        if "nvml_peak_gib" in ok.columns and ok["nvml_peak_gib"].notna().any()
        else ok["estimated_resident_gib"]
    )
    fig, ax = new_axes((7, 4.5))
    ax.scatter(x, ok["s_per_image"])
    for xi, yi, s in zip(x, ok["s_per_image"], ok["strategy"], strict=True):
        ax.annotate(s, (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for b in budgets:
        ax.axvline(b, color="r", ls="--", lw=1)
        ax.text(b, ax.get_ylim()[1], f" {b:g} GiB", color="r", fontsize=7, va="top")
    ax.set_xlabel(
        "device peak GiB (NVML)" if x.name == "nvml_peak_gib" else "estimated device weights GiB (no NVML)"
    )
    ax.set_ylabel("seconds per image (median warm)")
    ax.set_yscale("log")
    ax.set_title("Memory strategies: latency vs device peak")
    return save_png(fig, path)


def write_plan(
    run_dir: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any], budgets: Sequence[float]
) -> None:
    """``plan.csv``, ``plan.md``, ``plan.json`` and ``plan.png`` of the measured strategies ``rows``
    (verification rows apart) into ``run_dir``."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        df = pd.DataFrame(columns=["strategy", "status"])
    df.drop(columns=[c for c in ("notes",) if c in df.columns]).to_csv(run_dir / "plan.csv", index=False)
    atomic_write(run_dir / "plan.md", render_markdown(df, meta))
    atomic_write_json(
        run_dir / "plan.json", json.loads(json.dumps({"meta": meta, "rows": list(rows)}, default=str))
    )
    write_plot(df, budgets, run_dir / "plan.png")
