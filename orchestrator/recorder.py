"""Driver side: every trial's progress and end go to MLflow and to the sweep folder as they happen.

A trial ends as finished (every task), stopped (by ASHA), diverged (a NaN; its finished tasks are kept),
failed (its worker died more often than the retries allow, or a bug), or twin (a repeated proposal
answered from the finished configuration named in ``twin_of``).

A confirmation trial (``stage`` confirm) writes under the configuration it confirms (``confirm_of``): its seed
runs tagged ``stage=confirm`` under that configuration's run, its aggregates prefixed ``confirm_``, its end
as the tag ``confirm_status`` (the configuration's own status stays the search's), its files in
``records/confirm/``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from core.records import read_csv
from orchestrator.objectives import prefix
from orchestrator.search import decode
from orchestrator.sweep_dir import SweepDir
from orchestrator.tracking import Tracker


def error_text(trial) -> str:
    """The last line of a failed trial's error file, or its ``diverged: ...`` line."""
    path = trial.error_file
    if not path or not Path(path).exists():
        return "unknown error"
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    for line in reversed(lines):
        if "diverged:" in line:
            return line[line.index("diverged:"):]
    return lines[-1] if lines else "unknown error"


def config_id_of(trial) -> str:
    """The configuration a trial runs: its own id, or for a confirmation trial the one it confirms."""
    return trial.config.get("confirm_of") or trial.trial_id


def make_recorder(tracker: Tracker, parent: str, sweep: SweepDir, num_tasks: int, seeds: list[int],
                  benchmark: str, directions: dict[str, bool], stage: str = "search", objectives: int = 1):
    """A Ray Tune callback (built here so this module imports without Ray)."""
    from ray import tune

    confirm = stage == "confirm"
    pre = "confirm_" if confirm else ""

    class SweepRecorder(tune.Callback):
        def __init__(self) -> None:
            self.runs: dict[str, str] = {}

        def _run(self, trial) -> str:
            if trial.trial_id not in self.runs:
                method, params = decode(trial.config)
                self.runs[trial.trial_id] = tracker.config_run(
                    parent, config_id_of(trial), method, params,
                    tags={"benchmark": benchmark, "seeds": ",".join(map(str, seeds))})
            return self.runs[trial.trial_id]

        def on_trial_start(self, iteration, trials, trial, **info):
            self._run(trial)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            step = int(result["task"])
            keys = [k for k in result if k.startswith("objective") and not k.endswith("_final")]
            tracker.log(self._run(trial), metrics=[(pre + k, result[k], step) for k in keys])

        def on_trial_complete(self, iteration, trials, trial, **info):
            last = trial.last_result or {}
            if last.get("diverged"):
                self._finish(trial, "diverged", last["diverged"])
            elif last.get("twin_of"):
                self._finish(trial, "twin", "", {"twin_of": last["twin_of"]})
            else:
                self._finish(trial, "finished" if int(last.get("task", 0)) == num_tasks else "stopped", "")

        def on_trial_error(self, iteration, trials, trial, **info):
            error = error_text(trial)
            self._finish(trial, "diverged" if error.startswith("diverged:") else "failed", error)

        def _finish(self, trial, status: str, error: str, extra: dict[str, str] | None = None) -> None:
            config_id = config_id_of(trial)
            if sweep.config_ended(config_id, stage):
                return
            records = pd.DataFrame()
            if trial.checkpoint is not None:  # a checkpoint Ray could not restore may be gone: no records
                with trial.checkpoint.as_directory() as folder:
                    if (Path(folder) / "records.csv").exists():
                        records = read_csv(Path(folder) / "records.csv")
            method, params = decode(trial.config)
            run = self._run(trial)
            tags = {"method": method, "benchmark": benchmark, "config_id": config_id, "stage": stage}
            if len(records):
                tracker.seed_runs(run, records, tags)
                tracker.aggregates(run, records, directions, num_tasks, seeds, prefix=pre)
            ended = {**({"error": error} if error else {}), **(extra or {})}
            if confirm:
                tracker.log(run, tags={"confirm_status": status, "confirm_seeds": ",".join(map(str, seeds)),
                                       "confirm_rank": trial.config.get("confirm_rank", ""),
                                       **{pre + k: v for k, v in ended.items()}})
            else:
                tracker.finish(run, status, ended)
            last = {k: v for k, v in (trial.last_result or {}).items()
                    if k == "task" or k.startswith(("objective", "selection_"))}
            meta = {"config_id": config_id, "method": method, "params": params, "status": status,
                    "tasks_done": int(last.get("task", 0)), "error": error, "last_result": last,
                    "objective": _finite(last.get("objective")),
                    "seconds": (trial.last_result or {}).get("time_total_s"), **(extra or {})}
            if objectives > 1:
                meta["objectives"] = [_finite(last.get(prefix(i))) for i in range(objectives)]
            if confirm:
                meta.update(stage=stage, seeds=list(seeds), rank=trial.config.get("confirm_rank"),
                            **{k: _finite(v) for k, v in last.items() if k.startswith("selection_")})
            sweep.write_config(config_id, meta, records, stage)

    return SweepRecorder()


def _finite(value) -> float | None:
    return value if value is not None and math.isfinite(value) else None
