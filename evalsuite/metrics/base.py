"""The metric contract: a :class:`torchmetrics.Metric` subclass with typed options and per-sample values.

Writing a metric (about 30 lines; :mod:`evalsuite.metrics.latency` is the smallest real one)::

    from dataclasses import dataclass
    from evalsuite.metrics.base import Metric, MetricBatch, MetricResult, NetOptions
    from evalsuite.registry import METRICS

    @dataclass(frozen=True)
    class MyOptions(NetOptions):          # typed options: metric_weights, metric_weights_dir + yours
        crop: bool = False

    @METRICS.register("my_score")
    class MyScore(Metric):
        '''What it measures, in one line (shown by ``evalsuite score --help`` users via docs).'''
        name = "my_score"                 # registry name = samples.parquet column
        higher_is_better = True           # direction: reports, compare and the pytest plugin read it
        unit = ""                         # "s", "dB", "" (unitless)...
        needs = frozenset({"images", "prompts"})
        feature_nets = frozenset({"clip"})   # weight files checked before generation (features.py)
        Options = MyOptions

        def update(self, batch: MetricBatch) -> list[float]:
            vals = [...]                  # one float per sample (NaN where undefined)
            return self.add_samples(vals) # appended to the per-sample list state, returned for the rows

        def compute(self) -> MetricResult:
            return self.mean_of_samples() # mean, n, std, median over the finite per-sample values

Rules:

* **State** lives in torchmetrics states declared with :meth:`add_state` (in ``__init__`` after
  ``super().__init__(...)``, or in :meth:`Metric.setup_states`), each with a ``dist_reduce_fx``, so
  shards scored on several ranks combine with :meth:`torchmetrics.Metric.merge_state`. The base
  declares the per-sample list state ``values`` (float64, ``cat``) for ``per_sample`` metrics and
  one list state per extra column in :attr:`Metric.columns`. ``sync_on_compute`` is off: evalsuite
  scores on one rank after merging the rows (a collective in ``compute`` would hang the others).
* **Options** are a frozen dataclass (:attr:`Metric.Options`); the constructor takes them as
  keyword arguments (``Metric(device, **options)``), coerces CLI strings to the field types,
  and refuses an unknown option with :class:`MetricOptionError` naming the valid ones. Validate
  ranges/choices in the dataclass' ``__post_init__`` (raise ``ValueError``). Read them as
  ``self.options.crop``.
* **Per-sample values**: :meth:`update` returns one float per sample of the batch (``None`` for
  set-level metrics such as FID; set ``per_sample = False``); extra per-sample columns (declared in
  :attr:`Metric.columns` with their unit and direction) are returned by :meth:`extra_columns` for
  the last update — use ``self.add_samples(vals, other_col=[...])``.
* **Direction and unit**: ``higher_is_better`` (``True``/``False``) and ``unit`` are required;
  :meth:`describe` records them in ``run.json`` beside every value, and :func:`column_facts`
  gives them for every column (a metric's own and its extra columns) to reports and compare.
* :meth:`compute` returns a :class:`MetricResult`; ``extra`` holds JSON-serialisable facts
  (preprocessing, feature network, counts) that make the number reproducible.
* **Interval**: :attr:`Metric.statistic` declares what a per-sample metric's value is of its
  samples (``mean``, the default, as :meth:`mean_of_samples` gives; ``median``; ``None`` for
  neither). Scoring records the 95 % bootstrap interval of that statistic as ``ci_low``/``ci_high``
  beside the value (unless :meth:`compute` records its own), after checking that the value is that
  statistic of the finite samples.
* :meth:`prepare` is called once per configuration before the first update (reference stats...).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import statistics
import typing
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torchmetrics

from evalsuite.config.coerce import coerce
from evalsuite.errors import UsageError
from evalsuite.vocab import METRIC_WEIGHT_MODES


class MetricOptionError(UsageError, ValueError):
    """An unknown or ill-typed metric option; the message names the metric and the valid options."""


@dataclass
class MetricBatch:
    """Inputs to :meth:`Metric.update` for N samples of one configuration.

    Attributes:
        rows: the N result rows (timings, ids...).
        images: generated images, float (N, 3, H, W) in [0, 1], or ``None`` if not loaded.
        prompts: the N prompts.
        sources: source images resized to the output size, float (N, 3, H, W), or ``None``.
        masks: inpainting masks (1 = regenerated), float (N, 1, H, W), or ``None``.
        pairs: for paired metrics, the images of the other configuration at the same case and
            seed, float (N, 3, H, W) in [0, 1], or ``None``.
    """

    rows: Sequence[dict[str, Any]]
    images: torch.Tensor | None = None
    prompts: Sequence[str] = ()
    sources: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    pairs: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class ScoringContext:
    """What a metric may look at before the first :meth:`Metric.update` (see :meth:`Metric.prepare`).

    Attributes:
        config: configuration name being scored.
        task: the configuration's runner task (``t2i`` or ``inpaint``).
        dataset: the run's dataset (an :class:`evalsuite.data.cases.Dataset`), or ``None`` if unknown.
        run_dir: the run directory.
    """

    config: str
    task: str
    dataset: Any = None
    run_dir: Any = None


@dataclass
class MetricResult:
    """An aggregate value.

    Attributes:
        value: the metric's headline number (``nan`` when undefined, e.g. N = 0).
        n: number of samples it rests on.
        extra: further numbers (std, median, counts...), JSON-serialisable.
    """

    value: float
    n: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n": self.n, **self.extra}


@dataclass(frozen=True)
class NoOptions:
    """Options of a metric that takes none."""


@dataclass(frozen=True)
class NetOptions:
    """Options of every metric with a feature network.

    Attributes:
        metric_weights: ``real`` (published weights), ``random`` (small random nets, no quality
            evidence) or ``random_full`` (real architectures, random weights); see
            :mod:`evalsuite.metrics.features`.
        metric_weights_dir: folder of weight files for air-gapped machines.
    """

    metric_weights: str = "real"
    metric_weights_dir: str | None = None

    def __post_init__(self) -> None:
        if self.metric_weights not in METRIC_WEIGHT_MODES:
            raise MetricOptionError(
                f"metric_weights must be one of {', '.join(METRIC_WEIGHT_MODES)}, got {self.metric_weights!r}"
            )


@dataclass(frozen=True)
class Column:
    """Facts about a per-sample column: unit and direction (``None`` = not a quality direction)."""

    unit: str
    higher_is_better: bool | None


def parse_options(metric: str, options_cls: type, given: dict[str, Any]) -> Any:
    """An ``options_cls`` instance from ``given``, types coerced.

    Raises:
        MetricOptionError: an unknown option (the message lists the valid ones, with a
            did-you-mean), a value of the wrong type, or one the dataclass refuses.
    """
    names = [f.name for f in dataclasses.fields(options_cls)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        hints = [
            f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, names, 1)) else repr(u)
            for u in unknown
        ]
        raise MetricOptionError(
            f"metric {metric!r} has no option {', '.join(hints)}; valid options: "
            + (", ".join(names) if names else "none")
        )
    hints_t = typing.get_type_hints(options_cls)
    kw = {k: coerce(v, hints_t[k], f"{metric}.{k}", MetricOptionError) for k, v in given.items()}
    try:
        return options_cls(**kw)
    except MetricOptionError:
        raise
    except (TypeError, ValueError) as exc:
        raise MetricOptionError(f"metric {metric!r}: {exc}") from exc


class Metric(torchmetrics.Metric):
    """Base class of every evalsuite metric (see the module docstring for the contract).

    Class attributes:
        name: registry name (also the ``samples.parquet`` column for per-sample values).
        higher_is_better: direction of improvement.
        unit: unit of the value (``s``, ``dB``, ``""`` for unitless).
        Options: frozen dataclass of the typed options (default: none).
        needs: inputs required from :class:`MetricBatch`: any of ``images``, ``sources``,
            ``masks``, ``prompts``, ``pairs``.
        per_sample: whether :meth:`update` returns one value per sample.
        columns: further per-sample columns the metric writes, with unit and direction.
        tasks: runner tasks the metric applies to (scoring skips it for other configurations).
        feature_nets: feature networks it loads (``inception``, ``clip``, ``lpips``) — used to
            check for weight files before generation.
        paired: compares two configurations at the same case and seed (``MetricBatch.pairs``).
        statistic: what the value of a per-sample metric is of its finite samples (``mean``,
            ``median``, or ``None`` for something else): the statistic whose bootstrap interval
            scoring records beside it.
    """

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool | None] = True  # type: ignore[misc]
    unit: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    needs: ClassVar[frozenset[str]] = frozenset()
    per_sample: ClassVar[bool] = True
    columns: ClassVar[dict[str, Column]] = {}
    tasks: ClassVar[frozenset[str]] = frozenset({"t2i", "inpaint"})
    feature_nets: ClassVar[frozenset[str]] = frozenset()
    paired: ClassVar[bool] = False
    statistic: ClassVar[str | None] = "mean"
    is_differentiable: ClassVar[bool] = False  # type: ignore[misc]
    full_state_update: ClassVar[bool] = False  # type: ignore[misc]
    values: list[
        torch.Tensor
    ]  # torchmetrics list state when per_sample (one Tensor after a distributed sync)

    def __init__(self, device: torch.device | str = "cpu", **options: Any) -> None:
        super().__init__(sync_on_compute=False, compute_with_cache=False)
        self.options = parse_options(self.name or type(self).__name__, self.Options, options)
        self.quality_evidence = True
        self._last_columns: dict[str, list[float]] = {}
        if self.per_sample:
            self.add_state("values", default=[], dist_reduce_fx="cat")
        for col in self.columns:
            self.add_state(_col_state(col), default=[], dist_reduce_fx="cat")
        self.setup_states()
        self.to(torch.device(device))
        self.reset()

    # -- hooks ---------------------------------------------------------------------------------
    def setup_states(self) -> None:  # noqa: B027 - optional hook
        """Declare further states with :meth:`add_state` (called once from ``__init__``)."""

    def prepare(self, context: ScoringContext) -> None:  # noqa: B027 - optional hook
        """Called once per configuration before the first update (e.g. to load reference statistics)."""

    @classmethod
    def option_names(cls) -> list[str]:
        """Names of the options the constructor accepts."""
        return [f.name for f in dataclasses.fields(cls.Options)]

    # -- per-sample values ----------------------------------------------------------------------
    def add_samples(self, values: Sequence[float], **columns: Sequence[float]) -> list[float]:
        """Append per-sample ``values`` (and the extra ``columns``) to the list states; returns ``values``."""
        vals = [float(v) for v in values]
        if self.per_sample:
            self.values.append(torch.tensor(vals, dtype=torch.float64, device=self.device))
        self._last_columns = {}
        for col, cv in columns.items():
            if col not in self.columns:
                raise KeyError(
                    f"{self.name}: column {col!r} is not declared in {type(self).__name__}.columns"
                )
            cvals = [float(v) for v in cv]
            getattr(self, _col_state(col)).append(
                torch.tensor(cvals, dtype=torch.float64, device=self.device)
            )
            self._last_columns[col] = cvals
        return vals

    def samples(self, column: str | None = None) -> list[float]:
        """Every per-sample value since the last reset (or those of an extra ``column``)."""
        state = self.values if column is None else getattr(self, _col_state(column))
        if isinstance(state, torch.Tensor):  # after a distributed sync
            return state.double().cpu().tolist()
        return torch.cat(state).cpu().tolist() if state else []

    def mean_of_samples(self, column: str | None = None, **extra: Any) -> MetricResult:
        """Mean over the non-NaN per-sample values (``inf`` kept), with ``std`` and ``median``."""
        v = [x for x in self.samples(column) if not math.isnan(x)]
        if not v:
            return MetricResult(math.nan, 0, {"std": math.nan, "median": math.nan, **extra})
        finite = [x for x in v if math.isfinite(x)]
        stats = {"std": statistics.pstdev(finite) if len(finite) > 1 else 0.0, "median": statistics.median(v)}
        return MetricResult(float(sum(v) / len(v)), len(v), {**stats, **extra})

    def extra_columns(self) -> dict[str, list[float]]:
        """Further per-sample columns of the last :meth:`update` (column → one value per sample)."""
        return dict(self._last_columns)

    def reset(self) -> None:
        super().reset()
        self._last_columns = {}

    def describe(self) -> dict[str, Any]:
        """Static facts recorded beside the value in ``run.json``."""
        d: dict[str, Any] = {
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "quality_evidence": self.quality_evidence,
        }
        if isinstance(self.options, NetOptions):
            d["metric_weights"] = self.options.metric_weights
        if self.columns:
            d["columns"] = {
                c: {"unit": f.unit, "higher_is_better": f.higher_is_better} for c, f in self.columns.items()
            }
        return d

    # -- torchmetrics plumbing ------------------------------------------------------------------
    def _wrap_update(self, update: Callable) -> Callable:
        """torchmetrics' wrapper drops ``update``'s return value; keep it (the per-sample values)."""
        box: dict[str, Any] = {}

        def run(*args: Any, **kwargs: Any) -> None:
            box["out"] = update(*args, **kwargs)

        inner = super()._wrap_update(run)

        @functools.wraps(update)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            box.clear()
            inner(*args, **kwargs)
            return box.get("out")

        return wrapped

    def _wrap_compute(self, compute: Callable) -> Callable:
        """torchmetrics warns on ``compute`` before ``update``; for evalsuite that is N = 0, a valid
        result (``nan`` with ``n = 0``), so the warning is silenced."""
        inner = super()._wrap_compute(compute)

        @functools.wraps(compute)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method")
                return inner(*args, **kwargs)

        return wrapped


def _col_state(col: str) -> str:
    return f"col_{col}"


def column_facts() -> dict[str, Column]:
    """Unit and direction of every column a registered metric writes (its own and its extra
    columns), for reports, compare and the pytest plugin."""
    from evalsuite.registry import METRICS

    out: dict[str, Column] = {}
    for name in METRICS.names():
        cls = METRICS.get(name)
        if not (isinstance(cls, type) and issubclass(cls, Metric)):
            continue
        out[name] = Column(cls.unit, cls.higher_is_better)
        out.update(cls.columns)
    return out
