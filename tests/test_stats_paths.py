"""One set of records through the four places that print a mean ± SE over seeds: the trial's report, the
MLflow aggregates, the plots and the tables. All must give the same numbers, equal to the ones worked out
by hand (SE = sample standard deviation, ddof = 1, over sqrt(n))."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.records import Record
from core.stats import seed_summary
from orchestrator.tracking import Tracker
from trainables.trainable import objective_value

# fd (lower is better) of 3 seeds on 2 tasks; R[k, j] at the end of task k
R = {0: {(1, 1): 10.0, (2, 1): 14.0, (2, 2): 8.0},
     1: {(1, 1): 12.0, (2, 1): 18.0, (2, 2): 6.0},
     2: {(1, 1): 11.0, (2, 1): 13.0, (2, 2): 10.0}}
# final average per seed: (14+8)/2 = 11, (18+6)/2 = 12, (13+10)/2 = 11.5 -> mean 11.5,
# sd = sqrt(((-.5)^2 + .5^2 + 0^2) / 2) = 0.5, SE = 0.5 / sqrt(3)
FINAL_MEAN, FINAL_SE = 11.5, 0.5 / math.sqrt(3)
# task 1 after task 2: 14, 18, 13 -> mean 15, sd = sqrt((1 + 9 + 4) / 2) = sqrt(7), SE = sqrt(7/3)
TASK1_MEAN, TASK1_SE = 15.0, math.sqrt(7 / 3)


def records() -> list[Record]:
    out = []
    for seed, entries in R.items():
        for (k, j), value in entries.items():
            out.append(Record("finetune", seed, 100 * k, k, j, "fd", value))
    return out


def frame() -> pd.DataFrame:
    from core.records import to_frame

    return to_frame(records(), config_id="c1", benchmark="split_digits_diffusion")


class CapturingTracker(Tracker):
    def __init__(self) -> None:
        super().__init__("sqlite:///unused.db", "s", "unused")
        self.logged: dict[str, float] = {}

    def log(self, run_id, metrics=(), params=None, tags=None) -> None:
        self.logged.update({key: value for key, value, _ in metrics})


def test_trial_report_mlflow_plots_and_table_agree():
    from analysis.plots import _seed_stats
    from analysis.table import summarize

    # the trial's report after task 2 (objective = the running final average, reduce "mean")
    per_seed = {s: objective_value([r for r in records() if r.seed == s], 2, "fd", "mean", False) for s in R}
    report = seed_summary(per_seed)
    # the configuration run's aggregates in MLflow
    tracker = CapturingTracker()
    tracker.aggregates("run", frame(), {"fd": False}, num_tasks=2, seeds=[0, 1, 2])
    # the table
    row = summarize(frame(), "fd", False, num_tasks=2, seeds=[0, 1, 2]).iloc[0]
    # the plot of task 1 at the last step
    df = frame()
    curve = _seed_stats(df[df["eval_task"] == 1], "finetune").loc[200]

    for mean, se in ((report["objective"], report["objective_se"]),
                     (tracker.logged["final_fd"], tracker.logged["final_fd_se"]),
                     (row["final"], row["final_se"])):
        assert mean == pytest.approx(FINAL_MEAN, abs=1e-12) and se == pytest.approx(FINAL_SE, abs=1e-12)
    for mean, se in ((tracker.logged["fd/task1/mean"], tracker.logged["fd/task1/se"]), (curve["mean"], curve["se"])):
        assert mean == pytest.approx(TASK1_MEAN, abs=1e-12) and se == pytest.approx(TASK1_SE, abs=1e-12)
    assert report["objective_seed1"] == 12.0


def test_one_se_implementation():
    """grep finds the standard error written once, in core/stats.py."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    hits = [str(p.relative_to(root)) for package in ("core", "trainables", "orchestrator", "analysis")
            for p in (root / package).rglob("*.py") if "ddof=1" in p.read_text()]
    assert hits == ["core/stats.py"]
