"""Per-image latency: end-to-end seconds of generating one image (from the row's timings)."""

from __future__ import annotations

import math
import statistics

from evalsuite.metrics.base import Metric, MetricBatch, MetricResult
from evalsuite.registry import METRICS
from evalsuite.trackers.stats import quantile


@METRICS.register("latency")
class LatencyMetric(Metric):
    """End-to-end generation seconds per image (``latency_s`` of each row); aggregate = median.

    The extra fields are the mean and p90 (:func:`evalsuite.trackers.stats.quantile`). Lower is better.
    """

    name = "latency"
    higher_is_better = False  # type: ignore[misc]  # torchmetrics declares it an instance attribute
    unit = "s"
    needs = frozenset()
    statistic = "median"

    def update(self, batch: MetricBatch) -> list[float]:  # type: ignore[override]  # base returns None
        return self.add_samples([float(r.get("latency_s", math.nan)) for r in batch.rows])

    def compute(self) -> MetricResult:
        v = sorted(x for x in self.samples() if not math.isnan(x))
        if not v:
            return MetricResult(math.nan, 0)
        p90 = quantile(v, 0.9)  # evalsuite's one percentile definition (linear interpolation)
        return MetricResult(statistics.median(v), len(v), {"mean": statistics.fmean(v), "p90": p90})
