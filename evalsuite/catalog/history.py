"""History questions over the catalog: :func:`trend` (one metric of one configuration across runs and
releases) and :func:`regressions` (every series' runs judged against the previous comparable run).

Comparable runs share the *series key*: configuration, dataset fingerprint, weights policy, device
(GPU name, or the device type), and the feature-network weights of the metrics (``metric_weights``,
the metrics' preprocessing). Points of different series are never joined into one line; each series
says how it differs from the first.

Regressions reuse :mod:`evalsuite.compare`: consecutive comparable runs are compared with
:func:`~evalsuite.compare.engine.compare_runs` (rows paired by configuration, case and seed; the
bootstrap and sign-flip test of :mod:`evalsuite.trackers.stats`) and each change is judged with
:func:`~evalsuite.compare.thresholds.judge` under the threshold YAML of ``evalsuite compare``. With
``window`` > 1 a run's aggregate is judged against the median aggregate of the previous ``window``
comparable runs (asv-runner style; unpaired, so no CI).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.catalog.db import Catalog, CatalogError

#: Columns of the series key (see the module docstring), with their names in messages.
SERIES_KEY = (
    ("dataset_fingerprint", "dataset fingerprint"),
    ("weights", "weights policy"),
    ("device", "device"),
    ("metric_weights", "metric feature weights"),
)
#: The threshold applied to every compared quantity when no thresholds file is given: a worsening
#: of more than 5 % — whose 95 % CI excludes no change, when paired (``window`` 1).
DEFAULT_MAX_REGRESSION = 0.05

_SERIES_SQL = """
SELECT c.config, r.dataset_fingerprint, r.dataset_name, coalesce(r.gpu_name, r.device_type) AS device,
       coalesce(c.weights, r.weights_policy) AS weights, r.metric_weights, r.run_key, r.run_id, r.path,
       r.label, r.git_commit, r.started
