"""Regression baselines: what one configuration produced on one dataset, stored as JSON, and the
comparisons that fail readably when a new run is worse.

A baseline (``reports/baselines/<config>__<dataset>__<weights>.json``, schema
``evalsuite.baseline/1``) holds, for one configuration × dataset × weights policy:

* ``metrics`` — every summary metric of the run (``run.json`` ``summary[config]["metrics"]``):
  value, n, unit, direction and a 95% bootstrap interval when per-sample values exist;
* ``images`` — a content fingerprint per generated image: a 32×32 box-filtered RGB thumbnail
  (base64 of the raw bytes) and per-channel mean/std in 0–255 units. On a deterministic set-up
  (``tiny`` weights on CPU) a changed configuration moves these thumbnails measurably, while
  float noise across machines moves them by far less than the default tolerance;
* ``dataset`` (name, fingerprint, case ids), ``seeds``, ``weights``, the resolved ``params`` and
  ``overrides`` of the configuration, and ``provenance`` (commit, versions, device, platform,
  run id, creation time).

A comparison refuses (:class:`BaselineMismatch`) when the dataset fingerprint, the case/seed set
or the weights policy differ: numbers from different data or weights are not comparable.
Everything here is independent of pytest; :mod:`evalsuite.testing.pytest_plugin` wires it to fixtures.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import platform
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from evalsuite.compare.thresholds import (
    CompareInputError,
    Threshold,
    ThresholdSpec,
    Verdict,
    as_thresholds,
    for_config,
    judge,
    resolve_direction,
)
from evalsuite.results.run import Run
from evalsuite.trackers.stats import bootstrap_statistic

SCHEMA = "evalsuite.baseline/1"
THUMB_SIZE = 32
DEFAULT_IMAGE_TOLERANCE = 0.25
"""Default largest mean absolute thumbnail difference (0–255 units) still counted as "same image"."""


class BaselineError(CompareInputError):
    """A baseline that cannot be read or written (missing file, wrong schema, failed run)."""


class MachineMismatchWarning(UserWarning):
    """Machine-dependent metrics were not compared: the baseline comes from another machine."""


class BaselineMismatch(CompareInputError):
    """A run and a baseline that must not be compared: different dataset fingerprint, cases/seeds,
    weights policy or configuration name. The message names both sides and the fix."""


ConfigRun = Run
"""One configuration's part of a finished run (what the ``evalsuite_run`` fixture returns): a
:class:`~evalsuite.results.run.Run` narrowed with :meth:`~evalsuite.results.run.Run.select`, whose
``samples``, ``summary``, ``weights`` and ``params`` are that configuration's (``result`` is the whole run)."""


def baseline_name(config: str, dataset: str, weights: str) -> str:
    """File stem of the baseline of ``config`` × ``dataset`` × ``weights`` (unsafe characters → ``_``)."""
    return "__".join(re.sub(r"[^A-Za-z0-9_.\-]", "_", p) for p in (config, dataset, weights))


