"""The one threshold model of evalsuite: ``evalsuite compare --thresholds FILE`` and the pytest
baselines (:func:`evalsuite.compare.baselines.assert_no_regression`) read the same YAML format,
resolve a metric's direction by the same rule and judge a change by the same function.

The format (a list, or a mapping with a ``thresholds:`` list)::

    thresholds:
      - metric: clip_score        # a metric or column name (latency = latency_s in compare)
        max_regression: 0.5       # allowed worsening, >= 0
        mode: absolute            # absolute (metric units) | relative (fraction of A / the baseline)
        direction: higher         # optional: higher | lower is better (default: as the metric declares)
        configs: [flux-dev]       # optional: default every configuration
        require_significance: false  # optional: only fail when the 95 % CI excludes "no change"

Direction rule (everywhere): the threshold's ``direction`` wins; else the direction the metric
recorded (``higher_is_better`` in ``run.json`` / the baseline / the known resource columns); a
metric with neither is an error (:class:`DirectionError`) naming the metric and both ways to
declare it — never a silent default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalsuite.errors import UsageError

KEYS = ("metric", "max_regression", "mode", "direction", "configs", "require_significance")
MODES = ("absolute", "relative")


class CompareInputError(UsageError, ValueError):
    """Input that a comparison (run vs run, or run vs baseline) cannot use; the message says what
    and how to fix it. ``evalsuite compare`` exits 2 on it."""


class ThresholdError(CompareInputError):
    """A threshold that cannot be used (bad file, bad entry, unknown direction); the message names
    the file or entry and the fix. ``evalsuite compare`` exits 2 on it."""


class DirectionError(ThresholdError):
    """A threshold on a metric whose direction (higher or lower is better) nobody declared."""


@dataclass(frozen=True)
class Threshold:
    """An allowed worsening of one quantity.

    Attributes:
        metric: a metric or column name (``clip_score``, ``unmasked_lpips``, ``latency_s``...).
        max_regression: the largest allowed worsening (≥ 0), in the metric's unit (``absolute``) or as
            a fraction of the reference value (``relative``: 0.05 = 5 % of run A or of the baseline).
        mode: ``absolute`` or ``relative``.
        direction: ``higher`` or ``lower`` is better; ``None`` = as the metric recorded it.
        configs: configurations it applies to (``None`` = every configuration).
        require_significance: also require the 95 % CI of the change to lie entirely on the worse
            side of "no change" (a noise-aware threshold).
    """

    metric: str
    max_regression: float
    mode: str = "absolute"
    direction: str | None = None
    configs: tuple[str, ...] | None = None
    require_significance: bool = False

    def describe(self) -> str:
        """E.g. ``worsening ≤ 5 % (relative)``."""
        lim = (
            f"{100 * self.max_regression:.4g} %" if self.mode == "relative" else f"{self.max_regression:.4g}"
        )
        sig = ", significant only" if self.require_significance else ""
        return f"worsening ≤ {lim} ({self.mode}{sig})"

    def applies_to(self, config: str) -> bool:
        return self.configs is None or config in self.configs

    def renamed(self, metric: str) -> Threshold:
        return Threshold(
            metric, self.max_regression, self.mode, self.direction, self.configs, self.require_significance
        )


@dataclass
class Verdict:
    """The check of one threshold on one configuration.

    Attributes:
        status: ``pass``, ``REGRESSION`` or ``no data``.
        change: B − A (absolute mode) or (B − A) / |A| (relative mode).
        worsening: ``change`` signed so that positive is worse.
        allowed: the threshold's ``max_regression`` (same unit as ``change``).
    """

    config: str
    metric: str
    rule: str
    change: float
    worsening: float
    allowed: float
    status: str
    detail: str = ""
    mode: str = "absolute"

    @property
    def regressed(self) -> bool:
        return self.status == "REGRESSION"


def resolve_direction(metric: str, threshold: Threshold | None, *recorded: bool | None) -> bool:
    """``True`` when higher is better for ``metric``: the threshold's ``direction``, else the first
    recorded ``higher_is_better`` that is not ``None``.

    Raises:
        DirectionError: when neither says, naming the metric and how to declare its direction.
    """
    if threshold is not None and threshold.direction is not None:
        return threshold.direction == "higher"
    for r in recorded:
        if r is not None:
            return bool(r)
    raise DirectionError(
        f"metric {metric!r} has no known direction (neither its threshold nor the recorded results say "
        "whether higher or lower is better); add 'direction: higher' or 'direction: lower' to its "
        "threshold entry, or set higher_is_better on the metric class that produces it"
    )


def judge(
    threshold: Threshold,
    config: str,
    a: float,
    b: float,
    higher_is_better: bool,
    ci: tuple[float, float] | None = None,
) -> Verdict:
    """Judge B against reference A under ``threshold`` — the one rule of compare and baselines.

    ``a``/``b`` are the compared summaries (means, medians, maxima, a baseline's value and the new
    one); ``ci`` is the 95 % interval of B − A, absolute units (``None``: unknown). The change is
    B − A (absolute) or (B − A) / |A| (relative); a change worse than ``max_regression`` is a
    ``REGRESSION`` unless ``require_significance`` and the CI includes no change. Improvements never
    fail; a non-finite change is ``no data``.
    """
    diff = b - a
    change = (diff / abs(a) if a else math.nan) if threshold.mode == "relative" else diff
    worsening = -change if higher_is_better else change
    rule = threshold.describe()
    if not math.isfinite(worsening):
        why = "change undefined (zero or missing reference value)" if math.isfinite(diff) else "no value"
        return Verdict(
            config, threshold.metric, rule, change, worsening, threshold.max_regression, "no data", why,
            threshold.mode,
        )  # fmt: skip
    regressed = worsening > threshold.max_regression
    detail = ""
    if regressed and threshold.require_significance:
        bound = None if ci is None else (ci[1] if higher_is_better else ci[0])
        significant = (
            bound is not None and math.isfinite(bound) and (bound < 0 if higher_is_better else bound > 0)
        )
        if not significant:
            regressed = False
            detail = (
                "exceeds the limit but the 95 % CI includes no change"
                if ci is not None and all(map(math.isfinite, ci))
                else "exceeds the limit but no CI is known (require_significance)"
            )
    return Verdict(
        config, threshold.metric, rule, change, worsening, threshold.max_regression,
        "REGRESSION" if regressed else "pass", detail, threshold.mode,
    )  # fmt: skip


# -- reading ---------------------------------------------------------------------------------------
def load_thresholds(path: str | Path) -> list[Threshold]:
    """Read a thresholds YAML file (the format in the module doc).

    Raises:
        ThresholdError: naming the file, the entry and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise ThresholdError(f"thresholds file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ThresholdError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); a thresholds file is YAML text"
        ) from exc
    except OSError as exc:
        raise ThresholdError(f"{path}: cannot read the thresholds file ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ThresholdError(f"{path}: invalid YAML ({exc})") from exc
    return parse_thresholds(doc, str(path))


def parse_thresholds(doc: Any, source: str = "thresholds") -> list[Threshold]:
    """Thresholds from a parsed document: a list of entries or ``{"thresholds": [...]}``.

    Raises:
        ThresholdError: naming ``source``, the entry and the fix.
    """
    entries = doc.get("thresholds") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise ThresholdError(
            f"{source}: expected a list of thresholds (or a mapping with a 'thresholds' list)"
        )
    return [parse_entry(e, f"{source}: threshold #{i}") for i, e in enumerate(entries, start=1)]


def parse_entry(e: Any, where: str) -> Threshold:
    """One threshold entry (a mapping with the :data:`KEYS`).

    Raises:
        ThresholdError: naming ``where`` and the fix.
    """
    if isinstance(e, Threshold):
        return e
    if not isinstance(e, Mapping):
        raise ThresholdError(f"{where}: expected a mapping with 'metric' and 'max_regression', got {e!r}")
    unknown = set(e) - set(KEYS)
    if unknown:
        raise ThresholdError(
            f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(KEYS))}"
        )
    if not isinstance(e.get("metric"), str) or not e["metric"]:
        raise ThresholdError(f"{where}: 'metric' must be a metric or column name")
    allowed = e.get("max_regression")
    if isinstance(allowed, bool) or not isinstance(allowed, int | float) or not allowed >= 0:
        raise ThresholdError(f"{where}: 'max_regression' must be a number >= 0, got {allowed!r}")
    mode = e.get("mode", "absolute")
    if mode not in MODES:
        raise ThresholdError(f"{where}: 'mode' must be 'absolute' or 'relative', got {mode!r}")
    direction = e.get("direction")
    if direction is not None:
        d = str(direction).lower().replace("_is_better", "")
        if d not in ("higher", "lower"):
            raise ThresholdError(f"{where}: 'direction' must be 'higher' or 'lower', got {direction!r}")
        direction = d
    configs = e.get("configs")
    if configs is not None:
        if isinstance(configs, str):
            configs = [configs]
        if not isinstance(configs, list | tuple) or not all(isinstance(c, str) for c in configs):
            raise ThresholdError(f"{where}: 'configs' must be a list of configuration names")
        configs = tuple(configs)
    sig = e.get("require_significance", False)
    if not isinstance(sig, bool):
        raise ThresholdError(f"{where}: 'require_significance' must be true or false")
    return Threshold(e["metric"], float(allowed), mode, direction, configs, sig)