FROM configs c JOIN runs r USING (run_key)
WHERE r.kind = 'generate' {extra}
ORDER BY r.started NULLS FIRST, r.run_id
"""


def point_name(p: dict[str, Any]) -> str:
    """How a run is named on an axis: its label, else its commit (10 digits), else its run id."""
    if p.get("label"):
        return str(p["label"])
    if p.get("git_commit"):
        return str(p["git_commit"])[:10]
    return str(p["run_id"])


@dataclass
class Series:
    key: tuple[Any, ...]
    points: list[dict[str, Any]] = field(default_factory=list)
    why: str = ""  # how it differs from the first series ("" for the first)

    def describe(self) -> str:
        return ", ".join(
            f"{name} {'–' if v is None else v}" for (_, name), v in zip(SERIES_KEY, self.key, strict=True)
        )


def _series_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k, _ in SERIES_KEY)


def _differences(a: tuple[Any, ...], b: tuple[Any, ...]) -> str:
    return "; ".join(
        f"{name} {y} (not {x})" for (_, name), x, y in zip(SERIES_KEY, a, b, strict=True) if x != y
    )


def _group(rows: list[dict[str, Any]]) -> list[Series]:
    out: dict[tuple[Any, ...], Series] = {}
    for r in rows:
        k = _series_key(r)
        out.setdefault(k, Series(k)).points.append(r)
    series = list(out.values())
    for s in series[1:]:
        s.why = "not comparable with the first series: " + _differences(series[0].key, s.key)
    return series


@dataclass
class Trend:
    metric: str
    config: str
    unit: str | None
    higher_is_better: bool | None
    series: list[Series]


def trend(
    cat: Catalog, metric: str, config: str, dataset: str | None = None, device: str | None = None
) -> Trend:
    """``metric``'s per-run aggregate (with its CI) for ``config`` across runs, oldest first, split
    into comparable series.

    Raises:
        CatalogError: no run of ``config`` holds ``metric`` (the message lists what it does hold).
    """
    extra, params = " AND c.config = ?", [config]
    if dataset is not None:
        extra += " AND (r.dataset_name = ? OR r.dataset_fingerprint = ?)"
        params += [dataset, dataset]
    if device is not None:
        extra += " AND (r.device_type = ? OR contains(lower(r.gpu_name), lower(?)))"
        params += [device, device]
    sql = (
        "SELECT s.*, a.value, a.ci_low, a.ci_high, a.n, a.statistic, a.unit, a.higher_is_better FROM ("
        + _SERIES_SQL.format(extra=extra)
        + ") s JOIN aggregates a ON a.run_key = s.run_key AND a.config = s.config AND a.metric = ?"
        " ORDER BY s.started NULLS FIRST, s.run_id"
    )
    rows = cat.dicts(sql, [*params, metric])
    if not rows:
        have = [
            r["metric"]
            for r in cat.dicts(
                "SELECT DISTINCT metric FROM aggregates WHERE config = ? ORDER BY metric", [config]
            )
        ]
        if not have:
            raise CatalogError(
                f"configuration {config!r}: no run in the catalog {cat.path} (see 'evalsuite catalog list')"
            )
        raise CatalogError(
            f"metric {metric!r}: no run of {config!r} in the catalog holds it"
            + (" with these filters" if dataset or device else "")
            + f"; its metrics: {', '.join(have)}"
        )
    return Trend(metric, config, rows[-1]["unit"], rows[-1]["higher_is_better"], _group(rows))


def trend_table(t: Trend) -> str:
    """The trend as a Markdown table, one block per series."""
    unit = f" [{t.unit}]" if t.unit else ""
    lines = [f"{t.metric}{unit} of {t.config} (95 % CI)", ""]
    for i, s in enumerate(t.series, 1):
        lines.append(f"series {i}: {s.describe()}")
        if s.why:
            lines.append(f"  {s.why}")
        lines += ["", "| run | label/commit | started | value | 95 % CI | n |", "|---|---|---|---|---|---|"]
        for p in s.points:
            ci = (
                f"[{p['ci_low']:.4g}, {p['ci_high']:.4g}]"
                if p["ci_low"] is not None and p["ci_high"] is not None
                else "–"
            )
            value = "–" if p["value"] is None else f"{p['value']:.4g}"
            lines.append(
                f"| {p['run_id']} | {point_name(p)} | {p['started'] or '–'} | {value} | {ci} | {p['n']} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot_trend(t: Trend, out: str | Path) -> Path:
    """The trend as a PNG or SVG (by ``out``'s suffix): one line with CI bars per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    order = sorted(
        {(str(p["started"]), p["run_key"]): p for s in t.series for p in s.points}.items(),
        key=lambda kv: kv[0],
    )
    x_of = {key[1]: i for i, (key, _) in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(order) + 2), 3.6))
    for i, s in enumerate(t.series, 1):
        xs = [x_of[p["run_key"]] for p in s.points]
        ys = [math.nan if p["value"] is None else p["value"] for p in s.points]
        lo = [
            0.0 if p["ci_low"] is None else max(0.0, y - p["ci_low"])
            for p, y in zip(s.points, ys, strict=True)
        ]
        hi = [
            0.0 if p["ci_high"] is None else max(0.0, p["ci_high"] - y)
            for p, y in zip(s.points, ys, strict=True)
        ]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=f"series {i}: {s.key[2]}, {s.key[1]}")
    ax.set_xticks(range(len(order)), [point_name(p) for _, p in order], rotation=30, ha="right")
    arrow = {True: " (higher is better)", False: " (lower is better)"}.get(t.higher_is_better, "")  # type: ignore[arg-type]
    ax.set_ylabel(f"{t.metric}{f' [{t.unit}]' if t.unit else ''}{arrow}")
    ax.set_title(f"{t.metric} of {t.config}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


# -- regressions ---------------------------------------------------------------------------------------
@dataclass
class Finding:
    """One check of one run against its baseline in a series."""

    config: str
    dataset: str | None
    device: str | None
    metric: str
    run: str
    baseline: str
    a: float
    b: float
    change: float
    ci: tuple[float, float] | None
    p_value: float
    status: str  # pass | REGRESSION | no data
    rule: str
    detail: str = ""


@dataclass
class Regressions:
    findings: list[Finding]
    notes: list[str]
    unmatched: list[str]  # thresholds that matched nothing measured

    @property
    def regressed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "REGRESSION"]

    @property
    def exit_code(self) -> int:
        """0 nothing regressed; 1 a regression; 2 a threshold that matched nothing measured."""
        if self.unmatched:
            return 2
        return 1 if self.regressed else 0