# -- per-sample statistics ---------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float], statistic: str = "mean", n_boot: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile-bootstrap 95 % interval of the ``mean`` or ``median`` of ``values`` (NaNs dropped),
    through :func:`evalsuite.trackers.stats.bootstrap_statistic` (scipy.stats.bootstrap).

    Returns ``None`` for fewer than two finite values. Deterministic (fixed ``seed``).
    """
    est = bootstrap_statistic([math.nan if x is None else x for x in values], statistic, n_boot, seed)
    if est.n < 2:
        return None
    return est.low, est.high


def metric_ci(entry: Mapping[str, Any], per_sample: Sequence[float] | None) -> tuple[float, float] | None:
    """The 95% interval of a summary metric: the metric's own ``ci_low``/``ci_high`` (or ``ci``)
    when it reports one, else a bootstrap of its per-sample values when the summary value is their
    mean or median; ``None`` for set-level metrics (FID...) without their own interval."""
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        return float(entry["ci_low"]), float(entry["ci_high"])
    if isinstance(entry.get("ci"), list | tuple) and len(entry["ci"]) == 2:
        return float(entry["ci"][0]), float(entry["ci"][1])
    if not per_sample:
        return None
    v = [float(x) for x in per_sample if x is not None and math.isfinite(float(x))]
    value = entry.get("value")
    if not v or value is None or not math.isfinite(float(value)):
        return None
    tol = 1e-9 * max(1.0, abs(float(value)))
    if abs(float(np.mean(v)) - float(value)) <= tol:
        return bootstrap_ci(v, "mean")
    if abs(float(np.median(v)) - float(value)) <= tol:
        return bootstrap_ci(v, "median")
    return None


def _per_sample(run: ConfigRun, name: str) -> list[float] | None:
    df = run.samples
    if name not in df.columns:
        return None
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    return [float(x) for x in pd.to_numeric(ok[name], errors="coerce").dropna()]


# -- image fingerprints --------------------------------------------------------------------------


def image_fingerprint(path: Path, size: int = THUMB_SIZE) -> dict[str, Any]:
    """Content fingerprint of one image: box-filtered ``size``×``size`` RGB thumbnail (base64 of
    the raw uint8 bytes), and per-channel mean/std of the full image in 0–255 units."""
    img = Image.open(path).convert("RGB")
    arr = np.asarray(img, dtype=np.float64)
    thumb = np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)
    return {
        "size": list(img.size),
        "mean": [round(float(x), 4) for x in arr.mean(axis=(0, 1))],
        "std": [round(float(x), 4) for x in arr.std(axis=(0, 1))],
        "thumb": base64.b64encode(thumb.tobytes()).decode("ascii"),
        "thumb_size": size,
    }


def _thumb(fp: Mapping[str, Any]) -> np.ndarray:
    s = int(fp["thumb_size"])
    return np.frombuffer(base64.b64decode(fp["thumb"]), dtype=np.uint8).reshape(s, s, 3).astype(np.float64)


def thumbnail_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Mean absolute difference of two fingerprints' thumbnails, in 0–255 units.

    Raises:
        BaselineError: when the thumbnails have different sizes.
    """
    if a["thumb_size"] != b["thumb_size"]:
        raise BaselineError(f"thumbnail sizes differ ({a['thumb_size']} vs {b['thumb_size']})")
    return float(np.abs(_thumb(a) - _thumb(b)).mean())


# -- the baseline --------------------------------------------------------------------------------


