"""Metrics: torchmetrics-style classes (``update``/``compute``/``reset``) registered in
:data:`evalsuite.registry.METRICS`, and their functional twins in :mod:`evalsuite.metrics.functional`.

The names below are imported on first access (PEP 562); the registry imports each metric's module
when the metric is first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Metric": "evalsuite.metrics.base",
    "MetricBatch": "evalsuite.metrics.base",
    "MetricResult": "evalsuite.metrics.base",
    "ScoringContext": "evalsuite.metrics.base",
    "LatencyMetric": "evalsuite.metrics.latency",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evalsuite.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from evalsuite.metrics.base import Metric, MetricBatch, MetricResult, ScoringContext  # noqa: F401
    from evalsuite.metrics.latency import LatencyMetric  # noqa: F401
