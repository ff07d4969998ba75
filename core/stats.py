"""Every statistic the project prints, in one place (METHODS.md §5, "Across seeds"): mean and standard
error over seeds, the objective's reduction over tasks and over seeds, and intervals.

Trial reports, MLflow aggregates, plots and tables all call these functions, so one number is computed
one way everywhere. NaN values are never dropped: one NaN makes the result NaN, so a statistic is never
silently taken over fewer seeds than were given. No torch import.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

REDUCTIONS = ("mean", "worst", "last")


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
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"t_interval: level must lie in (0, 1), got {level}")
    mean, se, n = mean_se(values)
    if n < 2:
        return float("nan"), float("nan")
    half = float(stats.t.ppf((1 + level) / 2, df=n - 1)) * se
    return mean - half, mean + half


def bootstrap_interval(values: Iterable[float], level: float = 0.95, n_resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean: the (1-level)/2 and (1+level)/2 percentiles of the
    means of ``n_resamples`` resamples with replacement, drawn with ``numpy.random.default_rng(seed)``.
    (NaN, NaN) when n < 2 or any value is NaN."""
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
    from scipy import stats

    x = _array(values)
    if x.size == 0 or np.isnan(x).any():
        return float("nan")
    return float(stats.trim_mean(x, 0.25))


def reduce_tasks(values: Mapping[int, float], reduce: str, higher_is_better: bool) -> float:
    """One seed's objective after task k from ``values`` = {task j <= k: metric at task k's end}:
    mean (the running final average), worst (the lowest, or the highest when lower is better) or last
    (task k's own value, k = the largest task given)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"objective.reduce: '{reduce}' is not allowed; allowed: {', '.join(REDUCTIONS)}")
    if not values:
        return float("nan")
    if reduce == "last":
        return float(values[max(values)])
    ordered = [values[j] for j in sorted(values)]
    if reduce == "worst":
        return float(min(ordered) if higher_is_better else max(ordered))
    return float(np.mean(ordered))


def seed_summary(per_seed: Mapping[int, float]) -> dict[str, float]:
    """The objective over seeds as a trial reports it: ``objective`` (mean), ``objective_se`` (SE, NaN
    with one seed) and ``objective_seed<s>`` for every seed."""
    mean, se, _ = mean_se(per_seed.values())
    return {"objective": mean, "objective_se": se, **{f"objective_seed{s}": float(v) for s, v in per_seed.items()}}


ALPHA = 0.05  # the level at which a comparison's verdict calls a difference significant


def _p(test, *args, **kwargs) -> float:
    """A scipy test's p-value; its precision warning on nearly equal values (a side with no variance,
    whose p the test still defines) is not printed to the user."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(test(*args, **kwargs).pvalue)


def paired_comparison(x: Iterable[float], y: Iterable[float]) -> dict:
    """x − y on paired seeds (same order): ``diff`` and ``diff_se`` (mean_se of the differences),
    ``n``, ``t_p`` (two-sided paired t-test, scipy.stats.ttest_rel: t = mean / SE with n−1 df) and
    ``rank_p`` (Wilcoxon signed-rank, scipy.stats.wilcoxon, two-sided); a p-value that cannot be had is
    NaN with the reason in ``t_why`` / ``rank_why`` (fewer than 2 pairs, all differences 0)."""
    from scipy import stats

    a, b = _array(x), _array(y)
    if a.size != b.size:
        raise ValueError(f"paired_comparison: {a.size} values against {b.size}; pairs need equal counts")
    d = a - b
    mean, se, n = mean_se(d)
    out = {"diff": mean, "diff_se": se, "n": n, "t_p": math.nan, "t_why": "", "rank_p": math.nan,
           "rank_why": ""}
    if n < 2:
        out["t_why"] = out["rank_why"] = f"{n} pair{'s' if n != 1 else ''}, need 2"
    elif np.all(d == 0):
        out["t_why"] = out["rank_why"] = "all differences 0"
    elif np.all(d == d[0]):
        out["t_why"] = "differences all equal (no variance)"
        out["rank_p"] = _p(stats.wilcoxon, a, b)
    else:
        out["t_p"], out["rank_p"] = _p(stats.ttest_rel, a, b), _p(stats.wilcoxon, a, b)
    return out


def unpaired_comparison(x: Iterable[float], y: Iterable[float]) -> dict:
    """mean(x) − mean(y) on independent seeds: ``diff``, ``diff_se`` (Welch's sqrt(s_x²/n_x +
    s_y²/n_y)), ``n`` (n_x + n_y), ``t_p`` (Welch's t-test, scipy.stats.ttest_ind(equal_var=False)) and
    ``rank_p`` (Mann-Whitney U, two-sided); NaN with ``t_why`` / ``rank_why`` when a side has < 2 runs
    or every value is equal."""
    from scipy import stats

    a, b = _array(x), _array(y)
    diff = float(np.mean(a) - np.mean(b)) if a.size and b.size else math.nan
    se = math.sqrt(sd(a) ** 2 / a.size + sd(b) ** 2 / b.size) if min(a.size, b.size) > 1 else math.nan
    out = {"diff": diff, "diff_se": se, "n": a.size + b.size, "t_p": math.nan, "t_why": "",
           "rank_p": math.nan, "rank_why": ""}
    if min(a.size, b.size) < 2:
        out["t_why"] = out["rank_why"] = f"{min(a.size, b.size)} run(s) on one side, need 2"
    elif np.all(np.concatenate([a, b]) == a[0]):
        out["t_why"] = out["rank_why"] = "all values equal"
    else:
        if se == 0:
            out["t_why"] = "no variance on either side"
        else:
            out["t_p"] = _p(stats.ttest_ind, a, b, equal_var=False)
        out["rank_p"] = _p(stats.mannwhitneyu, a, b, alternative="two-sided")
    return out


def probability_of_improvement(x: Iterable[float], y: Iterable[float], higher_is_better: bool = True) -> float:
    """P(X > Y): the probability that a run of x beats a run of y, ties counting 1/2, i.e. the
    Mann-Whitney U of x against y over n_x·n_y (Agarwal et al. 2021, rliable's
    ``metrics.probability_of_improvement`` on a runs × 1 score matrix: runs are seeds, the one "task" is
    one score such as final). rliable is not a dependency (rliable 1.2's library needs arch < 8, and
    arch 7 does not import beside pandas 3), so this is its formula, with scipy. ``higher_is_better``
    False compares −x with −y. 0.5 when x and y are equal; NaN when either is empty."""
    from scipy import stats

    a, b = _array(x), _array(y)
    if not a.size or not b.size or np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    if not higher_is_better:
        a, b = -a, -b
    if a.size == b.size and np.array_equal(a, b):
        return 0.5
    return float(stats.mannwhitneyu(a, b, alternative="greater").statistic / (a.size * b.size))
