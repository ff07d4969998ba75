"""Ray Tune wiring: the local or remote Ray, Optuna's searcher on a journal, the scheduler, the Tuner.

Every configuration runs all its seeds in one trial (``orchestrator.trial``); the driver-side recorder
writes MLflow and the sweep folder as trials end. Two objectives make Optuna's search multi-objective
(``directions``; its TPESampler is then MOTPE); the confirmation phase (``orchestrator.confirm``) is a
second Tuner over fixed configurations (``points``), with no sampler, in ``ray_confirm/``.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from dataclasses import dataclass

from orchestrator.objectives import prefix
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


def stage_seeds(space: Space, stage: str) -> tuple[int, ...]:
    """The seeds a stage's trials run: the space's, or the confirmation seeds."""
    return tuple(space.budget.confirm.seeds) if stage == "confirm" else tuple(space.seeds)


def trial_spec(space: Space, sweep: SweepDir, resources: Resources, stage: str = "search") -> TrialSpec:
    """The search trains the search stream (held_out_stream's, else the target) up to its task count
    (first_tasks k, else all); a confirmation trial the whole target stream on the confirmation seeds."""
    confirm = stage == "confirm"
    search_config = space.search_config if space.search_config is not None else space.bench_config
    return TrialSpec(sweep=sweep, benchmark=space.benchmark,
                     bench_config=space.bench_config if confirm else search_config,
                     seeds=stage_seeds(space, stage), objective_metric=space.objective.metric,
                     objective_reduce=space.objective.reduce, device=resources.device,
                     num_tasks=space.num_tasks if confirm else (space.search_num_tasks or space.num_tasks),
                     seeds_parallel=resources.seeds_parallel, cpus_per_seed=resources.cpus_per_seed,
                     gpus_per_seed=resources.gpus_per_seed, stage=stage,
                     objectives=tuple(space.objectives) or (space.objective,), directions=dict(space.directions),
                     selection_task=(space.protocol.first_tasks or space.num_tasks) if confirm else 0)


def trial_resources(space: Space, resources: Resources, stage: str = "search"):
    """What Ray reserves per trial: cpus/gpus_per_trial, or with seeds in parallel a placement group of one
    bundle per seed (all or nothing, so a trial never holds half its seeds)."""
    from ray import tune

    if not resources.seeds_parallel:
        return {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    from orchestrator.seed_actors import seed_bundles

    return tune.PlacementGroupFactory(seed_bundles(len(stage_seeds(space, stage)), resources.cpus_per_seed,
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
            metrics = self._metric if isinstance(self._metric, list) else [self._metric]
            values = [(result or {}).get(m) for m in metrics]
            if result and any(v is None or math.isnan(v) for v in values):  # stopped early (PRUNED) or diverged (FAIL)
                error = error or bool(result.get("diverged"))
                result = None
            super().on_trial_complete(trial_id, result, error)

    return ResumableOptunaSearch(**kwargs)


def _new_tuner(space: Space, sweep: SweepDir, trainable, recorder, resources: Resources):
    import optuna
    from orchestrator.storage import optuna_storage
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    budget, objective = space.budget, space.objective
    goals = tuple(space.objectives) or (objective,)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric, mode = "objective_final", objective.mode
    if len(goals) > 1:  # a Pareto front: Optuna's study gets one direction per objective
        metric, mode = [f"{prefix(i)}_final" for i in range(len(goals))], [g.mode for g in goals]
    searcher = resumable_searcher(
        space=DefineByRun(space.methods), metric=metric, mode=mode,
        points_to_evaluate=start_points(space) if budget.start_with_defaults else None,
        sampler=optuna.samplers.TPESampler(seed=budget.sampler_seed), study_name=sweep.name,
        storage=optuna_storage(sweep.read_state().get("optuna_storage"), sweep))
    scheduler = (ASHAScheduler(metric="objective", mode=objective.mode, time_attr="training_iteration",
                               max_t=space.search_num_tasks or space.num_tasks, grace_period=budget.grace_period,
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


def _confirm_tuner(space: Space, sweep: SweepDir, trainable, recorder, resources: Resources, points: list[dict]):
    """The confirmation phase: exactly ``points`` (flat configurations with ``confirm_of``), no sampler."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    keys = {key: None for point in points for key in point}  # Ray takes preset values only for known keys
    return tune.Tuner(
        trainable, param_space=keys,
        tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(points_to_evaluate=list(points),
                                                                     max_concurrent=space.budget.max_concurrent),
                                    num_samples=len(points)),
        run_config=tune.RunConfig(
            name=sweep.confirm_ray_dir.name, storage_path=str(sweep.path), callbacks=[recorder], verbose=1,
            failure_config=tune.FailureConfig(max_failures=resources.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))


def run_tuner(space: Space, sweep: SweepDir, resources: Resources, recorder, restore: bool, stage: str = "search",
              points: list[dict] = (), shutdown: bool = True) -> None:
    """Start (or restore) the stage's Tuner (search, or confirm over ``points``) and run it to the end; a
    local Ray is shut down after unless ``shutdown`` is False (``stop_local_ray`` then).
    SIGTERM (timeout, SLURM, docker stop) saves the experiment's state as Ctrl+C does."""
    import ray
    from ray import tune

    from orchestrator.ray_processes import reap_leftovers, remember_session

    spec = trial_spec(space, sweep, resources, stage)
    trainable = tune.with_resources(tune.with_parameters(tune_trainable, spec=spec),
                                    trial_resources(space, resources, stage))
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
    folder = sweep.confirm_ray_dir if stage == "confirm" else sweep.ray_dir
    try:
        if restore:
            from orchestrator.restore_repair import fill_missing_predecessors

            for copy in fill_missing_predecessors(folder, lambda c: sweep.config_ended(c, stage)):
                print(f"note: Ray's saved state may name {copy.name} of {copy.parent.name}, which Ray had already "
                      "replaced: recreated from the newest checkpoint, so the trial continues after its newest "
                      "saved task", file=sys.stderr)
            tuner = tune.Tuner.restore(str(folder), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        elif stage == "confirm":
            tuner = _confirm_tuner(space, sweep, trainable, recorder, resources, points)
        else:
            tuner = _new_tuner(space, sweep, trainable, recorder, resources)
        tuner.fit()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if shutdown:
            stop_local_ray(resources)


def stop_local_ray(resources: Resources) -> None:
    """Shut down the Ray this driver started (not a cluster given by --address)."""
    import ray

    if not resources.address and ray.is_initialized():
        ray.shutdown()
