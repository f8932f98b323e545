"""``evalsuite catalog site OUT``: a static, self-contained dashboard of the catalog (one
``index.html``: inline CSS and SVG, no script, no network; opens from ``file://``).

Sections, in order: the regressions list (:func:`evalsuite.catalog.history.regressions` of the newest
run of each series against the previous comparable one), the
configurations × key metrics with a trend sparkline per comparable series, the runs (newest first,
each linking to its ``report.html``), and the frontier points and plan rows per GPU. Every text goes
through :mod:`evalsuite.report.html` (markupsafe escaping).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalsuite.catalog.db import Catalog
from evalsuite.catalog.history import SERIES_KEY, Regressions, point_name, regressions
from evalsuite.report.html import Markup, esc, link, page, table, tag

#: Metrics shown first in the index when present (then the others, alphabetically), at most
#: :data:`MAX_METRICS` columns.
KEY_METRICS = ("latency", "clip_score", "lpips", "fid", "image_reward")
MAX_METRICS = 6
SPARK_W, SPARK_H = 120, 28


def sparkline(values: Sequence[float | None], title: str) -> Markup:
    """An inline SVG line of ``values`` (oldest first; the last point marked)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not pts:
        return Markup("")
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = hi - lo or 1.0
    n = max(1, len(values) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 3 + (SPARK_W - 6) * i / n, SPARK_H - 3 - (SPARK_H - 6) * (v - lo) / span

    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in pts))
    lx, ly = xy(*pts[-1])
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">'
        "<title>{t}</title>"
        '<polyline fill="none" stroke="#1a56db" stroke-width="2" points="{c}"/>'
        '<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1a56db"/></svg>'
    ).format(w=SPARK_W, h=SPARK_H, t=title, c=coords, x=lx, y=ly)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def _regressions_section(res: Regressions) -> list[Markup]:
    out = [tag("h2", "Regressions", id="regressions")]
    bad = res.regressed
    if bad:
        out.append(tag("p", f"{len(bad)} regression(s) in {len(res.findings)} check(s)", cls="fail"))
        out.append(
            table(
                [
                    "config",
                    "dataset",
                    "device",
                    "metric",
                    "baseline → run",
                    "A",
                    "B",
                    "change",
                    "95 % CI",
                    "rule",
                ],
                [
                    [
                        f.config,
                        f.dataset,
                        f.device,
                        f.metric,
                        f"{f.baseline} → {f.run}",
                        _fmt(f.a),
                        _fmt(f.b),
                        f"{f.change:+.4g}",
                        f"[{f.ci[0]:.4g}, {f.ci[1]:.4g}]" if f.ci else "–",
                        f.rule + (f"; {f.detail}" if f.detail else ""),
                    ]  # fmt: skip
                    for f in bad
                ],
                numeric=[False] * 5 + [True] * 4 + [False],
                row_classes=["bad"] * len(bad),
            )
        )
    else:
        out.append(tag("p", f"No regression in {len(res.findings)} check(s)", cls="ok"))
    out += [tag("p", n, cls="note") for n in res.notes]
    return out


def _metrics_section(cat: Catalog) -> list[Markup]:
    rows = cat.dicts(
        """SELECT c.config, r.dataset_name, r.dataset_fingerprint, coalesce(r.gpu_name, r.device_type) AS device,
                  coalesce(c.weights, r.weights_policy) AS weights, r.metric_weights, r.run_key, r.run_id,
                  r.label, r.git_commit, r.started, a.metric, a.value, a.ci_low, a.ci_high
           FROM aggregates a JOIN runs r USING (run_key)
           JOIN configs c ON c.run_key = a.run_key AND c.config = a.config
           WHERE r.kind = 'generate'
           ORDER BY c.config, r.started NULLS FIRST, r.run_id"""
    )
    present = {r["metric"] for r in rows}
    metrics = [m for m in KEY_METRICS if m in present]
    metrics += sorted(present - set(metrics))
    metrics = metrics[:MAX_METRICS]
    series: dict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        key = (r["config"], r["dataset_name"], *(r[k] for k, _ in SERIES_KEY))
        series.setdefault(key, {}).setdefault(r["metric"], []).append(r)
    body = []
    for key, by_metric in series.items():
        cells: list[object] = [key[0], key[1], key[4], key[3]]
        for m in metrics:
            pts = by_metric.get(m, [])
            if not pts:
                cells.append("–")
                continue
            last = pts[-1]
            ci = (
                f" [{last['ci_low']:.3g}, {last['ci_high']:.3g}]"
                if last["ci_low"] is not None and last["ci_high"] is not None
                else ""
            )
            title = f"{m} of {key[0]}: " + ", ".join(f"{point_name(p)} {_fmt(p['value'])}" for p in pts)
            cells.append(
                Markup("{}<br>{} <small>({} runs)</small>").format(
                    sparkline([p["value"] for p in pts], title), f"{_fmt(last['value'])}{ci}", len(pts)
                )
            )
        body.append(cells)
    out = [tag("h2", "Configurations × key metrics", id="metrics")]
    out.append(
        tag(
            "p",
            "One line per comparable series (configuration, dataset fingerprint, weights policy, device, "
            "metric feature weights): the latest value with its 95 % CI, and the trend over the series' runs.",
            cls="note",
        )
    )
    if body:
        out.append(table(["config", "dataset", "device", "weights", *metrics], body))
    else:
        out.append(tag("p", "No evalsuite run in the catalog yet.", cls="note"))
    return out


