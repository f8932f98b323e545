"""Metrics: :class:`torchmetrics.Metric` subclasses with typed options (the contract is in
:mod:`evalsuite.metrics.base`), registered in :data:`evalsuite.registry.METRICS`, and their
functional twins in :mod:`evalsuite.metrics.functional`."""

from evalsuite.metrics import quality  # noqa: F401  (registers fid, clip_score*, unmasked_*, lpips_pair)
from evalsuite.metrics.base import (
    Column,
    Metric,
    MetricBatch,
    MetricOptionError,
    MetricResult,
    NetOptions,
    ScoringContext,
    column_facts,
)
from evalsuite.metrics.latency import LatencyMetric

__all__ = [
    "Column",
    "Metric",
    "MetricBatch",
    "MetricOptionError",
    "MetricResult",
    "NetOptions",
    "ScoringContext",
    "LatencyMetric",
    "column_facts",
]
