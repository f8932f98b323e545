"""Small statistics for reports and comparisons: bootstrap confidence intervals and paired tests.

Every function is deterministic (a fixed ``seed`` drives the resampling) so a report regenerated
from the same run directory shows the same intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
N_PERM = 10000
_CHUNK = 2_000_000  # elements per resampling chunk (bounds memory for large N)


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
    """``values`` as a float64 array without NaN/inf."""
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _resampled(
    a: np.ndarray, stat: Callable[[np.ndarray], np.ndarray], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """``stat`` (reducing axis 1) over ``n_boot`` resamples with replacement of ``a`` (rows = samples)."""
    n = a.shape[0]
    per = max(1, _CHUNK // max(1, n * (a.shape[1] if a.ndim > 1 else 1)))
    out = []
    for start in range(0, n_boot, per):
        k = min(per, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        out.append(stat(a[idx]))
    return np.concatenate(out)


def bootstrap_mean(values: Sequence[float] | np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean of the finite ``values`` with a percentile-bootstrap 95 % CI (resampling the values)."""
    a = finite(values)
    if a.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(a.mean())
    if a.size < 2:
        return Estimate(mean, math.nan, math.nan, 1)
    means = _resampled(a, lambda x: x.mean(axis=1), n_boot, np.random.default_rng(seed))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Estimate(mean, float(lo), float(hi), int(a.size))


def paired_ratio_of_medians(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """median(b) / median(a) over paired samples, with a paired-bootstrap 95 % CI.

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
    pairs = np.stack([x, y], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = _resampled(
            pairs,
            lambda p: np.median(p[..., 1], axis=1) / np.median(p[..., 0], axis=1),
            n_boot,
            np.random.default_rng(seed),
        )
    ratios = ratios[np.isfinite(ratios)]
    lo, hi = np.percentile(ratios, [2.5, 97.5]) if ratios.size else (math.nan, math.nan)
    return Estimate(value, float(lo), float(hi), int(x.size))


def sign_flip_pvalue(deltas: Sequence[float] | np.ndarray, n_perm: int = N_PERM, seed: int = 0) -> float:
    """Two-sided p-value of a paired permutation (sign-flip) test that the mean delta is 0.

    Exact (all 2^N sign patterns) for N ≤ 14, Monte Carlo with ``n_perm`` draws otherwise
    (with the +1 correction, so p is never 0). Returns ``nan`` for N = 0 and 1.0 when every delta is 0.
    """
    d = finite(deltas)
    n = d.size
    if n == 0:
        return math.nan
    observed = abs(d.mean())
    if observed == 0:
        return 1.0
    tol = 1e-12 * max(1.0, observed)
    if n <= 14:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        stats = np.abs((signs * d).mean(axis=1))
        return float(np.mean(stats >= observed - tol))
    rng = np.random.default_rng(seed)
    count, done = 0, 0
    per = max(1, _CHUNK // n)
    while done < n_perm:
        k = min(per, n_perm - done)
        signs = rng.integers(0, 2, size=(k, n)) * 2 - 1
        count += int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - tol))
        done += k
    return (count + 1) / (n_perm + 1)


def quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q`` quantile (0–1, linear interpolation) of the finite values; ``nan`` when empty."""
    a = finite(values)
    return float(np.quantile(a, q)) if a.size else math.nan
