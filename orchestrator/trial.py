"""The function Ray runs per trial: one configuration, all its seeds, a report and checkpoint per task."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.records import read_csv
from orchestrator.search import decode
from orchestrator.sweep_dir import SweepDir


@dataclass(frozen=True)
class TrialSpec:
    """What every trial of a sweep shares, validated once by the space (typed benchmark Config)."""

    sweep: SweepDir
    benchmark: str
    bench_config: Any
    seeds: tuple[int, ...]
    objective_metric: str
    objective_reduce: str
    device: str
    num_tasks: int

    def configuration(self, config: dict[str, Any]):
        """The trial's Configuration from Optuna's flat config: decoded once, its values already checked
        by the space (constants and distribution bounds), so the Params are built without a second check."""
        from trainables.build import Configuration
        from trainables.methods import get_method

        method, values = decode(config)
        return Configuration(method, get_method(method).Params(**values), self.benchmark, self.bench_config,
                             self.seeds, self.objective_metric, self.objective_reduce, self.device)


def report_with_records(metrics: dict[str, float], records: pd.DataFrame) -> None:
    from ray import tune

    with tempfile.TemporaryDirectory() as folder:
        records.to_csv(Path(folder) / "records.csv", index=False)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def tune_trainable(config: dict[str, Any], spec: TrialSpec) -> None:
    """Ray's trial: ``run_configuration`` with Ray's report and a checkpoint of the records.

    ``objective`` (the seed mean after each task) drives ASHA; ``objective_final`` is the same number
    after the last task and NaN before, so Optuna learns only from configurations that ran every task
    (a trial stopped early is a failed one to it, not a finished one with a better-looking number).
    A trial restored from a checkpoint after c tasks reruns them (deterministically, same records) and
    reports from task c + 1 on, so Ray's iteration count stays the task index.
    """
    from ray import tune

    from trainables.trainable import run_configuration

    trial_id = tune.get_context().get_trial_id()
    if spec.sweep.config_ended(trial_id):  # it ended before a hard stop that Ray's saved state did not see
        meta, records = spec.sweep.read_config(trial_id)
        report_with_records(meta["last_result"], records)
        return
    done = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            done = int(read_csv(Path(folder) / "records.csv")["train_task"].max())

    def report(metrics: dict[str, float], records: pd.DataFrame) -> None:
        if metrics["task"] <= done:
            return
        final = metrics["objective"] if metrics["task"] == spec.num_tasks else math.nan
        report_with_records({**metrics, "objective_final": final}, records)

    run_configuration(spec.configuration(config), report, {"config_id": trial_id, "sweep": spec.sweep.name})
