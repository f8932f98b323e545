"""Report plots (matplotlib, Agg, PNG + SVG): quality vs latency with its Pareto front, VRAM per
configuration, per-step latency and per-configuration metric distributions.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend). Every plot has a title, axis labels with units and a legend.

Also the one set of figure helpers every rendered plot uses — the run report's, ``evalsuite
compare``'s (:mod:`evalsuite.report.compare`) and the sweep scenarios' (``profile``, ``frontier``,
``plan``): :func:`new_axes`, :func:`save_plot` (PNG + SVG, a :class:`Plot`), :func:`save_png` (the
sweeps' PNGs), :func:`plot_text`, :func:`legend` and :func:`style`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evalsuite.report.tables import PEAK_COLUMNS, Quantity, quantities, step_matrix, values
from evalsuite.results.run import Run
from evalsuite.trackers.stats import bootstrap_mean, quantile

log = logging.getLogger(__name__)

_MARKERS = "osD^vP*Xhp<>"
_DPI = 110
_SVG_SALT = "evalsuite"


@dataclass(frozen=True)
class Plot:
    """A written figure.

    Attributes:
        key: stable identifier (also the file stem).
        title: the figure's title.
        png, svg: paths of the files relative to the report folder.
        caption: one sentence saying what is shown.
    """

    key: str
    title: str
    png: str
    svg: str
    caption: str


def safe_name(s: str) -> str:
    """``s`` reduced to a file-name-safe stem."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("._") or "x"


def plot_text(s: object) -> str:
    """Text for matplotlib without mathtext interpretation."""
    return str(s).replace("$", r"\$")


def style(i: int) -> dict[str, object]:
    """Colour and marker of the i-th configuration (stable across every plot of a report)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {"color": cmap(i % 10), "marker": _MARKERS[i % len(_MARKERS)]}


def legend(ax: Axes, **kwargs: Any) -> None:
    """The axes' legend, outside on the right: it hides no point, and a fixed place spares
    matplotlib's ``loc="best"`` search (a quarter of a report's plotting time)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def save_plot(fig: Figure, out_dir: Path, rel_dir: str, key: str, title: str, caption: str) -> Plot:
    """``fig`` as ``out_dir/<key>.png`` and ``.svg``, both cropped to one tight bounding box (computed
    once: with ``bbox_inches="tight"`` every format would lay the figure out twice), without dates or
    random ids (the same figure gives the same bytes); ``rel_dir`` prefixes the returned paths."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_name(key)
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(_DPI)
    bbox = fig.get_tightbbox(canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    with matplotlib.rc_context({"svg.hashsalt": _SVG_SALT}):
        fig.savefig(out_dir / f"{stem}.png", dpi=_DPI, bbox_inches=bbox, metadata={"Software": None})
        fig.savefig(
            out_dir / f"{stem}.svg", dpi=_DPI, bbox_inches=bbox, metadata={"Date": None, "Creator": None}
        )
    prefix = f"{rel_dir}/" if rel_dir else ""
    return Plot(stem, title, f"{prefix}{stem}.png", f"{prefix}{stem}.svg", caption)


def new_axes(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure of ``figsize`` inches with one axes (no pyplot state, no GUI backend)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def save_png(fig: Figure, path: Path) -> Path:
    """Lay out (``tight_layout``) and save ``fig`` as a PNG at 100 dpi — the plots of the sweep
    scenarios (``profile``, ``frontier``, ``plan``); returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def pareto_front(xs: Sequence[float], ys: Sequence[float], higher_is_better: bool) -> list[int]:
    """Indices of the points not dominated when lower x is better and y improves in its direction.

    A point is dominated when another is at least as good on both axes and strictly better on
    one. Points with a non-finite coordinate are never on the front. Returned sorted by x.
    """
    pts = [
        (float(x), float(y) if higher_is_better else -float(y), i)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        if math.isfinite(x) and math.isfinite(y)
    ]
    front = []
    for x, y, i in pts:
        dominated = any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for x2, y2, _ in pts)
        if not dominated:
            front.append((x, i))
    return [i for _, i in sorted(front)]


