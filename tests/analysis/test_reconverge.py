"""Steps to re-converge on small records written out by hand (METHODS.md §5; 000 Table 2)."""

import math

import pandas as pd
import pytest

from analysis.reconverge import phase_starts, reconvergence, reference, steps_to_reconverge

COLUMNS = ["method", "seed", "step", "train_task", "eval_task", "metric", "value"]
NA = pd.NA


def frame(rows, method="A", seed=0, metric="fid"):
    """(step, train_task, eval_task, value) rows of one run -> records."""
    return pd.DataFrame([(method, seed, *row[:3], metric, row[3]) for row in rows], columns=COLUMNS)


# One seed, lower is better (FID), 3 tasks; phases end at steps 10, 20, 30 (s_2 = 10, s_3 = 20).
FID_3 = frame([
    (5, 1, 1, 30.0), (10, 1, 1, 10.0),                          # P_1 = R[1,1] = 10
    (11, 2, 1, 12.5), (11, 2, 2, 50.0),                         # 12.5 <= 13 (30%): 1 step
    (12, 2, 1, 11.5), (12, 2, 2, 40.0),                         # 11.5 <= 12 (20%): 2 steps
    (14, 2, 1, 10.8), (14, 2, 2, 30.0),                         # 10.8 <= 11 (10%): 4 steps
    (20, 2, 1, 14.0), (20, 2, 2, 20.0),                         # P_2 = R[2,2] = 20
    (21, 3, 1, 20.0), (21, 3, 2, 30.0), (21, 3, 3, 60.0),
    (22, 3, 1, 18.0), (22, 3, 2, 23.0), (22, 3, 3, 50.0),       # task 2: 23 <= 24, 26: 2 steps
    (24, 3, 1, 16.0), (24, 3, 2, 21.5), (24, 3, 3, 40.0),       # task 2: 21.5 <= 22: 4 steps
    (30, 3, 1, 15.0), (30, 3, 2, 25.0), (30, 3, 3, 30.0),       # task 1 never <= 13 in phase 3
])


def as_tuples(table, columns=("task", "threshold", "after_task", "steps")):
    return [tuple(None if x is NA else x for x in row) for row in table[list(columns)].itertuples(index=False)]


def test_phase_starts_and_reference():
    assert phase_starts(FID_3) == {1: 0, 2: 10, 3: 20}
    curve = FID_3[FID_3["eval_task"] == 1]
    assert reference(curve, 1, "end", higher_is_better=False) == 10.0
    assert reference(FID_3, 2, "end", higher_is_better=False) == 20.0          # eval_task filtered
    assert reference(FID_3, 2, "best", higher_is_better=False) == 20.0
    assert reference(FID_3, 2, "best", higher_is_better=True) == 50.0
    assert steps_to_reconverge(FID_3, 1, 2, 10, 10.0, 0.2, higher_is_better=False) == 2
    assert steps_to_reconverge(FID_3, 1, 3, 20, 10.0, 0.3, higher_is_better=False) is None
    with pytest.raises(ValueError, match="one run"):
        phase_starts(pd.concat([FID_3, FID_3.assign(seed=1)]))


def test_task_1_lower_is_better():
    table = reconvergence(FID_3, "fid", higher_is_better=False)
    assert list(table.columns) == ["method", "config_id", "task", "threshold", "after_task", "steps"]
    assert str(table["steps"].dtype) == "Int64"
    assert table["method"].eq("A").all() and table["config_id"].eq("A").all()
    assert as_tuples(table) == [(1, 0.1, 2, 4), (1, 0.1, 3, None),
                                (1, 0.2, 2, 2), (1, 0.2, 3, None),
                                (1, 0.3, 2, 1), (1, 0.3, 3, None)]


def test_task_all_gives_every_old_task_and_later_tasks_only():
    table = reconvergence(FID_3, "fid", higher_is_better=False, task="all", thresholds=[0.1, 0.3])
    assert as_tuples(table) == [(1, 0.1, 2, 4), (1, 0.1, 3, None), (1, 0.3, 2, 1), (1, 0.3, 3, None),
                                (2, 0.1, 3, 4), (2, 0.3, 3, 2)]
    assert (table["after_task"] > table["task"]).all()


