"""Ray Tune wiring: the local or remote Ray, Optuna's searcher on a journal, the scheduler, the Tuner.

Every configuration runs all its seeds in one trial (``orchestrator.trial``); the driver-side recorder
writes MLflow and the sweep folder as trials end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from orchestrator.search import DefineByRun, start_points
from orchestrator.spaces import Space
from orchestrator.sweep_dir import SweepDir
from orchestrator.trial import TrialSpec, tune_trainable


@dataclass(frozen=True)
class Resources:
    """What each trial asks Ray for, and where Ray runs."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    device: str = "auto"
    max_failures: int = 2  # retries of a trial whose worker died, each from its last checkpoint
    seeds_parallel: bool = False  # each seed in its own Ray actor with cpus/gpus_per_seed
    cpus_per_seed: float = 1.0
    gpus_per_seed: float = 0.0


def trial_spec(space: Space, sweep: SweepDir, device: str) -> TrialSpec:
    return TrialSpec(sweep=sweep, benchmark=space.benchmark, bench_config=space.bench_config,
                     seeds=tuple(space.seeds), objective_metric=space.objective.metric,
                     objective_reduce=space.objective.reduce, device=device, num_tasks=space.num_tasks)


def _new_tuner(space: Space, sweep: SweepDir, trainable, recorder):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    budget, objective = space.budget, space.objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = OptunaSearch(
        space=DefineByRun(space.methods), metric="objective_final", mode=objective.mode,
        points_to_evaluate=start_points(space) if budget.start_with_defaults else None,
        sampler=optuna.samplers.TPESampler(seed=budget.sampler_seed), study_name=sweep.name,
        storage=JournalStorage(JournalFileBackend(str(sweep.optuna_journal))))
    scheduler = (ASHAScheduler(metric="objective", mode=objective.mode, time_attr="training_iteration",
                               max_t=space.num_tasks, grace_period=budget.grace_period,
                               reduction_factor=budget.reduction_factor)
                 if budget.scheduler == "asha" else FIFOScheduler())
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, budget.max_concurrent),
                                    scheduler=scheduler, num_samples=budget.num_samples),
        run_config=tune.RunConfig(
            name=sweep.ray_dir.name, storage_path=str(sweep.path), callbacks=[recorder], verbose=1,
            failure_config=tune.FailureConfig(max_failures=0),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))


def run_tuner(space: Space, sweep: SweepDir, resources: Resources, recorder, restore: bool) -> None:
    """Start (or restore) the sweep's Tuner and run it to the end; a local Ray is shut down after."""
    import ray
    from ray import tune

    spec = trial_spec(space, sweep, resources.device)
    trainable = tune.with_resources(tune.with_parameters(tune_trainable, spec=spec),
                                    {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial})
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        if resources.address:
            ray.init(address=resources.address)
        else:
            ray.init(include_dashboard=False, configure_logging=True, logging_level="WARNING")
    try:
        if restore:
            tuner = tune.Tuner.restore(str(sweep.ray_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            tuner = _new_tuner(space, sweep, trainable, recorder)
        tuner.fit()
    finally:
        if not resources.address:
            ray.shutdown()
