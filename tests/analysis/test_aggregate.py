import math

import numpy as np
import pytest
from scipy import stats

from analysis.aggregate import bootstrap_interval, iqm, mean_se, sd, t_interval

VALUES = [44.1, 47.9, 41.6, 44.5]


def test_mean_se_matches_scipy_sem():
    mean, se, n = mean_se(VALUES)
    assert n == 4
    assert mean == pytest.approx(44.525)                # 178.1 / 4
    assert se == pytest.approx(stats.sem(VALUES))       # ddof = 1
    assert se == pytest.approx(np.std(VALUES, ddof=1) / 2)


def test_single_and_empty():
    assert mean_se([3.0])[0] == 3.0 and math.isnan(mean_se([3.0])[1])
    mean, se, n = mean_se([])
    assert n == 0 and math.isnan(mean) and math.isnan(se)
    assert math.isnan(sd([3.0]))


def test_nan_is_not_dropped():
    mean, se, n = mean_se([1.0, float("nan"), 3.0])
    assert n == 3 and math.isnan(mean) and math.isnan(se)


def test_sd_and_t_interval():
    assert sd(VALUES) == pytest.approx(np.std(VALUES, ddof=1))
    low, high = t_interval(VALUES, 0.95)
    ref = stats.t.interval(0.95, df=3, loc=np.mean(VALUES), scale=stats.sem(VALUES))
    assert (low, high) == pytest.approx(ref)
    assert all(math.isnan(x) for x in t_interval([1.0]))
    with pytest.raises(ValueError):
        t_interval(VALUES, 95)


def test_iqm_hand_case():
    # 8 values: trim 2 at each end -> mean(3, 4, 5, 6); the outlier 100 does not count
    assert iqm([7, 1, 100, 3, 5, 2, 6, 4]) == pytest.approx(4.5)
    assert iqm([1.0, 2.0, 3.0, 4.0]) == pytest.approx(2.5)     # trims 1 each end: mean(2, 3)
    assert math.isnan(iqm([])) and math.isnan(iqm([1.0, float("nan"), 3.0]))


def test_bootstrap_interval():
    low, high = bootstrap_interval(VALUES, seed=1)
    assert low < np.mean(VALUES) < high
    assert (low, high) == bootstrap_interval(VALUES, seed=1)               # reproducible
    assert (low, high) != bootstrap_interval(VALUES, seed=2)
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 2, 8), rng.normal(10, 2, 800)
    width = [np.subtract(*bootstrap_interval(x)[::-1]) for x in (small, large)]
    assert width[1] < width[0] / 5                                        # ~ 1/sqrt(n): 10x narrower
    assert all(math.isnan(x) for x in bootstrap_interval([1.0]))
    assert all(math.isnan(x) for x in bootstrap_interval([1.0, float("nan")]))
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval(VALUES, level=95)