ThresholdSpec = str | Path | Sequence[Threshold | Mapping[str, Any]] | Mapping[str, Any] | None


def as_thresholds(spec: ThresholdSpec) -> list[Threshold]:
    """Thresholds from what a Python caller passes (the pytest baselines' ``thresholds=``):

    * a path to a thresholds YAML file (:func:`load_thresholds`);
    * a list of :class:`Threshold` objects or entry mappings (the YAML entries as dicts);
    * a mapping ``{metric: limit}`` — the short form: ``limit`` is a number (absolute), a mapping
      ``{"abs": x}`` / ``{"rel": x}``, or an entry without ``metric``.

    Raises:
        ThresholdError: a bad entry, or a short form giving both ``abs`` and ``rel``.
    """
    if spec is None:
        return []
    if isinstance(spec, str | Path):
        return load_thresholds(spec)
    if isinstance(spec, Mapping):
        if set(spec) == {"thresholds"}:
            return parse_thresholds(spec)
        return [_short(str(k), v) for k, v in spec.items()]
    return [parse_entry(e, f"thresholds[{i}]") for i, e in enumerate(spec)]


def _short(metric: str, v: Any) -> Threshold:
    where = f"thresholds[{metric!r}]"
    if isinstance(v, Threshold):
        return v if v.metric == metric else v.renamed(metric)
    if isinstance(v, Mapping) and set(v) <= {"abs", "rel"}:
        if len(v) != 1:
            raise ThresholdError(
                f"{where}: give one of 'abs' (metric units) or 'rel' (fraction of the baseline), got {dict(v)}"
            )
        ((k, x),) = v.items()
        return parse_entry(
            {"metric": metric, "max_regression": x, "mode": "absolute" if k == "abs" else "relative"}, where
        )
    if isinstance(v, Mapping):
        return parse_entry({"metric": metric, **v}, where)
    return parse_entry({"metric": metric, "max_regression": v}, where)


def for_config(thresholds: Iterable[Threshold], config: str) -> list[Threshold]:
    """The thresholds that apply to ``config``."""
    return [t for t in thresholds if t.applies_to(config)]
