"""Completeness is a property of the stream: a configuration stopped early is incomplete and never best,
an earlier evaluation never stands in for a missing end-of-task one, and non-finite values are refused."""

import numpy as np
import pandas as pd
import pytest

from analysis.load import Source
from analysis.report import method_table, render_table
from analysis.table import best_configs, per_seed_scores, select, summarize
from core.errors import InputError

NAN = float("nan")


def acc4(shift=0.0):
    """A 4-task accuracy matrix: final average (60 + 70 + 80 + 90) / 4 = 75, plus ``shift``."""
    R = np.full((4, 4), NAN)
    for k in range(4):
        R[k, : k + 1] = [60.0, 70.0, 80.0, 90.0][: k + 1] if k == 3 else 95.0
    return R + shift


def sweep(records_from, column=True):
    """Method A: a1 complete on 3 seeds; a2 better (+20) but every seed stopped after task 2 (ASHA).
    Method B: its only configuration stopped after task 3 on every seed."""
    parts = [records_from(acc4(), "A", s, config_id="a1") for s in (0, 1, 2)]
    parts += [records_from(acc4(20.0), "A", s, config_id="a2", stop_after=2) for s in (0, 1, 2)]
    parts += [records_from(acc4(5.0), "B", s, config_id="b1", stop_after=3) for s in (0, 1, 2)]
    df = pd.concat(parts, ignore_index=True)
    df["benchmark"] = "digits"
    if column:
        df["num_tasks"] = 4
    return df


@pytest.mark.parametrize("column", [True, False])
def test_truncated_configuration_is_flagged_and_never_best(make_records, column):
    records = sweep(make_records, column)
    summary = summarize(records, "acc", True).set_index("config_id")
    assert not summary.loc["a2", "complete"] and np.isnan(summary.loc["a2", "final"])
    assert summary.loc["a2", "num_tasks"] == 4 and summary.loc["a2", "num_tasks_inferred"] == (not column)
    assert summary.loc["a2", "missing"] == "; ".join(f"seed {s}: tasks 3-4 missing" for s in (0, 1, 2))
    assert summary.loc["a1", "complete"] and summary.loc["a1", "final"] == pytest.approx(75.0)
    assert select(summary.reset_index(), higher_is_better=True).set_index("method").loc["A", "config_id"] == "a1"
    assert best_configs(records, "acc", "mean", True) == {"A": "a1"}     # b1 has no complete configuration


def test_method_stopped_at_task_3_is_flagged_next_to_complete_ones(make_records):
    table = method_table(Source(records=sweep(make_records)), "acc", True)
    b = table.set_index("method").loc["B"]
    assert not b["complete"] and b["missing"] == "; ".join(f"seed {s}: task 4 missing" for s in (0, 1, 2))
    md = render_table(table, "md", True)
    assert "| B | 3 | incomplete (seed 0: task 4 missing; seed 1: task 4 missing; seed 2: task 4 missing) |" in md
    assert "| A | 3 | **75.0±0.0** |" in md and "note:" not in md


def test_inferred_stream_length_is_said_in_a_note(make_records):
    table = method_table(Source(records=sweep(make_records, column=False)), "acc", True)
    for fmt in ("md", "html", "latex", "csv"):
        assert "N = 4 tasks (digits) is inferred" in render_table(table, fmt, True)


def test_a_mid_task_evaluation_does_not_stand_in_for_the_end_of_task_one(make_records):
    records = sweep(make_records)
    # seed 1 of a1 lost its end-of-task acc rows of task 2 (step 200); its decoy at steps 130, 160 remain,
    # and its train_loss at step 200 says where phase 2 ended
    lost = (records["config_id"] == "a1") & (records["seed"] == 1) & (records["step"] == 200) & \
        (records["metric"] == "acc")
    assert lost.sum() == 2
    scores = per_seed_scores(records[~lost], "acc", True).set_index(["config_id", "seed"])
    assert not scores.loc[("a1", 1), "complete"] and np.isnan(scores.loc[("a1", 1), "aaa"])
    assert scores.loc[("a1", 1), "missing"] == "end-of-task evaluation of task 2 (step 200) missing"
    assert scores.loc[("a1", 0), "complete"]


def test_end_of_task_means_the_last_step_of_any_metric(make_records):
    records = sweep(make_records)
    # a diagnostic logged after the last acc evaluation of task 4 moves the end of that phase
    late = records[(records["config_id"] == "a1") & (records["seed"] == 0) & (records["step"] == 400)
                   & (records["metric"] == "train_loss")].assign(step=401, metric="fisher_norm")
    scores = per_seed_scores(pd.concat([records, late]), "acc", True).set_index(["config_id", "seed"])
    assert scores.loc[("a1", 0), "missing"] == "end-of-task evaluation of task 4 (step 401) missing"


def test_stream_length_from_argument_and_column_conflicts(make_records):
    records = sweep(make_records)
    scores = per_seed_scores(records, "acc", True, num_tasks=5).set_index(["config_id", "seed"])
    assert scores.loc[("a1", 0), "missing"] == "task 5 missing"
    records.loc[(records["config_id"] == "b1") & (records["seed"] == 2), "num_tasks"] = 3
    with pytest.raises(InputError, match=r"num_tasks of configuration \(benchmark digits, method B, "
                                         r"config_id b1\) has several values 3, 4"):
        summarize(records, "acc", True)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, NAN])
def test_non_finite_value_names_its_row(make_records, bad):
    records = sweep(make_records)
    i = records.index[(records["config_id"] == "a1") & (records["seed"] == 2) & (records["step"] == 300)
                      & (records["metric"] == "acc") & (records["eval_task"] == 1)][0]
    records.loc[i, "value"] = bad
    with pytest.raises(InputError, match=rf"^records: row {i} \(method A, seed 2, step 300, metric acc\) "
                                         rf"has value {bad}; allowed: finite numbers$"):
        summarize(records, "acc", True)
    summarize(records, "train_loss", False)   # only the metric asked is checked
