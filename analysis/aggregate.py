"""Across-seed summaries (METHODS.md §5, "Across seeds").

NaN values are never dropped: one NaN makes the result NaN, so a statistic is never silently taken
over fewer seeds than were given.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from scipy import stats


def _array(values: Iterable[float]) -> np.ndarray:
    return np.asarray(list(values), dtype=float).ravel()


def mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, standard error, n): SE = sample standard deviation (ddof=1) / sqrt(n), as in 000 Table 1.
    SE is NaN when n < 2; mean is NaN when n == 0."""
    x = _array(values)
    n = x.size
    mean = float(np.mean(x)) if n else float("nan")
    se = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return mean, se, n


def sd(values: Iterable[float]) -> float:
    """Sample standard deviation (ddof=1), the ± of 002 and 004; NaN when n < 2."""
    x = _array(values)
    return float(np.std(x, ddof=1)) if x.size > 1 else float("nan")


def t_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t confidence interval for the mean: mean ± t_{(1+level)/2, n-1} · SE.
    (NaN, NaN) when n < 2."""
    if not 0 < level < 1:
        raise ValueError(f"t_interval: level must lie in (0, 1), got {level}")
    mean, se, n = mean_se(values)
    if n < 2:
        return float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, df=n - 1)) * se
    return mean - half, mean + half


def bootstrap_interval(values: Iterable[float], level: float = 0.95, n_resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean (METHODS.md §5, "Across seeds"): the (1-level)/2 and
    (1+level)/2 percentiles of the means of ``n_resamples`` resamples with replacement, drawn with
    ``numpy.random.default_rng(seed)``. (NaN, NaN) when n < 2 or any value is NaN."""
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_interval: level must lie in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"bootstrap_interval: n_resamples must be >= 1, got {n_resamples}")
    x = _array(values)
    if x.size < 2 or np.isnan(x).any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    low, high = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def iqm(values: Iterable[float]) -> float:
    """Interquartile mean: the mean of the middle half of the values, scipy.stats.trim_mean(x, 0.25)
    (a quarter of the values cut at each end, rounded down). NaN when empty or any value is NaN."""
    x = _array(values)
    if x.size == 0 or np.isnan(x).any():
        return float("nan")
    return float(stats.trim_mean(x, 0.25))