def test_strictly_after_the_transition():
    # an evaluation logged at s_2 itself (train_task 2, step 10) meets the target but does not count
    records = frame([(10, 1, 1, 10.0), (10, 2, 1, 10.0), (11, 2, 1, 10.5), (20, 2, 1, 10.2),
                     (20, 2, 2, 5.0)])
    table = reconvergence(records, "fid", higher_is_better=False, thresholds=[0.1])
    assert as_tuples(table) == [(1, 0.1, 2, 1)]                                 # 11 - 10, never 0


def test_higher_is_better_end_vs_best():
    # success rate: task 1 peaks at 0.9 (step 5) and ends its phase at 0.8 (step 10 = s_2)
    records = frame([(5, 1, 1, 0.9), (10, 1, 1, 0.8),
                     (11, 2, 1, 0.5), (12, 2, 1, 0.75), (14, 2, 1, 0.79), (20, 2, 1, 0.85),
                     (20, 2, 2, 0.7)], metric="success")
    end = reconvergence(records, "success", higher_is_better=True)
    # P = 0.8: targets 0.792 (step 20), 0.72 (step 12), 0.64 (step 12)
    assert as_tuples(end) == [(1, 0.99, 2, 10), (1, 0.9, 2, 2), (1, 0.8, 2, 2)]
    best = reconvergence(records, "success", higher_is_better=True, reference="best")
    # P = 0.9: targets 0.891 (never), 0.81 (step 20), 0.72 (step 12)
    assert as_tuples(best) == [(1, 0.99, 2, None), (1, 0.9, 2, 10), (1, 0.8, 2, 2)]


def test_lower_is_better_end_vs_best():
    records = frame([(5, 1, 1, 8.0), (10, 1, 1, 10.0),
                     (11, 2, 1, 10.5), (12, 2, 1, 8.5), (20, 2, 1, 9.5), (20, 2, 2, 3.0)])
    end = reconvergence(records, "fid", higher_is_better=False, thresholds=[0.1])
    best = reconvergence(records, "fid", higher_is_better=False, thresholds=[0.1], reference="best")
    assert as_tuples(end) == [(1, 0.1, 2, 1)]       # 10.5 <= 11
    assert as_tuples(best) == [(1, 0.1, 2, 2)]      # 10.5 > 8.8, 8.5 <= 8.8


# Two seeds whose mean crosses 10% at step 20 while seed 0 crosses at 11 and seed 1 at 14.
SEEDS = pd.concat([
    frame([(10, 1, 1, 10.0), (11, 2, 1, 10.5), (12, 2, 1, 14.0), (14, 2, 1, 12.0), (20, 2, 1, 11.5),
           (20, 2, 2, 1.0)], seed=0),
    frame([(10, 1, 1, 10.0), (11, 2, 1, 13.0), (12, 2, 1, 12.0), (14, 2, 1, 10.8), (20, 2, 1, 10.3),
           (20, 2, 2, 1.0)], seed=1),
], ignore_index=True)


def test_curve_vs_seeds():
    # mean curve: P = 10; 11.75, 13, 11.4, 10.9 -> <= 11 first at step 20; <= 10.4 never
    curve = reconvergence(SEEDS, "fid", higher_is_better=False, thresholds=[0.1, 0.04])
    assert as_tuples(curve) == [(1, 0.1, 2, 10), (1, 0.04, 2, None)]
    seeds = reconvergence(SEEDS, "fid", higher_is_better=False, thresholds=[0.1, 0.04], aggregate="seeds")
    assert list(seeds.columns) == ["method", "config_id", "task", "threshold", "after_task", "steps",
                                   "steps_se", "reconverged", "seeds", "steps_reconverged_mean"]
    at_10, at_4 = seeds.iloc[0], seeds.iloc[1]
    # 10%: seed 0 at 11 - 10 = 1, seed 1 at 14 - 10 = 4: mean 2.5, SE = sd(1, 4) / sqrt(2) = 1.5
    assert (at_10["steps"], at_10["steps_se"], at_10["reconverged"], at_10["seeds"]) == \
        pytest.approx((2.5, 1.5, 2, 2))
    assert at_10["steps_reconverged_mean"] == 2.5
    # 4%: only seed 1 (10.3 <= 10.4 at step 20): no mean over the survivor in steps, only in its own column
    assert math.isnan(at_4["steps"]) and math.isnan(at_4["steps_se"])
    assert at_4["reconverged"] == 1 and at_4["seeds"] == 2 and at_4["steps_reconverged_mean"] == 10.0


