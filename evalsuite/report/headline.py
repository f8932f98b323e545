"""The headline of a run: which configuration to ship, how much faster it is, what it costs in quality.

One compact table — configurations ordered by family (runner) then steps (most first), each with its
key quality metrics (per-image means and the set-level FID/KID), seconds per image, peak memory and,
against its reference configuration, the speed-up and the **paired** quality deltas — and one line
per configuration saying it in words.

The reference of a configuration is ``--reference-config`` when given; otherwise its *28-step
sibling*: the configuration of the same runner with 28 steps (else the most steps) whose parameters
differ least from its own (``flux-cn-beta`` for ``flux-cn-beta-turbo8``). A configuration with no
sibling, or that is its own reference, has no deltas.

Deltas pair rows by (case_id, seed), ``ok`` on both sides, through
:func:`evalsuite.compare.engine.paired_change` (mean paired delta with its bootstrap 95 % CI; speed
as a paired ratio of medians with its CI) — the statistics of ``evalsuite compare``.

Pure functions of the rows (a pandas DataFrame) and ``run.json`` (:func:`build_headline`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evalsuite.errors import UsageError
from evalsuite.report.formatting import arrow, fmt
from evalsuite.report.tables import PEAK_COLUMNS, Quantity, discover_quantities
from evalsuite.trackers.stats import Estimate, bootstrap_mean, paired_ratio_of_medians
from evalsuite.vocab import NO_QUALITY_EVIDENCE

__all__ = [
    "KEY_METRICS",
    "LABELS",
    "SET_LEVEL",
    "Headline",
    "HeadlineRow",
    "ReferenceConfigError",
    "build_headline",
    "headline_markdown",
    "pick_references",
]

#: Per-image quality metrics the headline shows, in this order (the first :data:`MAX_ROW_METRICS`
#: present), followed by the set-level metrics of :data:`SET_LEVEL`.
KEY_METRICS = (
    "clip_score",
    "clip_score_masked",
    "imagereward",
    "pickscore",
    "hpsv21",
    "aesthetic",
    "unmasked_psnr",
    "lpips_pair",
    "unmasked_lpips",
)
MAX_ROW_METRICS = 4
#: Set-level metrics: (column in the headline, run.json summary metric, key in its entry).
SET_LEVEL = (("fid", "fid", "value"), ("kid", "fid", "kid"))
#: Short labels for the table heads and verdicts.
LABELS = {
    "clip_score": "CLIP",
    "clip_score_masked": "CLIP masked",
    "imagereward": "ImageReward",
    "pickscore": "PickScore",
    "hpsv21": "HPSv2.1",
    "aesthetic": "aesthetic",
    "unmasked_psnr": "unmasked PSNR",
    "unmasked_lpips": "unmasked LPIPS",
    "lpips_pair": "LPIPS vs ref.",
    "fid": "FID",
    "kid": "KID",
}
#: Metrics that already compare a configuration with another one (no delta of their own).
PAIR_METRICS = frozenset({"lpips_pair", "lpips_pair_masked"})
#: Below this many pairs an interval is marked as unreliable (``†``).
SMALL_N = 5
REFERENCE_STEPS = 28


class ReferenceConfigError(UsageError, ValueError):
    """``--reference-config`` names no configuration of the run (the message lists them)."""


@dataclass
class Cell:
    """A number of the headline with its interval (``nan`` when none) and N."""

    value: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    set_level: bool = False


@dataclass
class Delta:
    """A paired difference config − reference of one metric (from :func:`paired_change`)."""

    metric: str
    higher_is_better: bool | None
    value: float
    low: float
    high: float
    n: int


@dataclass
class HeadlineRow:
    """One configuration of the headline."""

    config: str
    family: str
    steps: int | None
    weights: str | None
    n_ok: int
    cells: dict[str, Cell]
    s_per_image: float
    peak_gib: float
    reference: str | None = None
    speedup: Estimate | None = None
    speedup_paired: bool = False
    memory_ratio: float = math.nan
    deltas: list[Delta] = field(default_factory=list)
    n_pairs: int = 0
    verdict: str = ""

    @property
    def quality_evidence(self) -> bool:
        return self.weights not in NO_QUALITY_EVIDENCE


@dataclass
class Headline:
    """The headline table: metric columns (name, head) and rows, plus notes."""

    metrics: list[tuple[str, str]]
    rows: list[HeadlineRow]
    memory_column: str | None
    notes: list[str] = field(default_factory=list)

    def row(self, config: str) -> HeadlineRow | None:
        return next((r for r in self.rows if r.config == config), None)


# -- references ------------------------------------------------------------------------------------
def _steps(c: dict[str, Any]) -> int | None:
    s = (c.get("params") or {}).get("steps")
    if s is None:
        return None
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def _differing(a: dict[str, Any], b: dict[str, Any]) -> int:
    pa, pb = a.get("params") or {}, b.get("params") or {}
    return sum(pa.get(k) != pb.get(k) for k in set(pa) | set(pb))


def pick_references(
    configs: dict[str, dict[str, Any]], reference: str | None = None
) -> dict[str, str | None]:
    """Per configuration, the configuration it is compared with (``None``: none, or itself).

    Args:
        configs: ``run.json``'s ``configs`` (runner, params).
        reference: one configuration every other is compared with (``--reference-config``).

    Raises:
        ReferenceConfigError: when ``reference`` is not one of ``configs``.
    """
    if reference is not None:
        if reference not in configs:
            raise ReferenceConfigError(
                f"--reference-config {reference!r} is not a configuration of this run "
                f"(it has: {', '.join(configs) or 'none'})"
            )
        return {c: (None if c == reference else reference) for c in configs}
    out: dict[str, str | None] = {}
    for name, c in configs.items():
        family = [n for n, o in configs.items() if o.get("runner") == c.get("runner")]
        steps = {n: _steps(configs[n]) for n in family}
        known = [s for s in steps.values() if s is not None]
        if not known:
            out[name] = None
            continue
        target = REFERENCE_STEPS if REFERENCE_STEPS in known else max(known)
        if steps[name] == target:
            out[name] = None  # a reference itself
            continue
        cands = [n for n in family if steps[n] == target and n != name]
        out[name] = min(cands, key=lambda n: (_differing(c, configs[n]), n)) if cands else None
    return out


def _order(configs: dict[str, dict[str, Any]], names: list[str]) -> list[str]:
    families: list[str] = []
    for n in names:
        f = str((configs.get(n) or {}).get("runner"))
        if f not in families:
            families.append(f)

    def key(n: str) -> tuple[int, int, str]:
        c = configs.get(n) or {}
        s = _steps(c)
        return (families.index(str(c.get("runner"))), -(s if s is not None else -1), n)

    return sorted(names, key=key)


# -- the table -------------------------------------------------------------------------------------
def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.empty(0)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def _setlevel(meta: dict[str, Any], config: str, metric: str, key: str) -> Cell | None:
    entry = ((meta.get("summary") or {}).get(config) or {}).get("metrics", {}).get(metric) or {}
    v = entry.get(key)
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    if math.isnan(x):
        return None
    return Cell(x, n=int(entry.get("n") or 0), set_level=True)


def build_headline(rows: pd.DataFrame, meta: dict[str, Any], reference: str | None = None) -> Headline:
    """The headline of a run from its rows (``samples.parquet`` as a DataFrame) and ``run.json``.

    Raises:
        ReferenceConfigError: when ``reference`` names no configuration of the run.
    """
    configs: dict[str, dict[str, Any]] = dict(meta.get("configs") or {})
    names = list(configs)
    if len(rows) and "config" in rows.columns:
        for c in rows["config"].dropna().unique():
            if str(c) not in configs:
                configs[str(c)] = {}
                names.append(str(c))
    refs = pick_references(configs, reference)
    ok = rows[rows["status"] == "ok"] if len(rows) and "status" in rows.columns else rows
    quantities = {q.name: q for q in discover_quantities(meta, rows)}
    per_row = [
        m for m in KEY_METRICS if m in quantities and quantities[m].column and len(_finite(_num(ok, m)))
    ]
    per_row = per_row[:MAX_ROW_METRICS]
    set_cols = [col for col, metric, key in SET_LEVEL if any(_setlevel(meta, c, metric, key) for c in names)]
    heads = []
    for m in per_row + set_cols:
        hib = quantities[m].higher_is_better if m in quantities else (False if m in ("fid", "kid") else None)
        heads.append((m, f"{LABELS.get(m, m)} {arrow(hib)}".strip()))
    mem_col = next((c for c in PEAK_COLUMNS if len(_finite(_num(ok, c)))), None)
    weights = meta.get("weights") or {}
    out: list[HeadlineRow] = []
    for config in _order(configs, names):
        sub = ok[ok["config"] == config] if len(ok) else ok
        cells: dict[str, Cell] = {}
        for m in per_row:
            est = bootstrap_mean(_finite(_num(sub, m)))
            if est.n:
                cells[m] = Cell(est.value, est.low, est.high, est.n)
        for col, metric, key in SET_LEVEL:
            if col in set_cols:
                c = _setlevel(meta, config, metric, key)
                if c is not None:
                    cells[col] = c
        lat = _finite(_num(sub, "latency_s"))
        mem = _finite(_num(sub, mem_col)) if mem_col else np.empty(0)
        row = HeadlineRow(
            config,
            str(configs[config].get("runner") or "?"),
            _steps(configs[config]),
            weights.get(config) or configs[config].get("weights"),
            len(sub),
            cells,
            float(np.median(lat)) if lat.size else math.nan,
            float(mem.max()) if mem.size else math.nan,
        )
        ref = refs.get(config)
        if ref is not None:
            _compare(row, ref, ok, quantities, per_row, mem_col)
        out.append(row)
    head = Headline(heads, out, mem_col)
    for r in out:
        r.verdict = verdict(r, head)
    if any(not r.quality_evidence for r in out):
        weak = sorted({str(r.weights) for r in out if not r.quality_evidence})
        head.notes.append(
            f"{' and '.join(weak)} weights: the quality numbers here carry no quality evidence "
            "(speed and memory on random weights are real)."
        )
    if any(r.n_pairs and r.n_pairs < SMALL_N for r in out):
        head.notes.append(f"† N < {SMALL_N} (images or pairs): the interval is not reliable.")
    if set_cols:
        head.notes += _reference_notes(meta, [r.config for r in out if "fid" in r.cells or "kid" in r.cells])
    return head


def _reference_notes(meta: dict[str, Any], configs: list[str]) -> list[str]:
    """The reference set FID and KID are measured against (one line; per configuration when they differ)."""
    sets: dict[str, list[str]] = {}
    for c in configs:
        f = ((meta.get("summary") or {}).get(c) or {}).get("metrics", {}).get("fid") or {}
        if f.get("reference_set"):
            sets.setdefault(f"{f['reference_set']} (reference N={f.get('n_ref')})", []).append(c)
    if not sets:
        return []
    if len(sets) == 1:
        return [f"FID and KID are measured against {next(iter(sets))}."]
    return [
        "FID and KID reference sets differ: "
        + "; ".join(f"{', '.join(cs)}: {what}" for what, cs in sets.items())
        + " (FIDs against different sets are not comparable)."
    ]


def _compare(
    row: HeadlineRow,
    ref: str,
    ok: pd.DataFrame,
    quantities: dict[str, Quantity],
    per_row: list[str],
    mem_col: str | None,
) -> None:
    from evalsuite.compare.engine import paired_change

    row.reference = ref
    mine, theirs = ok[ok["config"] == row.config], ok[ok["config"] == ref]
    if not len(mine) or not len(theirs):
        return
    both = mine.merge(theirs, on=["case_id", "seed"], suffixes=("", "_ref"))
    row.n_pairs = len(both)
    a, b = _num(both, "latency_s_ref"), _num(both, "latency_s")
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.any():
        row.speedup = paired_ratio_of_medians(b[keep], a[keep])  # median(reference) / median(config)
        row.speedup_paired = True
    else:
        la, lb = _finite(_num(theirs, "latency_s")), _finite(_num(mine, "latency_s"))
        if la.size and lb.size and np.median(lb) > 0:
            row.speedup = Estimate(float(np.median(la) / np.median(lb)), math.nan, math.nan, 0)
    if mem_col:
        ma, mb = _finite(_num(theirs, mem_col)), _finite(_num(mine, mem_col))
        if ma.size and mb.size and ma.max() > 0:
            row.memory_ratio = float(mb.max() / ma.max())
    for m in per_row:
        if m in PAIR_METRICS or f"{m}_ref" not in both.columns:
            continue
        va, vb = _num(both, f"{m}_ref"), _num(both, m)
        keep = np.isfinite(va) & np.isfinite(vb)
        if not keep.any():
            continue
        ch = paired_change(row.config, quantities[m], va[keep], vb[keep])
        row.deltas.append(Delta(m, ch.higher_is_better, ch.change, ch.low, ch.high, ch.n))


# -- words -----------------------------------------------------------------------------------------
def _signed(x: float) -> str:
    return ("+" if x > 0 else "") + fmt(x, 3).replace("-", "−")


def _ci(low: float, high: float, n: int) -> str:
    if math.isnan(low):
        return f"(N={n}, no interval)"
    mark = "†" if n < SMALL_N else ""
    return f"[{fmt(low, 3)}, {fmt(high, 3)}]{mark}".replace("-", "−")


def delta_words(d: Delta) -> str:
    """``CLIP −0.3 [−0.6, −0.1] (worse)`` or ``unmasked PSNR unchanged (+0.1 [−0.2, 0.3])``."""
    label = LABELS.get(d.metric, d.metric)
    ci = _ci(d.low, d.high, d.n)
    if math.isnan(d.low) or d.low <= 0 <= d.high:
        return f"{label} unchanged ({_signed(d.value)} {ci})"
    better = (d.value > 0) == bool(d.higher_is_better) if d.higher_is_better is not None else None
    word = "" if better is None else (" (better)" if better else " (worse)")
    return f"{label} {_signed(d.value)} {ci}{word}"


def verdict(r: HeadlineRow, head: Headline) -> str:
    """The one line of words for ``r`` (see the module doc)."""
    parts: list[str] = []
    speed = f"{fmt(r.s_per_image, 3)} s/image" if not math.isnan(r.s_per_image) else "no timing"
    if r.reference is None:
        of = [o.config for o in head.rows if o.reference == r.config]
        what = f"reference of {', '.join(of)}" if of else "no sibling to compare with in this run"
        parts.append(f"{what}; {speed}")
        if not math.isnan(r.peak_gib):
            parts[-1] += f", peak {fmt(r.peak_gib, 3)} GiB"
    elif r.n_ok == 0:
        parts.append(f"no ok rows to compare with {r.reference}")
    else:
        s = r.speedup
        if s is not None and not math.isnan(s.value):
            ci = "" if math.isnan(s.low) else f" [{fmt(s.low, 3)}, {fmt(s.high, 3)}]"
            if s.value >= 1:
                parts.append(f"{fmt(s.value, 2)}×{ci} faster than {r.reference}")
            else:
                parts.append(
                    f"{fmt(1 / s.value, 2)}× slower than {r.reference} (speed-up {fmt(s.value, 2)}{ci})"
                )
        else:
            parts.append(f"vs {r.reference}: no timing to compare")
        if not math.isnan(r.memory_ratio):
            parts[-1] += f", peak memory ×{fmt(r.memory_ratio, 3)}"
        lp = r.cells.get("lpips_pair")
        if lp is not None:
            parts.append(f"LPIPS to {r.reference} {fmt(lp.value, 3)} {_ci(lp.low, lp.high, lp.n)}")
        if r.deltas:
            parts.append(f"paired over {r.n_pairs} case×seed: " + "; ".join(delta_words(d) for d in r.deltas))
        elif r.n_pairs == 0:
            parts.append("no (case, seed) in common: no paired quality deltas")
    if not r.quality_evidence:
        parts.append(f"no quality evidence ({r.weights} weights)")
    return f"{r.config}: " + "; ".join(parts)


# -- rendering -------------------------------------------------------------------------------------
HEADS_BEFORE = ["configuration", "steps", "N"]


def table(head: Headline) -> tuple[list[str], list[list[str]]]:
    """(heads, rows) of the headline table as plain text cells."""
    heads = HEADS_BEFORE + [h for _, h in head.metrics] + ["s/image ↓"]
    if head.memory_column:
        heads.append("peak GiB ↓")
    heads += ["vs", "speed-up"]
    rows = []
    for r in head.rows:
        cells = [r.config, fmt(r.steps), str(r.n_ok)]
        for m, _ in head.metrics:
            c = r.cells.get(m)
            cells.append(
                "—" if c is None else fmt(c.value, 4) + ("†" if 0 < c.n < SMALL_N and not c.set_level else "")
            )
        cells.append(fmt(r.s_per_image, 3))
        if head.memory_column:
            cells.append(fmt(r.peak_gib, 3))
        cells.append(r.reference or "—")
        s = r.speedup
        cells.append("—" if s is None or math.isnan(s.value) else f"{fmt(s.value, 3)}×")
        rows.append(cells)
    return heads, rows


def headline_markdown(head: Headline) -> list[str]:
    """The headline as Markdown lines: the table, the verdicts, the notes."""
    from evalsuite.report.formatting import md, md_table

    heads, rows = table(head)
    lines = md_table([md(h) for h in heads], [[md(c) for c in r] for r in rows])
    lines += [f"- {md(r.verdict)}" for r in head.rows] + [""]
    if head.notes:
        lines += [md(n) for n in head.notes] + [""]
    return lines


def headline_text(head: Headline) -> str:
    """The headline for a terminal: an aligned table and the verdicts."""
    heads, rows = table(head)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out += [""] + [r.verdict for r in head.rows] + head.notes
    return "\n".join(out)
