"""The statistics of reports, comparisons and baselines — one implementation each, on scipy.stats.

* :func:`quantile` — **the** percentile definition of evalsuite (``run.json``'s latency p90, the
  trackers' :func:`~evalsuite.trackers.tracking.summarize`, ``summary.csv`` and the report tables):
  linear interpolation between order statistics (Hyndman & Fan type 7, numpy's and pandas'
  default). Chosen over nearest-rank because its p50 *is* the median printed next to it (a
  nearest-rank p50 of an even N is the lower middle value), because anyone can reproduce a figure
  with ``numpy.quantile`` / ``DataFrame.quantile`` without options, and because it moves
  continuously with the data instead of jumping between observed values (on 8 images nearest-rank
  p90 is the maximum).
* :func:`bootstrap_statistic` (and :func:`bootstrap_mean`), :func:`paired_ratio_of_medians` —
  evalsuite's one bootstrap: percentile 95 % intervals through :func:`scipy.stats.bootstrap`
  (paired resampling for paired samples), 2000 resamples and ``numpy.random.default_rng(seed)``
  with seed 0 by default. Every bootstrap interval uses it: the report's tables and plots, compare,
  the baselines (:func:`evalsuite.compare.baselines.bootstrap_ci`), the frontier
  (:func:`evalsuite.scenarios.frontier.bootstrap_ci`) and the summary intervals scoring records in
  ``run.json`` (:func:`evalsuite.metrics.scoring.sample_ci`). :func:`bootstrap_statistics` is the
  same bootstrap for many samples at once, vectorised in numpy (the same resamples as scipy draws
  them; tested equal to :func:`bootstrap_statistic`): the catalog's intervals of runs scored before
  scoring recorded them, without importing scipy.
* :func:`sign_flip_pvalue` — the paired permutation test through
  :func:`scipy.stats.permutation_test` (``permutation_type="samples"`` on the differences flips
  their signs): exact for N ≤ 13, Monte Carlo with ``n_perm`` sign patterns above.

Every function is deterministic (a fixed ``seed`` drives the resampling), so a report or
comparison regenerated from the same run directories shows the same intervals and p-values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

N_BOOT = 2000
N_PERM = 10000
CONFIDENCE = 0.95
_BATCH_ELEMENTS = 2_000_000  # bound on resampled values held at once (memory for large N)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a 95 % interval.

    Attributes:
        value: the statistic on the data (``nan`` when there is no data).
        low, high: bounds of the percentile-bootstrap 95 % interval (``nan`` when N < 2).
        n: number of finite values used.
    """

    value: float
    low: float
    high: float
    n: int


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``values`` as a float64 array without NaN/inf (``None`` counts as NaN)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q`` quantile (0–1) of the finite values by linear interpolation (type 7; see the
    module doc for why this is evalsuite's one percentile definition); ``nan`` when empty.

    Raises:
        ValueError: for ``q`` outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be within [0, 1], got {q}")
    a = finite(values)
    return float(np.quantile(a, q, method="linear")) if a.size else math.nan


def _batch(n: int, width: int = 1) -> int:
    return max(1, _BATCH_ELEMENTS // max(1, n * width))


def _interval(res: object) -> tuple[float, float]:
    ci = res.confidence_interval  # type: ignore[attr-defined]
    return float(ci.low), float(ci.high)


def bootstrap_mean(values: Sequence[float] | np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean of the finite ``values`` with a percentile-bootstrap 95 % CI
    (:func:`scipy.stats.bootstrap`, ``method="percentile"``)."""
    return bootstrap_statistic(values, "mean", n_boot, seed)


def bootstrap_statistic(
    values: Sequence[float] | np.ndarray, statistic: str = "mean", n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """``mean`` or ``median`` of the finite ``values`` with a percentile-bootstrap 95 % CI.

    Raises:
        ValueError: for another ``statistic``.
    """
    fns: dict[str, Callable[..., Any]] = {"mean": np.mean, "median": np.median}
    fn = fns.get(statistic)
    if fn is None:
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    a = finite(values)
    if a.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(fn(a))
    if a.size < 2:
        return Estimate(value, math.nan, math.nan, 1)
    if np.all(a == a[0]):  # no spread: every resample has the same statistic
        return Estimate(value, value, value, int(a.size))
    from scipy.stats import bootstrap

    res = bootstrap(
        (a,),
        fn,
        n_resamples=n_boot,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        batch=_batch(a.size),
        rng=np.random.default_rng(seed),
    )
    lo, hi = _interval(res)
    return Estimate(value, lo, hi, int(a.size))


def bootstrap_statistics(
    samples: Sequence[Sequence[float] | np.ndarray],
    statistics: Sequence[str],
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> list[Estimate]:
    """:func:`bootstrap_statistic` of many samples at once (``statistics[i]``, ``mean`` or
    ``median``, of ``samples[i]``): the same estimates, vectorised in numpy, without scipy.

    The same bootstrap, not another one: :func:`scipy.stats.bootstrap` draws each batch of
    resamples of N values as ``rng.integers(0, N, (batch, N))`` from ``numpy.random.default_rng(seed)``
    (the batch size :func:`bootstrap_statistic` passes), so every sample of N finite values is
    resampled with the same indices. Here they are drawn once per sample size, turned into counts
    (how often each value is drawn into each resample), and every sample of that size is resampled
    through them: a resample's mean is the counts-weighted mean (one matrix product for all the
    means), its median is read off the sample's sorted values where the cumulative counts pass the
    middle. The interval is the same percentile interval (linear interpolation, 2.5 % and 97.5 %).
    Equal to :func:`bootstrap_statistic` up to floating-point rounding of the means (tested to
    1e-12 relative); a few milliseconds per sample instead of tens.

    Raises:
        ValueError: another statistic, or not one statistic per sample.
    """
    if len(statistics) != len(samples):
        raise ValueError(f"{len(samples)} sample(s) but {len(statistics)} statistic(s)")
    fns: dict[str, Callable[..., Any]] = {"mean": np.mean, "median": np.median}
    out: list[Estimate | None] = [None] * len(samples)
    by_size: dict[int, list[tuple[int, np.ndarray, str]]] = {}
    for i, (values, statistic) in enumerate(zip(samples, statistics, strict=True)):
        if statistic not in fns:
            raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
        a = finite(values)
        if a.size < 2 or np.all(a == a[0]):
            out[i] = bootstrap_statistic(a, statistic, n_boot, seed)  # nothing to resample
        else:
            by_size.setdefault(int(a.size), []).append((i, a, statistic))
    alpha = (1 - CONFIDENCE) / 2
    for n, group in by_size.items():
        data = np.stack([a for _, a, _ in group])
        theta = _resampled(data, np.array([s == "mean" for *_, s in group]), n_boot, seed)
        lows, highs = np.quantile(theta, [alpha, 1 - alpha], axis=-1)
        for (i, a, statistic), lo, hi in zip(group, lows, highs, strict=True):
            out[i] = Estimate(float(fns[statistic](a)), float(lo), float(hi), n)
    return cast(list[Estimate], out)


def _resampled(data: np.ndarray, is_mean: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """The statistic (mean where ``is_mean``, else median) of ``n_boot`` bootstrap resamples of each
    row of ``data`` (m rows of N values), every row resampled with the indices
    :func:`scipy.stats.bootstrap` draws (see :func:`bootstrap_statistics`): shape (m, n_boot)."""
    m, n = data.shape
    theta = np.empty((m, n_boot))
    means, medians = np.flatnonzero(is_mean), np.flatnonzero(~is_mean)
    order = np.argsort(data[medians], axis=1, kind="stable")
    ranked = np.take_along_axis(data[medians], order, axis=1)
    # 0-based ranks of the middle value(s) of a sorted resample: np.median's
    lower, upper = (n - 1) // 2, n // 2
    k = 0
    for counts in _resample_counts(n, n_boot, seed):
        b = counts.shape[1]
        if means.size:
            theta[means, k : k + b] = (data[means] @ counts.astype(np.float64)) / n
        for j, row in enumerate(medians):
            cum = np.cumsum(counts[order[j]], axis=0, dtype=np.int32)  # drawn values ≤ each sorted value
            # the sorted resample's value at rank q is the first sorted value whose cumulative count
            # exceeds q: the number of sorted values whose count does not
            lo = ranked[j, np.count_nonzero(cum <= lower, axis=0)]
            if upper == lower:
                theta[row, k : k + b] = lo
            else:
                theta[row, k : k + b] = (lo + ranked[j, np.count_nonzero(cum <= upper, axis=0)]) / 2
        k += b
    return theta


_COUNTS: dict[tuple[int, int, int], list[np.ndarray]] = {}
_COUNTS_CACHED = 4  # sample sizes kept (each at most _BATCH_ELEMENTS * 2 int32 counts, 16 MB)


def _resample_counts(n: int, n_boot: int, seed: int) -> list[np.ndarray]:
    """For each batch of resamples :func:`scipy.stats.bootstrap` draws for N values (``batch`` as
    :func:`bootstrap_statistic` passes it): ``counts[i, r]``, how often value i is drawn into
    resample r (int32, N × batch; values by row, so a cumulative sum over the values adds whole rows
    of resamples). The same for every sample of N values, so the last few sizes are kept (read-only):
    the runs of a catalog mostly share their sizes."""
    key = (n, n_boot, seed)
    got = _COUNTS.get(key)
    if got is not None:
        return got
    rng = np.random.default_rng(seed)
    batch = _batch(n)
    got = []
    for k in range(0, n_boot, batch):
        b = min(batch, n_boot - k)
        idx = rng.integers(0, n, (b, n))
        flat = (idx * b + np.arange(b)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n * b).reshape(n, b).astype(np.int32)
        counts.setflags(write=False)
        got.append(counts)
    if n * n_boot <= 2 * _BATCH_ELEMENTS:
        while len(_COUNTS) >= _COUNTS_CACHED:
            del _COUNTS[next(iter(_COUNTS))]  # the oldest
        _COUNTS[key] = got
    return got


def paired_ratio_of_medians(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """median(b) / median(a) over paired samples, with a paired percentile-bootstrap 95 % CI
    (:func:`scipy.stats.bootstrap` with ``paired=True``: pairs are resampled together).

    Pairs with a non-finite value on either side are dropped.

    Raises:
        ValueError: when ``a`` and ``b`` differ in length.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0 or np.median(x) == 0:
        return Estimate(math.nan, math.nan, math.nan, int(x.size))
    value = float(np.median(y) / np.median(x))
    if x.size < 2:
        return Estimate(value, math.nan, math.nan, 1)
    if np.all(y == value * x):  # b is a constant multiple of a: every resample gives the same ratio
        return Estimate(value, value, value, int(x.size))
    from scipy.stats import bootstrap

    def ratio(xs: np.ndarray, ys: np.ndarray, axis: int = -1) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.median(ys, axis=axis) / np.median(xs, axis=axis)

    res = bootstrap(
        (x, y),
        ratio,
        paired=True,
        n_resamples=n_boot,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        batch=_batch(x.size, 2),
        rng=np.random.default_rng(seed),
    )
    lo, hi = _interval(res)
    return Estimate(value, lo, hi, int(x.size))


def sign_flip_pvalue(deltas: Sequence[float] | np.ndarray, n_perm: int = N_PERM, seed: int = 0) -> float:
    """Two-sided p-value of the paired permutation (sign-flip) test that the mean delta is 0
    (:func:`scipy.stats.permutation_test` with ``permutation_type="samples"``).

    Exact (all 2^N sign patterns) when 2^N ≤ ``n_perm`` (N ≤ 13 by default), Monte Carlo with
    ``n_perm`` patterns otherwise (scipy's +1 correction, so p is never 0). Returns ``nan`` for
    N = 0 and 1.0 when every delta is 0.
    """
    d = finite(deltas)
    if d.size == 0:
        return math.nan
    if not np.any(d):
        return 1.0
    from scipy.stats import permutation_test

    def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis)

    res = permutation_test(
        (d,),
        mean,
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=n_perm,
        vectorized=True,
        batch=_batch(d.size),
        rng=np.random.default_rng(seed),
    )
    return float(min(1.0, res.pvalue))
