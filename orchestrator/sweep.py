"""A sweep from start to table: validate before any work, create the folder and the MLflow parent run, run
the Tuner, then gather the records into the results table and the report."""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator import storage
from orchestrator.confirm import selection_params
from orchestrator.preflight import (check_name, check_resources, check_seed_resources, check_services,
                                    resources_of)
from orchestrator.ray_processes import check_not_running
from orchestrator.spaces import Space, SpaceError, load
from orchestrator.sweep_dir import SweepDir, write_atomic
from orchestrator.tracking import Tracker, runs_view
from orchestrator.tuner import Resources


@dataclass(frozen=True)
class SweepOptions:
    name: str | None = None
    runs_dir: str = "runs"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    tracking_uri: str | None = None
    optuna_storage: str | None = None  # an Optuna RDB URL; default: the journal file in the sweep's folder
    device: str = "auto"
    max_failures: int = 2
    seeds_parallel: bool = False
    cpus_per_seed: float = 1.0
    gpus_per_seed: float = 0.0

    def resources(self) -> Resources:
        return resources_of(asdict(self))


def prepare(space_arg: str, overrides: list[str], options: SweepOptions) -> tuple[Space, SweepDir]:
    """Validate everything before any work: the space, the name, the folder (must not exist), the
    resources, and that the Ray cluster, the MLflow server and the Optuna storage answer."""
    if options.name is not None:
        check_name(options.name, "--name")
    return prepare_space(load(space_arg, overrides), options)


def prepare_space(space: Space, options: SweepOptions) -> tuple[Space, SweepDir]:
    """``prepare`` for a space validated elsewhere (``orchestrate reproduce``'s columns)."""
    name = options.name or space.name
    check_name(name, "name")
    sweep = SweepDir(options.runs_dir, name)
    if sweep.exists() and not sweep.started():  # a start killed before it wrote sweep.json: nothing to keep
        print(f"note: removing {sweep.path}, left by a start that was killed before it finished",
              file=sys.stderr)
        shutil.rmtree(sweep.path)
    if sweep.exists():
        raise SpaceError(f"--name: sweep folder {sweep.path} exists; continue it with --resume {name} or pick "
                         "another --name")
    check_resources(options.resources())
    confirm_seeds = space.budget.confirm.seeds if space.budget.confirm is not None else ()
    check_seed_resources(options.resources(), max(len(space.seeds), len(confirm_seeds)))
    check_services(options.address, options.tracking_uri)
    if options.optuna_storage:
        storage.check_optuna_storage(options.optuna_storage, name)
    return space, sweep


def parent_params(space: Space, commit: str) -> dict:
    """The sweep's parent-run params; ``direction.<metric>`` lets analysis read a metric's direction."""
    return {"space": space.name, "benchmark": space.benchmark, "seeds": ",".join(map(str, space.seeds)),
            "objective_metric": space.objective.metric, "objective_reduce": space.objective.reduce,
            "objective_mode": space.objective.mode, "num_tasks": space.num_tasks,
            "sampler_seed": space.budget.sampler_seed, "num_samples": space.budget.num_samples,
            "git_commit": commit, **{f"benchmark.{k}": v for k, v in space.benchmark_params.items()},
            **{f"direction.{m}": "max" if higher else "min" for m, higher in space.directions.items()},
            **selection_params(space)}


def start(space: Space, sweep: SweepDir, options: SweepOptions) -> dict:
    """Create the sweep folder and the MLflow parent run, then run the Tuner. Until sweep.json is written
    nothing can be resumed: a failure or Ctrl+C before it removes the folder again."""
    from orchestrator.provenance import git_commit, versions

    sweep.create()
    try:
        sweep.space_yaml.write_text(space.to_yaml())
        commit = git_commit()
        sweep.versions_json.write_text(json.dumps({"git_commit": commit, **versions()}, indent=1))
        from orchestrator import manifest

        manifest.write(space, sweep, options)
        tracking_uri = options.tracking_uri or sweep.default_tracking_uri()
        tracker = Tracker(tracking_uri, sweep.name, sweep.artifacts)
        storage.remember(options.optuna_storage)
        view = runs_view(space.objective.metric, space.objective.mode == "max")
        artifacts = [sweep.space_yaml, sweep.versions_json, sweep.manifest_json]
        parent = tracker.start_sweep(parent_params(space, commit), artifacts, view)
        state = {**asdict(options), "name": sweep.name, "tracking_uri": storage.mask(tracking_uri),
                 "optuna_storage": storage.mask(options.optuna_storage), "parent_run_id": parent}
        sweep.write_state(state)
    except BaseException:
        shutil.rmtree(sweep.path, ignore_errors=True)
        raise
    return _run(space, sweep, state, restore=False)


def resume(name: str, options: SweepOptions) -> tuple[Space, SweepDir, dict]:
    """The saved sweep; passwords are never saved: a URL that had one must be given again."""
    check_name(name, "--resume")
    sweep = SweepDir(options.runs_dir, name)
    if not sweep.started():
        raise SpaceError(f"--resume: no sweep named {name} in {Path(options.runs_dir).resolve()}")
    check_not_running(sweep)
    state = sweep.read_state()
    for key in ("tracking_uri", "optuna_storage"):
        _secret_again(name, key, state.get(key), getattr(options, key))
    check_resources(resources_of(state))
    check_services(state.get("address"), storage.reveal(state["tracking_uri"]))
    space = load(str(sweep.space_yaml))
    from orchestrator import manifest

    manifest.record_resume(sweep, options)
    return space, sweep, state


