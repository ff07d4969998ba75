"""The function Ray runs per trial: one configuration, all its seeds, a report and a full-state checkpoint
after every task.

A trial restored by Ray (a retry after its worker died, or a resumed sweep) loads its last checkpoint and
continues at the next task: nothing finished is trained again. A configuration whose (method, parameters)
equal a finished one's is answered from that twin instead of being trained again. A divergence ends the
trial with a ``diverged`` result (a property of the configuration: retrying it would diverge again).

A confirmation trial (``stage`` confirm, ``orchestrator.confirm``) reruns a finished configuration, named by
``confirm_of`` in its config, on the confirmation seeds and the whole target stream; its records carry that
configuration's id and ``stage=confirm``. A search trial of ``first_tasks: k`` stops after task k.
"""

from __future__ import annotations

import math
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.records import read_csv
from orchestrator.objectives import prefix, report as objective_report
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
    seeds_parallel: bool = False
    cpus_per_seed: float = 1.0
    gpus_per_seed: float = 0.0
    stage: str = "search"  # search | confirm
    objectives: tuple = ()  # space_selection.Objective: what is reported (default: trainables' seed mean)
    directions: dict = field(default_factory=dict)  # metric -> higher is better
    selection_task: int = 0  # confirm: the task after which the objective compares with the search's

    def configuration(self, config: dict[str, Any]):
        """The trial's Configuration from Optuna's flat config: decoded once, its values already checked
        by the space (constants and distribution bounds), so the Params are built without a second check."""
        from trainables.build import Configuration
        from trainables.methods import get_method

        method, values = decode(config)
        return Configuration(method, get_method(method).Params(**values), self.benchmark, self.bench_config,
                             self.seeds, self.objective_metric, self.objective_reduce, self.device)


def report(metrics: dict[str, Any], trial=None) -> None:
    """Report to Ray, with a checkpoint of the trial's records and every seed's state when given."""
    from ray import tune

    if trial is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        trial.save(Path(folder))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def make_trial(spec: TrialSpec, config: dict[str, Any], context: dict[str, str]):
    """A Trial whose seeds run here, one after another, or each in its own Ray actor."""
    from trainables.build import make_runs
    from trainables.trainable import Trial

    configuration = spec.configuration(config)
    if not spec.seeds_parallel:
        return Trial(configuration, make_runs(configuration), context)
    from orchestrator.seed_actors import ParallelTrial, start_seed_actors

    return ParallelTrial(configuration, start_seed_actors(configuration, spec.cpus_per_seed, spec.gpus_per_seed),
                         context)


def tune_trainable(config: dict[str, Any], spec: TrialSpec) -> None:
    """Ray's trial. ``objective`` (the seed mean after each task) drives ASHA; ``objective_final`` is the
    same number after the last task and NaN before, so Optuna learns only from configurations that ran
    every task (a trial stopped early is a failed one to it, not a finished one with a better number)."""
    from ray import tune

    trial_id = config.get("confirm_of") or tune.get_context().get_trial_id()
    if spec.sweep.config_ended(trial_id, spec.stage):  # it ended before a hard stop Ray's saved state missed
        meta, _ = spec.sweep.read_config(trial_id, spec.stage)
        report(meta["last_result"])
        return
    method, params = decode(config)
    twin = spec.sweep.finished_twin(method, params) if spec.stage == "search" else None
    if twin is not None:
        report({**twin["last_result"], "twin_of": twin["config_id"]})
        return
    # the records name the stream's length this trial trains (first_tasks: k) and the stage
    context = {"config_id": trial_id, "sweep": spec.sweep.name, "num_tasks": spec.num_tasks, "stage": spec.stage}
    trial, reported = make_trial(spec, config, context), 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trial, reported = restore(trial, Path(folder), lambda: make_trial(spec, config, context))
    try:
        train(trial, spec, reported)
    finally:
        trial.close()


def objectives_after(trial, spec: TrialSpec, task: int) -> dict:
    """The report's objectives after ``task`` (orchestrator.objectives), or trainables' own seed mean when
    the spec names none."""
    if not spec.objectives:
        return {}
    return objective_report(trial.records, spec.seeds, task, spec.objectives, spec.directions)


def train(trial, spec: TrialSpec, reported: int) -> None:
    """The remaining tasks up to ``spec.num_tasks``, each reported with a checkpoint; ``objective_final``
    (and ``objective2_final``) is the objective after the last task, NaN before; a confirmation trial's
    last report adds ``selection_objective`` and ``selection_objective_mean`` (``..._objective2...``), its
    objectives after ``selection_task``. A divergence ends the trial as ``diverged``."""
    from trainables.loop import Diverged

    finals = [f"{prefix(i)}_final" for i in range(max(len(spec.objectives), 1))]
    while trial.done < spec.num_tasks:
        try:
            metrics = trial.next_task()
        except Diverged as e:
            report({"task": trial.done, "objective": math.nan, **dict.fromkeys(finals, math.nan),
                    "diverged": str(e)})
            return
        metrics.update(objectives_after(trial, spec, metrics["task"]))
        if metrics["task"] > reported:  # Ray's iteration count stays the task index
            last = metrics["task"] == spec.num_tasks
            metrics.update({key: metrics[key[:-len("_final")]] if last else math.nan for key in finals})
            if last and spec.stage == "confirm" and spec.selection_task:
                selection = objectives_after(trial, spec, spec.selection_task)
                metrics.update({f"selection_{key}": selection[key] for i in range(len(spec.objectives))
                                for key in (prefix(i), f"{prefix(i)}_mean")})
            report(metrics, trial)


def restore(trial, folder: Path, fresh):
    """(trial, tasks already reported): ``trial`` continued from the checkpoint ``folder``; a checkpoint that
    cannot be read (a damaged file) is said on stderr and the configuration reruns from its first task
    (deterministically, the same records), reporting again only after the tasks Ray has already seen."""
    try:
        trial.load(folder)
        return trial, trial.done
    except Exception:  # a damaged checkpoint is a fault to survive, not to stop the sweep on
        traceback.print_exc()
        try:
            seen = int(read_csv(folder / "records.csv")["train_task"].max())
        except Exception:
            seen = 0
        print(f"warning: the checkpoint in {folder} cannot be read; rerunning this configuration from task 1 "
              f"(reports resume after task {seen})", file=sys.stderr)
        trial.close()
        return fresh(), seen

