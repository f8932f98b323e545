"""Reports: pure functions from a stored run to ``report.md``, ``report.html``, ``summary.csv``,
plots (``plots/*.png|svg``) and image grids (``grids/*.png``).

Everything is recomputed from ``run.json`` + ``samples.parquet`` + ``images/`` (and the dataset's
sources/masks for the grids), so ``evalsuite report RUN_DIR`` regenerates the same files.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evalsuite.data.cases import Case, Dataset
from evalsuite.errors import UsageError
from evalsuite.paths import atomic_write
from evalsuite.report import html as H
from evalsuite.report.formatting import fmt, fmt_ci, md, md_table
from evalsuite.report.grids import run_grids, stamp_png
from evalsuite.report.headline import Headline, build_headline, headline_markdown
from evalsuite.report.headline import table as headline_table
from evalsuite.report.plots import Plot, all_plots
from evalsuite.report.tables import (
    SPEED_COLUMNS,
    failure_table,
    load_view,
    quality_caveats,
    quantities,
    speed_table,
    status_table,
    summary_frame,
)
from evalsuite.results.run import Run
from evalsuite.results.types import ConfigEntry, Row, RunMeta

log = logging.getLogger(__name__)

REPORT_MD, REPORT_HTML, SUMMARY_CSV, PLOTS_DIR, GRIDS_DIR = (
    "report.md",
    "report.html",
    "summary.csv",
    "plots",
    "grids",
)


# -- the model of one report -----------------------------------------------------------------------
@dataclass
class ReportData:
    """Everything a rendered report shows (computed once, rendered as Markdown and HTML).

    Attributes:
        view: the loaded run.
        summary: the long table of :func:`evalsuite.report.tables.summary_frame` (``summary.csv``).
        status, failures, speed: per-configuration tables.
        plots: written plots (paths relative to the run directory).
        grids: (key, relative path, caption) of written image grids.
        notes: provenance remarks (dataset not found, fingerprint differs...).
        headline: the headline table and verdicts (:mod:`evalsuite.report.headline`).
        claims: the claims evaluated on the run, their file's name, and a line when none applies.
    """

    view: Run
    summary: pd.DataFrame
    status: pd.DataFrame
    failures: pd.DataFrame
    speed: pd.DataFrame
    plots: list[Plot] = field(default_factory=list)
    grids: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    headline: Headline | None = None
    claims: list[Any] = field(default_factory=list)
    claims_name: str = ""
    claims_note: str = ""

    @property
    def meta(self) -> dict[str, Any]:
        return self.view.meta


def load_run_dataset(meta: dict[str, Any]) -> tuple[Dataset | None, list[str]]:
    """The dataset a run used (from ``run.json``'s dataset source, else its name), with notes: for
    runs whose rows record no input paths (see :func:`run_cases`).

    Never raises: a dataset that cannot be found yields ``None`` and a note.
    """
    from evalsuite.data.registry import load_dataset

    ds_meta = _typed(meta).dataset or {}
    notes: list[str] = []
    ds = None
    for ref in (ds_meta.get("source"), ds_meta.get("name")):
        if not ref:
            continue
        try:
            ds = load_dataset(ref)
            break
        except Exception as exc:  # a moved dataset must not prevent the rest of the report
            notes.append(
                f"dataset {ref!r} could not be loaded for the image grids ({type(exc).__name__}: {exc})"
            )
    if ds is None:
        notes.append(
            "image grids with sources and masks are left out: the run's dataset is not available here"
        )
    elif ds_meta.get("fingerprint") and ds.fingerprint != ds_meta["fingerprint"]:
        notes.append(
            f"the dataset found at {ds.source} has fingerprint {ds.fingerprint[:12]}…, not the run's "
            f"{str(ds_meta['fingerprint'])[:12]}…: sources/masks in the grids may not be what was run"
        )
    return ds, notes


def run_cases(view: Run) -> tuple[list[Case] | None, list[str]]:
    """The run's cases (with notes), in the order their rows were first generated: from the paths
    the rows record (``source``, ``mask``), so the dataset is not read again; for a run with rows
    that record no inputs (written before rows carried them, or a sweep), from the run's dataset
    (:func:`load_run_dataset`). ``None`` when neither is available.
    """
    first: dict[str, Row] = {}
    for r in view.rows():
        first.setdefault(str(r.case_id), r)
    if first and all(r.records_inputs for r in first.values()):
        return [
            Case(
                cid,
                str(r.prompt or ""),
                image=Path(r.source) if r.source else None,
                mask=Path(r.mask) if r.mask else None,
                category=str(r.category or "general"),
                seed=int(r.seed),
                mask_family=r.mask_family,
            )
            for cid, r in first.items()
        ], []
    ds, notes = load_run_dataset(view.meta)
    return (list(ds.cases) if ds is not None else None), notes


def build(
    run_dir: str | Path,
    assets: bool = True,
    out_dir: Path | None = None,
    rel_prefix: str = "",
    grids: bool = True,
    reference: str | None = None,
    claims: str | Path | None = None,
) -> ReportData:
    """Compute the tables of ``run_dir`` and (``assets``) write its plots and grids.

    Args:
        out_dir: folder that receives ``plots/`` and ``grids/`` (default: the run directory).
        rel_prefix: prefix of asset paths as seen from the page that shows them.
        reference: the configuration every other is compared with in the headline (default: each
            one's 28-step sibling, :func:`evalsuite.report.headline.pick_references`).
        claims: claims file (or shipped name) shown under the headline; default the run
            directory's ``claims.yaml`` when there is one, else the shipped ``alimama-flux``.

    Raises:
        FileNotFoundError: when ``run_dir`` is not a run directory.
        ReferenceConfigError: ``reference`` is not a configuration of the run.
        ClaimsError: an explicitly given claims file cannot be used.
    """
    view = load_view(run_dir)
    data = ReportData(view, summary_frame(view), status_table(view), failure_table(view), speed_table(view))
    headline_and_claims(data, view.samples, view.meta, reference, claims)
    if assets:
        base = out_dir or view.path
        data.plots = all_plots(view, base / PLOTS_DIR, f"{rel_prefix}{PLOTS_DIR}")
        if grids:
            cases, notes = run_cases(view)
            data.notes += notes
            written = run_grids(view.path, view.samples, view.config_names, cases, base / GRIDS_DIR)
            data.grids = [(k, f"{rel_prefix}{GRIDS_DIR}/{f}", c) for k, f, c in written]
        title, _ = banner_text(view.meta)
        if title:  # the mark travels with the PNG when it is shared alone
            for p in data.plots:
                stamp_png(base / p.png.removeprefix(rel_prefix), f"NO QUALITY EVIDENCE: {title}")
            for _k, rel, _c in data.grids:
                stamp_png(base / rel.removeprefix(rel_prefix), f"NO QUALITY EVIDENCE: {title}")
    return data


def headline_and_claims(
    data: ReportData,
    rows: pd.DataFrame,
    meta: dict[str, Any],
    reference: str | None = None,
    claims: str | Path | None = None,
) -> None:
    """Fill ``data.headline`` and ``data.claims`` from the rows and ``run.json`` (the one place the
    report's headline and claims read the run)."""
    from evalsuite.claims.check import ClaimsError, evaluate_claims, load_claims

    data.headline = build_headline(rows, meta, reference)
    implicit = claims is None
    if implicit:
        own = data.view.path / "claims.yaml"
        claims = own if own.is_file() else None
    try:
        cf = load_claims(claims)
    except ClaimsError as exc:
        if not implicit:
            raise
        data.claims_note = f"claims not evaluated: {exc}"
        return
    data.claims_name = cf.name
    named = {c for cl in cf.claims for c in (cl.config, cl.reference) if c}
    present = set(data.view.configs)
    if not any(n in present or any(p.startswith(f"{n}[") for p in present) for n in named):
        data.claims_note = (
            f"The {cf.name} claims name none of this run's configurations "
            f"({', '.join(sorted(named))}); pass --claims FILE to 'evalsuite report' or put a claims.yaml "
            "in the run directory (format: docs/reports.md#claims)."
        )
        return
    data.claims = evaluate_claims(cf, rows, meta)


# -- shared pieces ---------------------------------------------------------------------------------
def banner(meta: dict[str, Any]) -> list[str]:
    """Markdown warning lines when numbers carry no quality evidence (tiny/random weights or
    metrics whose feature networks have random weights); empty otherwise."""
    title, detail = banner_text(meta)
    if not title:
        return []
    return [f"> **WARNING: {title}**", f"> {detail}", ""]


def banner_text(meta: dict[str, Any]) -> tuple[str, str]:
    """(headline, detail) of the quality-evidence warning; ``("", "")`` when there is none."""
    weak, random_metrics = quality_caveats(meta)
    if not weak and not random_metrics:
        return "", ""
    parts, detail = [], []
    if weak:
        kinds = " and ".join(sorted(set(weak.values())))
        parts.append(f"{kinds} weights")
        detail.append(
            "Configurations affected: "
            + ", ".join(f"{c} ({p})" for c, p in weak.items())
            + ". tiny = small random models for tests; random = full-size random weights, valid for speed/VRAM only."
        )
    if random_metrics:
        parts.append("random metric feature networks")
        detail.append(
            "Metrics computed with random feature-network weights: " + ", ".join(random_metrics) + "."
        )
    return (
        f"{' and '.join(parts)} — these images and quality numbers carry NO quality evidence.",
        " ".join(detail),
    )


def _typed(meta: dict[str, Any] | RunMeta) -> RunMeta:
    return meta if isinstance(meta, RunMeta) else RunMeta.from_dict(meta)


def _header_items(meta: dict[str, Any] | RunMeta) -> list[tuple[str, str]]:
    rm = _typed(meta)
    env = rm.environment or {}
    ds = rm.dataset or {}
    dev = env.get("device") or {}
    devtxt = f"{dev.get('name')} ({dev.get('type')})"
    if dev.get("memory_gib"):
        devtxt += f", {dev['memory_gib']:.1f} GiB, CUDA {dev.get('cuda')}"
    return [
        ("dataset", f"{ds.get('name')} — {ds.get('size')} cases, fingerprint {ds.get('fingerprint')}"),
        ("dataset source", str(ds.get("source"))),
        ("seeds", str(rm.seeds)),
        ("weights", ", ".join(f"{c}: {p}" for c, p in (rm.weights or {}).items())),
        ("metrics", ", ".join(str(m) for m in rm.metrics or [])),
        ("device", devtxt),
        ("platform", str(env.get("platform"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)),
        ("git commit", str(env.get("git_commit"))),
        ("date", f"started {rm.started}, finished {rm.finished}"),
        ("ranks", _ranks_text(rm.distributed or {})),
    ]


def _ranks_text(d: dict[str, Any]) -> str:
    """Number of processes and each rank's throughput (images generated per second of generation)."""
    ranks = d.get("ranks") or {}
    parts = []
    for r, st in sorted(ranks.items(), key=lambda kv: int(kv[0])):
        ips = st.get("images_per_s")
        parts.append(
            f"rank {r}: {st.get('rows')} images in {fmt(st.get('generate_s'))} s"
            + (f" = {fmt(ips)} img/s" if ips else "")
            + f" on {st.get('device')}"
        )
    return f"{d.get('world_size', 1)}" + (f" ({'; '.join(parts)})" if parts else "")


def _params(c: ConfigEntry | dict[str, Any]) -> str:
    params = c.params if isinstance(c, ConfigEntry) else c.get("params")
    return ", ".join(f"{k}={v}" for k, v in (params or {}).items())


def _param_diff(configs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per configuration, only the parameters whose values differ between the configurations that
    have them (a parameter only one runner takes is not a difference)."""
    params = {n: dict(c.get("params") or {}) for n, c in configs.items()}
    keys: list[str] = []
    for p in params.values():
        keys += [k for k in p if k not in keys]
    differ = [k for k in keys if len({repr(p[k]) for p in params.values() if k in p}) > 1]

    def show(v: Any) -> str:
        return "''" if v == "" else str(v)

    return {n: ", ".join(f"{k}={show(p[k])}" for k in differ if k in p) or "—" for n, p in params.items()}


def _metric_rows(
    data: ReportData, group_by: str = "all"
) -> tuple[list[str], list[tuple[str, dict[str, dict[str, Any]]]]]:
    """(quantity names in order, [(config or group, {quantity: summary record})])."""
    s = data.summary[data.summary["group_by"] == group_by]
    names = [q.name for q in quantities(data.view) if q.kind == "metric" and q.name in set(s["quantity"])]
    out = []
    for config in data.view.config_names:
        recs = {r["quantity"]: r for r in s[s["config"] == config].to_dict("records")}
        out.append((config, recs))
    return names, out


#: Below this N an interval is marked ``†`` (not reliable).
SMALL_N = 5


def _rec_txt(r: dict[str, Any] | None) -> str:
    """``mean [CI] N`` (``†`` when N < 5); a set-level metric (FID, KID) shows its own value."""
    if not r or not r.get("n"):
        head = (r or {}).get("headline")
        if isinstance(head, float) and not math.isnan(head):
            return f"{fmt(head)} (set, N={_int(r.get('headline_n'))})" if r else "—"
        return "—"
    n = int(r["n"])
    return fmt_ci(r["mean"], r["ci95_low"], r["ci95_high"], n) + ("†" if n < SMALL_N else "")


def _min_n(data: ReportData, group_by: str) -> int:
    s = data.summary[data.summary["group_by"] == group_by]
    return int(s["n"].min()) if len(s) else 0


def _without_case_id(reason: str, case_id: str) -> str:
    """``reason`` with ``case_id`` replaced by ``…`` where it stands as the id: quoted (``'c1'``), or —
    for ids of 3 characters or more — as a whole token (never inside a word or a path: a case ``a``
    must not turn ``load`` into ``lo…d``)."""
    reason = reason.replace(repr(case_id), "'…'")
    if len(case_id) >= 3:
        reason = re.sub(rf"(?<![\w./-]){re.escape(case_id)}(?![\w./-])", "…", reason)
    return reason


def _failure_groups(data: ReportData) -> list[dict[str, Any]]:
    """Errors and skips grouped by (status, reason with the case id taken out): count, the
    configurations with their counts, a few cases."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for f in data.failures.to_dict("records"):
        reason = str(f["reason"])
        for c in f["cases"]:
            reason = _without_case_id(reason, c.split("#")[0])
        g = groups.setdefault(
            (str(f["status"]), reason),
            {"status": f["status"], "reason": reason, "count": 0, "configs": {}, "cases": []},
        )
        g["count"] += int(f["count"])
        g["configs"][f["config"]] = g["configs"].get(f["config"], 0) + int(f["count"])
        g["cases"] += [c for c in f["cases"] if c not in g["cases"]]
    return sorted(groups.values(), key=lambda g: (g["status"] != "error", -g["count"]))


def _failure_rows(data: ReportData) -> list[list[str]]:
    out = []
    for g in _failure_groups(data):
        configs = ", ".join(f"{c} ×{n}" if n > 1 else str(c) for c, n in g["configs"].items())
        cases = g["cases"]
        out.append(
            [
                str(g["status"]),
                str(g["count"]),
                g["reason"],
                configs,
                ", ".join(cases[:8]) + (f" … ({len(cases)} in all)" if len(cases) > 8 else ""),
            ]
        )
    return out


FAILURE_HEADS = ["status", "count", "reason", "configurations", "cases"]


def _claim_rows(data: ReportData) -> list[list[str]]:
    return [
        [f"{r.claim.id}: {r.claim.text}", r.verdict, f"{r.claim.statement()} — {r.reason}"]
        for r in data.claims
    ]


CLAIM_HEADS = ["claim", "verdict", "what was tested — evidence"]


def _group_tables(data: ReportData, group_by: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per quantity (metrics + latency): (title, headers, rows) with rows = groups, columns = configurations."""
    s = data.summary[data.summary["group_by"] == group_by]
    if s.empty:
        return []
    qs = quantities(data.view)
    has_latency_metric = any(q.name == "latency" and q.kind == "metric" and q.column for q in qs)
    wanted = [q for q in qs if q.kind == "metric" or (q.name == "latency_s" and not has_latency_metric)]
    out = []
    for q in wanted:
        sq = s[s["quantity"] == q.name]
        if sq.empty:
            continue
        recs: dict[tuple[str, str], dict[str, Any]] = {}
        for r in sq.to_dict("records"):
            recs.setdefault((r["group"], r["config"]), r)  # one lookup table, not a filter per cell
        rows = [
            [g] + [_rec_txt(recs.get((g, c))) for c in data.view.config_names]
            for g in sorted(set(sq["group"]))
        ]
        out.append((f"{q.title} {q.arrow}".strip(), [group_by, *data.view.config_names], rows))
    return out


def _speed_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    sp = data.speed
    cols = [c for c in sp.columns if c != "config"]
    heads = ["configuration"] + [
        f"{SPEED_COLUMNS[c][0]} ({SPEED_COLUMNS[c][1]})"
        if SPEED_COLUMNS.get(c, ("", ""))[1]
        else SPEED_COLUMNS.get(c, (c, ""))[0]
        for c in cols
    ]
    rows = [[str(r["config"])] + [fmt(r[c]) for c in cols] for r in sp.to_dict("records")]
    return heads, rows


def _other_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """Resource and other measurements (mean [CI] N) not already in the speed table."""
    s = data.summary[(data.summary["group_by"] == "all") & (data.summary["kind"] != "metric")]
    shown = {"latency_s", "step_median_s", "peak_allocated_gib", "peak_reserved_gib", "peak_device_gib"}
    qs = [
        q
        for q in quantities(data.view)
        if q.kind != "metric" and q.name not in shown and q.name in set(s["quantity"])
    ]
    if not qs:
        return [], []
    heads = ["configuration"] + [f"{q.title} {q.arrow}".strip() for q in qs]
    recs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in s.to_dict("records"):
        recs.setdefault((r["config"], r["quantity"]), r)
    rows = [
        [config] + [_rec_txt(recs.get((config, q.name))) for q in qs] for config in data.view.config_names
    ]
    return heads, rows


# -- Markdown --------------------------------------------------------------------------------------
def render_markdown(meta: dict[str, Any], data: ReportData | None = None) -> str:
    """The Markdown report. With only ``meta`` (``run.json``) it shows the header and the run.json
    summary; with ``data`` (see :func:`build`) it opens on the headline and the claims, then every
    table, plot and grid."""
    lines = banner(meta)
    lines += [f"# evalsuite run `{md(meta.get('run_id'))}`", ""]
    if data is None:
        lines += [f"- {k}: {md(v)}" for k, v in _header_items(meta)] + [""]
        lines += ["## Configurations", ""]
        lines += md_table(
            ["configuration", "runner", "weights", "parameters", "load error"],
            [
                [
                    md(n),
                    md(c.get("runner")),
                    md(c.get("weights")),
                    md(_params(c)),
                    md(c.get("load_error") or ""),
                ]
                for n, c in (meta.get("configs") or {}).items()
            ],
        )
        return "\n".join(_meta_only_summary(_typed(meta), lines)) + "\n"
    if data.headline is not None and data.headline.rows:
        lines += ["## Headline", ""] + headline_markdown(data.headline)
    lines += _claims_markdown(data)
    strip, rest = data.grids[:1], data.grids[1:]
    for _k, rel, caption in strip:
        lines += [f"![{md(caption)}]({rel})", "", md(caption), ""]
    lines += ["## Run", ""]
    lines += [f"- {k}: {md(v)}" for k, v in _header_items(meta)] + [""]
    lines += ["## Configurations", ""]
    diff = _param_diff(meta.get("configs") or {})
    lines += md_table(
        ["configuration", "runner", "weights", "parameters that differ", "load error"],
        [
            [md(n), md(c.get("runner")), md(c.get("weights")), md(diff.get(n)), md(c.get("load_error") or "")]
            for n, c in (meta.get("configs") or {}).items()
        ],
    )
    lines += ["<details><summary>All parameters</summary>", ""]
    lines += md_table(
        ["configuration", "parameters"],
        [[md(n), md(_params(c))] for n, c in (meta.get("configs") or {}).items()],
    )
    lines += ["</details>", ""]
    rm = _typed(meta)
    lines += ["## Summary", "", "### Rows", ""]
    lines += md_table(
        ["configuration", "weights", "rows", "ok", "errors", "skipped"],
        [
            [
                md(r["config"]),
                md(rm.weights.get(r["config"])),
                str(r["rows"]),
                str(r["ok"]),
                str(r["error"]),
                str(r["skipped"]),
            ]
            for r in data.status.to_dict("records")
        ],
    )
    names, rows = _metric_rows(data)
    qmap = {q.name: q for q in quantities(data.view)}
    if names:
        lines += ["### Metrics: mean [bootstrap 95 % CI] N (set-level metrics: their value)", ""]
        lines += md_table(
            ["configuration"] + [md(f"{qmap[n].title} {qmap[n].arrow}".strip()) for n in names],
            [[md(c)] + [_rec_txt(r.get(n)) for n in names] for c, r in rows],
        )
        lines += [f"† N < {SMALL_N}: the interval is not reliable.", ""]
        own = [
            (c, n, r[n])
            for c, r in rows
            for n in names
            if n in r and not math.isnan(r[n].get("headline", math.nan))
        ]
        if own:
            lines += ["<details><summary>Each metric's own aggregate from run.json</summary>", ""]
            lines += md_table(
                ["configuration", "metric", "aggregate", "N"],
                [[md(c), md(n), fmt(r["headline"]), _int(r.get("headline_n"))] for c, n, r in own],
            )
            lines += ["</details>", ""]
    from evalsuite.metrics.scoring import metric_notes

    # the notes' own text only: this section writes the heading once
    notes = [x for x in metric_notes(meta.get("summary", {})) if x.strip() and not x.startswith("#")]
    if notes:
        lines += ["### Metric notes", "", *notes, ""]
    lines += ["### Speed and memory", ""]
    sh, sr = _speed_rows(data)
    lines += md_table([md(x) for x in sh], [[md(x) for x in row] for row in sr])
    lines += [
        "Latency: end-to-end seconds per image (median, p90); s/step: median over every denoising step; "
        "peak VRAM: maximum over images.",
        "",
    ]
    oh, orows = _other_rows(data)
    if oh:
        lines += ["### Other measurements: mean [95 % CI] N", ""]
        lines += md_table([md(x) for x in oh], [[md(x) for x in row] for row in orows])
    lines += ["## Failures and skips", ""]
    if data.failures.empty:
        lines += ["None.", ""]
    else:
        lines += ["Grouped by reason (case ids taken out of the reason).", ""]
        lines += md_table(FAILURE_HEADS, [[md(x) for x in row] for row in _failure_rows(data)])
    for group_by, title in (("category", "By category"), ("mask_family", "By mask family")):
        tables = _group_tables(data, group_by)
        if tables:
            small = _min_n(data, group_by) < SMALL_N
            lines += [f"## {title}", ""]
            if small:
                lines += [
                    f"<details><summary>Fewer than {SMALL_N} images in some cells: collapsed</summary>",
                    "",
                ]
            for t, gheads, rows2 in tables:
                lines += [f"### {md(t)}", ""] + md_table(
                    [md(x) for x in gheads], [[md(x) for x in row] for row in rows2]
                )
            if small:
                lines += ["</details>", ""]
    if data.plots:
        lines += ["## Plots", ""]
        for p in data.plots:
            lines += [f"![{md(p.title)}]({p.png})", "", f"{md(p.caption)} ([SVG]({p.svg}))", ""]
    if rest:
        lines += ["## Image grids", ""]
        for _k, rel, caption in rest:
            lines += [f"![{md(caption)}]({rel})", "", md(caption), ""]
    if data.notes:
        lines += ["## Notes", ""] + [f"- {md(n)}" for n in data.notes] + [""]
    return "\n".join(lines) + "\n"


def _claims_markdown(data: ReportData) -> list[str]:
    if not data.claims and not data.claims_note:
        return []
    lines = [f"## Claims ({md(data.claims_name)})" if data.claims_name else "## Claims", ""]
    if data.claims_note:
        return lines + [md(data.claims_note), ""]
    lines += md_table(
        CLAIM_HEADS,
        [[md(a), f"**{md(b)}**", md(c)] for a, b, c in _claim_rows(data)],
    )
    return lines + [
        "Check them yourself: `evalsuite claims RUN_DIR [--claims FILE]` (docs/reports.md#claims).",
        "",
    ]


def _int(x: Any) -> str:
    try:
        return str(int(x))
    except (TypeError, ValueError):
        return "—"


def _meta_only_summary(meta: RunMeta, lines: list[str]) -> list[str]:
    summary = meta.summary or {}
    names = sorted({m for s in summary.values() for m in (s.metrics or {})})
    lines += ["## Summary (run.json)", ""]
    rows = []
    for name, s in summary.items():
        c = s.counts or {}
        cells = [fmt((s.metrics or {}).get(m, {}).get("value")) for m in names]
        rows.append([md(name), str(c.get("ok")), str(c.get("error")), str(c.get("skipped"))] + cells)
    return lines + md_table(["configuration", "ok", "errors", "skipped", *[md(n) for n in names]], rows)


# -- HTML ------------------------------------------------------------------------------------------
def _html_table(heads: Sequence[str], rows: Sequence[Sequence[str]], first_text: int = 1) -> H.Markup:
    return H.table(heads, rows, numeric=[False] * first_text + [True] * (len(heads) - first_text))


def _details(summary: str, parts: Sequence[object], open_: bool = False) -> H.Markup:
    return H.Markup("<details{}><summary>{}</summary>{}</details>").format(
        H.Markup(" open") if open_ else "", summary, H.Markup("").join(H.esc(p) for p in parts)
    )


def render_html(data: ReportData, embed: bool = False, base: Path | None = None) -> str:
    """The self-contained HTML report (inline CSS, no scripts; images relative to ``base`` or embedded).

    It opens on the headline, the claims' verdicts and an image strip; the full tables follow,
    collapsed (``<details>``)."""
    meta = data.meta
    rm = data.view.run_meta
    base = base or data.view.path
    body: list[object] = []
    title, detail = banner_text(meta)
    if title:
        body.append(
            H.Markup(f'<div class="banner">WARNING: {H.esc(title)}<small>{H.esc(detail)}</small></div>')
        )
    body.append(H.tag("h1", f"evalsuite run {meta.get('run_id')}"))
    head = data.headline
    if head is not None and head.rows:
        body.append(H.tag("h2", "Headline", id="headline"))
        hh, hr = headline_table(head)
        body.append(H.table(hh, hr, numeric=[False, True, True] + [True] * (len(hh) - 5) + [False, True]))
        body.append(
            H.Markup('<ul class="verdicts">{}</ul>').format(
                H.Markup("").join(H.Markup("<li>{}</li>").format(r.verdict) for r in head.rows)
            )
        )
        for n in head.notes:
            body.append(H.tag("p", n, cls="note"))
    if data.claims or data.claims_note:
        body.append(
            H.tag("h2", f"Claims ({data.claims_name})" if data.claims_name else "Claims", id="claims")
        )
        if data.claims_note:
            body.append(H.tag("p", data.claims_note, cls="note"))
        else:
            rows = _claim_rows(data)
            body.append(
                H.table(
                    CLAIM_HEADS,
                    [[a, H.tag("span", b, cls="v-" + b.replace(" ", "-")), c] for a, b, c in rows],
                )
            )
            body.append(
                H.tag(
                    "p",
                    "Check them yourself: evalsuite claims RUN_DIR [--claims FILE] (docs/reports.md#claims).",
                    cls="note",
                )
            )
    strip, rest = data.grids[:1], data.grids[1:]
    for _k, rel, caption in strip:
        body.append(H.figure(H.img(rel, caption, base, embed), caption))
    body.append(
        _details(
            "Run: dataset, seeds, weights, device, versions",
            [
                H.Markup(
                    '<dl class="kv">'
                    + "".join(f"<dt>{H.esc(k)}</dt><dd>{H.esc(v)}</dd>" for k, v in _header_items(meta))
                    + "</dl>"
                )
            ],
        )
    )
    body.append(H.tag("h2", "Configurations"))
    diff = _param_diff(meta.get("configs") or {})
    body.append(
        H.table(
            ["configuration", "runner", "weights", "parameters that differ", "load error"],
            [
                [n, c.get("runner"), c.get("weights"), diff.get(n), c.get("load_error") or ""]
                for n, c in (meta.get("configs") or {}).items()
            ],
        )
    )
    body.append(
        _details(
            "All parameters",
            [
                H.table(
                    ["configuration", "parameters"],
                    [[n, _params(c)] for n, c in (meta.get("configs") or {}).items()],
                )
            ],
        )
    )
    summary: list[object] = [
        H.table(
            ["configuration", "weights", "rows", "ok", "errors", "skipped"],
            [
                [
                    r["config"],
                    rm.weights.get(r["config"]),
                    r["rows"],
                    r["ok"],
                    r["error"],
                    r["skipped"],
                ]
                for r in data.status.to_dict("records")
            ],
            numeric=[False, False, True, True, True, True],
            row_classes=["bad" if r["error"] else "" for r in data.status.to_dict("records")],
        )
    ]
    names, rows2 = _metric_rows(data)
    qmap = {q.name: q for q in quantities(data.view)}
    if names:
        summary.append(H.tag("h3", "Metrics: mean [bootstrap 95 % CI] N (set-level metrics: their value)"))
        summary.append(
            _html_table(
                ["configuration"] + [f"{qmap[n].title} {qmap[n].arrow}".strip() for n in names],
                [[c] + [_rec_txt(r.get(n)) for n in names] for c, r in rows2],
            )
        )
        summary.append(H.tag("p", f"† N < {SMALL_N}: the interval is not reliable.", cls="note"))
    summary.append(H.tag("h3", "Speed and memory"))
    h, r = _speed_rows(data)
    summary.append(_html_table(h, r))
    summary.append(
        H.tag(
            "p",
            "Latency: end-to-end seconds per image (median, p90); s/step: median over every denoising "
            "step; peak VRAM: maximum over images.",
            cls="note",
        )
    )
    h, r = _other_rows(data)
    if h:
        summary.append(H.tag("h3", "Other measurements: mean [95 % CI] N"))
        summary.append(_html_table(h, r))
    body.append(H.tag("h2", "Summary"))
    body.append(_details("Rows, metrics with CIs, speed and memory", summary))
    body.append(H.tag("h2", "Failures and skips"))
    if data.failures.empty:
        body.append(H.tag("p", "None."))
    else:
        body.append(H.tag("p", "Grouped by reason (case ids taken out of the reason).", cls="note"))
        body.append(H.table(FAILURE_HEADS, _failure_rows(data), numeric=[False, True, False, False, False]))
    for group_by, gtitle in (("category", "By category"), ("mask_family", "By mask family")):
        tables = _group_tables(data, group_by)
        if tables:
            body.append(H.tag("h2", gtitle))
            parts: list[object] = []
            for t, heads, rows3 in tables:
                parts += [H.tag("h3", t), _html_table(heads, rows3)]
            small = _min_n(data, group_by) < SMALL_N
            body.append(
                _details(
                    f"{len(tables)} tables"
                    + (f" (fewer than {SMALL_N} images in some cells)" if small else ""),
                    parts,
                )
            )
    if data.plots:
        body.append(H.tag("h2", "Plots"))
        body.append(
            H.Markup(
                '<div class="figs">'
                + "".join(
                    H.figure(H.img(p.png, p.title, base, embed), p.caption, H.link(p.svg, "SVG"))
                    for p in data.plots
                )
                + "</div>"
            )
        )
    if data.grids:
        body.append(H.tag("h2", "Image grids"))
        for _k, rel, caption in rest:
            body.append(H.figure(H.img(rel, caption, base, embed), caption))
        body.append(H.tag("h3", "Cases shown"))
        body.append(H.table(["case", "category", "mask family", "prompt"], _case_table(data)))
    if data.notes:
        body.append(H.tag("h2", "Notes"))
        body.append(H.Markup("<ul>" + "".join(f"<li>{H.esc(n)}</li>" for n in data.notes) + "</ul>"))
    return H.page(f"evalsuite report {rm.run_id}", body)


def _case_table(data: ReportData) -> list[list[Any]]:
    df = data.view.samples
    if not len(df):
        return []
    first = df.drop_duplicates("case_id")
    return [
        [
            r["case_id"],
            r.get("category"),
            r.get("mask_family") if isinstance(r.get("mask_family"), str) else "",
            r.get("prompt"),
        ]
        for r in first.to_dict("records")
    ]


# -- entry point -----------------------------------------------------------------------------------
class RunDirNotWritable(UsageError, ValueError):
    """A run directory that a command must write into cannot be written (read-only file system or
    folder); the message names the folder, the command and the fix. The CLI exits with code 2."""


class WrongRunKind(UsageError, ValueError):
    """A run directory of another kind than the command works on (a frontier run given to ``report``)."""


#: Where the report of each sweep kind lives, and the command that writes it.
SWEEP_REPORTS = {
    "profile": ("profile.md", "evalsuite profile"),
    "frontier": ("frontier.md", "evalsuite frontier"),
    "plan": ("plan.md", "evalsuite plan"),
}


def refuse_sweep_run(run_dir: Path, meta: dict[str, Any], command: str) -> None:
    """``evalsuite report``/``score`` work on ``evalsuite run`` directories: refuse a sweep's
    directory (profile, frontier, plan) naming its kind, its report and the command that fits,
    before anything is written.

    Raises:
        WrongRunKind: for a sweep run (exit 2).
    """
    kind = meta.get("kind", "generate")
    if kind in SWEEP_REPORTS:
        md, writer = SWEEP_REPORTS[kind]
        raise WrongRunKind(
            f"{run_dir} is a {kind} run (run.json kind {kind!r}); 'evalsuite {command}' works on 'evalsuite run' "
            f"directories. Its report is {run_dir / md}, written by '{writer}' (rerun it with the same "
            "arguments to rewrite it); compare two such runs with 'evalsuite compare'"
        )


def check_writable(run_dir: str | Path, command: str, writes: str) -> None:
    """Refuse early, before any work, when ``run_dir`` (or a file ``command`` rewrites there) cannot
    be written: a temporary file is created and removed in the folder itself.

    Raises:
        RunDirNotWritable: naming the folder, what ``command`` writes and how to proceed.
    """
    path = Path(run_dir)
    reason = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        names = (REPORT_MD, REPORT_HTML, SUMMARY_CSV, PLOTS_DIR, GRIDS_DIR, "run.json", "rows.jsonl")
        locked = [n for n in names if (path / n).exists() and not os.access(path / n, os.W_OK)]
        if locked:
            reason = f"{', '.join(locked)} not writable"
    if reason:
        raise RunDirNotWritable(
            f"cannot write into the run directory {path} ({reason}): 'evalsuite {command}' writes "
            f"{writes} there. Nothing was written. Copy the run to a writable folder "
            f"(cp -r {path} COPY) and run 'evalsuite {command} COPY'"
        )


def write_report(
    run_dir: str | Path,
    embed_images: bool = False,
    reference: str | None = None,
    claims: str | Path | None = None,
) -> Path:
    """Write ``report.md``, ``report.html``, ``summary.csv``, ``plots/`` and ``grids/`` into
    ``run_dir``; return the path of ``report.md``. ``reference`` and ``claims``: see :func:`build`.

    Everything is first written into a temporary folder inside ``run_dir``, then each file is
    renamed into place: a failure leaves the previous report files as they were (no half-written
    file), and a read-only run directory is refused before anything is computed.

    Raises:
        FileNotFoundError: when ``run_dir`` is not a run directory.
        RunDirNotWritable: when ``run_dir`` cannot be written.
    """
    path = Path(run_dir)
    if (path / "run.json").is_file():
        check_writable(path, "report", "report.md, report.html, summary.csv, plots/ and grids/")
    else:
        load_view(path)  # raises FileNotFoundError naming the folder
    _remove_stale_staging(path)
    try:
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=path))
    except OSError as exc:
        raise RunDirNotWritable(f"cannot write into the run directory {path} ({exc.strerror})") from exc
    try:
        data = build(path, out_dir=staging, reference=reference, claims=claims)
        (staging / SUMMARY_CSV).write_bytes(data.summary.to_csv(index=False).encode("utf-8"))
        (staging / REPORT_MD).write_text(render_markdown(data.meta, data), encoding="utf-8")
        (staging / REPORT_HTML).write_text(
            render_html(data, embed=embed_images, base=staging), encoding="utf-8"
        )
        _commit(staging, path)
    except OSError as exc:
        from evalsuite.paths import folder_size, is_no_space, no_space_error

        if not is_no_space(exc):
            raise
        needed = max(folder_size(staging, "."), folder_size(path, *REPORT_FILES))
        shutil.rmtree(staging, ignore_errors=True)
        raise no_space_error(exc, path, "writing the report", needed, out=False) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("report: %s", path / REPORT_MD)
    return path / REPORT_MD


STAGING_PREFIX = ".report."
REPORT_FILES = (REPORT_MD, REPORT_HTML, SUMMARY_CSV, PLOTS_DIR, GRIDS_DIR)
STALE_STAGING_S = 3600.0


def _remove_stale_staging(path: Path) -> None:
    """Remove staging folders that a killed ``write_report`` left (older than an hour, so a report
    being written beside this one keeps its own)."""
    now = time.time()
    for d in path.glob(STAGING_PREFIX + "*"):
        try:
            if d.is_dir() and now - d.stat().st_mtime > STALE_STAGING_S:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _commit(staging: Path, path: Path) -> None:
    """Move the staged assets, then the pages, into ``path`` (each rename atomic; pages last, so a
    page never links an asset that is not there yet)."""
    for sub in (PLOTS_DIR, GRIDS_DIR):
        if (staging / sub).is_dir():
            (path / sub).mkdir(exist_ok=True)
            for f in sorted((staging / sub).iterdir()):
                os.replace(f, path / sub / f.name)
    for name in (SUMMARY_CSV, REPORT_MD, REPORT_HTML):
        atomic_write(path / name, (staging / name).read_bytes())


__all__ = [
    "ReportData",
    "RunDirNotWritable",
    "banner",
    "build",
    "check_writable",
    "render_html",
    "render_markdown",
    "write_report",
]
