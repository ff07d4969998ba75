"""`orchestrate compare`: paired differences against a baseline, checked against hand-computed values."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from orchestrator.cli import main

# accuracy (higher is better), 2 tasks. replay on every seed: R11 = 80, R21 = 50, R22 = 90, so final 70,
# forgetting 30, AAA (80 + 70) / 2 = 75. A method with shift a on seed s: R21 = 50 + a, R22 = 90 + a, so
# final 70 + a, forgetting 30 - a, AAA 75 + a / 2.
SHIFTS = {"replay": {0: 0, 1: 0, 2: 0}, "tr": {0: 1, 1: 2, 2: 4}, "ewc": {0: -10, 1: -11, 2: -12}}


def write(path, drop_seed=None):
    rows = []
    for method, shifts in SHIFTS.items():
        for seed, a in shifts.items():
            if (method, seed) == drop_seed:
                continue
            for step, k, j, v in ((10, 1, 1, 80.0), (15, 2, 1, 0.0), (20, 2, 1, 50.0 + a), (20, 2, 2, 90.0 + a)):
                rows.append((method, seed, step, k, j, "accuracy", v, 2))
    pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value",
                                "num_tasks"]).to_csv(path, index=False)
    return path


def run(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def csv(out):
    assert out.exit_code == 0, out.output
    return pd.read_csv(io.StringIO(out.output)).set_index(["method", "baseline", "score"])


def test_paired_differences_match_the_hand_computation(tmp_path):
    table = csv(run("--records", write(tmp_path / "r.csv"), "--metric", "accuracy", "--baseline", "replay",
                    "--format", "csv"))
    final = table.loc[("tr", "replay", "final")]
    # differences 1, 2, 4: mean 7/3; sd = sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2) / 2) = sqrt(7/3); SE = sqrt(7)/3
    # t = (7/3) / (sqrt(7)/3) = sqrt(7) with 2 df
    assert final["diff"] == pytest.approx(7 / 3) and final["diff_se"] == pytest.approx(math.sqrt(7) / 3)
    assert final["t_p"] == pytest.approx(2 * stats.t.sf(math.sqrt(7), df=2))     # 0.118
    assert final["t_p"] == pytest.approx(0.1180, abs=1e-4)
    assert final["rank_p"] == pytest.approx(0.25)        # exact signed-rank: all 3 positive, 2 / 2^3
    assert final["p_improvement"] == 1.0 and final["seeds"] == 3
    assert final["verdict"] == "no significant difference (paired t-test p = 0.118, 3 seeds)"
    forgetting = table.loc[("tr", "replay", "forgetting")]
    assert forgetting["diff"] == pytest.approx(-7 / 3) and forgetting["p_improvement"] == 1.0  # lower wins
    aaa = table.loc[("tr", "replay", "aaa")]
    assert aaa["diff"] == pytest.approx(7 / 6) and aaa["diff_se"] == pytest.approx(math.sqrt(7) / 6)
    ewc = table.loc[("ewc", "replay", "final")]
    # differences -10, -11, -12: mean -11, sd 1, SE 1/sqrt(3), t = -11 sqrt(3) = -19.05
    assert ewc["diff_se"] == pytest.approx(1 / math.sqrt(3))
    assert ewc["t_p"] == pytest.approx(2 * stats.t.sf(11 * math.sqrt(3), df=2))    # 0.0027
    assert ewc["verdict"] == "ewc worse than replay on final accuracy (paired t-test p = 0.003, 3 seeds)"
    assert table.loc[("ewc", "replay", "forgetting"), "verdict"].startswith("ewc worse than replay on forgetting")
    assert ewc["p_improvement"] == 0.0


def test_markdown_and_several_baselines(tmp_path):
    out = run("--records", write(tmp_path / "r.csv"), "--metric", "accuracy", "--baseline", "replay",
              "--baseline", "ewc")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == ("| method | baseline | score | seeds | method − baseline | paired t-test p | "
                        "Wilcoxon signed-rank p | P(method beats baseline) | verdict |")
    assert ("| tr | replay | final | 3 | 2.33±0.88 | 0.118 | 0.25 | 1.00 | no significant difference "
            "(paired t-test p = 0.118, 3 seeds) |") in lines
    assert len(lines) == 2 + 3 * 4      # (tr, ewc) vs replay and (replay, tr) vs ewc, 3 scores each


def test_differing_seeds_stop_with_exit_2_naming_them(tmp_path):
    out = run("--records", write(tmp_path / "r.csv", drop_seed=("replay", 2)), "--metric", "accuracy",
              "--baseline", "replay")
    assert out.exit_code == 2
    assert out.output.strip() == ("error: compare: ewc (seeds 0, 1, 2) and replay (seeds 0, 1) do not share "
                                  "their seeds: ewc lacks none, replay lacks 2; pass --unpaired for Welch's "
                                  "t-test and Mann-Whitney U")


def test_unpaired_uses_welch_and_mann_whitney(tmp_path):
    table = csv(run("--records", write(tmp_path / "r.csv", drop_seed=("replay", 2)), "--metric", "accuracy",
                    "--baseline", "replay", "--unpaired", "--format", "csv"))
    final = table.loc[("tr", "replay", "final")]
    # tr 71, 72, 74 (mean 72.33, var 7/3) vs replay 70, 70 (var 0): diff 7/3, Welch SE sqrt(7/9),
    # t = sqrt(7), Welch-Satterthwaite df = (7/9)^2 / ((7/9)^2 / 2) = 2
    assert final["diff"] == pytest.approx(7 / 3) and final["diff_se"] == pytest.approx(math.sqrt(7 / 9))
    assert final["t_p"] == pytest.approx(2 * stats.t.sf(math.sqrt(7), df=2))
    assert final["rank_p"] == pytest.approx(stats.mannwhitneyu([71, 72, 74], [70, 70]).pvalue)
    assert final["seeds"] == "3+2" and final["t_test"] == "Welch's t-test"
    assert final["verdict"] == "no significant difference (Welch's t-test p = 0.118, 3+2 seeds)"


def test_unknown_baseline_and_fewer_than_two_pairs(tmp_path):
    path = write(tmp_path / "r.csv")
    out = run("--records", path, "--metric", "accuracy", "--baseline", "gem")
    assert out.exit_code == 2 and out.output.strip() == \
        "error: --baseline: 'gem' is not a method of the records; allowed: ewc, replay, tr"
    one = pd.read_csv(path)
    one[one["seed"] == 0].to_csv(path, index=False)
    table = csv(run("--records", path, "--metric", "accuracy", "--baseline", "replay", "--format", "csv"))
    row = table.loc[("tr", "replay", "final")]
    assert math.isnan(row["t_p"]) and row["t_why"] == "1 pair, need 2" and row["diff"] == 1.0
    assert row["verdict"] == "no test (paired t-test: 1 pair, need 2, 1 seeds)"
