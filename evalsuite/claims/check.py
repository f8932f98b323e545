"""Claims checked against a run: the claims file (YAML), its evaluation and the verdicts.

A claims file states claims as comparisons between configurations, or against absolute bounds, each
with its metric(s), direction, margin and the test to use (docs/reports.md#claims)::

    name: my-release
    claims:
      - id: turbo-speed              # unique, short
        text: 8 steps are about 3x faster than 28
        config: my-turbo8            # the configuration the claim is about
        reference: my-base           # compared with (paired by case and seed) ...
        metric: latency_s            # ... on this metric (or `metrics: [a, b]`: every one must hold)
        test: ratio                  # paired_delta | ratio | value
        at_most: 0.4                 # ratio config / reference ≤ 0.4

* ``paired_delta`` (needs ``reference``; ``expect: better`` or ``not_worse``, ``margin`` in the
  metric's units or ``relative_margin`` as a fraction of the reference's mean): the mean paired
  difference config − reference over the (case_id, seed) rows ok in both, with its bootstrap 95 %
  CI (:func:`evalsuite.compare.engine.paired_change`), turned into an *improvement* by the metric's
  direction. ``better`` is supported when the CI lies above ``margin``, contradicted when it lies
  below it; ``not_worse`` is supported when the CI lies above ``−margin``, contradicted when below.
* ``ratio`` (needs ``reference``; ``at_most`` and/or ``at_least``): median(config) / median(reference)
  over paired rows with its paired-bootstrap CI (peak memory: the ratio of the maxima).
* ``value`` (``at_most`` and/or ``at_least``): the configuration's own figure — the mean with its CI
  for a per-image metric, the set-level value (FID), the median latency, the peak memory.

``peak_memory_gib`` reads the best peak column measured (NVML, else reserved, else allocated); on a
``plan`` or ``frontier`` run the rows ``<config>[<strategy>]`` are its points and the lowest ok peak
counts (some strategy fits). ``latency_s`` on a sweep reads its points' ``s_per_image``.

Verdicts: **supported**, **contradicted**, **inconclusive** (the CI straddles the bound: the text
gives N and the CI half-width that would decide it) and **not measurable** (a configuration or
metric missing from the run, no paired rows, or weights that carry no evidence: tiny and random
weights make quality claims not measurable; tiny weights also speed and memory claims, which stay
measurable on random weights). A claim of several metrics is contradicted when one is, supported
when all are.

The evaluation is a pure function of the rows (a DataFrame) and ``run.json``
(:func:`evaluate_claims`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from evalsuite.errors import UsageError

__all__ = [
    "BUILTIN",
    "VERDICTS",
    "Check",
    "Claim",
    "ClaimResult",
    "ClaimsError",
    "ClaimsFile",
    "evaluate_claims",
    "load_claims",
]

#: The claims files shipped with evalsuite (package data): name → file name.
BUILTIN = {"alimama-flux": "alimama-flux.yaml"}
SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE = (
    "supported",
    "contradicted",
    "inconclusive",
    "not measurable",
)
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE)
TESTS = ("paired_delta", "ratio", "value")
EXPECT = ("better", "not_worse")
#: Claims on these metrics are about speed or memory (measurable on random weights).
RESOURCE_METRICS = frozenset(
    {
        "latency_s",
        "latency",
        "s_per_image",
        "step_median_s",
        "denoise_s",
        "peak_memory_gib",
        "peak_allocated_gib",
        "peak_reserved_gib",
        "peak_device_gib",
        "nvml_peak_gib",
        "energy_j",
    }
)
#: Peak columns, best first: generate runs, then sweeps.
PEAKS = (
    "peak_device_gib",
    "peak_reserved_gib",
    "peak_allocated_gib",
    "nvml_peak_gib",
    "reserved_peak_gib",
    "alloc_peak_gib",
)
_KEYS = {
    "id",
    "text",
    "config",
    "reference",
    "metric",
    "metrics",
    "test",
    "expect",
    "margin",
    "relative_margin",
    "at_most",
    "at_least",
    "higher_is_better",
}


class ClaimsError(UsageError, ValueError):
    """A claims file that cannot be used (unreadable, not YAML, a claim missing a field or with a
    wrong one); the message names the file, the claim and the fix. The CLI exits with code 2."""


@dataclass(frozen=True)
class Claim:
    """One claim of a claims file (see the module doc for the fields)."""

    id: str
    text: str
    config: str
    metrics: tuple[str, ...]
    test: str
    reference: str | None = None
    expect: str = "better"
    margin: float = 0.0
    relative_margin: float | None = None
    at_most: float | None = None
    at_least: float | None = None
    higher_is_better: bool | None = None

    @property
    def about_resources(self) -> bool:
        """Speed or memory (measurable on random weights), not quality."""
        return all(m in RESOURCE_METRICS for m in self.metrics)

    def statement(self) -> str:
        """What is tested, in a few words (``ratio latency_s flux-a / flux-b ≤ 0.4``)."""
        bounds = " and ".join(
            f"{op} {b:g}" for op, b in (("≤", self.at_most), ("≥", self.at_least)) if b is not None
        )
        ms = ", ".join(self.metrics)
        if self.test == "paired_delta":
            margin = (
                f"{self.relative_margin:.0%} of the reference"
                if self.relative_margin is not None
                else f"{self.margin:g}"
            )
            word = "better than" if self.expect == "better" else "not worse than"
            return f"{ms}: {self.config} {word} {self.reference} (margin {margin}, paired)"
        if self.test == "ratio":
            return f"{ms}: {self.config} / {self.reference} {bounds}"
        return f"{ms} of {self.config} {bounds}"


@dataclass
class ClaimsFile:
    """A parsed claims file."""

    name: str
    claims: list[Claim]
    source: str
    description: str = ""


@dataclass
class Check:
    """One metric of a claim, evaluated: verdict, the figure with its CI and N, and why."""

    metric: str
    verdict: str
    detail: str
    value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n: int = 0


@dataclass
class ClaimResult:
    """A claim's verdict (combined over its checks) and a one-line reason."""

    claim: Claim
    verdict: str
    reason: str
    checks: list[Check] = field(default_factory=list)