def quality_vs_latency(view: Run, metric: Quantity, out_dir: Path, rel_dir: str = "") -> Plot | None:
    """Mean ``metric`` (95 % CI bars) against median latency per configuration, Pareto front marked."""
    ok = view.ok_samples
    pts = []
    for i, config in enumerate(view.config_names):
        sub = ok[ok["config"] == config]
        lat = values(sub, Quantity("latency_s", "latency_s", "latency", "s", False, "resource"))
        est = bootstrap_mean(values(sub, metric))
        if lat.size and est.n:
            pts.append((i, config, quantile(lat, 0.5), quantile(lat, 0.1), quantile(lat, 0.9), est))
    if not pts:
        return None
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for i, config, x, x10, x90, est in pts:
        yerr = None if math.isnan(est.low) else [[est.value - est.low], [est.high - est.value]]
        ax.errorbar(
            [x],
            [est.value],
            yerr=yerr,
            xerr=[[x - x10], [x90 - x]],
            fmt=str(style(i)["marker"]),
            color=style(i)["color"],
            capsize=3,
            markersize=7,
            label=plot_text(config),
        )
    hib = metric.higher_is_better if metric.higher_is_better is not None else True
    front = pareto_front([p[2] for p in pts], [p[5].value for p in pts], hib)
    if front:
        fx = [pts[j][2] for j in front]
        fy = [pts[j][5].value for j in front]
        ax.plot(fx, fy, "--", color="0.3", linewidth=1.2, zorder=0, label="Pareto front")
        ax.scatter(fx, fy, s=180, facecolors="none", edgecolors="0.3", linewidths=1.2, zorder=3)
    direction = "higher is better" if hib else "lower is better"
    ax.set_xlabel("latency per image, median (s)  [bars: p10–p90]")
    ax.set_ylabel(plot_text(f"{metric.title} — mean, 95 % CI  [{direction}]"))
    title = f"Quality vs latency: {metric.label}"
    ax.set_title(plot_text(title))
    ax.grid(True, alpha=0.3)
    legend(ax, fontsize=8)
    caption = (
        f"Mean {metric.label} (bootstrap 95 % CI) against median latency per configuration; "
        "circled points joined by the dashed line form the Pareto front."
    )
    return save_plot(fig, out_dir, rel_dir, f"quality_vs_latency_{metric.name}", title, caption)


