import math
import threading
import time

import numpy as np
import pytest
import torch

from evalsuite.trackers.tracking import (
    DeviceMonitor,
    Sampler,
    Tracker,
    measure,
    median_ci,
    percentile,
    summarize,
)


def test_median_ci_order_statistics_by_hand():
    # n = 10: P(2 <= B < 9) = 1 - 2·P(B <= 1) = 1 - 2·11/1024 ≥ 0.95; the next narrower one (3, 8) has 0.891
    lo, hi, cov = median_ci(list(range(10, 0, -1)))
    assert (lo, hi) == (2.0, 9.0)
    assert cov == pytest.approx(1 - 2 * 11 / 1024)
    # n = 3: no 95 % interval exists; full range with its real coverage 1 - 2·0.5³
    assert median_ci([5.0, 1.0, 3.0]) == (1.0, 5.0, pytest.approx(0.75))
    with pytest.raises(ValueError):
        median_ci([])


def test_median_ci_covers_the_true_median_at_least_95_percent():
    rng = np.random.default_rng(0)
    true_median = math.log(2)  # exponential(1)
    hits = sum(
        lo <= true_median <= hi for lo, hi, _ in (median_ci(rng.exponential(size=25)) for _ in range(1000))
    )
    assert hits / 1000 >= 0.94


def test_percentile_and_summarize():
    v = [float(x) for x in range(1, 11)]
    # linear interpolation (type 7): p90 of 1..10 lies between the 9th and the 10th value
    assert percentile(v, 0.9) == pytest.approx(9.1) and percentile(v, 1.0) == 10.0
    assert percentile(v, 0.5) == 5.5 == summarize(v)["median"]  # p50 is the median
    assert percentile([3.0, 1.0, 2.0], 0.25) == 1.5 and math.isnan(percentile([], 0.9))
    s = summarize(v)
    assert s["p90"] == pytest.approx(9.1) and s["n"] == 10 and s["ci_low"] <= 5.5 <= s["ci_high"]
    assert math.isnan(summarize([])["median"])
    with pytest.raises(ValueError, match="within"):
        percentile(v, 90)


def test_one_percentile_in_run_json_trackers_and_report_tables(tmp_path):
    """run.json's latency p90 (the latency metric), the trackers' summarize and the report tables
    (summary.csv, speed table) give the same p90 — numpy's default linear interpolation."""
    from evalsuite.metrics.base import MetricBatch
    from evalsuite.registry import METRICS
    from evalsuite.report.tables import load_view, speed_table, summary_frame
    from tests.runfactory import make_dataset, make_run

    run = make_run(tmp_path / "run", make_dataset(tmp_path / "ds", n=7), configs=("cfg",))
    view = load_view(run)
    lat = view.ok_samples["latency_s"].astype(float).tolist()
    expected = float(np.quantile(lat, 0.9))
    assert expected not in lat  # 7 values: nearest-rank would give an observed value instead
    m = METRICS.get("latency")(device="cpu")
    m.update(MetricBatch(rows=[{"latency_s": x} for x in lat], images=None, prompts=[""] * len(lat)))
    assert m.compute().extra["p90"] == pytest.approx(expected)
    assert summarize(lat)["p90"] == pytest.approx(expected)
    assert speed_table(view).iloc[0]["latency_p90_s"] == pytest.approx(expected)
    sf = summary_frame(view)
    row = sf[(sf["quantity"] == "latency_s") & (sf["group_by"] == "all")].iloc[0]
    assert row["p90"] == pytest.approx(expected)


def test_measure_meets_both_minimum_count_and_duration_and_separates_first_call():
    calls = []

    def fn():
        calls.append(len(calls))
        time.sleep(0.01)
        return calls[-1]

    m = measure(fn, min_reps=3, min_seconds=0.08)
    assert m.first == 0 and m.warm[0] == 1
    assert len(m.warm) >= 3 and sum(m.warm_s) >= 0.08
    assert all(s >= 0.01 for s in m.warm_s)
    m = measure(fn, min_reps=2, min_seconds=100.0, max_reps=4)
    assert len(m.warm) == 4
    with pytest.raises(ValueError):
        measure(fn, min_reps=0)


def test_tracker_phases_and_steps_on_cpu():
    tr = Tracker(torch.device("cpu"))
    tr.step_callback(None, 0, 0, {})  # outside a phase: ignored
    with tr.phase("denoise"):
        for i in range(3):
            time.sleep(0.005)
            tr.step_callback(None, i, 0, {})
    with tr.phase("vae_decode"):
        time.sleep(0.002)
    assert len(tr.steps) == 3 and all(s >= 0.004 for s in tr.steps)
    assert sum(tr.steps) <= tr.phases["denoise"] + 1e-9
    assert set(tr.phases) == {"denoise", "vae_decode"}
    assert tr.memory == {} and tr.peak_memory_gib() == {}  # allocator counters are CUDA-only


def test_sampler_lifecycle_with_a_stand_in_reader():
    values = iter(range(1, 10**6))
    s = Sampler(lambda: next(values), interval_s=0.001)
    assert not s.running
    s.start()
    assert s.running
    with pytest.raises(RuntimeError, match="already running"):
        s.start()
    time.sleep(0.03)
    peak = s.stop()
    assert not s.running and s.samples >= 3 and peak == s.samples  # strictly increasing readings
    assert all(t.name != "evalsuite-sampler" for t in threading.enumerate())


def test_sampler_reader_failure_is_kept_not_raised():
    def bad():
        raise OSError("NVML gone")

    with Sampler(bad, 0.001) as s:
        time.sleep(0.01)
    assert s.peak is None and "NVML gone" in s.error and not s.running


