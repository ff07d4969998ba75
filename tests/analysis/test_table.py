import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.table import IncompleteRecords, per_seed_scores, select, summarize

NAN = float("nan")


def acc(seed, shift=0.0):
    """3-task accuracy matrix; R[3, 1] = 70 + 2*seed, everything shifted by ``shift``."""
    return np.array([[90.0, NAN, NAN], [80.0, 85.0, NAN], [70.0 + 2 * seed, 75.0, 95.0]]) + shift


def build(records_from):
    parts = [records_from(acc(s), "A", s, config_id="a1") for s in (0, 1, 2)]
    parts += [records_from(acc(s, -5.0), "B", s, config_id="b1") for s in (0, 1)]
    parts += [records_from(acc(s, +5.0), "B", s, config_id="b2") for s in (0, 1)]
    # b3 would be the best, but seed 1 stopped after task 1
    parts += [records_from(acc(0, +9.0), "B", 0, config_id="b3"),
              records_from(acc(1, +9.0), "B", 1, config_id="b3", stop_after=1)]
    parts += [records_from(acc(0), "C", 0, config_id="c1", stop_after=2),
              records_from(acc(1), "C", 1, config_id="c1")]
    return pd.concat(parts, ignore_index=True)


def test_per_seed_scores_columns_and_values(make_records):
    scores = per_seed_scores(build(make_records), "acc", higher_is_better=True)
    assert list(scores.columns) == ["method", "config_id", "seed", "final", "forgetting", "bwt", "aaa",
                                    "num_tasks", "num_tasks_inferred", "complete", "missing"]
    row = scores[(scores["config_id"] == "a1") & (scores["seed"] == 1)].iloc[0]
    # seed 1: R[3,1] = 72
    assert row["final"] == pytest.approx(242 / 3)                       # (72 + 75 + 95) / 3
    assert row["forgetting"] == pytest.approx(14.0)                     # ((90-72) + (85-75)) / 2
    assert row["bwt"] == pytest.approx(-14.0)
    assert row["aaa"] == pytest.approx((90 + 82.5 + 242 / 3) / 3)
    assert row["num_tasks"] == 3 and row["complete"] and row["missing"] == ""
    stopped = scores[(scores["config_id"] == "b3") & (scores["seed"] == 1)].iloc[0]
    assert not stopped["complete"] and stopped["missing"] == "tasks 2-3 missing"
    assert all(math.isnan(stopped[c]) for c in ("final", "forgetting", "bwt", "aaa"))


def test_summarize_mean_and_se(make_records):
    summary = summarize(build(make_records), "acc", higher_is_better=True)
    assert list(summary.columns) == ["method", "config_id", "seeds", "num_tasks", "num_tasks_inferred", "complete",
                                     "final", "final_se", "forgetting", "forgetting_se", "bwt", "bwt_se",
                                     "aaa", "aaa_se", "missing"]
    a = summary[summary["config_id"] == "a1"].iloc[0]
    finals = [(70 + 2 * s + 75 + 95) / 3 for s in (0, 1, 2)]          # 80, 80.667, 81.333
    assert a["seeds"] == 3 and a["complete"] and a["missing"] == ""
    assert a["final"] == pytest.approx(np.mean(finals))                # 242 / 3 = 80.667
    assert a["final_se"] == pytest.approx(stats.sem(finals))           # (2/3) / sqrt(3) = 0.3849
    assert a["final_se"] == pytest.approx(0.38490017945975)
    assert a["forgetting"] == pytest.approx(14.0)                      # mean of 15, 14, 13
    assert a["forgetting_se"] == pytest.approx(stats.sem([15, 14, 13]))  # 1 / sqrt(3)
    assert a["bwt"] == pytest.approx(-14.0)


def test_incomplete_configuration_is_nan_not_a_shorter_average(make_records):
    summary = summarize(build(make_records), "acc", higher_is_better=True)
    b3 = summary[summary["config_id"] == "b3"].iloc[0]
    assert b3["seeds"] == 2 and not b3["complete"]
    assert all(math.isnan(b3[c]) for c in ("final", "final_se", "forgetting", "bwt", "aaa", "aaa_se"))
    assert b3["missing"] == "seed 1: tasks 2-3 missing"
    c1 = summary[summary["config_id"] == "c1"].iloc[0]
    assert c1["missing"] == "seed 0: task 3 missing"