def vram(view: Run, out_dir: Path, rel_dir: str = "") -> Plot | None:
    """Bars of peak allocated / reserved VRAM (GiB, max over rows) per configuration."""
    ok = view.ok_samples
    cols = [c for c in PEAK_COLUMNS if c in ok.columns]
    labels = {
        "peak_allocated_gib": "allocated (torch)",
        "peak_reserved_gib": "reserved (torch)",
        "peak_device_gib": "device (NVML)",
    }
    data = {}
    for config in view.config_names:
        sub = ok[ok["config"] == config]
        data[config] = [
            float(v.max())
            if (v := values(sub, Quantity(c, c, c, "GiB", False, "resource"))).size
            else math.nan
            for c in cols
        ]
    if not cols or all(math.isnan(v) for vs in data.values() for v in vs):
        return None
    fig = Figure(figsize=(max(5.0, 1.2 * len(data) + 2), 4.2))
    ax = fig.subplots()
    width = 0.8 / len(cols)
    x = np.arange(len(data))
    for j, c in enumerate(cols):
        ys = [data[k][j] for k in data]
        bars = ax.bar(
            x + (j - (len(cols) - 1) / 2) * width,
            np.nan_to_num(ys),
            width,
            label=labels[c],
            color=f"C{j}",
            alpha=0.85,
        )
        for b, y in zip(bars, ys, strict=True):
            if not math.isnan(y):
                ax.annotate(
                    f"{y:.2f}",
                    (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(x, [plot_text(k) for k in data], rotation=20, ha="right")
    ax.set_xlabel("configuration")
    ax.set_ylabel("peak memory (GiB)")
    title = "Peak VRAM per configuration"
    ax.set_title(title)
    legend(ax, fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return save_plot(
        fig, out_dir, rel_dir, "vram", title, "Peak GPU memory per configuration (maximum over images)."
    )


def step_latency(view: Run, out_dir: Path, rel_dir: str = "") -> Plot | None:
    """Median seconds per denoising step against step index per configuration (band: p10–p90)."""
    ok = view.ok_samples
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    drawn = False
    for i, config in enumerate(view.config_names):
        steps = [s for s in step_matrix(ok[ok["config"] == config]) if len(s)]
        if not steps:
            continue
        n = max(len(s) for s in steps)
        mat = np.full((len(steps), n), np.nan)
        for r, s in enumerate(steps):
            mat[r, : len(s)] = s
        idx = np.arange(1, n + 1)
        med = np.nanmedian(mat, axis=0)
        st = style(i)
        ax.plot(
            idx,
            med,
            marker=str(st["marker"]),
            color=st["color"],
            label=plot_text(f"{config} (N={len(steps)})"),
            markersize=4,
        )
        if len(steps) > 1:
            ax.fill_between(
                idx,
                np.nanquantile(mat, 0.1, axis=0),
                np.nanquantile(mat, 0.9, axis=0),
                color=st["color"],
                alpha=0.15,
            )
        drawn = True
    if not drawn:
        return None
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("denoising step (1 = first)")
    ax.set_ylabel("step time (s), median over images")
    title = "Per-step latency"
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    legend(ax, fontsize=8)
    return save_plot(
        fig,
        out_dir,
        rel_dir,
        "step_latency",
        title,
        "Median time of each denoising step per configuration; the band spans p10–p90 over images.",
    )


def distribution(view: Run, q: Quantity, out_dir: Path, rel_dir: str = "") -> Plot | None:
    """Box plot plus jittered samples of ``q`` per configuration, mean marked."""
    ok = view.ok_samples
    data = [(i, c, values(ok[ok["config"] == c], q)) for i, c in enumerate(view.config_names)]
    data = [d for d in data if d[2].size]
    if not data:
        return None
    fig = Figure(figsize=(max(5.0, 1.1 * len(data) + 2.5), 4.2))
    ax = fig.subplots()
    pos = np.arange(1, len(data) + 1)
    ax.boxplot(
        [d[2] for d in data],
        positions=pos,
        widths=0.5,
        showfliers=False,
        medianprops={"color": "black"},
        boxprops={"color": "0.4"},
    )
    rng = np.random.default_rng(0)
    for p, (i, _c, v) in zip(pos, data, strict=True):
        st = style(i)
        ax.scatter(
            p + rng.uniform(-0.15, 0.15, v.size),
            v,
            s=12,
            alpha=0.6,
            color=st["color"],
            marker=str(st["marker"]),
        )
        ax.scatter([p], [v.mean()], marker="_", s=400, color="red", zorder=4)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="0.4", label="box: p25–p75, line: median"),
        Line2D([], [], color="red", marker="_", markersize=14, linestyle="", label="mean"),
        Line2D([], [], color="0.5", marker="o", linestyle="", alpha=0.6, label="one image"),
    ]
    legend(ax, handles=handles, fontsize=7)
    ax.set_xticks(pos, [plot_text(f"{c}\nN={v.size}") for _, c, v in data], rotation=0, fontsize=8)
    ax.set_xlabel("configuration")
    arrow = {True: " (higher is better)", False: " (lower is better)"}.get(q.higher_is_better, "")  # type: ignore[arg-type]
    ax.set_ylabel(plot_text(q.title + arrow))
    title = f"Distribution of {q.label}"
    ax.set_title(plot_text(title))
    ax.grid(True, axis="y", alpha=0.3)
    return save_plot(
        fig,
        out_dir,
        rel_dir,
        f"dist_{q.name}",
        title,
        f"Per-image {q.label} per configuration (box: quartiles; red bar: mean).",
    )


def is_quality(q: Quantity) -> bool:
    """A metric that is not itself a timing (quality-vs-latency makes no sense for latency)."""
    return q.kind == "metric" and q.unit not in ("s", "ms") and q.name != "latency" and q.column is not None


def all_plots(view: Run, out_dir: Path, rel_dir: str = "plots") -> list[Plot]:
    """Write every applicable plot of ``view`` into ``out_dir``; plots without data are left out."""
    import matplotlib

    out: list[Plot | None] = []
    with matplotlib.rc_context({"svg.hashsalt": _SVG_SALT, "font.size": 9}):
        for q in quantities(view):
            if is_quality(q):
                out.append(quality_vs_latency(view, q, out_dir, rel_dir))
        out.append(vram(view, out_dir, rel_dir))
        out.append(step_latency(view, out_dir, rel_dir))
        for q in quantities(view):
            if q.kind == "metric" and q.column is not None or q.name in ("latency_s", "energy_j", "mfu"):
                if q.name == "latency" and any(p.name == "latency_s" for p in quantities(view)):
                    continue
                out.append(distribution(view, q, out_dir, rel_dir))
    return [p for p in out if p is not None]
