"""Ray Tune wiring: the local or remote Ray, Optuna's searcher on a journal, the scheduler, the Tuner.

Every configuration runs all its seeds in one trial (``orchestrator.trial``); the driver-side recorder
writes MLflow and the sweep folder as trials end.
"""

from __future__ import annotations

import math
import os
import signal
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


def trial_spec(space: Space, sweep: SweepDir, resources: Resources) -> TrialSpec:
    return TrialSpec(sweep=sweep, benchmark=space.benchmark, bench_config=space.bench_config,
                     seeds=tuple(space.seeds), objective_metric=space.objective.metric,
                     objective_reduce=space.objective.reduce, device=resources.device, num_tasks=space.num_tasks,
                     seeds_parallel=resources.seeds_parallel, cpus_per_seed=resources.cpus_per_seed,
                     gpus_per_seed=resources.gpus_per_seed)


def trial_resources(space: Space, resources: Resources):
    """What Ray reserves per trial: cpus/gpus_per_trial, or with seeds in parallel a placement group of one
    bundle per seed (all or nothing, so a trial never holds half its seeds)."""
    from ray import tune

    if not resources.seeds_parallel:
        return {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    from orchestrator.seed_actors import seed_bundles

    return tune.PlacementGroupFactory(seed_bundles(len(space.seeds), resources.cpus_per_seed,
                                                   resources.gpus_per_seed))


def resumable_searcher(**kwargs):
    """Optuna over Ray Tune, safe to resume after a hard stop: a configuration that finished after Ray's
    last saved state is COMPLETE in Optuna's storage but not to Ray; when Ray reruns it (the trial then
    answers from its saved records), telling Optuna again is skipped instead of failing the driver. A
    configuration without a final objective is PRUNED (stopped early) or FAIL (diverged) to Optuna."""
    from ray.tune.search.optuna import OptunaSearch

    class ResumableOptunaSearch(OptunaSearch):
        def _finished_in_optuna(self, trial_id: str) -> bool:
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is None:
                return False
            return self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()

        def on_trial_result(self, trial_id, result):
            if not self._finished_in_optuna(trial_id):
                super().on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id, result=None, error=False):
            if self._finished_in_optuna(trial_id):
                self._completed_trials.add(trial_id)
                return
            value = (result or {}).get(self._metric)
            if value is not None and math.isnan(value):  # stopped early (PRUNED) or diverged (FAIL)
                error = error or bool(result.get("diverged"))
                result = {k: v for k, v in result.items() if k != self._metric}
            super().on_trial_complete(trial_id, result, error)

    return ResumableOptunaSearch(**kwargs)


def _new_tuner(space: Space, sweep: SweepDir, trainable, recorder, resources: Resources):
    import optuna
    from orchestrator.storage import optuna_storage
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    budget, objective = space.budget, space.objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = resumable_searcher(
        space=DefineByRun(space.methods), metric="objective_final", mode=objective.mode,
        points_to_evaluate=start_points(space) if budget.start_with_defaults else None,
        sampler=optuna.samplers.TPESampler(seed=budget.sampler_seed), study_name=sweep.name,
        storage=optuna_storage(sweep.read_state().get("optuna_storage"), sweep))
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
            failure_config=tune.FailureConfig(max_failures=resources.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))


def run_tuner(space: Space, sweep: SweepDir, resources: Resources, recorder, restore: bool) -> None:
    """Start (or restore) the sweep's Tuner and run it to the end; a local Ray is shut down after.
    SIGTERM (timeout, SLURM, docker stop) saves the experiment's state as Ctrl+C does."""
    import ray
    from ray import tune

    from orchestrator.ray_processes import reap_leftovers, remember_session

    trainable = tune.with_resources(tune.with_parameters(tune_trainable, spec=trial_spec(space, sweep, resources)),
                                    trial_resources(space, resources))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # a hard stop loses at most ~2 s of Ray's state
    if not ray.is_initialized():
        if resources.address:
            ray.init(address=resources.address)
        else:
            reap_leftovers(sweep)
            ray.init(include_dashboard=False, configure_logging=True, logging_level="WARNING")
            remember_session(sweep)
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        if restore:
            tuner = tune.Tuner.restore(str(sweep.ray_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            tuner = _new_tuner(space, sweep, trainable, recorder, resources)
        tuner.fit()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not resources.address:
            ray.shutdown()
