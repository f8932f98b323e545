"""Metrics: torchmetrics-style classes (``update``/``compute``/``reset``) registered in
:data:`evalsuite.registry.METRICS`, and their functional twins in :mod:`evalsuite.metrics.functional`."""

from .base import Metric, MetricBatch, MetricResult
from .latency import LatencyMetric

__all__ = ["Metric", "MetricBatch", "MetricResult", "LatencyMetric"]
