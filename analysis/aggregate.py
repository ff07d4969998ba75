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
