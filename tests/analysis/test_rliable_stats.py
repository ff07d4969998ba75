"""core.stats' IQM, bootstrap intervals, P(improvement) and performance profiles are rliable's: checked
against hand-computed values and against rliable called directly with the same seed; then the
`table --stats` and `plot --kind profile` commands on a records file."""

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from core import stats as S
from orchestrator.cli import main

SCORES = np.array([0.61, 0.74, 0.55, 0.90, 0.68, 0.71, 0.40, 0.77])


def _rliable_direct(values, aggregate, seed, reps=S.BOOTSTRAP_REPS, level=0.95):
    """rliable called as its README does, seeding numpy's global generator too (rliable 1.2's
    StratifiedBootstrap draws with np.random.choice and ignores random_state)."""
    from rliable import library

    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # arch: "random_state is deprecated"
        point, ci = library.get_interval_estimates({"m": np.asarray(values, float)[:, None]},
                                                   lambda s: np.array([aggregate(s)]), reps=reps,
                                                   confidence_interval_size=level,
                                                   random_state=np.random.RandomState(seed))
    return float(point["m"][0]), (float(ci["m"][0, 0]), float(ci["m"][1, 0]))


def test_iqm_is_the_mean_of_the_middle_half():
    # sorted: -3, 1, 2, 4, 6, 8, 9, 100 -> trim 2 at each end -> mean(2, 4, 6, 8) = 5
    assert S.iqm([2, 8, 1, 9, 4, 6, 100, -3]) == pytest.approx(5.0)
    # sorted SCORES: .40 .55 .61 .68 .71 .74 .77 .90 -> mean(.61, .68, .71, .74) = 0.685
    assert S.iqm(SCORES) == pytest.approx(0.685)
    assert math.isnan(S.iqm([1.0, float("nan"), 2.0, 3.0]))   # a NaN is not trimmed away


def test_iqm_and_mean_intervals_equal_rliable_called_directly():
    from rliable import metrics

    state = np.random.get_state()
    ours = S.iqm(SCORES), S.iqm_interval(SCORES, seed=7)
    assert np.random.get_state()[1].tolist() == state[1].tolist()      # the global generator is restored
    point, interval = _rliable_direct(SCORES, metrics.aggregate_iqm, seed=7)
    assert ours == (point, interval)                                    # exactly the same numbers
    assert interval[0] < point < interval[1]
    assert S.bootstrap_interval(SCORES, seed=7) == _rliable_direct(SCORES, metrics.aggregate_mean, seed=7)[1]
    # the seed is what makes it reproducible: same seed, same interval; another seed, another one
    assert S.iqm_interval(SCORES, seed=7) == ours[1] and S.iqm_interval(SCORES, seed=8) != ours[1]
    # level and resamples are rliable's confidence_interval_size and reps
    assert S.iqm_interval(SCORES, level=0.5, n_resamples=300, seed=3) == \
        _rliable_direct(SCORES, metrics.aggregate_iqm, seed=3, reps=300, level=0.5)[1]


def test_bootstrap_interval_of_two_values_is_hand_computed():
    # resamples of {0, 1}: mean 0 (p 1/4), 0.5 (p 1/2), 1 (p 1/4): the 2.5% and 97.5% percentiles are 0, 1
    assert S.bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)
    assert S.iqm_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert all(math.isnan(x) for x in S.iqm_interval([1.0]) + S.iqm_interval([1.0, float("nan")]))
    with pytest.raises(ValueError, match="level"):
        S.iqm_interval(SCORES, level=95)


def test_probability_of_improvement_hand_case_and_rliable():
    from rliable import metrics

    x, y = [3.0, 5.0], [1.0, 4.0, 5.0]
    # pairs x > y: 3>1, 5>1, 5>4, and 5 = 5 counts 1/2 -> 3.5 / 6
    assert S.probability_of_improvement(x, y) == pytest.approx(7 / 12)
    # lower is better: x < y: 3<4, 3<5, and 5 = 5 -> 2.5 / 6
    assert S.probability_of_improvement(x, y, higher_is_better=False) == pytest.approx(5 / 12)
    assert S.probability_of_improvement(x, y) == metrics.probability_of_improvement(
        np.array(x)[:, None], np.array(y)[:, None])
    assert S.probability_of_improvement(x, x) == 0.5
    assert math.isnan(S.probability_of_improvement([], y))


