"""Metrics: torchmetrics-style classes (``update``/``compute``/``reset``) registered in
:data:`evalsuite.registry.METRICS`, and their functional twins in :mod:`evalsuite.metrics.functional`."""

import evalsuite.metrics.preference  # noqa: F401  (registers aesthetic, pickscore, hpsv21, imagereward, *_masked)
from evalsuite.metrics import quality  # noqa: F401  (registers fid, clip_score, unmasked_*, lpips_pair)
from evalsuite.metrics.base import Metric, MetricBatch, MetricResult, ScoringContext
from evalsuite.metrics.latency import LatencyMetric

__all__ = ["Metric", "MetricBatch", "MetricResult", "ScoringContext", "LatencyMetric"]
