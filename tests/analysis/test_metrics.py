import math

import numpy as np
import pandas as pd
import pytest

from analysis.metrics import aaa, bwt, final_average, forgetting, result_matrix

NAN = float("nan")
# Accuracy (higher is better), 3 tasks: R[k, j] = task j after training task k.
ACC = [[90.0, NAN, NAN],
       [80.0, 85.0, NAN],
       [70.0, 75.0, 95.0]]
# FID (lower is better), 3 tasks.
FID = [[10.0, NAN, NAN],
       [14.0, 12.0, NAN],
       [20.0, 15.0, 11.0]]


def test_result_matrix_takes_the_last_step_of_each_phase(make_records):
    records = make_records(ACC)
    assert len(records["step"].unique()) == 9  # three evaluations per phase, decoys at the first two
    R = result_matrix(records[records["metric"] == "acc"])
    np.testing.assert_array_equal(R, np.array(ACC))


def test_result_matrix_missing_end_of_phase_entry_stays_nan(make_records):
    records = make_records(ACC)
    acc = records[records["metric"] == "acc"]
    # drop task 1's evaluation at the end of phase 3 (step 300); it was evaluated earlier in phase 3
    acc = acc[~((acc["step"] == 300) & (acc["eval_task"] == 1))]
    R = result_matrix(acc)
    assert math.isnan(R[2, 0])
    assert R[2, 1] == 75.0
    with pytest.raises(ValueError, match=r"k=3, j=1"):
        final_average(R)


def test_result_matrix_num_tasks_pads_a_seed_that_stopped(make_records):
    records = make_records(ACC, stop_after=2)
    R = result_matrix(records[records["metric"] == "acc"], num_tasks=3)
    assert R.shape == (3, 3)
    np.testing.assert_array_equal(R[:2], np.array(ACC)[:2])
    assert np.isnan(R[2]).all()


def test_result_matrix_rejects_mixed_seeds_and_duplicates(make_records):
    two = make_records(ACC, seed=0).pipe(lambda d: d[d["metric"] == "acc"])
    other = make_records(ACC, seed=1).pipe(lambda d: d[d["metric"] == "acc"])
    with pytest.raises(ValueError, match="one seed"):
        result_matrix(pd.concat([two, other]))
    with pytest.raises(ValueError, match="one metric"):
        result_matrix(make_records(ACC))
    with pytest.raises(ValueError, match="duplicate"):
        result_matrix(pd.concat([two, two.iloc[:1]]))


def test_accuracy_higher_is_better():
    R = np.array(ACC)
    assert final_average(R) == pytest.approx(80.0)           # (70 + 75 + 95) / 3 = 240 / 3
    assert forgetting(R, True) == pytest.approx(15.0)        # ((90 - 70) + (85 - 75)) / 2 = 30 / 2
    assert bwt(R) == pytest.approx(-15.0)                    # ((70 - 90) + (75 - 85)) / 2 = -30 / 2
    assert aaa(R) == pytest.approx(84.16666666666667)        # (90 + (80+85)/2 + 80) / 3 = 252.5 / 3


def test_fid_lower_is_better():
    R = np.array(FID)
    assert final_average(R) == pytest.approx(15.333333333333334)  # (20 + 15 + 11) / 3 = 46 / 3
    assert forgetting(R, False) == pytest.approx(6.5)             # ((20 - 10) + (15 - 12)) / 2 = 13 / 2
    assert bwt(R) == pytest.approx(6.5)                           # as written: ((20-10) + (15-12)) / 2
    assert aaa(R) == pytest.approx(12.777777777777779)            # (10 + 13 + 46/3) / 3 = 115 / 9


def test_forgetting_sign_follows_direction():
    assert forgetting(np.array(ACC), False) == pytest.approx(-15.0)
    assert forgetting(np.array(FID), True) == pytest.approx(-6.5)


def test_single_task():
    R = np.array([[0.7]])
    assert final_average(R) == pytest.approx(0.7)
    assert aaa(R) == pytest.approx(0.7)
    assert math.isnan(forgetting(R, True))
    assert math.isnan(bwt(R))


@pytest.mark.parametrize("fn", [final_average, lambda R: forgetting(R, True), bwt, aaa])
def test_missing_entry_is_named(fn):
    R = np.array(ACC)
    R[2, 1] = NAN
    with pytest.raises(ValueError, match=r"R\[k=3, j=2\] is missing"):
        fn(R)


def test_aaa_needs_intermediate_rows():
    R = np.array(ACC)
    R[1, 0] = NAN
    assert final_average(R) == pytest.approx(80.0)
    with pytest.raises(ValueError, match=r"k=2, j=1"):
        aaa(R)