@dataclass
class Baseline:
    """A stored baseline (see module doc). ``path`` is where it was read from or written to."""

    data: dict[str, Any]
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def config(self) -> str:
        return str(self.data["config"])

    @property
    def weights(self) -> str:
        return str(self.data["weights"])

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("metrics", {}))

    @property
    def images(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("images", {}))

    def where(self) -> str:
        """One line naming the file and its provenance, for failure messages."""
        p = self.data.get("provenance", {})
        dev = p.get("device", {}) or {}
        vers = p.get("versions", {}) or {}
        m = p.get("machine") or {}
        cpu = f", {m.get('cpu')} ×{m.get('cores')}" if m.get("cpu") else ""
        return (
            f"baseline {self.path or self.name} (commit {str(p.get('commit') or 'unknown')[:12]}, "
            f"{dev.get('type', '?')} {dev.get('name', '')}{cpu}, torch {vers.get('torch', '?')}, "
            f"created {p.get('created', '?')})"
        )

    def save(self, path: Path | None = None) -> Path:
        """Write the baseline as indented JSON (atomically); returns the path."""
        from evalsuite.paths import atomic_write_json

        target = Path(path or self.path or f"{self.name}.json")
        atomic_write_json(target, self.data)
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline file.

        Raises:
            BaselineError: when the file is missing (naming the update option), not JSON, or of
                another schema.
        """
        p = Path(path)
        if not p.is_file():
            raise BaselineError(
                f"no baseline {p}; create it by running the same tests with --evalsuite-update-baselines "
                "(on the commit and machine you trust), then commit the JSON file"
            )
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BaselineError(
                f"{p}: not valid JSON ({exc}); regenerate it with --evalsuite-update-baselines"
            ) from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise BaselineError(
                f"{p}: not an evalsuite baseline (schema {data.get('schema') if isinstance(data, dict) else None!r}, "
                f"expected {SCHEMA!r})"
            )
        return cls(data, p)

    @classmethod
    def from_run(cls, run: ConfigRun, name: str | None = None) -> Baseline:
        """Build a baseline from a finished configuration run.

        Raises:
            BaselineError: when rows of the run failed or nothing was generated (a baseline must
                describe a healthy run).
        """
        counts = run.summary.get("counts", {})
        df = run.samples
        bad = df[df["status"] == "error"] if len(df) else df
        if len(bad) or not len(df):
            errs = "; ".join(sorted({str(e) for e in bad.get("error", [])}))[:500] if len(bad) else "no rows"
            raise BaselineError(
                f"refusing to write a baseline for {run.selected!r} from {run.run_dir}: "
                f"{len(bad)} of {len(df)} rows failed ({errs})"
            )
        metrics: dict[str, Any] = {}
        for mname, entry in run.summary.get("metrics", {}).items():
            ci = metric_ci(entry, _per_sample(run, mname))
            metrics[mname] = {**entry, "ci": list(ci) if ci else None, "per_sample": _per_sample(run, mname)}
        images = {}
        for r in df.itertuples():
            if r.status == "ok" and isinstance(r.image, str):
                images[f"{r.case_id}-{int(r.seed)}"] = image_fingerprint(run.run_dir / r.image)
        env = run.run_meta.environment or {}
        conf = run.configs[run.selected]
        data = {
            "schema": SCHEMA,
            "name": name or baseline_name(run.selected, run.dataset["name"], run.weights),
            "config": run.selected,
            "weights": run.weights,
            "quality_evidence": run.weights == "hub",
            "dataset": {
                "name": run.dataset["name"],
                "fingerprint": run.dataset["fingerprint"],
                "cases": sorted({str(c) for c in df["case_id"]}),
            },
            "seeds": run.run_meta.seeds,
            "keys": run.keys(),
            "runner": conf.runner,
            "params": conf.params,
            "overrides": conf.overrides,
            "effective": conf.effective,
            "counts": counts,
            "metrics": metrics,
            "images": images,
            "provenance": {
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": env.get("git_commit"),
                "versions": env.get("versions"),
                "device": env.get("device"),
                "platform": env.get("platform"),
                "run_id": run.run_meta.run_id,
                "machine": run_machine(run),
            },
        }
        return cls(data)

    @property
    def machine(self) -> dict[str, Any] | None:
        """The machine that wrote the baseline (``None`` for baselines written before it was recorded)."""
        m = (self.data.get("provenance") or {}).get("machine")
        return dict(m) if isinstance(m, dict) else None


# -- machines ------------------------------------------------------------------------------------

OTHER_MACHINE_POLICIES = ("skip", "compare")
OTHER_MACHINE_DEFAULT = "skip"
"""What :func:`compare_metrics` does with a machine-dependent metric (latency, timings, memory,
energy) of a baseline written on another machine: ``skip`` it with the reason, or ``compare`` it
anyway. The pytest plugin sets it from ``--evalsuite-other-machine``."""

MACHINE_KEYS = ("arch", "system", "cpu", "cores", "device", "device_name")
_MACHINE_UNITS = frozenset({"s", "ms", "us", "J", "Wh", "W", "GiB", "MiB", "GB", "MB"})
_MACHINE_NAMES = frozenset({"latency", "mfu", "power_w", "tflops"})
_MACHINE_SUFFIXES = ("_s", "_ms", "_j", "_wh", "_w", "_gib", "_mib")


def _cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def current_machine(device: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """This host (architecture, system, CPU model, logical cores) and the run's accelerator
    (``device`` as ``run.json`` records it: ``type`` and, for GPUs, ``name``)."""
    device = device or {}
    dtype = str(device.get("type") or "cpu")
    return {
        "arch": platform.machine(),
        "system": platform.system(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "device": dtype,
        "device_name": str(device.get("name")) if dtype != "cpu" and device.get("name") else None,
    }


def run_machine(run: ConfigRun) -> dict[str, Any]:
    """The machine of ``run``: this host with the accelerator recorded in its ``run.json`` (runs are
    compared and baselines written in the process that made them)."""
    return current_machine((run.run_meta.environment or {}).get("device"))


def machine_differences(recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What differs between a baseline's machine and ``current`` (``key: baseline → now``); one
    entry saying so when the baseline recorded no machine."""
    if not recorded:
        return ["the baseline records no machine (written before evalsuite recorded it)"]
    return [
        f"{k}: {recorded.get(k)!r} → {current.get(k)!r}"
        for k in MACHINE_KEYS
        if recorded.get(k) != current.get(k)
    ]


def machine_dependent(name: str, entry: Mapping[str, Any] | None = None) -> bool:
    """Whether metric ``name`` measures the machine rather than the outputs: latency and other
    timings, memory, energy, power, MFU (by name, unit or column suffix)."""
    unit = str((entry or {}).get("unit") or "")
    return name in _MACHINE_NAMES or unit in _MACHINE_UNITS or name.endswith(_MACHINE_SUFFIXES)


# -- comparisons ---------------------------------------------------------------------------------


