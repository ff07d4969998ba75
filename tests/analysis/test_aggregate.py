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


NAN = float("nan")
# 2 configurations x 3 seeds x 3 tasks: the last row R[3, :] per seed (hand-chosen); the rows above are
# the same for every seed. Final averages: a1 80, 82, 87 (mean 83, SE sqrt(13/3)); b1 70, 70, 73 (mean
# 71, SE 1). Task 1 at the end of a1: 70, 72, 78 (mean 220/3, SE sqrt(52)/3).
LAST = {"a1": {0: [70.0, 75.0, 95.0], 1: [72.0, 75.0, 99.0], 2: [78.0, 80.0, 103.0]},
        "b1": {0: [60.0, 65.0, 85.0], 1: [60.0, 65.0, 85.0], 2: [63.0, 68.0, 88.0]}}
HAND = {"a1": (83.0, math.sqrt(13 / 3)), "b1": (71.0, 1.0)}


def _agreement_records(records_from):
    import pandas as pd

    parts = []
    for config, seeds in LAST.items():
        for seed, last in seeds.items():
            R = [[90.0, NAN, NAN], [80.0, 85.0, NAN], last]
            parts.append(records_from(R, config[0].upper(), seed, config_id=config))
    return pd.concat(parts, ignore_index=True)


def test_core_stats_table_and_plots_give_the_same_mean_and_se(make_records):
    """One set of records through core.stats.mean_se, analysis.table.summarize and
    analysis.plots._seed_stats (at the last step): the same mean and SE, and the hand-computed SE."""
    from analysis.plots import _seed_stats
    from analysis.table import objective_scores, summarize
    from core import stats

    records = _agreement_records(make_records)
    summary = summarize(records, "acc", higher_is_better=True).set_index("config_id")
    last_step = int(records["step"].max())                            # 300: the end of task 3
    for config, seeds in LAST.items():
        finals = [float(np.mean(last)) for last in seeds.values()]
        mean, se, n = stats.mean_se(finals)
        assert n == 3 and (mean, se) == pytest.approx(HAND[config], rel=1e-12)
        row = summary.loc[config]
        assert (row["final"], row["final_se"]) == pytest.approx((mean, se), rel=1e-12)
        assert objective_scores(records, "acc", "mean", True)[(config[0].upper(), config)] == pytest.approx(mean)

        cfg = records[(records["config_id"] == config) & (records["metric"] == "acc")]
        # the final average of each seed as a curve at the last step: _seed_stats gives the same numbers
        at_end = cfg[cfg["step"] == last_step].groupby("seed", as_index=False)["value"].mean()
        curve = _seed_stats(at_end.assign(step=last_step), config)
        assert list(curve.columns) == ["mean", "se", "n"]
        assert (curve.loc[last_step, "mean"], curve.loc[last_step, "se"]) == pytest.approx((mean, se), rel=1e-12)
        assert curve.loc[last_step, "n"] == 3
        # each task's curve at the last step: mean_se of R[3, j] over seeds; their mean is the final average
        task_means = []
        for j in (1, 2, 3):
            point = _seed_stats(cfg[cfg["eval_task"] == j], config).loc[last_step]
            direct = stats.mean_se([last[j - 1] for last in seeds.values()])
            assert (point["mean"], point["se"], point["n"]) == pytest.approx(direct, rel=1e-12)
            task_means.append(point["mean"])
        assert np.mean(task_means) == pytest.approx(row["final"], rel=1e-12)
    point = _seed_stats(records[(records["config_id"] == "a1") & (records["metric"] == "acc")
                                & (records["eval_task"] == 1)], "a1").loc[last_step]
    assert (point["mean"], point["se"]) == pytest.approx((220 / 3, math.sqrt(52) / 3), rel=1e-12)


def test_seed_stats_nan_single_seed_and_duplicates():
    import pandas as pd

    from analysis.plots import _seed_stats

    evals = pd.DataFrame({"seed": [0, 1, 0, 1, 0], "step": [5, 5, 10, 10, 20], "value": [1.0, 3.0, 2.0, NAN, 7.0]})
    out = _seed_stats(evals, "A")
    assert list(out.index) == [5, 10, 20] and list(out["n"]) == [2, 2, 1]
    assert out.loc[5, "mean"] == 2.0 and out.loc[5, "se"] == pytest.approx(1.0)       # sd sqrt(2) / sqrt(2)
    assert math.isnan(out.loc[10, "mean"]) and math.isnan(out.loc[10, "se"])         # a NaN is not dropped
    assert out.loc[20, "mean"] == 7.0 and math.isnan(out.loc[20, "se"])              # one seed: no SE
    with pytest.raises(ValueError, match="several values for seed 0 at step 5"):
        _seed_stats(pd.concat([evals, evals.iloc[:1]]), "A")


def test_aggregate_is_core_stats():
    from analysis import aggregate
    from core import stats

    for name in ("mean_se", "sd", "t_interval", "bootstrap_interval", "iqm"):
        assert getattr(aggregate, name) is getattr(stats, name)