def _runs_section(cat: Catalog, out_dir: Path) -> list[Markup]:
    runs = cat.list_runs()
    body = []
    for r in runs:
        report = Path(r["path"]) / "report.html"
        rel = os.path.relpath(report, out_dir)
        body.append(
            [
                link(Path(rel).as_posix(), r["run_id"]) if report.is_file() else r["run_id"],
                r["kind"],
                r["label"] or "",
                _fmt(r["started"]),
                r["configs"] or "",
                r["dataset_name"] or "",
                r["gpu_name"] or "",
                r["git_commit"] or "",
                f"{r['n_ok']}/{r['n_rows']}",
            ]  # fmt: skip
        )
    return [
        tag("h2", "Runs", id="runs"),
        table(["run", "kind", "label", "started", "configs", "dataset", "device", "commit", "ok/rows"], body),
    ]


def _per_gpu(cat: Catalog, title: str, sql: str, headers: list[str], cols: list[str]) -> list[Markup]:
    rows = cat.dicts(sql)
    out = [tag("h2", title, id=title.split()[0].lower())]
    if not rows:
        return [*out, tag("p", "None in the catalog.", cls="note")]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["device"] or "unknown device", []).append(r)
    for dev, rs in by.items():
        out.append(tag("h3", dev))
        out.append(table(headers, [[_fmt(r[c]) for c in cols] for r in rs]))
    return out


def write_site(cat: Catalog, out_dir: str | Path, thresholds: Sequence[Any] | None = None) -> Path:
    """Write the dashboard into ``out_dir`` (``index.html``); returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body: list[object] = [tag("h1", "evalsuite results catalog")]
    body.append(tag("p", f"catalog {cat.path}", cls="note"))
    body += _regressions_section(regressions(cat, thresholds, latest_only=True))
    body += _metrics_section(cat)
    body += _runs_section(cat, out_dir.resolve())
    body += _per_gpu(
        cat,
        "Frontier points per GPU",
        """SELECT coalesce(r.gpu_name, r.device_type) AS device, r.run_id, f.base_config, f.point, f.status,
                  f.s_per_image, f.s_ci_low, f.s_ci_high, f.nvml_peak_gib, f.lpips_mean
           FROM frontier_points f JOIN runs r USING (run_key)
           ORDER BY device, r.started DESC NULLS LAST, f.base_config, f.s_per_image""",
        ["run", "config", "point", "status", "s/image", "CI low", "CI high", "peak GiB", "paired LPIPS"],
        [
            "run_id",
            "base_config",
            "point",
            "status",
            "s_per_image",
            "s_ci_low",
            "s_ci_high",
            "nvml_peak_gib",
            "lpips_mean",
        ],  # fmt: skip
    )
    body += _per_gpu(
        cat,
        "Plan rows per GPU",
        """SELECT coalesce(r.gpu_name, r.device_type) AS device, r.run_id, p.base_config, p.strategy, p.phase,
                  p.status, p.s_per_image, p.nvml_peak_gib, p.estimated_resident_gib
           FROM plan_rows p JOIN runs r USING (run_key)
           ORDER BY device, r.started DESC NULLS LAST, p.base_config, p.s_per_image""",
        ["run", "config", "strategy", "phase", "status", "s/image", "peak GiB", "estimated resident GiB"],
        [
            "run_id",
            "base_config",
            "strategy",
            "phase",
            "status",
            "s_per_image",
            "nvml_peak_gib",
            "estimated_resident_gib",
        ],  # fmt: skip
    )
    index = out_dir / "index.html"
    index.write_text(page("evalsuite results catalog", body), encoding="utf-8")
    return index


__all__ = ["esc", "sparkline", "write_site"]