def check_comparable(run: ConfigRun, baseline: Baseline) -> None:
    """Refuse comparisons across configurations, weights policies, dataset fingerprints or case sets.

    Raises:
        BaselineMismatch: naming what differs, both values, and how to refresh the baseline.
    """
    fix = (
        "; refresh the baseline with --evalsuite-update-baselines if the change is intended, "
        "or select the matching baseline"
    )
    where = baseline.where()
    if run.selected != baseline.config:
        raise BaselineMismatch(
            f"configuration {run.selected!r} compared with the baseline of {baseline.config!r} ({where})"
        )
    if run.weights != baseline.weights:
        raise BaselineMismatch(
            f"{run.selected}: weights policy {run.weights!r} differs from the baseline's {baseline.weights!r} "
            f"({where}); numbers from different weights are not comparable{fix}"
        )
    b_fp, r_fp = baseline.data["dataset"]["fingerprint"], run.dataset["fingerprint"]
    if b_fp != r_fp:
        raise BaselineMismatch(
            f"{run.selected}: dataset {run.dataset['name']!r} fingerprint {r_fp[:16]}… differs from the baseline's "
            f"{baseline.data['dataset']['name']!r} {b_fp[:16]}… ({where}): the prompts, masks or images changed"
            f"{fix}"
        )
    b_keys, r_keys = set(baseline.data.get("keys", [])), set(run.keys())
    if b_keys != r_keys:
        only_b, only_r = sorted(b_keys - r_keys), sorted(r_keys - b_keys)
        raise BaselineMismatch(
            f"{run.selected}: the run's cases/seeds differ from the baseline's ({where}): only in the baseline "
            f"{only_b[:5]}, only in the run {only_r[:5]} (same limit= and seeds= as when the baseline was written?)"
            f"{fix}"
        )