def _secret_again(name: str, key: str, saved: str | None, given: str | None) -> None:
    """On --resume, --tracking-uri/--optuna-storage may only repeat the saved URL (with its password)."""
    flag = "--" + key.replace("_", "-")
    if given:
        if storage.mask(given) != saved:
            raise SpaceError(f"{flag}: sweep {name} was started with {saved or 'the default'}; on --resume give "
                             "that one (with its password) or none")
        storage.remember(given)
    elif storage.has_password(saved) and not (key == "tracking_uri" and os.environ.get("MLFLOW_TRACKING_PASSWORD")):
        raise SpaceError(f"{flag}: sweep {name} uses {saved}, whose password is not saved; give {flag} with it "
                         "again")


def continue_sweep(space: Space, sweep: SweepDir, state: dict) -> dict:
    """Restore the Ray experiment: finished configurations stay finished, unfinished ones run again."""
    return _run(space, sweep, state, restore=True)


def _run(space: Space, sweep: SweepDir, state: dict, restore: bool) -> dict:
    from orchestrator.recorder import make_recorder
    from orchestrator import confirm
    from orchestrator.tuner import run_tuner, stop_local_ray
    from trainables.benchmarks import get_benchmark

    tracker = Tracker(state["tracking_uri"], sweep.name, sweep.artifacts)
    tracker.log(state["parent_run_id"], tags={"protocol": space.protocol.label})
    recorder = make_recorder(tracker, state["parent_run_id"], sweep, space.search_num_tasks or space.num_tasks,
                             list(space.seeds), space.benchmark, space.directions,
                             objectives=len(space.objectives or (space.objective,)))
    for config in {id(c): c for c in (space.bench_config, space.search_config) if c is not None}.values():
        get_benchmark(space.benchmark).prepare(config)
    # a sweep stopped before Ray saved its experiment starts the Tuner afresh
    restore = restore and _ray_saved(sweep)
    resources = resources_of(state)
    try:
        run_tuner(space, sweep, resources, recorder, restore, shutdown=False)
        confirm.run(space, sweep, resources, tracker, state)  # budget.confirm: the best on fresh seeds
    finally:
        stop_local_ray(resources)
    return finalize(space, sweep, tracker, state)


def _ray_saved(sweep: SweepDir) -> bool:
    from ray import tune

    return sweep.ray_dir.exists() and tune.Tuner.can_restore(str(sweep.ray_dir))


def finalize(space: Space, sweep: SweepDir, tracker: Tracker, state: dict) -> dict:
    """Gather records, write and log the results table; say whether the sweep is complete."""
    from orchestrator import confirm
    from analysis.stages import staged
    from orchestrator.results import results_table, sweep_source, write_results

    metas = sweep.metas()
    records = sweep.ended_records()
    complete = len(metas) >= space.budget.num_samples and confirm.complete(space, sweep)
    tracker.tag_configurations(confirm.pareto_tags(space, metas))  # two objectives: the front's members
    summary = {"name": sweep.name, "folder": str(sweep.path), "configurations": len(metas),
               "num_samples": space.budget.num_samples, "complete": complete,
               "finished": sum(m["status"] in ("finished", "stopped") for m in metas),
               "statuses": {s: sum(m["status"] == s for m in metas) for s in sorted({m["status"] for m in metas})},
               "table": None}
    if len(records):
        write_atomic(sweep.records_csv, records.to_csv(index=False))
        source = sweep_source(records, metas, space, sweep.name, state)
        paths = write_results(results_table(source, metas, space, sweep.metas("confirm")), sweep, space)
        summary["table"] = paths["md"].read_text()
        for path in [sweep.records_csv, *paths.values()]:
            tracker.client.log_artifact(state["parent_run_id"], str(path))
        summary["report"] = _report(staged(source), sweep)  # the confirmation seeds when there are some
    if not complete and len(metas) >= space.budget.num_samples:  # the search ended, a confirmation did not
        print(f"confirmation: {len(confirm.pending(space, sweep))} configuration(s) not yet confirmed on seeds "
              f"{', '.join(map(str, space.budget.confirm.seeds))}", file=sys.stderr)
    if complete:
        tracker.close_abandoned({m["config_id"] for m in metas})
        tracker.finish(state["parent_run_id"], "finished")
    return summary


def _report(source, sweep: SweepDir) -> str:
    """The full report (every metric's tables, re-convergence, figures) into runs/NAME/report and MLflow."""
    from orchestrator.reporting import log_report

    try:
        log_report(source, sweep.report_dir)
    except Exception as e:  # a bug, shown with its traceback; but the table is written: keep the sweep's exit
        traceback.print_exc()
        print(f"warning: the report could not be built ({type(e).__name__}: {e}); retry with orchestrate "
              f"report --sweep {sweep.name}", file=sys.stderr)
        return ""
    return str(sweep.report_dir / "report.html")
