"""The files of ``evalsuite compare``: ``compare.md``, ``compare.html``, ``compare.json``, both runs'
plots side by side, the forest plot of relative changes and the most-changed grid.

Pure functions of a :class:`~evalsuite.compare.engine.Comparison` (the two stored runs, the paired
changes, the verdicts) and of the most-changed table :func:`evalsuite.compare.engine.most_changed`
ranked: nothing here computes a statistic. The comparison itself is :mod:`evalsuite.compare.engine`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from PIL import Image

from evalsuite.data.imageio import ImageError, load_image, load_mask
from evalsuite.paths import atomic_write
from evalsuite.report import html as H
from evalsuite.report.formatting import arrow, fmt, md, md_table
from evalsuite.report.grids import Tile, compose, mask_overlay
from evalsuite.report.plots import Plot, all_plots, legend, new_axes, plot_text, save_plot
from evalsuite.report.report import banner_text, run_cases
from evalsuite.report.tables import PEAK_COLUMNS
from evalsuite.results.run import Run

if TYPE_CHECKING:
    from evalsuite.compare.engine import Comparison

log = logging.getLogger(__name__)

__all__ = [
    "CompareAssets",
    "changed_grid",
    "forest_plot",
    "render_html",
    "render_markdown",
    "write_assets",
    "write_compare",
]


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
    items = [c for c in cmp.changes if math.isfinite(c.relative)]
    if not items:
        return None
    fig, ax = new_axes((7.2, 0.32 * len(items) + 1.6))
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
        [plot_text(f"{c.config} · {c.label}" + (" (ratio)" if c.kind == "ratio" else "")) for c in items],
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
    return save_plot(
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
        a = arrow(c.higher_is_better)
        name = f"{c.label} ({c.unit}) {a}" if c.unit else f"{c.label} {a}"
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
            stat = "max" if c.quantity in PEAK_COLUMNS else "median"
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


def write_assets(cmp: Comparison, out: Path, top: pd.DataFrame, what: str) -> CompareAssets:
    """Plots of both runs (same kinds, side by side), the forest plot and the grid of the most
    changed rows ``top``, ranked as ``what`` says (:func:`evalsuite.compare.engine.most_changed`)."""
    pa = {p.key: p for p in all_plots(cmp.a, out / "plots" / "a", "plots/a")}
    pb = {p.key: p for p in all_plots(cmp.b, out / "plots" / "b", "plots/b")}
    pairs = [(key, pa.get(key), pb.get(key)) for key in list(dict.fromkeys([*pa, *pb]))]
    forest = forest_plot(cmp, out / "plots")
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


def write_compare(
    cmp: Comparison, out: str | Path, top: pd.DataFrame, what: str, embed_images: bool = False
) -> Path:
    """Write ``compare.md``, ``compare.html``, ``compare.json`` and plots/grids into ``out``; return
    ``out``. ``top`` and ``what``: the most changed rows and how they were ranked
    (:func:`evalsuite.compare.engine.most_changed`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    assets = write_assets(cmp, out, top, what)
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
