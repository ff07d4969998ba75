"""The one records format: schema checks and a round trip through CSV that keeps ids as text."""

from __future__ import annotations

import pandas as pd
import pytest

from trainables.records import COLUMNS, Record, read, to_frame, validate


def test_round_trip_keeps_ids_that_look_like_numbers(tmp_path):
    records = [Record("ewc", 0, 5, 1, 1, "fd", 3.5), Record("ewc", 0, 10, 2, 1, "fd", float("nan"))]
    for config_id in ("12e45678", "00123456", "nan", "inf"):
        path = tmp_path / f"{config_id}.csv"
        to_frame(records, config_id=config_id, sweep="007").to_csv(path, index=False)
        df = read(path)
        assert list(df["config_id"]) == [config_id, config_id] and list(df["sweep"]) == ["007", "007"]
        assert df["value"].isna().tolist() == [False, True]
    assert tuple(df.columns[:7]) == COLUMNS


@pytest.mark.parametrize("change,message", [
    ({"eval_task": 3}, "eval_task must not exceed train_task"),
    ({"train_task": 0, "eval_task": 0}, "tasks are numbered from 1"),
])
def test_validate_rejects_impossible_records(change, message):
    df = to_frame([Record("ewc", 0, 5, 2, 1, "fd", 3.5)])
    with pytest.raises(ValueError, match=message):
        validate(df.assign(**change))
    with pytest.raises(ValueError, match="missing column"):
        validate(pd.DataFrame({"method": ["x"]}))