def regressions(
    cat: Catalog,
    thresholds: Sequence[Any] | None = None,
    window: int = 1,
    config: str | None = None,
    latest_only: bool = False,
) -> Regressions:
    """Judge every run of every series (configuration, dataset, device, weights) against the previous
    comparable run (paired, ``window`` 1) or the median of the previous ``window`` runs.

    ``thresholds``: :class:`~evalsuite.compare.thresholds.Threshold` list (``None``: a
    :data:`DEFAULT_MAX_REGRESSION` relative worsening with significance required, on every quantity).
    ``latest_only``: judge only the newest run of each series (what a dashboard shows).
    """
    if window < 1:
        raise CatalogError(f"--window {window}: give 1 (previous run, paired) or more (rolling median)")
    extra, params = ("", []) if config is None else (" AND c.config = ?", [config])
    rows = cat.dicts(_SERIES_SQL.format(extra=extra), params)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["config"], *_series_key(r)), []).append(r)
    findings: list[Finding] = []
    notes: list[str] = []
    used: set[str] = set()
    cache: dict[tuple[str, str], Any] = {}  # one comparison per pair of runs, for all its configurations
    for (cfg, *_), runs in groups.items():
        for i in range(max(1, len(runs) - 1) if latest_only else 1, len(runs)):
            cur = runs[i]
            if window == 1:
                findings += _paired(cfg, runs[i - 1], cur, thresholds, notes, used, cache)
            else:
                findings += _rolling(cat, cfg, runs[max(0, i - window) : i], cur, thresholds, used)
    n_pairs = sum(min(1, len(r) - 1) if latest_only else len(r) - 1 for r in groups.values())
    unmatched = [t.metric for t in thresholds or [] if t.metric not in used] if n_pairs else []
    if unmatched:
        notes.append(f"threshold(s) matched no compared quantity: {', '.join(unmatched)}")
    if not n_pairs:
        notes.append("no series has two comparable runs yet: nothing to compare")
    order = {"REGRESSION": 0, "no data": 1, "pass": 2}
    findings.sort(key=lambda f: order.get(f.status, 3))
    return Regressions(findings, notes, unmatched)


def _applicable(
    thresholds: Sequence[Any] | None, metric: str, config: str, used: set[str], paired: bool = True
) -> list[Any]:
    """The thresholds that judge ``metric`` of ``config`` (renamed to it: ``latency`` judges the
    ``latency_s`` column and back), their names added to ``used``."""
    from evalsuite.compare.engine import ALIASES
    from evalsuite.compare.thresholds import Threshold

    if thresholds is None:  # significance needs the paired CI: the rolling median has none
        return [Threshold(metric, DEFAULT_MAX_REGRESSION, "relative", require_significance=paired)]
    inverse = {v: k for k, v in ALIASES.items()}
    out = []
    for t in thresholds:
        if (t.metric == metric or ALIASES.get(t.metric) == metric or inverse.get(t.metric) == metric) and (
            t.applies_to(config)
        ):
            used.add(t.metric)
            out.append(t.renamed(metric))
    return out


def _paired(
    config: str,
    prev: dict[str, Any],
    cur: dict[str, Any],
    thresholds: Sequence[Any] | None,
    notes: list[str],
    used: set[str],
    cache: dict[tuple[str, str], Any],
) -> list[Finding]:
    from evalsuite.compare.engine import compare_runs
    from evalsuite.compare.thresholds import CompareInputError, judge, resolve_direction

    pair = (prev["path"], cur["path"])
    if pair not in cache:
        try:
            cache[pair] = compare_runs(*pair)
        except (CompareInputError, OSError) as exc:
            cache[pair] = exc
    cmp = cache[pair]
    if isinstance(cmp, Exception):
        notes.append(f"{config}: {prev['run_id']} → {cur['run_id']} not compared: {cmp}")
        return []
    out = []
    base = dict(
        config=config,
        dataset=cur["dataset_name"],
        device=cur["device"],
        run=point_name(cur),
        baseline=point_name(prev),
    )
    for c in cmp.changes:
        if c.config != config:
            continue
        for t in _applicable(thresholds, c.quantity, config, used):
            try:
                hib = resolve_direction(c.quantity, t, c.higher_is_better)
            except Exception:
                if thresholds is None:
                    continue  # a column nobody declared a direction for: only an explicit threshold judges it
                raise
            ci = _change_ci(c)
            v = judge(t, config, c.a, c.b, hib, ci)
            out.append(
                Finding(
                    **base,
                    metric=c.quantity,
                    a=c.a,
                    b=c.b,
                    change=v.change,
                    ci=ci,
                    p_value=c.p_value,
                    status=v.status,
                    rule=v.rule,
                    detail=v.detail,
                )
            )  # type: ignore[arg-type]
    nf = cmp.new_failures
    nf = nf[nf["config"] == config] if len(nf) else nf
    if len(nf):
        out.append(
            Finding(
                **base,
                metric="rows",
                a=0,
                b=float(len(nf)),
                change=float(len(nf)),
                ci=None,
                p_value=math.nan,
                status="REGRESSION",
                rule="rows ok before must not fail",
                detail=f"{len(nf)} row(s) ok in {base['baseline']} fail in {base['run']}",
            )  # type: ignore[arg-type]
        )
    return out