def test_unequal_steps_across_seeds():
    records = SEEDS[~((SEEDS["seed"] == 1) & (SEEDS["step"] == 12))]
    with pytest.raises(ValueError, match="unequal evaluation steps across seeds") as err:
        reconvergence(records, "fid", higher_is_better=False)
    message = str(err.value)
    assert "method A" in message and "seeds 0, 1" in message and "--aggregate seeds" in message
    assert "seed 0 has step 12" in message and "seed 1 does not" in message
    seeds = reconvergence(records, "fid", higher_is_better=False, thresholds=[0.1], aggregate="seeds")
    assert seeds.iloc[0]["steps"] == 2.5 and seeds.iloc[0]["reconverged"] == 2


def test_phase_start_from_another_metric_and_empty_phase():
    # phase 1's last record is a train_loss at step 12, so s_2 = 12 (not 10, the last fid evaluation);
    # phase 3 has no fid evaluation at all: <NA>, not an error
    records = pd.concat([
        frame([(5, 1, 1, 20.0), (10, 1, 1, 10.0), (13, 2, 1, 15.0), (14, 2, 1, 10.5), (16, 2, 1, 9.0),
               (16, 2, 2, 4.0)]),
        frame([(12, 1, 1, 0.3), (16, 2, 2, 0.2), (30, 3, 3, 0.1)], metric="train_loss"),
    ], ignore_index=True)
    assert phase_starts(records) == {1: 0, 2: 12, 3: 16}
    table = reconvergence(records, "fid", higher_is_better=False, thresholds=[0.1])
    assert as_tuples(table) == [(1, 0.1, 2, 2), (1, 0.1, 3, None)]             # 14 - 12


def test_configs_and_errors():
    records = pd.concat([FID_3.assign(config_id="a1"), FID_3.assign(config_id="a2", method="B")])
    table = reconvergence(records, "fid", higher_is_better=False, thresholds=[0.1])
    assert list(table["config_id"].unique()) == ["a1", "a2"]
    assert as_tuples(table[table["config_id"] == "a2"]) == [(1, 0.1, 2, 4), (1, 0.1, 3, None)]
    with pytest.raises(ValueError, match="metrics present: fid"):
        reconvergence(FID_3, "acc", higher_is_better=True)
    with pytest.raises(ValueError, match="aggregate"):
        reconvergence(FID_3, "fid", higher_is_better=False, aggregate="mean")


def test_per_seed_cells_are_mean_se_only_when_every_seed_reconverged():
    from analysis.report import reconvergence_cells

    # a third seed that re-converges at 10% after 7 steps (step 17) and never at 4%
    third = frame([(10, 1, 1, 10.0), (11, 2, 1, 13.0), (17, 2, 1, 10.9), (20, 2, 1, 10.6), (20, 2, 2, 1.0)],
                  seed=2)
    table = reconvergence(pd.concat([SEEDS, third], ignore_index=True), "fid", higher_is_better=False,
                          thresholds=[0.1, 0.04], aggregate="seeds")
    # 10%: steps 1, 4, 7: mean 4, SE = sd(1, 4, 7) / sqrt(3) = 3 / sqrt(3) = sqrt(3) = 1.732
    assert table.iloc[0]["steps"] == 4.0 and table.iloc[0]["steps_se"] == pytest.approx(3 ** 0.5)
    cells = reconvergence_cells(table)
    assert list(cells.columns) == ["method", "config_id", "task", "threshold", "after_task", "steps"]
    assert cells["steps"].tolist() == ["4.0±1.7", "1/3"]    # 4%: only seed 1, never shown as 10.0
    assert math.isnan(table.iloc[1]["steps"]) and table.iloc[1]["steps_reconverged_mean"] == 10.0
