"""Ray Tune + Optuna over a validated Space; every configuration runs all its seeds in one trial.

Layout of a sweep folder ``runs/<name>/``: ``space.yaml`` (the validated space), ``sweep.json`` (how it
was started: tracking URI, parent run, resources), ``ray/`` (Ray Tune's experiment, resumable),
``optuna.journal`` (Optuna's storage), ``mlflow.db`` and ``mlartifacts/`` (the default MLflow store),
``records/<config_id>.csv|.json`` (each finished, failed or stopped configuration's records and status,
written by the driver as soon as the trial ends), and at the end ``records.csv``, ``results.csv`` and
``results.md``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.spaces import DefineByRun, Space, SpaceError, load
from orchestrator.tracking import Tracker, default_tracking_uri
from trainables.records import read_csv
from trainables.trainable import TrialConfig, run_trial


@dataclass(frozen=True)
class SweepOptions:
    name: str | None = None
    runs_dir: str = "runs"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    tracking_uri: str | None = None
    device: str = "auto"


def split_config(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method, its parameters) from a trial config {"method": m, "m.param": value, ...}."""
    method = config["method"]
    prefix = f"{method}."
    return method, {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}


def _report_with_records(metrics: dict[str, float], records: pd.DataFrame) -> None:
    from ray import tune

    with tempfile.TemporaryDirectory() as folder:
        records.to_csv(Path(folder) / "records.csv", index=False)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def tune_trainable(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """The function Ray runs per trial: run_trial with Ray's report and a checkpoint of the records.

    ``objective`` (the seed mean after each task) drives ASHA; ``objective_final`` is the same number
    after the last task and NaN before, so Optuna learns only from configurations that ran every task
    (a trial stopped early is a failed one to it, not a finished one with a better-looking number).
    A trial restored from a checkpoint after c tasks reruns them (deterministically, same records) and
    reports from task c + 1 on, so Ray's iteration count stays the task index.
    """
    from ray import tune

    method, params = split_config(config)
    trial_id = tune.get_context().get_trial_id()
    meta_path = Path(spec["records_dir"]) / f"{trial_id}.json"
    if meta_path.exists():  # it ended before a hard stop that Ray's saved state did not see
        meta = json.loads(meta_path.read_text())
        _report_with_records(meta["last_result"], read_csv(meta_path.with_suffix(".csv")))
        return
    done = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            done = int(read_csv(Path(folder) / "records.csv")["train_task"].max())
    trial = TrialConfig(method=method, benchmark=spec["benchmark"], params=params,
                        benchmark_params=spec["benchmark_params"], seeds=tuple(spec["seeds"]),
                        objective_metric=spec["objective_metric"], objective_reduce=spec["objective_reduce"],
                        device=spec["device"], context={"config_id": trial_id, "sweep": spec["sweep"]})

    def report(metrics: dict[str, float], records: pd.DataFrame) -> None:
        if metrics["task"] <= done:
            return
        final = metrics["objective"] if metrics["task"] == spec["num_tasks"] else math.nan
        _report_with_records({**metrics, "objective_final": final}, records)

    run_trial(trial, report)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _error_text(trial) -> str:
    path = trial.error_file
    if not path or not Path(path).exists():
        return "unknown error"
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    for line in reversed(lines):
        if "diverged:" in line:
            return line[line.index("diverged:"):]
    return lines[-1] if lines else "unknown error"


def _make_recorder(tracker: Tracker, parent: str, records_dir: Path, num_tasks: int, seeds: list[int],
                   benchmark: str, directions: dict[str, bool]):
    from ray import tune

    class SweepRecorder(tune.Callback):
        """Driver-side: every trial's progress and end go to MLflow and to records/ as they happen."""

        def __init__(self) -> None:
            self.runs: dict[str, str] = {}

        def _run(self, trial) -> str:
            if trial.trial_id not in self.runs:
                method, params = split_config(trial.config)
                self.runs[trial.trial_id] = tracker.config_run(
                    parent, trial.trial_id, method, params,
                    tags={"benchmark": benchmark, "seeds": ",".join(map(str, seeds))})
            return self.runs[trial.trial_id]

        def on_trial_start(self, iteration, trials, trial, **info):
            self._run(trial)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            step = int(result["task"])
            keys = [k for k in result if k.startswith("objective") and k != "objective_final"]
            tracker.log(self._run(trial), metrics=[(k, result[k], step) for k in keys])

        def on_trial_complete(self, iteration, trials, trial, **info):
            done = int(trial.last_result.get("task", 0))
            self._finish(trial, "finished" if done == num_tasks else "stopped", "")

        def on_trial_error(self, iteration, trials, trial, **info):
            error = _error_text(trial)
            self._finish(trial, "diverged" if error.startswith("diverged:") else "failed", error)

        def _finish(self, trial, status: str, error: str) -> None:
            meta_path = records_dir / f"{trial.trial_id}.json"
            if meta_path.exists():
                return
            records = pd.DataFrame()
            if trial.checkpoint is not None:
                with trial.checkpoint.as_directory() as folder:
                    records = read_csv(Path(folder) / "records.csv")
            method, params = split_config(trial.config)
            if len(records):
                _write_atomic(records_dir / f"{trial.trial_id}.csv", records.to_csv(index=False))
            run = self._run(trial)
            tags = {"method": method, "benchmark": benchmark, "config_id": trial.trial_id}
            if len(records):
                tracker.seed_runs(run, records, tags)
                tracker.aggregates(run, records, directions, num_tasks, seeds)
            tracker.finish(run, status, {"error": error} if error else None)
            last = {k: v for k, v in (trial.last_result or {}).items() if k == "task" or k.startswith("objective")}
            objective = last.get("objective")
            meta = {"config_id": trial.trial_id, "method": method, "params": params, "status": status,
                    "tasks_done": int(last.get("task", 0)), "error": error, "last_result": last,
                    "objective": objective if objective is not None and math.isfinite(objective) else None}
            _write_atomic(meta_path, json.dumps(meta, indent=1))

    return SweepRecorder()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "ray", "optuna", "mlflow", "diffusers", "numpy", "pandas", "scikit-learn", "clsweep"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_commit() -> str:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sweep_folder(runs_dir: str, name: str) -> Path:
    return (Path(runs_dir) / name).resolve()


def prepare(space_arg: str, overrides: list[str], options: SweepOptions) -> tuple[Space, Path]:
    """Validate everything before any work: the space, the folder (must not exist), the resources."""
    space = load(space_arg, overrides)
    name = options.name or space.name
    if options.name and (not name or any(c in name for c in "/\\ ")):
        raise SpaceError("--name: a non-empty name without spaces or slashes")
    folder = sweep_folder(options.runs_dir, name)
    if folder.exists():
        raise SpaceError(f"--name: sweep folder {folder} exists; continue it with --resume {name} or pick "
                         "another --name")
    check_resources(options)
    return space, folder


def check_resources(options: SweepOptions) -> None:
    """--device, --cpus-per-trial and --gpus-per-trial must be able to work together."""
    import torch

    if options.cpus_per_trial <= 0 or options.gpus_per_trial < 0:
        raise SpaceError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if options.device != "auto":
        try:
            device = torch.device(options.device)
        except RuntimeError:
            raise SpaceError(f"--device: '{options.device}' is not allowed; allowed: auto, cpu, cuda, cuda:N") from None
        if device.type == "cuda" and options.gpus_per_trial == 0:
            raise SpaceError("--device cuda needs --gpus-per-trial > 0 (Ray hides GPUs from trials that ask for none)")
    if options.gpus_per_trial > 0 and not options.address and not torch.cuda.is_available():
        raise SpaceError("--gpus-per-trial: this machine has no GPU; use 0, or --address of a cluster with GPUs")


def start(space: Space, folder: Path, options: SweepOptions) -> dict:
    """Create the sweep folder and the MLflow parent run, then run the Tuner."""
    folder.mkdir(parents=True)
    (folder / "records").mkdir()
    name = folder.name
    (folder / "space.yaml").write_text(space.to_yaml())
    (folder / "versions.json").write_text(json.dumps({"git_commit": _git_commit(), **_versions()}, indent=1))
    tracking_uri = options.tracking_uri or default_tracking_uri(folder)
    tracker = Tracker(tracking_uri, name, folder / "mlartifacts")
    params = {"space": space.name, "benchmark": space.benchmark, "seeds": ",".join(map(str, space.seeds)),
              "objective_metric": space.objective.metric, "objective_reduce": space.objective.reduce,
              "objective_mode": space.objective.mode, "num_tasks": space.num_tasks,
              "sampler_seed": space.budget.sampler_seed, "num_samples": space.budget.num_samples,
              "git_commit": _git_commit(),
              **{f"benchmark.{k}": v for k, v in space.benchmark_params.items()}}
    parent = tracker.start_sweep(params, [folder / "space.yaml", folder / "versions.json"])
    state = {**asdict(options), "name": name, "tracking_uri": tracking_uri, "parent_run_id": parent}
    (folder / "sweep.json").write_text(json.dumps(state, indent=1))
    return _run(space, folder, state, restore=False)


def resume(name: str, options: SweepOptions) -> tuple[Space, Path, dict]:
    folder = sweep_folder(options.runs_dir, name)
    if not (folder / "sweep.json").exists():
        raise SpaceError(f"--resume: no sweep named {name} in {Path(options.runs_dir).resolve()}")
    state = json.loads((folder / "sweep.json").read_text())
    check_resources(SweepOptions(**{k: state[k] for k in ("cpus_per_trial", "gpus_per_trial", "address", "device")}))
    return load(str(folder / "space.yaml")), folder, state


def _run(space: Space, folder: Path, state: dict, restore: bool) -> dict:
    import optuna
    import ray
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from trainables.benchmarks import get_benchmark
    from trainables.trainable import benchmark_config

    name = folder.name
    bench_cls = get_benchmark(space.benchmark)
    directions = {m: spec.higher_is_better for m, spec in bench_cls.metrics.items()}
    tracker = Tracker(state["tracking_uri"], name, folder / "mlartifacts")
    spec = {"sweep": name, "benchmark": space.benchmark, "benchmark_params": space.benchmark_params,
            "seeds": list(space.seeds), "objective_metric": space.objective.metric,
            "objective_reduce": space.objective.reduce, "device": state["device"],
            "num_tasks": space.num_tasks, "records_dir": str(folder / "records")}
    resources = {"cpu": state["cpus_per_trial"], "gpu": state["gpus_per_trial"]}
    trainable = tune.with_resources(tune.with_parameters(tune_trainable, spec=spec), resources)
    recorder = _make_recorder(tracker, state["parent_run_id"], folder / "records", space.num_tasks,
                              list(space.seeds), space.benchmark, directions)

    bench_cls.prepare(benchmark_config(space.benchmark, space.benchmark_params))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        if state.get("address"):
            ray.init(address=state["address"])
        else:
            ray.init(include_dashboard=False, configure_logging=True, logging_level="WARNING")
    try:
        if restore:
            tuner = tune.Tuner.restore(str(folder / "ray"), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            budget, objective = space.budget, space.objective
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            searcher = OptunaSearch(
                space=DefineByRun(space.methods), metric="objective_final", mode=objective.mode,
                points_to_evaluate=space.start_points() if budget.start_with_defaults else None,
                sampler=optuna.samplers.TPESampler(seed=budget.sampler_seed), study_name=name,
                storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal"))))
            scheduler = (ASHAScheduler(metric="objective", mode=objective.mode, time_attr="training_iteration",
                                       max_t=space.num_tasks, grace_period=budget.grace_period,
                                       reduction_factor=budget.reduction_factor)
                         if budget.scheduler == "asha" else FIFOScheduler())
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, budget.max_concurrent),
                                            scheduler=scheduler, num_samples=budget.num_samples),
                run_config=tune.RunConfig(
                    name="ray", storage_path=str(folder), callbacks=[recorder], verbose=1,
                    failure_config=tune.FailureConfig(max_failures=0),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        tuner.fit()
    finally:
        if not state.get("address"):
            ray.shutdown()
    return finalize(space, folder, tracker, state)


def finalize(space: Space, folder: Path, tracker: Tracker, state: dict) -> dict:
    """Gather records, write and log the results table; say whether the sweep is complete."""
    from orchestrator.reporting import log_report
    from orchestrator.results import results_table, sweep_source, write_results

    metas = [json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))]
    frames = [read_csv(p) for p in sorted((folder / "records").glob("*.csv"))]
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    complete = len(metas) >= space.budget.num_samples
    summary = {"name": folder.name, "folder": str(folder), "configurations": len(metas),
               "num_samples": space.budget.num_samples, "complete": complete,
               "statuses": {s: sum(m["status"] == s for m in metas) for s in sorted({m["status"] for m in metas})},
               "table": None}
    if len(records):
        _write_atomic(folder / "records.csv", records.to_csv(index=False))
        source = sweep_source(records, metas, space, folder.name, state)
        table = results_table(source, metas, space)
        paths = write_results(table, folder, space)
        summary["table"] = paths["md"].read_text()
        for path in [folder / "records.csv", *paths.values()]:
            tracker.client.log_artifact(state["parent_run_id"], str(path))
        summary["report"] = _report(source, folder, log_report)
    if complete:
        tracker.finish(state["parent_run_id"], "finished")
    return summary


def _report(source, folder: Path, log_report) -> str:
    """The full report (every metric's tables, re-convergence, figures) into runs/NAME/report and MLflow."""
    import sys

    try:
        log_report(source, folder / "report")
    except Exception as e:  # the results table is already written; say so rather than lose the sweep
        print(f"warning: the report could not be built ({type(e).__name__}: {e}); retry with orchestrate "
              f"report --sweep {folder.name}", file=sys.stderr)
        return ""
    return str(folder / "report" / "report.html")


def continue_sweep(space: Space, folder: Path, state: dict) -> dict:
    """Restore the Ray experiment: finished configurations stay finished, unfinished ones run again."""
    return _run(space, folder, state, restore=True)
