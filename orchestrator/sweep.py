"""A sweep from start to table: validate before any work, create the folder and the MLflow parent run, run
the Tuner, then gather the records into the results table and the report."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator import storage
from orchestrator.ray_processes import check_not_running
from orchestrator.spaces import Space, SpaceError, load
from orchestrator.sweep_dir import SweepDir, write_atomic
from orchestrator.tracking import Tracker
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


def check_name(name: str, field: str) -> None:
    """A sweep's name is a folder, an MLflow experiment and an Optuna study: no path tricks."""
    if not re.fullmatch(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*", name or ""):
        raise SpaceError(f"{field}: {name!r} is not allowed; allowed: letters, digits, _ - . (not starting "
                         "with a dot)")


def prepare(space_arg: str, overrides: list[str], options: SweepOptions) -> tuple[Space, SweepDir]:
    """Validate everything before any work: the space, the name, the folder (must not exist), the
    resources, and that the Ray cluster, the MLflow server and the Optuna storage answer."""
    if options.name is not None:
        check_name(options.name, "--name")
    space = load(space_arg, overrides)
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
    check_seed_resources(options.resources(), len(space.seeds))
    check_services(options.address, options.tracking_uri)
    if options.optuna_storage:
        storage.check_optuna_storage(options.optuna_storage, name)
    return space, sweep


def check_services(address: str | None, tracking_uri: str | None) -> None:
    """Fail fast, in one line, on a Ray address or MLflow server that cannot work."""
    if address:
        storage.check_address(address)
    if tracking_uri:
        storage.check_tracking_uri(tracking_uri)


def resources_of(state: dict) -> Resources:
    """The resources a sweep was started with (sweep.json; fields added later take their defaults)."""
    fields = Resources.__dataclass_fields__
    return Resources(**{k: v for k, v in state.items() if k in fields})


def check_resources(resources: Resources) -> None:
    """--device, the CPUs and GPUs per trial (and per seed) must be able to work together; on the local
    machine they must fit in it (else trials would wait forever)."""
    import torch

    r = resources
    if r.cpus_per_trial <= 0 or r.gpus_per_trial < 0:
        raise SpaceError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if r.cpus_per_seed <= 0 or r.gpus_per_seed < 0:
        raise SpaceError("--cpus-per-seed must be > 0 and --gpus-per-seed >= 0")
    if r.max_failures < 0:
        raise SpaceError(f"--max-failures: {r.max_failures} is not allowed; allowed: an integer >= 0")
    if r.device != "auto":
        try:
            device = torch.device(r.device)
        except RuntimeError:
            raise SpaceError(f"--device: '{r.device}' is not allowed; allowed: auto, cpu, cuda, cuda:N") from None
        if device.type == "cuda" and r.gpus_per_trial == 0:
            raise SpaceError("--device cuda needs --gpus-per-trial > 0 (Ray hides GPUs from trials that ask for none)")
    if r.address:
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    asks = [("trial", r.cpus_per_trial, r.gpus_per_trial)]
    asks += [("seed", r.cpus_per_seed, r.gpus_per_seed)] if r.seeds_parallel else []
    for per, want_cpus, want_gpus in asks:
        if want_gpus > 0 and not gpus:
            raise SpaceError(f"--gpus-per-{per}: this machine has no GPU; use 0, or --address of a cluster with GPUs")
        for what, want, have in (("CPUs", want_cpus, cpus), ("GPUs", want_gpus, gpus)):
            if want > have:
                raise SpaceError(f"--{what[:3].lower()}s-per-{per}: {want:g} is more than this machine's {have} "
                                 f"{what}; allowed: at most {have}, or --address of a cluster")


def check_seed_resources(r: Resources, seeds: int) -> None:
    """With seeds in parallel a trial reserves every seed's bundle at once: on the local machine all of them
    must fit, or the trial would wait forever."""
    if not r.seeds_parallel or r.address:
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if seeds * r.cpus_per_seed > cpus:
        raise SpaceError(f"--cpus-per-seed: {seeds} seeds x {r.cpus_per_seed:g} CPUs is more than this machine's "
                         f"{cpus} CPUs; allowed: at most {cpus / seeds:g} per seed, or --address of a cluster")


def parent_params(space: Space, commit: str) -> dict:
    """The sweep's parent-run params; ``direction.<metric>`` lets analysis read a metric's direction."""
    return {"space": space.name, "benchmark": space.benchmark, "seeds": ",".join(map(str, space.seeds)),
            "objective_metric": space.objective.metric, "objective_reduce": space.objective.reduce,
            "objective_mode": space.objective.mode, "num_tasks": space.num_tasks,
            "sampler_seed": space.budget.sampler_seed, "num_samples": space.budget.num_samples,
            "git_commit": commit, **{f"benchmark.{k}": v for k, v in space.benchmark_params.items()},
            **{f"direction.{m}": "max" if higher else "min" for m, higher in space.directions.items()}}


def start(space: Space, sweep: SweepDir, options: SweepOptions) -> dict:
    """Create the sweep folder and the MLflow parent run, then run the Tuner. Until sweep.json is written
    nothing can be resumed: a failure or Ctrl+C before it removes the folder again."""
    from orchestrator.provenance import git_commit, versions

    sweep.create()
    try:
        sweep.space_yaml.write_text(space.to_yaml())
        commit = git_commit()
        sweep.versions_json.write_text(json.dumps({"git_commit": commit, **versions()}, indent=1))
        tracking_uri = options.tracking_uri or sweep.default_tracking_uri()
        tracker = Tracker(tracking_uri, sweep.name, sweep.artifacts)
        storage.remember(options.optuna_storage)
        parent = tracker.start_sweep(parent_params(space, commit), [sweep.space_yaml, sweep.versions_json])
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
    return load(str(sweep.space_yaml)), sweep, state


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
    from orchestrator.tuner import run_tuner
    from trainables.benchmarks import get_benchmark

    tracker = Tracker(state["tracking_uri"], sweep.name, sweep.artifacts)
    recorder = make_recorder(tracker, state["parent_run_id"], sweep, space.num_tasks, list(space.seeds),
                             space.benchmark, space.directions)
    get_benchmark(space.benchmark).prepare(space.bench_config)
    # a sweep stopped before Ray saved its experiment starts the Tuner afresh
    restore = restore and _ray_saved(sweep)
    run_tuner(space, sweep, resources_of(state), recorder, restore)
    return finalize(space, sweep, tracker, state)


def _ray_saved(sweep: SweepDir) -> bool:
    from ray import tune

    return sweep.ray_dir.exists() and tune.Tuner.can_restore(str(sweep.ray_dir))


def finalize(space: Space, sweep: SweepDir, tracker: Tracker, state: dict) -> dict:
    """Gather records, write and log the results table; say whether the sweep is complete."""
    from orchestrator.results import results_table, sweep_source, write_results

    metas = sweep.metas()
    records = sweep.ended_records()
    complete = len(metas) >= space.budget.num_samples
    summary = {"name": sweep.name, "folder": str(sweep.path), "configurations": len(metas),
               "num_samples": space.budget.num_samples, "complete": complete,
               "finished": sum(m["status"] in ("finished", "stopped") for m in metas),
               "statuses": {s: sum(m["status"] == s for m in metas) for s in sorted({m["status"] for m in metas})},
               "table": None}
    if len(records):
        write_atomic(sweep.records_csv, records.to_csv(index=False))
        source = sweep_source(records, metas, space, sweep.name, state)
        paths = write_results(results_table(source, metas, space), sweep, space)
        summary["table"] = paths["md"].read_text()
        for path in [sweep.records_csv, *paths.values()]:
            tracker.client.log_artifact(state["parent_run_id"], str(path))
        summary["report"] = _report(source, sweep)
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
