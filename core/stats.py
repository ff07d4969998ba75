"""Every statistic the project prints, in one place (METHODS.md §5, "Across seeds"): mean and standard
error over seeds, the objective's reduction over tasks and over seeds, and intervals.

Trial reports, MLflow aggregates, plots and tables all call these functions, so one number is computed
one way everywhere. NaN values are never dropped: one NaN makes the result NaN, so a statistic is never
silently taken over fewer seeds than were given. No torch import.

IQM, bootstrap intervals, performance profiles and P(improvement) are rliable's (Agarwal et al. 2021,
"Deep RL at the edge of the statistical precipice"), imported inside the functions: rliable imports arch,
which is slow, and the CLI starts without it.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
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


BOOTSTRAP_REPS = 2000  # resamples of every bootstrap interval (rliable's create_performance_profile default)
BOOTSTRAP_SEED = 0     # the seed of every bootstrap interval unless one is passed


def score_matrix(values: Iterable[float]) -> np.ndarray:
    """rliable's (runs × tasks) score matrix of one score over seeds: (seeds × 1). The runs are the seeds;
    the one "task" is the per-seed score (final, forgetting, BWT or AAA of the whole stream), so a
    stratified bootstrap over tasks is the bootstrap over seeds, and IQM is over the seeds."""
    return _array(values)[:, None]


@contextmanager
def _global_numpy_seed(seed: int):
    """rliable 1.2's StratifiedBootstrap draws its resamples with ``np.random.choice`` (numpy's global
    generator) and ignores its ``random_state``; this seeds that generator for one call and restores its
    previous state afterwards, so no global state changes."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _rliable_interval(name: str, values: Iterable[float], aggregate, level: float, n_resamples: int,
                      seed: int) -> tuple[float, float]:
    """rliable.library.get_interval_estimates of ``aggregate`` over score_matrix(values): stratified
    bootstrap, percentile interval at ``level``, ``n_resamples`` resamples, ``seed`` as random_state and
    global numpy seed. (NaN, NaN) when n < 2 or any value is NaN."""
    if not 0 < level < 1:
        raise ValueError(f"{name}: level must lie in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"{name}: n_resamples must be >= 1, got {n_resamples}")
    x = score_matrix(values)
    if x.shape[0] < 2 or np.isnan(x).any():
        return float("nan"), float("nan")
    from rliable import library

    with warnings.catch_warnings(), _global_numpy_seed(seed):
        warnings.simplefilter("ignore", FutureWarning)  # arch: "random_state is deprecated", rliable passes it
        _, ci = library.get_interval_estimates({name: x}, lambda s: np.array([aggregate(s)]), reps=n_resamples,
                                               confidence_interval_size=level,
                                               random_state=np.random.RandomState(seed))
    low, high = ci[name][:, 0]
    return float(low), float(high)


def bootstrap_interval(values: Iterable[float], level: float = 0.95, n_resamples: int = BOOTSTRAP_REPS,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """rliable's stratified-bootstrap percentile interval of the mean (metrics.aggregate_mean) on the
    (seeds × 1) score_matrix: (1-level)/2 and (1+level)/2 percentiles of ``n_resamples`` resampled means,
    reproducible by ``seed``. (NaN, NaN) when n < 2 or any value is NaN."""
    from rliable import metrics

    return _rliable_interval("bootstrap_interval", values, metrics.aggregate_mean, level, n_resamples, seed)


def iqm(values: Iterable[float]) -> float:
    """Interquartile mean (Agarwal et al. 2021): rliable.metrics.aggregate_iqm on the (seeds × 1)
    score_matrix, i.e. scipy.stats.trim_mean(x, 0.25): a quarter of the values cut at each end (rounded
    down), the mean of the rest. NaN when empty or any value is NaN (trim_mean would sort a NaN away)."""
    from rliable import metrics

    x = score_matrix(values)
    if x.size == 0 or np.isnan(x).any():
        return float("nan")
    return float(metrics.aggregate_iqm(x))


def iqm_interval(values: Iterable[float], level: float = 0.95, n_resamples: int = BOOTSTRAP_REPS,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """rliable's stratified-bootstrap percentile interval of the IQM (metrics.aggregate_iqm) on the
    (seeds × 1) score_matrix, as bootstrap_interval. (NaN, NaN) when n < 2 or any value is NaN."""
    from rliable import metrics

    return _rliable_interval("iqm_interval", values, metrics.aggregate_iqm, level, n_resamples, seed)


def performance_profile(scores: Mapping[str, Iterable[float]], taus: Iterable[float], level: float = 0.95,
                        n_resamples: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's performance profile (score distribution): per key, the fraction of runs with score > τ
    for every τ of ``taus`` (library.score_distributions), and its stratified-bootstrap interval
    (2 × len(taus): low, high). The same computation as rliable's create_performance_profile, which
    takes no random_state; here ``seed`` makes the bands reproducible. Scores: per-seed values (seeds × 1)."""
    from rliable import library

    tau = np.asarray(list(taus), dtype=float)
    matrices = {key: score_matrix(v) for key, v in scores.items()}
    with warnings.catch_warnings(), _global_numpy_seed(seed):
        warnings.simplefilter("ignore", FutureWarning)
        return library.get_interval_estimates(matrices, lambda s: library.score_distributions(s, tau),
                                              reps=n_resamples, confidence_interval_size=level,
                                              random_state=np.random.RandomState(seed))


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


SEED_RULES = ("mean", "lower_bound")  # how a configuration's per-seed objective values become one number


def seed_objective(values: Iterable[float], rule: str = "mean", k: float = 0.0,
                   higher_is_better: bool = True) -> float:
    """The number a search optimises from one configuration's per-seed objective values: ``mean``, or
    ``lower_bound``, the pessimistic end of mean ± k·SE (mean − k·SE when higher is better, mean + k·SE
    when lower is; SE from ``mean_se``, ddof = 1), which prefers configurations good on every seed to ones
    lucky on one. NaN when any value is NaN; ``lower_bound`` with k > 0 is NaN for fewer than 2 seeds (the
    SE of one seed is undefined; a space refuses that combination before any work)."""
    if rule not in SEED_RULES:
        raise ValueError(f"objective.seeds: '{rule}' is not allowed; allowed: {', '.join(SEED_RULES)}")
    mean, se, n = mean_se(values)
    if rule == "mean" or k == 0:
        return mean
    if n < 2:
        return float("nan")
    return mean - k * se if higher_is_better else mean + k * se


def seed_summary(per_seed: Mapping[int, float]) -> dict[str, float]:
    """The objective over seeds as a trial reports it: ``objective`` (mean), ``objective_se`` (SE, NaN
    with one seed) and ``objective_seed<s>`` for every seed."""
    mean, se, _ = mean_se(per_seed.values())
    return {"objective": mean, "objective_se": se, **{f"objective_seed{s}": float(v) for s, v in per_seed.items()}}


ALPHA = 0.05  # the level at which a comparison's verdict calls a difference significant


def _p(test, *args, **kwargs) -> float:
    """A scipy test's p-value; its precision warning on nearly equal values (a side with no variance,
    whose p the test still defines) is not printed to the user."""
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
    """P(X > Y) (Agarwal et al. 2021): rliable.metrics.probability_of_improvement on (seeds × 1)
    score matrices, i.e. the probability that a run of x beats a run of y, ties counting 1/2 (Mann-Whitney
    U over n_x·n_y; 0.5 when x and y are equal). ``higher_is_better`` False compares −x with −y. NaN when
    either is empty or holds a NaN."""
    from rliable import metrics

    a, b = score_matrix(x), score_matrix(y)
    if not a.size or not b.size or np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    if not higher_is_better:
        a, b = -a, -b
    return float(metrics.probability_of_improvement(a, b))


def reproduction_bound(paper_sd: float, paper_n: int, ours_sd: float, ours_n: int, points: float = 2.0,
                       se_factor: float = 2.0) -> float:
    """How far our mean may lie from a paper's and still reproduce it: max(points, se_factor ·
    sqrt(sd_paper²/n_paper + sd_ours²/n_ours)), the standard error of the difference of two independent
    means (issue 20's rule; n_paper = n_ours = n gives its 2·sqrt(SD²_paper/n + SD²_ours/n)). An unknown
    spread (NaN: the paper gives none, or one seed of ours) counts as 0, so only ``points`` remains."""
    terms = [s * s / n for s, n in ((paper_sd, paper_n), (ours_sd, ours_n)) if n and math.isfinite(s)]
    return max(points, se_factor * math.sqrt(sum(terms)))


def rank_agreement(x: Iterable[float], y: Iterable[float]) -> float:
    """Kendall's τ-b between two rankings of the same items (scipy.stats.kendalltau): 1 the same order,
    −1 reversed; NaN with fewer than 2 items, a NaN value, or a side whose values are all equal."""
    from scipy import stats

    a, b = _array(x), _array(y)
    if a.size != b.size:
        raise ValueError(f"rank_agreement: {a.size} values against {b.size}")
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any() or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(stats.kendalltau(a, b).statistic)
