"""The metric contract.

A metric follows torchmetrics' shape: :meth:`Metric.update` accumulates a batch (and returns
per-sample values when the metric has them, so they can be stored per row), :meth:`Metric.compute`
returns the aggregate over everything seen since the last :meth:`Metric.reset`. Class attributes
say the direction (``higher_is_better``), the ``unit``, and which inputs the metric ``needs``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch


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
        dataset: the run's dataset (an :class:`evalsuite.cases.Dataset`), or ``None`` if unknown.
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


class Metric(ABC):
    """Base class of every metric.

    Class attributes:
        name: registry name (also the ``samples.parquet`` column for per-sample values).
        higher_is_better: direction of improvement.
        unit: unit of the value (``s``, ``dB``, ``""`` for unitless).
        needs: inputs required from :class:`MetricBatch`: any of ``images``, ``sources``,
            ``masks``, ``prompts``.
        per_sample: whether :meth:`update` returns one value per sample.
        quality_evidence: ``False`` when the metric's feature network has random weights.
        tasks: runner tasks the metric applies to (scoring skips it for other configurations).
        feature_nets: feature networks it loads (``inception``, ``clip``, ``lpips``) — used to
            check for weight files before generation.
        paired: compares two configurations at the same case and seed (``MetricBatch.pairs``).
    """

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    unit: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    per_sample: ClassVar[bool] = True
    tasks: ClassVar[frozenset[str]] = frozenset({"t2i", "inpaint"})
    feature_nets: ClassVar[frozenset[str]] = frozenset()
    paired: ClassVar[bool] = False

    def __init__(self, device: torch.device | str = "cpu", **options: Any) -> None:
        self.device = torch.device(device)
        self.options = options
        self.quality_evidence = True
        self.reset()

    @abstractmethod
    def update(self, batch: MetricBatch) -> list[float] | None:
        """Accumulate ``batch``; return per-sample values (or ``None`` for set-level metrics)."""

    @abstractmethod
    def compute(self) -> MetricResult:
        """Aggregate over everything accumulated since the last :meth:`reset`."""

    @abstractmethod
    def reset(self) -> None:
        """Clear the accumulated state."""

    def prepare(self, context: ScoringContext) -> None:  # noqa: B027 - optional hook
        """Called once per configuration before the first update (e.g. to load reference statistics)."""

    def extra_columns(self) -> dict[str, list[float]]:
        """Further per-sample columns of the last :meth:`update` (column → one value per sample)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Static facts recorded beside the value in ``run.json``."""
        return {
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "quality_evidence": self.quality_evidence,
        }