def params_diff(run: ConfigRun, baseline: Baseline) -> list[str]:
    """Configuration parameters that differ from those the baseline was written with (``k: a → b``)."""
    old, new = baseline.data.get("params") or {}, run.params
    return [
        f"{k}: {old.get(k)!r} → {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


@dataclass
class MetricCheck:
    """The outcome of comparing one metric with its baseline (a :class:`Verdict` in metric units).

    Attributes:
        allowed: the allowed worsening in the metric's unit (``max_regression``, or
            ``max_regression`` × |baseline| for a relative threshold).
        verdict: the threshold model's judgement (:func:`~evalsuite.compare.thresholds.judge`).
    """

    config: str
    metric: str
    baseline: float
    new: float
    ci: tuple[float, float] | None
    n: int
    unit: str
    higher_is_better: bool
    threshold: Threshold
    allowed: float
    regressed: bool
    verdict: Verdict | None = None
    skipped: str = ""
    """Why the metric was not compared (a machine-dependent metric of another machine's baseline)."""

    @property
    def worsening(self) -> float:
        """How much worse the new value is (negative: better), in the metric's unit."""
        return (self.baseline - self.new) if self.higher_is_better else (self.new - self.baseline)

    def message(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        ci = (
            f"95% CI [{self.ci[0]:.4g}, {self.ci[1]:.4g}]" if self.ci else "no CI (set-level metric or n < 2)"
        )
        if self.skipped:
            return f"skipped: {self.config} / {self.metric}: {self.skipped}"
        direction = "higher is better" if self.higher_is_better else "lower is better"
        verdict = "REGRESSED" if self.regressed else "ok"
        worse = (
            (
                f"worse by {self.worsening:.4g}{u}"
                if self.worsening > 0
                else f"better by {-self.worsening:.4g}{u}"
            )
            if math.isfinite(self.new)
            else "is not a number"
        )
        note = f"; {self.verdict.detail}" if self.verdict is not None and self.verdict.detail else ""
        return (
            f"{verdict}: {self.config} / {self.metric}: baseline {self.baseline:.4g}{u} → new {self.new:.4g}{u} "
            f"({ci}, n={self.n}); {worse}, {direction}; allowed worsening {self.allowed:.4g}{u} "
            f"(threshold {self.threshold.describe()}){note}"
        )


@dataclass
class ImageCheck:
    """Per-image thumbnail differences against the baseline (0–255 units)."""

    config: str
    differences: dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_IMAGE_TOLERANCE

    @property
    def changed(self) -> dict[str, float]:
        return {k: v for k, v in self.differences.items() if not v <= self.tolerance}


def compare_metrics(
    run: ConfigRun,
    baseline: Baseline,
    metrics: Iterable[str] | None = None,
    thresholds: ThresholdSpec = None,
    other_machine: str | None = None,
) -> list[MetricCheck]:
    """Compare ``metrics`` (default: every metric with a threshold for this configuration) of ``run``
    with ``baseline``, by the threshold model of :mod:`evalsuite.compare.thresholds` (the same
    rule as ``evalsuite compare``: a summary value B against the baseline's A).

    A machine-dependent metric (:func:`machine_dependent`: latency, timings, memory, energy) of a
    baseline written on another machine (:func:`machine_differences`; a baseline without a
    recorded machine counts as another one) is not compared under ``other_machine="skip"`` (the
    default, :data:`OTHER_MACHINE_DEFAULT`): its check has ``skipped`` set to the reason.

    Raises:
        BaselineMismatch: see :func:`check_comparable`.
        BaselineError: a metric without a threshold, or one absent from the baseline.
        DirectionError: a metric whose direction neither the threshold nor the baseline records.
        ThresholdError: a bad threshold.
    """
    check_comparable(run, baseline)
    policy = other_machine or OTHER_MACHINE_DEFAULT
    if policy not in OTHER_MACHINE_POLICIES:
        raise BaselineError(f"other_machine must be one of {OTHER_MACHINE_POLICIES}, got {policy!r}")
    elsewhere = machine_differences(baseline.machine, run_machine(run))
    ths = {t.metric: t for t in for_config(as_thresholds(thresholds), run.selected)}
    names = list(metrics) if metrics is not None else list(ths)
    if not names:
        raise BaselineError(
            "no metrics to compare: pass metrics=[...] and thresholds (a thresholds YAML file, a list of "
            "entries, or {name: allowed worsening})"
        )
    run_metrics = run.summary.get("metrics", {})
    out = []
    for name in names:
        if name not in ths:
            raise BaselineError(
                f"{run.selected}: no threshold for metric {name!r}; pass thresholds={{{name!r}: "
                "allowed worsening in its unit}}, {'rel': 0.05}, or a thresholds YAML entry"
            )
        if name not in baseline.metrics:
            raise BaselineError(
                f"{run.selected}: metric {name!r} is not in {baseline.where()} (it has "
                f"{sorted(baseline.metrics)}); refresh it with --evalsuite-update-baselines"
            )
        b = baseline.metrics[name]
        t = ths[name]
        entry = run_metrics.get(name)
        if policy == "skip" and elsewhere and machine_dependent(name, b):
            why = (
                f"machine-dependent metric not compared with a baseline from another machine "
                f"({'; '.join(elsewhere)}); speed belongs to benchmarks/ or to baselines written on this "
                "runner (refresh with --evalsuite-update-baselines here, or pass "
                "--evalsuite-other-machine=compare to compare anyway)"
            )
            out.append(
                MetricCheck(
                    run.selected, name, float(b["value"]), float(entry["value"]) if entry else math.nan, None,
                    int(entry.get("n", 0)) if entry else 0, str(b.get("unit", "")),
                    bool(b.get("higher_is_better", False)), t, math.nan, False, None, why,
                )
            )  # fmt: skip
            continue
        new = float(entry["value"]) if entry and entry.get("value") is not None else math.nan
        ci = metric_ci(entry, _per_sample(run, name)) if entry else None
        hib = resolve_direction(
            name, t, b.get("higher_is_better"), entry.get("higher_is_better") if entry else None
        )
        base_v = float(b["value"])
        v = judge(t, run.selected, base_v, new, hib, (ci[0] - base_v, ci[1] - base_v) if ci else None)
        allowed = t.max_regression * abs(base_v) if t.mode == "relative" else t.max_regression
        out.append(
            MetricCheck(
                run.selected,
                name,
                base_v,
                new,
                ci,
                int(entry.get("n", 0)) if entry else 0,
                str(b.get("unit", "")),
                hib,
                t,
                allowed,
                v.status != "pass",
                v,
            )
        )
    return out


def compare_images(
    run: ConfigRun, baseline: Baseline, tolerance: float = DEFAULT_IMAGE_TOLERANCE
) -> ImageCheck:
    """Thumbnail difference of every image of ``run`` against the baseline's fingerprints.

    Raises:
        BaselineMismatch: see :func:`check_comparable`.
    """
    check_comparable(run, baseline)
    check = ImageCheck(run.selected, tolerance=tolerance)
    stored = baseline.images
    for r in run.samples.itertuples():
        key = f"{r.case_id}-{int(r.seed)}"
        if r.status != "ok" or not isinstance(r.image, str):
            check.differences[key] = math.nan
            continue
        if key in stored:
            check.differences[key] = thumbnail_difference(
                image_fingerprint(run.run_dir / r.image), stored[key]
            )
    return check


def _context(run: ConfigRun, baseline: Baseline) -> str:
    lines = [f"  run: {run.run_dir}", f"  {baseline.where()}"]
    diff = params_diff(run, baseline)
    if diff:
        lines.append("  configuration changed since the baseline: " + "; ".join(diff))
    if baseline.weights != "hub":
        lines.append(f"  (weights {baseline.weights!r}: these numbers carry no quality evidence)")
    return "\n".join(lines)


def _row_failures(run: ConfigRun) -> list[str]:
    df = run.samples
    bad = df[df["status"] == "error"] if len(df) else df
    return [f"{r.case_id} seed {int(r.seed)}: {r.error}" for r in bad.itertuples()]


def assert_no_regression(
    run: ConfigRun,
    baseline: Baseline,
    metrics: Iterable[str] | None = None,
    thresholds: ThresholdSpec = None,
    other_machine: str | None = None,
) -> list[MetricCheck]:
    """Fail when any of ``metrics`` got worse than ``baseline`` by more than its threshold.

    ``thresholds`` is the threshold model of ``evalsuite compare`` (:mod:`evalsuite.compare.thresholds`):
    a thresholds YAML file, a list of entries (``{"metric": ..., "max_regression": ..., "mode": ...}``
    or :class:`Threshold`), or the short form ``{metric: number (absolute) | {"abs": x} | {"rel": x}}``. The failure message names,
    for every regressed metric, the configuration, the baseline value, the new value with its 95%
    interval, the allowed worsening and the threshold, and lists configuration parameters that
    changed since the baseline.

    Machine-dependent metrics of a baseline from another machine are skipped (see
    :func:`compare_metrics`): with a :class:`MachineMismatchWarning` naming them and the reason, or,
    inside pytest when nothing else was compared, by skipping the test with that reason.

    Returns:
        The checks (all passing or skipped).

    Raises:
        AssertionError: a regression, or rows of the run that failed.
        BaselineMismatch: different dataset fingerprint, cases/seeds or weights policy.
        BaselineError: a metric without threshold or absent from the baseline.
    """
    failures = _row_failures(run)
    if failures:
        raise AssertionError(
            f"{run.selected}: {len(failures)} rows failed:\n  "
            + "\n  ".join(failures[:10])
            + "\n"
            + _context(run, baseline)
        )
    checks = compare_metrics(run, baseline, metrics, thresholds, other_machine)
    bad = [c for c in checks if c.regressed]
    if bad:
        raise AssertionError(
            f"{run.selected}: {len(bad)} of {len(checks)} metrics regressed against the baseline\n"
            + "\n".join("  " + c.message() for c in checks)
            + "\n"
            + _context(run, baseline)
        )
    skipped = [c for c in checks if c.skipped]
    if skipped:
        text = "\n".join(c.message() for c in skipped)
        if len(skipped) == len(checks) and "pytest" in sys.modules:
            import pytest

            pytest.skip(f"{run.selected}: no metric compared: {text}")
        warnings.warn(f"{run.selected}: {text}", MachineMismatchWarning, stacklevel=2)
    return checks


def assert_images_match(
    run: ConfigRun, baseline: Baseline, tolerance: float = DEFAULT_IMAGE_TOLERANCE
) -> ImageCheck:
    """Fail when a generated image differs from the baseline's thumbnail by more than ``tolerance``
    (mean absolute difference of 32×32 thumbnails, 0–255 units).

    Meant for deterministic set-ups (``tiny`` weights on CPU), where it detects any change of the
    configuration's behaviour; float noise across machines stays far below the default 0.25.

    Raises:
        AssertionError: naming every changed image, its difference and the tolerance.
        BaselineMismatch: see :func:`check_comparable`.
    """
    check = compare_images(run, baseline, tolerance)
    changed = check.changed
    if changed:
        worst = sorted(changed.items(), key=lambda kv: -kv[1] if math.isfinite(kv[1]) else -math.inf)
        lines = [f"  {k}: mean |Δ| {v:.3f} (0–255 units) > tolerance {tolerance:g}" for k, v in worst]
        raise AssertionError(
            f"{run.selected}: {len(changed)} of {len(check.differences)} images differ from the baseline's\n"
            + "\n".join(lines)
            + "\n"
            + _context(run, baseline)
        )
    return check