def _change_ci(c: Any) -> tuple[float, float] | None:
    """The 95 % CI of B − A in absolute units (a ratio's CI scaled by A), as compare judges it."""
    from evalsuite.compare import engine

    ci: tuple[float, float] | None = engine._change_ci(c)
    return ci


def _rolling(
    cat: Catalog,
    config: str,
    previous: list[dict[str, Any]],
    cur: dict[str, Any],
    thresholds: Sequence[Any] | None,
    used: set[str],
) -> list[Finding]:
    from evalsuite.compare.thresholds import judge, resolve_direction

    keys = [p["run_key"] for p in previous]
    agg = cat.dicts(
        "SELECT run_key, metric, value, higher_is_better FROM aggregates WHERE config = ? AND run_key IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [config, [*keys, cur["run_key"]]],
    )
    now = {a["metric"]: a for a in agg if a["run_key"] == cur["run_key"]}
    out = []
    for metric, a in now.items():
        past = [
            x["value"]
            for x in agg
            if x["metric"] == metric and x["run_key"] in keys and x["value"] is not None
        ]
        if not past or a["value"] is None:
            continue
        med = statistics.median(past)
        for t in _applicable(thresholds, metric, config, used, paired=False):
            try:
                hib = resolve_direction(metric, t, a["higher_is_better"])
            except Exception:
                if thresholds is None:
                    continue
                raise
            v = judge(t, config, med, a["value"], hib, None)
            out.append(
                Finding(config, cur["dataset_name"], cur["device"], metric, point_name(cur), f"median of {len(past)} previous run(s)", med, a["value"], v.change, None, math.nan, v.status, v.rule, v.detail)
            )  # fmt: skip
    return out


def regressions_table(res: Regressions, show_all: bool = False) -> str:
    """The findings as a Markdown table (regressions first; passes only with ``show_all``)."""
    shown = res.findings if show_all else [f for f in res.findings if f.status != "pass"]
    lines = []
    if shown:
        lines += [
            "| status | config | dataset | device | metric | baseline → run | A | B | change | 95 % CI | p | rule |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in shown:
            ci = f"[{f.ci[0]:.4g}, {f.ci[1]:.4g}]" if f.ci else "–"
            p = "–" if math.isnan(f.p_value) else f"{f.p_value:.3g}"
            lines.append(
                f"| {f.status} | {f.config} | {f.dataset} | {f.device} | {f.metric} | {f.baseline} → {f.run} | "
                f"{f.a:.4g} | {f.b:.4g} | {f.change:+.4g} | {ci} | {p} | {f.rule}{'; ' + f.detail if f.detail else ''} |"
            )
    n_reg = len(res.regressed)
    lines.append("")
    lines.append(
        f"{'REGRESSION' if n_reg else 'PASS'}: {n_reg} regression(s) in {len(res.findings)} check(s)"
        if not res.unmatched
        else f"UNUSABLE: {res.notes[-1] if res.notes else 'a threshold matched nothing'}"
    )
    lines += [f"note: {n}" for n in res.notes]
    return "\n".join(lines)


def catalog_baseline(catalog: str | Path, ref: str, config: str) -> Any:
    """The pytest plugin's baseline from the catalog: ``config`` of the run that ``ref`` names
    (``catalog:LABEL``, ``catalog:RUN_ID`` or ``catalog:latest``; the prefix is optional), as a
    :class:`~evalsuite.compare.baselines.Baseline` built from that run directory.

    Raises:
        CatalogError: no such catalog or run, or the run has no configuration ``config``.
        BaselineError: the run's rows of ``config`` failed (a baseline must describe a healthy run).
    """
    from evalsuite.compare.baselines import Baseline
    from evalsuite.results.run import load_run

    name = ref.removeprefix("catalog:")
    with Catalog(catalog, read_only=True) as cat:
        path = cat.resolve_ref(name)
    run = load_run(path)
    if config not in run.config_names:
        raise CatalogError(
            f"catalog:{name} ({path}) has no configuration {config!r}; it has {', '.join(run.config_names) or 'none'}"
        )
    return Baseline.from_run(run.select(config), f"catalog:{name}")
