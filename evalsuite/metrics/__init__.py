"""Metrics: :class:`torchmetrics.Metric` subclasses with typed options (the contract is in
:mod:`evalsuite.metrics.base`), registered in :data:`evalsuite.registry.METRICS`, and their
functional twins in :mod:`evalsuite.metrics.functional`.

The names below are imported on first access (PEP 562); the registry imports each metric's module
when the metric is first asked for (``evalsuite.registry.BUILTIN_METRICS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalsuite.registry import lazy_attribute

_EXPORTS = {
    "Column": "evalsuite.metrics.base",
    "Metric": "evalsuite.metrics.base",
    "MetricBatch": "evalsuite.metrics.base",
    "MetricOptionError": "evalsuite.metrics.base",
    "MetricResult": "evalsuite.metrics.base",
    "NetOptions": "evalsuite.metrics.base",
    "ScoringContext": "evalsuite.metrics.base",
    "column_facts": "evalsuite.metrics.base",
    "LatencyMetric": "evalsuite.metrics.latency",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, globals(), name)


if TYPE_CHECKING:
    from evalsuite.metrics.base import (  # noqa: F401
        Column,
        Metric,
        MetricBatch,
        MetricOptionError,
        MetricResult,
        NetOptions,
        ScoringContext,
        column_facts,
    )
    from evalsuite.metrics.latency import LatencyMetric  # noqa: F401
