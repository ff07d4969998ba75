import math

import numpy as np
import pytest
from scipy import stats

from analysis.aggregate import mean_se, sd, t_interval

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