def test_device_monitor_on_cpu_states_why_nvml_and_energy_are_missing():
    mon = DeviceMonitor(torch.device("cpu"), interval_s=0.002)
    with mon.watch():
        block = np.ones(100 * 2**20 // 8)  # 100 MiB, touched
        time.sleep(0.05)
        del block
    assert set(mon.result) == {"wall_s", "host_peak_rss_gib"}
    assert mon.result["wall_s"] >= 0.05 and mon.result["host_peak_rss_gib"] > 0.09
    assert "NVML" in mon.reasons["nvml_peak_gib"] and "NVML" in mon.reasons["energy_j"]


def test_device_monitor_with_stand_in_gpu_and_energy_readers():
    used = [2**30]
    energy = [100.0]

    def gpu():
        return used[0]

    def joules():
        energy[0] += 1.5
        return energy[0]

    mon = DeviceMonitor(torch.device("cpu"), interval_s=0.001, gpu_reader=gpu, energy_reader=joules)
    with mon.watch():
        used[0] = 3 * 2**30
        time.sleep(0.01)
        used[0] = 2**30
    assert mon.result["nvml_peak_gib"] == pytest.approx(3.0)
    assert mon.result["energy_j"] == pytest.approx(1.5)
    assert not mon.reasons


def test_restart_step_clock_keeps_pre_loop_work_out_of_the_first_step():
    tr = Tracker(torch.device("cpu"))
    with tr.phase("denoise"):
        time.sleep(0.05)  # e.g. a VAE encode the pipeline runs before its loop
        tr.restart_step_clock()
        tr.step_callback(None, 0, 0, {})
        time.sleep(0.01)
        tr.step_callback(None, 1, 0, {})
    assert len(tr.steps) == 2 and tr.steps[0] < 0.04 and tr.steps[1] >= 0.01
    assert tr.phases["denoise"] >= 0.06


@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_every_bootstrap_ci_is_scipys_percentile_bootstrap(statistic: str):
    """run.json/report (``bootstrap_mean``), compare and baselines (``bootstrap_ci``) and the frontier
    (``frontier.bootstrap_ci``) all give the interval of one direct ``scipy.stats.bootstrap`` call:
    percentile method, 95 %, 2000 resamples, ``numpy.random.default_rng(seed)``."""
    from scipy.stats import bootstrap

    from evalsuite.compare.baselines import bootstrap_ci as baseline_ci
    from evalsuite.scenarios.frontier import bootstrap_ci as frontier_ci
    from evalsuite.trackers.stats import bootstrap_mean, bootstrap_statistic

    x = np.random.default_rng(7).lognormal(size=37)
    fn = {"mean": np.mean, "median": np.median}[statistic]
    res = bootstrap(
        (x,), fn, n_resamples=2000, confidence_level=0.95, method="percentile", rng=np.random.default_rng(3)
    )
    want = (float(res.confidence_interval.low), float(res.confidence_interval.high))
    est = bootstrap_statistic([*x, float("nan")], statistic, 2000, seed=3)  # NaN dropped
    assert (est.value, est.n) == (pytest.approx(float(fn(x))), 37)
    assert (est.low, est.high) == pytest.approx(want, rel=1e-12)
    assert baseline_ci(list(x), statistic, seed=3) == (est.low, est.high)
    if statistic == "mean":
        assert bootstrap_mean(x, seed=3) == est
        assert frontier_ci(list(x), 2000, seed=3) == (est.low, est.high, "percentile bootstrap, 95 %")


def test_bootstrap_statistics_gives_each_samples_bootstrap_statistic():
    """The vectorised bootstrap (the catalog's fallback for runs without recorded intervals) is
    :func:`bootstrap_statistic` sample by sample: the same resamples (scipy's draws, per sample size
    and batch) and the same percentile interval, up to the rounding of the means — for means and
    medians, odd and even sizes, ties, a size that scipy draws in several batches, NaN/inf dropped,
    and the cases with nothing to resample."""
    from evalsuite.trackers.stats import bootstrap_statistic, bootstrap_statistics

    rng = np.random.default_rng(11)
    samples = [
        rng.lognormal(size=40),
        rng.normal(size=40),  # same size as the first: resampled together
        rng.normal(3.0, 1.0, 41),
        [*rng.normal(size=9), math.nan, math.inf],
        rng.integers(0, 4, 50).astype(float),  # ties
        rng.normal(size=5001),  # more than 2,000,000 resampled values: several batches
        [2.0, 2.0, 2.0],
        [1.5],
        [],
        [1.0, 2.0],
    ]
    stats = ["mean", "median", "median", "mean", "median", "median", "mean", "median", "mean", "median"]
    got = bootstrap_statistics(samples, stats, seed=5)
    assert len(got) == len(samples)
    for values, statistic, est in zip(samples, stats, got, strict=True):
        want = bootstrap_statistic(values, statistic, seed=5)
        assert est.n == want.n
        assert (est.value, est.low, est.high) == pytest.approx(
            (want.value, want.low, want.high), rel=1e-12, nan_ok=True
        ), (statistic, len(values))
    again = bootstrap_statistics(samples, stats, seed=5)  # with the resample counts kept from the first call
    np.testing.assert_array_equal(
        [(e.value, e.low, e.high, e.n) for e in again], [(e.value, e.low, e.high, e.n) for e in got]
    )
    with pytest.raises(ValueError, match="statistic must be"):
        bootstrap_statistics([[1.0, 2.0]], ["mode"])
    with pytest.raises(ValueError, match="1 sample"):
        bootstrap_statistics([[1.0, 2.0]], [])