# -- the file --------------------------------------------------------------------------------------
def _float(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ClaimsError(f"{where}: {key} must be a finite number, got {v!r}")
    return float(v)


def _claim(where: str, d: Any, seen: set[str]) -> Claim:
    if not isinstance(d, dict):
        raise ClaimsError(f"{where}: a claim is a mapping (id, text, config, metric, test...), got {d!r}")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise ClaimsError(
            f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    cid = d.get("id")
    if not isinstance(cid, str) or not cid:
        raise ClaimsError(f"{where}: every claim needs an 'id' (a short name)")
    where = f"{where} ({cid})"
    if cid in seen:
        raise ClaimsError(f"{where}: the id {cid!r} is used twice")
    seen.add(cid)
    if not isinstance(d.get("config"), str):
        raise ClaimsError(f"{where}: 'config' (the configuration the claim is about) is missing")
    if ("metric" in d) == ("metrics" in d):
        raise ClaimsError(f"{where}: give exactly one of 'metric: NAME' or 'metrics: [NAME, ...]'")
    ms = [d["metric"]] if "metric" in d else d["metrics"]
    if not isinstance(ms, list) or not ms or not all(isinstance(m, str) and m for m in ms):
        raise ClaimsError(f"{where}: 'metrics' must be a non-empty list of metric names")
    test = d.get("test", "paired_delta" if d.get("reference") else "value")
    if test not in TESTS:
        raise ClaimsError(f"{where}: test must be one of {', '.join(TESTS)}, got {test!r}")
    ref = d.get("reference")
    if test != "value" and not isinstance(ref, str):
        raise ClaimsError(f"{where}: test {test!r} compares two configurations: give 'reference'")
    if test == "value" and ref is not None:
        raise ClaimsError(f"{where}: test 'value' checks one configuration against bounds: drop 'reference'")
    expect = d.get("expect", "better")
    if expect not in EXPECT:
        raise ClaimsError(f"{where}: expect must be one of {', '.join(EXPECT)}, got {expect!r}")
    bounds = {k: _float(where, k, d[k]) if d.get(k) is not None else None for k in ("at_most", "at_least")}
    if test in ("ratio", "value") and bounds["at_most"] is None and bounds["at_least"] is None:
        raise ClaimsError(f"{where}: test {test!r} needs 'at_most' and/or 'at_least'")
    if test == "paired_delta" and (bounds["at_most"] is not None or bounds["at_least"] is not None):
        raise ClaimsError(f"{where}: test 'paired_delta' takes 'expect' and a margin, not at_most/at_least")
    margin = _float(where, "margin", d["margin"]) if "margin" in d else 0.0
    rel = _float(where, "relative_margin", d["relative_margin"]) if "relative_margin" in d else None
    if margin < 0 or (rel is not None and rel < 0):
        raise ClaimsError(f"{where}: margins are ≥ 0 (the direction comes from 'expect')")
    hib = d.get("higher_is_better")
    if hib is not None and not isinstance(hib, bool):
        raise ClaimsError(f"{where}: higher_is_better must be true or false")
    return Claim(
        cid,
        str(d.get("text") or cid),
        d["config"],
        tuple(ms),
        test,
        ref,
        expect,
        margin,
        rel,
        bounds["at_most"],
        bounds["at_least"],
        hib,
    )


def load_claims(source: str | Path | None = None) -> ClaimsFile:
    """Read a claims file: a path, or the name of a shipped one (``None``: ``alimama-flux``).

    Raises:
        ClaimsError: unreadable file, bad YAML, or a claim that does not follow the format.
    """
    name = "alimama-flux" if source is None else str(source)
    if name in BUILTIN and not Path(name).exists():
        text = resources.files("evalsuite.claims").joinpath(BUILTIN[name]).read_text(encoding="utf-8")
        where = f"claims {name} (shipped)"
    else:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClaimsError(
                f"cannot read the claims file {name} ({exc}); pass a YAML file or one of: {', '.join(BUILTIN)}"
            ) from None
        where = name
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ClaimsError(f"{where}: expected a mapping with a 'claims' list (see docs/reports.md#claims)")
    seen: set[str] = set()
    claims = [_claim(f"{where}: claims[{i}]", d, seen) for i, d in enumerate(data["claims"])]
    return ClaimsFile(
        str(data.get("name") or Path(name).stem), claims, where, str(data.get("description") or "")
    )


# -- evaluation ------------------------------------------------------------------------------------
def _num(df: Any, col: str) -> np.ndarray:
    import pandas as pd

    if col not in df.columns:
        return np.empty(0)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)


class _Run:
    """The few things claims read from a run: its rows by configuration, policies, metric info."""

    def __init__(self, rows: Any, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.rows = rows
        ok = rows[rows["status"] == "ok"] if len(rows) and "status" in rows.columns else rows
        self.ok = ok
        self.configs = set(meta.get("configs") or {}) | (
            {str(c) for c in rows["config"].dropna()} if len(rows) and "config" in rows.columns else set()
        )
        self.kind = str(meta.get("kind") or "generate")
        self.weights = dict(meta.get("weights") or {})
        for n, c in (meta.get("configs") or {}).items():
            if n not in self.weights and isinstance(c, dict) and c.get("weights"):
                self.weights[n] = c["weights"]

    def points(self, config: str) -> Any:
        """Rows of ``config``: its own rows, or a sweep's points ``config[...]``."""
        ok = self.ok
        if not len(ok):
            return ok
        c = ok["config"].astype(str)
        return ok[(c == config) | c.str.startswith(f"{config}[")]

    def has(self, config: str) -> bool:
        return config in self.configs or any(str(c).startswith(f"{config}[") for c in self.configs)

    def policy(self, config: str) -> str | None:
        if config in self.weights:
            return str(self.weights[config])
        for n, p in self.weights.items():
            if str(n).startswith(f"{config}["):
                return str(p)
        wp = self.meta.get("weights")
        return str(wp) if isinstance(wp, str) else None

    def metric_entry(self, config: str, metric: str) -> dict[str, Any]:
        e = ((self.meta.get("summary") or {}).get(config) or {}).get("metrics", {}).get(metric)
        return e if isinstance(e, dict) else {}

    def direction(self, metric: str) -> bool | None:
        for s in (self.meta.get("summary") or {}).values():
            e = (s.get("metrics") or {}).get(metric) or {}
            if e.get("higher_is_better") is not None:
                return bool(e["higher_is_better"])
        from evalsuite.report.tables import RESOURCES

        if metric in RESOURCES:
            return RESOURCES[metric][2]
        return False if metric in RESOURCE_METRICS else None

    def random_features(self, metric: str) -> bool:
        return any(
            ((s.get("metrics") or {}).get(metric) or {}).get("quality_evidence") is False
            for s in (self.meta.get("summary") or {}).values()
        )


def _peak_col(df: Any) -> str | None:
    return next((c for c in PEAKS if np.isfinite(_num(df, c)).any()), None)


def _column(run: _Run, metric: str, df: Any) -> str | None:
    """The rows' column for ``metric`` (aliases for peak memory and sweep latency)."""
    if metric == "peak_memory_gib":
        return _peak_col(df)
    if metric in ("latency_s", "latency") and not np.isfinite(_num(df, "latency_s")).any():
        return "s_per_image" if np.isfinite(_num(df, "s_per_image")).any() else None
    return metric if np.isfinite(_num(df, metric)).any() else None


def _unmeasurable(run: _Run, claim: Claim) -> str | None:
    for c in [claim.config] + ([claim.reference] if claim.reference else []):
        if not run.has(c):
            return f"configuration {c} is not in this run"
    policies = {p for c in (claim.config, claim.reference) if c for p in [run.policy(c)] if p}
    if claim.about_resources:
        if "tiny" in policies:
            return "tiny weights: small random models, their speed and memory are not the model's"
    else:
        weak = sorted(p for p in policies if p in ("tiny", "random"))
        if weak:
            return f"{' and '.join(weak)} weights carry no quality evidence"
    return None


def _needed(value: float, low: float, high: float, n: int, bound: float) -> str:
    """The CI half-width (and roughly the N) that would decide an interval straddling ``bound``."""
    half = (high - low) / 2
    gap = abs(value - bound)
    if gap == 0 or not math.isfinite(half) or half <= 0:
        return f"the estimate sits on the bound {bound:g}: no sample size decides it"
    need_n = math.ceil(n * (half / gap) ** 2)
    return f"a 95 % CI narrower than ±{gap:.3g} (now ±{half:.3g}) would decide it — about N≈{need_n}"


def _judge(
    metric: str,
    value: float,
    low: float,
    high: float,
    n: int,
    lo_bound: float | None,
    hi_bound: float | None,
    what: str,
) -> Check:
    """Verdict of an estimate against bounds (value ≥ lo_bound and/or value ≤ hi_bound)."""
    ci = math.isfinite(low) and math.isfinite(high)
    lo_e, hi_e = (low, high) if ci else (value, value)
    txt = f"{what} {value:.4g}" + (f" [{low:.4g}, {high:.4g}] N={n}" if ci else f" (N={n}, no interval)")
    verdicts = []
    for bound, above in ((lo_bound, True), (hi_bound, False)):
        if bound is None:
            continue
        if (lo_e > bound) if above else (hi_e < bound):
            verdicts.append((SUPPORTED, ""))
        elif (hi_e < bound) if above else (lo_e > bound):
            verdicts.append((CONTRADICTED, ""))
        elif not ci and n >= 1 and value == bound:
            verdicts.append((SUPPORTED, ""))
        else:
            verdicts.append((INCONCLUSIVE, _needed(value, low, high, n, bound)))
    if any(v == CONTRADICTED for v, _ in verdicts):
        return Check(metric, CONTRADICTED, txt, value, low, high, n)
    inc = [w for v, w in verdicts if v == INCONCLUSIVE]
    if inc:
        return Check(metric, INCONCLUSIVE, f"{txt}; {inc[0]}", value, low, high, n)
    return Check(metric, SUPPORTED, txt, value, low, high, n)


def _check(run: _Run, claim: Claim, metric: str) -> Check:
    mine = run.points(claim.config)
    col = _column(run, metric, mine)
    sweep = run.kind != "generate"
    if claim.test == "value":
        if col is None:
            entry = run.metric_entry(claim.config, metric)
            v = entry.get("value")
            if isinstance(v, (int, float)) and math.isfinite(float(v)):  # a set-level metric (FID)
                return _judge(
                    metric,
                    float(v),
                    math.nan,
                    math.nan,
                    int(entry.get("n") or 0),
                    claim.at_least,
                    claim.at_most,
                    f"{metric} (set-level)",
                )
            return Check(metric, NOT_MEASURABLE, f"{metric} is not measured for {claim.config} in this run")
        v = _num(mine, col)
        v = v[np.isfinite(v)]
        if metric == "peak_memory_gib" or col in PEAKS:
            peak = float(v.min() if sweep else v.max())
            what = f"peak {col} ({'lowest point' if sweep else 'maximum over images'})"
            return _judge(metric, peak, math.nan, math.nan, int(v.size), claim.at_least, claim.at_most, what)
        if metric in RESOURCE_METRICS:
            return _judge(
                metric,
                float(np.median(v)),
                math.nan,
                math.nan,
                int(v.size),
                claim.at_least,
                claim.at_most,
                f"median {col}",
            )
        from evalsuite.trackers.stats import bootstrap_mean

        est = bootstrap_mean(v)
        return _judge(
            metric, est.value, est.low, est.high, est.n, claim.at_least, claim.at_most, f"mean {col}"
        )
    assert claim.reference is not None
    theirs = run.points(claim.reference)
    ref_col = _column(run, metric, theirs)
    if col is None or ref_col is None:
        missing = claim.config if col is None else claim.reference
        return Check(metric, NOT_MEASURABLE, f"{metric} is not measured for {missing} in this run")
    keys = ["case_id", "seed"]
    both = mine.merge(theirs, on=keys, suffixes=("", "_ref")) if not sweep else mine.iloc[0:0]
    a = _num(both, f"{ref_col}_ref") if len(both) else np.empty(0)
    b = _num(both, col) if len(both) else np.empty(0)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if claim.test == "ratio":
        if col in PEAKS or metric == "peak_memory_gib":
            xa, xb = _num(theirs, ref_col), _num(mine, col)
            xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
            pick = np.min if sweep else np.max
            r = float(pick(xb) / pick(xa)) if xa.size and xb.size and pick(xa) > 0 else math.nan
            return _judge(
                metric,
                r,
                math.nan,
                math.nan,
                int(min(xa.size, xb.size)),
                claim.at_least,
                claim.at_most,
                f"ratio of peaks {claim.config}/{claim.reference}",
            )
        if a.size == 0:
            xa, xb = _num(theirs, ref_col), _num(mine, col)
            xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
            if not (xa.size and xb.size) or np.median(xa) == 0:
                return Check(metric, NOT_MEASURABLE, f"no {metric} to compare for {claim.reference}")
            r = float(np.median(xb) / np.median(xa))
            return _judge(
                metric,
                r,
                math.nan,
                math.nan,
                int(min(xa.size, xb.size)),
                claim.at_least,
                claim.at_most,
                f"ratio of medians {claim.config}/{claim.reference} (unpaired)",
            )
        from evalsuite.trackers.stats import paired_ratio_of_medians

        est = paired_ratio_of_medians(a, b)
        return _judge(
            metric,
            est.value,
            est.low,
            est.high,
            est.n,
            claim.at_least,
            claim.at_most,
            f"paired ratio of medians {claim.config}/{claim.reference}",
        )
    # paired_delta
    if a.size == 0:
        return Check(
            metric, NOT_MEASURABLE, f"no (case, seed) rows ok for both {claim.config} and {claim.reference}"
        )
    hib = claim.higher_is_better if claim.higher_is_better is not None else run.direction(metric)
    if hib is None:
        return Check(metric, NOT_MEASURABLE, f"the direction of {metric} is unknown: give higher_is_better")
    from evalsuite.compare.engine import paired_change
    from evalsuite.report.tables import Quantity

    q = Quantity(col, metric, metric, "", hib, "metric")
    ch = paired_change(claim.config, q, a, b)
    sign = 1.0 if hib else -1.0
    imp, lo, hi = sign * ch.change, min(sign * ch.low, sign * ch.high), max(sign * ch.low, sign * ch.high)
    margin = claim.margin if claim.relative_margin is None else claim.relative_margin * abs(float(a.mean()))
    bound = margin if claim.expect == "better" else -margin
    return _judge(
        metric,
        imp,
        lo,
        hi,
        ch.n,
        bound,
        None,
        f"paired improvement of {claim.config} over {claim.reference} (margin {bound:+.3g})",
    )


def _combine(checks: list[Check]) -> str:
    vs = [c.verdict for c in checks]
    if CONTRADICTED in vs:
        return CONTRADICTED
    if all(v == SUPPORTED for v in vs):
        return SUPPORTED
    if INCONCLUSIVE in vs:
        return INCONCLUSIVE
    return NOT_MEASURABLE


def evaluate_claims(claims: ClaimsFile | list[Claim], rows: Any, meta: dict[str, Any]) -> list[ClaimResult]:
    """Every claim's verdict on a run, from its rows (``samples.parquet`` as a pandas DataFrame) and
    ``run.json``."""
    run = _Run(rows, meta)
    items = claims.claims if isinstance(claims, ClaimsFile) else claims
    out = []
    for claim in items:
        why = _unmeasurable(run, claim)
        if why is not None:
            out.append(ClaimResult(claim, NOT_MEASURABLE, why))
            continue
        checks = []
        for m in claim.metrics:
            if not claim.about_resources and m not in RESOURCE_METRICS and run.random_features(m):
                checks.append(
                    Check(m, NOT_MEASURABLE, f"{m} was computed with random feature-network weights")
                )
            else:
                checks.append(_check(run, claim, m))
        verdict = _combine(checks)
        reason = "; ".join(
            f"{c.metric}: {c.verdict} — {c.detail}" if len(checks) > 1 else c.detail for c in checks
        )
        out.append(ClaimResult(claim, verdict, reason, checks))
    return out


def claims_exit_code(results: list[ClaimResult], strict: bool = False) -> int:
    """0: nothing contradicted (``strict``: every claim supported); 1 otherwise."""
    if any(r.verdict == CONTRADICTED for r in results):
        return 1
    if strict and not all(r.verdict == SUPPORTED for r in results):
        return 1
    return 0


def claims_table(results: list[ClaimResult]) -> tuple[list[str], list[list[str]]]:
    """(heads, rows) of the claims table as plain text cells."""
    heads = ["claim", "verdict", "what was tested", "evidence"]
    rows = [[f"{r.claim.id}: {r.claim.text}", r.verdict, r.claim.statement(), r.reason] for r in results]
    return heads, rows
