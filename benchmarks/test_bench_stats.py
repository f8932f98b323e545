"""Throughput of the latency metric, the median-CI statistics and the comparison statistics on CPU."""

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


def test_bench_compare_statistics_1000_pairs(benchmark):
    """One compared quantity of `evalsuite compare` on 1000 paired images: bootstrap CI of the mean
    delta, sign-flip p-value (10 000 Monte Carlo patterns) and paired ratio of medians (scipy.stats)."""
    from evalsuite.trackers.stats import bootstrap_mean, paired_ratio_of_medians, sign_flip_pvalue

    rng = np.random.default_rng(0)
    a = rng.exponential(size=1000) + 1.0
    b = a * rng.normal(1.05, 0.02, size=1000)

    def run():
        return bootstrap_mean(b - a), sign_flip_pvalue(b - a), paired_ratio_of_medians(a, b)

    est, p, ratio = benchmark(run)
    assert est.low < est.value < est.high and p < 0.001 and ratio.low < 1.05 < ratio.high
