"""Throughput of the latency metric and of the median-CI statistics on CPU."""

import numpy as np

from evalsuite.metrics.base import MetricBatch
from evalsuite.registry import METRICS
from evalsuite.trackers.tracking import summarize


def test_bench_latency_metric_1000_rows(benchmark):
    rows = [{"latency_s": float(x)} for x in np.random.default_rng(0).exponential(size=1000)]

    def run():
        m = METRICS.get("latency")(device="cpu")
        m.update(MetricBatch(rows=rows, images=None, prompts=[""] * len(rows)))
        return m.compute()

    assert benchmark(run).n == 1000


def test_bench_summarize_median_ci_1000(benchmark):
    values = list(np.random.default_rng(0).exponential(size=1000))
    s = benchmark(summarize, values)
    assert s["ci_low"] <= s["median"] <= s["ci_high"]
