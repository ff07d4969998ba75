"""A sweep from start to table: validate before any work, create the folder and the MLflow parent run, run
the Tuner, then gather the records into the results table and the report."""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

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
    device: str = "auto"
    max_failures: int = 2
    seeds_parallel: bool = False
    cpus_per_seed: float = 1.0
    gpus_per_seed: float = 0.0

    def resources(self) -> Resources:
        return resources_of(asdict(self))


def prepare(space_arg: str, overrides: list[str], options: SweepOptions) -> tuple[Space, SweepDir]:
    """Validate everything before any work: the space, the folder (must not exist), the resources."""
    space = load(space_arg, overrides)
    name = options.name or space.name
    if options.name and (not name or any(c in name for c in "/\\ ")):
        raise SpaceError("--name: a non-empty name without spaces or slashes")
    sweep = SweepDir(options.runs_dir, name)
    if sweep.exists():
        raise SpaceError(f"--name: sweep folder {sweep.path} exists; continue it with --resume {name} or pick "
                         "another --name")
    check_resources(options.resources())
    return space, sweep


def resources_of(state: dict) -> Resources:
    """The resources a sweep was started with (sweep.json; fields added later take their defaults)."""
    fields = Resources.__dataclass_fields__
    return Resources(**{k: v for k, v in state.items() if k in fields})


def check_resources(resources: Resources) -> None:
    """--device, --cpus-per-trial and --gpus-per-trial must be able to work together."""
    import torch

    if resources.cpus_per_trial <= 0 or resources.gpus_per_trial < 0:
        raise SpaceError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if resources.device != "auto":
        try:
            device = torch.device(resources.device)
        except RuntimeError:
            raise SpaceError(f"--device: '{resources.device}' is not allowed; allowed: auto, cpu, cuda, cuda:N") from None
        if device.type == "cuda" and resources.gpus_per_trial == 0:
            raise SpaceError("--device cuda needs --gpus-per-trial > 0 (Ray hides GPUs from trials that ask for none)")
    if resources.gpus_per_trial > 0 and not resources.address and not torch.cuda.is_available():
        raise SpaceError("--gpus-per-trial: this machine has no GPU; use 0, or --address of a cluster with GPUs")


def parent_params(space: Space, commit: str) -> dict:
    """The sweep's parent-run params; ``direction.<metric>`` lets analysis read a metric's direction."""
    return {"space": space.name, "benchmark": space.benchmark, "seeds": ",".join(map(str, space.seeds)),
            "objective_metric": space.objective.metric, "objective_reduce": space.objective.reduce,
            "objective_mode": space.objective.mode, "num_tasks": space.num_tasks,
            "sampler_seed": space.budget.sampler_seed, "num_samples": space.budget.num_samples,
            "git_commit": commit, **{f"benchmark.{k}": v for k, v in space.benchmark_params.items()},
            **{f"direction.{m}": "max" if higher else "min" for m, higher in space.directions.items()}}


def start(space: Space, sweep: SweepDir, options: SweepOptions) -> dict:
    """Create the sweep folder and the MLflow parent run, then run the Tuner."""
    from orchestrator.provenance import git_commit, versions

    sweep.create()
    sweep.space_yaml.write_text(space.to_yaml())
    commit = git_commit()
    sweep.versions_json.write_text(json.dumps({"git_commit": commit, **versions()}, indent=1))
    tracking_uri = options.tracking_uri or sweep.default_tracking_uri()
    tracker = Tracker(tracking_uri, sweep.name, sweep.artifacts)
    parent = tracker.start_sweep(parent_params(space, commit), [sweep.space_yaml, sweep.versions_json])
    state = {**asdict(options), "name": sweep.name, "tracking_uri": tracking_uri, "parent_run_id": parent}
    sweep.write_state(state)
    return _run(space, sweep, state, restore=False)


def resume(name: str, options: SweepOptions) -> tuple[Space, SweepDir, dict]:
    sweep = SweepDir(options.runs_dir, name)
    if not sweep.started():
        raise SpaceError(f"--resume: no sweep named {name} in {Path(options.runs_dir).resolve()}")
    state = sweep.read_state()
    check_resources(resources_of(state))
    return load(str(sweep.space_yaml)), sweep, state


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
    run_tuner(space, sweep, resources_of(state), recorder, restore)
    return finalize(space, sweep, tracker, state)


def finalize(space: Space, sweep: SweepDir, tracker: Tracker, state: dict) -> dict:
    """Gather records, write and log the results table; say whether the sweep is complete."""
    from orchestrator.results import results_table, sweep_source, write_results

    metas = sweep.metas()
    records = sweep.ended_records()
    complete = len(metas) >= space.budget.num_samples
    summary = {"name": sweep.name, "folder": str(sweep.path), "configurations": len(metas),
               "num_samples": space.budget.num_samples, "complete": complete,
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