def test_performance_profile_is_the_fraction_of_seeds_above_tau():
    profiles, bands = S.performance_profile({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.5]}, [0.5, 1.5, 3.5, 4.5])
    assert profiles["a"].tolist() == [1.0, 0.75, 0.25, 0.0] and profiles["b"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert bands["b"].tolist() == [[1.0, 1.0, 0.0, 0.0]] * 2        # one seed: no spread
    assert (bands["a"][0] <= profiles["a"]).all() and (profiles["a"] <= bands["a"][1]).all()


# final average per seed (2 tasks: R[2, 1] = 2f - 0.8, R[2, 2] = 0.8)
FINAL = {"A": [0.70, 0.80, 0.75, 0.90], "B": [0.60, 0.65, 0.72, 0.50]}


@pytest.fixture
def records_file(tmp_path, make_records):
    parts = [make_records([[0.9, np.nan], [2 * f - 0.8, 0.8]], method, seed, metric="acc", config_id=method)
             for method, finals in FINAL.items() for seed, f in enumerate(finals)]
    path = tmp_path / "records.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_table_stats_iqm_poi_bootstrap(records_file):
    from rliable import metrics

    out = invoke("table", "--records", records_file, "--metric", "acc", "--stats", "iqm,bootstrap,poi",
                 "--format", "csv")
    assert out.exit_code == 0, out.output
    df = pd.read_csv(io.StringIO(out.output)).set_index("method")
    # IQM of 4 seeds = mean of the middle 2: A mean(0.75, 0.80), B mean(0.60, 0.65)
    assert df.loc["A", "final_iqm"] == pytest.approx(0.775) and df.loc["B", "final_iqm"] == pytest.approx(0.625)
    for method in FINAL:
        iqm_ci = _rliable_direct(FINAL[method], metrics.aggregate_iqm, 0)[1]
        mean_ci = _rliable_direct(FINAL[method], metrics.aggregate_mean, 0)[1]
        assert (df.loc[method, "final_iqm_low"], df.loc[method, "final_iqm_high"]) == pytest.approx(iqm_ci)
        assert (df.loc[method, "final_bootstrap_low"], df.loc[method, "final_bootstrap_high"]) == \
            pytest.approx(mean_ci)
    # A beats B on 15 of 16 seed pairs (0.70 < 0.72 is the one loss)
    assert df.loc["A", "final_poi_B"] == pytest.approx(15 / 16) and df.loc["B", "final_poi_A"] == pytest.approx(1 / 16)
    md = invoke("table", "--records", records_file, "--metric", "acc", "--stats", "iqm,poi").output
    assert "| final IQM [95% CI] |" in md and "| A | 0.775 [" in md
    assert "| final: P(row beats column) | A | B |" in md and "| A | – | 0.9375 |" in md
    assert "2000 resamples, seed 0" in md
    plain = invoke("table", "--records", records_file, "--metric", "acc").output
    assert "IQM" not in plain and "P(row beats column)" not in plain      # no --stats: the table alone
    bad = invoke("table", "--records", records_file, "--metric", "acc", "--stats", "median")
    assert bad.exit_code == 2 and "allowed: sd, ci, bootstrap, iqm, poi" in bad.output


def test_plot_profile_writes_a_png_with_one_curve_per_method(records_file, tmp_path):
    out = invoke("plot", "--records", records_file, "--metric", "acc", "--kind", "profile", "--out",
                 tmp_path / "p.png")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "p_heatmap.png").exists()


def test_profile_figure_values_and_direction():
    from analysis.plots import performance_profiles

    fig = performance_profiles({m: np.array(v) for m, v in FINAL.items()}, "final acc", True)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"A", "B"}
    x = lines["A"].get_xdata()
    at = int(np.searchsorted(x, 0.76))            # first τ above 0.76: A 0.80, 0.90 above; B none
    assert lines["A"].get_ydata()[at] == 0.5 and lines["B"].get_ydata()[at] == 0.0
    assert lines["A"].get_ydata()[0] == 1.0 and lines["A"].get_ydata()[-1] == 0.0
    # lower is better: the profile of -score, i.e. the fraction of seeds below τ; τ = -x
    fig = performance_profiles({"A": np.array([0.1, 0.2, 0.3, 0.4])}, "forgetting acc", False)
    line = fig.axes[0].get_lines()[0]
    at = int(np.searchsorted(line.get_xdata(), -0.25))   # τ just under 0.25: 0.1 and 0.2 are below
    assert line.get_ydata()[at] == 0.5 and "lower is better" in fig.axes[0].get_xlabel()