def test_partial_and_absent_evaluations_are_named(make_records):
    records = build(make_records)
    records = records[~((records["config_id"] == "a1") & (records["seed"] == 0) & (records["step"] == 300)
                        & (records["eval_task"] == 1) & (records["metric"] == "acc"))]
    # seed 2 of a1 logged its training loss but never the metric
    records = records[~((records["config_id"] == "a1") & (records["seed"] == 2) & (records["metric"] == "acc"))]
    a = summarize(records, "acc", True).set_index("config_id").loc["a1"]
    assert not a["complete"] and a["seeds"] == 3
    assert a["missing"] == ("seed 0: task 1 after task 3 missing; "
                            "seed 2: end-of-task evaluations of tasks 1-3 missing")


def test_missing_metric_names_present_metrics(make_records):
    with pytest.raises(IncompleteRecords, match=r"'fid' not in records; metrics present: acc, train_loss"):
        summarize(build(make_records), "fid", higher_is_better=False)
    assert issubclass(IncompleteRecords, ValueError)


def test_config_id_defaults_to_method_and_context_columns_are_kept(make_records):
    records = pd.concat([make_records(acc(s), "A", s) for s in (0, 1)], ignore_index=True)
    records["benchmark"] = "digits"
    summary = summarize(records, "acc", True)
    assert list(summary[["benchmark", "method", "config_id"]].itertuples(index=False, name=None)) == \
        [("digits", "A", "A")]
    assert summary["seeds"].tolist() == [2]


def test_select_best_complete_configuration(make_records):
    summary = summarize(build(make_records), "acc", higher_is_better=True)
    best = select(summary, higher_is_better=True).set_index("method")
    assert best.loc["A", "config_id"] == "a1"
    assert best.loc["B", "config_id"] == "b2"                           # b3 is incomplete
    assert best.loc["B", "selected_by"] == "best final"
    assert not best.loc["C", "complete"] and best.loc["C", "missing"] == "seed 0: task 3 missing"
    lowest = select(summary, higher_is_better=False).set_index("method")
    assert lowest.loc["B", "config_id"] == "b1"


def test_select_given_configuration(make_records):
    summary = summarize(build(make_records), "acc", higher_is_better=True)
    chosen = select(summary, {"B": "b3"}, higher_is_better=True).set_index("method")
    assert chosen.loc["B", "config_id"] == "b3" and not chosen.loc["B", "complete"]
    assert chosen.loc["B", "selected_by"] == "given"
    assert chosen.loc["A", "config_id"] == "a1"                         # not named: best final
    with pytest.raises(ValueError, match="'b9' of B not in the summary"):
        select(summary, {"B": "b9"}, higher_is_better=True)
    with pytest.raises(ValueError, match="Z not in the summary"):
        select(summary, {"Z": "z"}, higher_is_better=True)


def test_select_method_with_several_incomplete_configurations(make_records):
    records = pd.concat([build(make_records),
                         make_records(acc(0), "B", 0, config_id="b4", stop_after=2),
                         make_records(acc(1), "B", 1, config_id="b4", stop_after=2),
                         make_records(acc(2), "B", 2, config_id="b4")], ignore_index=True)
    summary = summarize(records, "acc", True)
    summary = summary[~summary["config_id"].isin(["b1", "b2"])]
    row = select(summary, higher_is_better=True).set_index("method").loc["B"]
    assert not row["complete"] and row["selected_by"] == "no complete configuration"
    assert row["config_id"] == "b4"                                     # the one with most seeds
    assert row["missing"] == ("no complete configuration among 2 (b3: seed 1: tasks 2-3 missing; "
                              "b4: seed 0: task 3 missing; seed 1: task 3 missing)")


def test_lower_is_better_and_schema_dtypes(make_records):
    fid = [[10.0, NAN, NAN], [14.0, 12.0, NAN], [20.0, 15.0, 11.0]]
    records = pd.concat([make_records(fid, "A", s, metric="fid") for s in (0, 1)], ignore_index=True)
    # the dtypes of trainables.records.DTYPES
    records = records.astype({"method": "string", "metric": "string", "seed": "int64", "step": "int64"})
    row = summarize(records, "fid", higher_is_better=False).iloc[0]
    assert row["final"] == pytest.approx(46 / 3)        # (20 + 15 + 11) / 3
    assert row["forgetting"] == pytest.approx(6.5)      # ((20-10) + (15-12)) / 2, positive = worse
    assert row["bwt"] == pytest.approx(6.5)
    assert row["aaa"] == pytest.approx(115 / 9)         # (10 + 13 + 46/3) / 3
    assert row["final_se"] == 0.0 and row["config_id"] == "A"


def test_config_id_nan_falls_back_to_method_and_ints_read_as_text(make_records):
    first = make_records(acc(0), "A", 0)
    first["config_id"] = NAN
    second = make_records(acc(0), "A", 0)
    second["config_id"] = 7                              # becomes 7.0 once concatenated with NaN
    summary = summarize(pd.concat([first, second]), "acc", True)
    assert summary["config_id"].tolist() == ["7", "A"]
