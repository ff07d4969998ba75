"""The `orchestrate` command: click commands only; the work lives in the other modules."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.spaces import SpaceError
from trainables.params import ParamError

USER_ERRORS = (SpaceError, ParamError, KeyError, ValueError)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, no traceback, and the exit code (2: bad input)."""
    click.echo(f"error: {str(message).strip(chr(39))}", err=True)
    sys.exit(code)


@click.group()
def main() -> None:
    """Sweep hyper-parameters and seeds of continual-learning methods; compare them across seeds."""


@main.command()
@click.option("--space", help="a search-space YAML file or a built-in space name (orchestrate list spaces)")
@click.option("--resume", "resume_name", metavar="NAME", help="continue the interrupted sweep runs/NAME")
@click.option("--name", help="sweep name (default: the space's name); results go to runs/NAME/")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a space entry, e.g. benchmark.steps_per_task=50 or methods.ewc.lam=100")
@click.option("--cpus-per-trial", default=1.0, show_default=True, type=float)
@click.option("--gpus-per-trial", default=0.0, show_default=True, type=float, help="fractions share a GPU")
@click.option("--address", default=None, help="an existing Ray cluster (default: start a local one)")
@click.option("--tracking-uri", default=None, help="an MLflow server (default: runs/NAME/mlflow.db)")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
def sweep(space, resume_name, name, overrides, cpus_per_trial, gpus_per_trial, address, tracking_uri,
          runs_dir, device) -> None:
    """Run an Optuna search over Ray Tune; every configuration over all the space's seeds."""
    from orchestrator import sweep as sw

    options = sw.SweepOptions(name=name, runs_dir=runs_dir, cpus_per_trial=cpus_per_trial,
                              gpus_per_trial=gpus_per_trial, address=address, tracking_uri=tracking_uri,
                              device=device)
    try:
        if resume_name:
            if space or overrides:
                raise SpaceError("--resume: takes the saved space; do not pass --space or --set with it")
            space_obj, folder, state = sw.resume(resume_name, options)
        else:
            if not space:
                raise SpaceError("--space: required (a YAML file or a built-in name), or --resume NAME")
            space_obj, folder = sw.prepare(space, list(overrides), options)
    except USER_ERRORS as e:
        fail(e)
    summary = sw.continue_sweep(space_obj, folder, state) if resume_name else sw.start(space_obj, folder, options)
    _print_summary(summary)
    if not summary["complete"]:
        click.echo(f"sweep interrupted: {summary['configurations']} of {summary['num_samples']} configurations "
                   f"ended; continue with: orchestrate sweep --resume {summary['name']}", err=True)
        sys.exit(130)


def _print_summary(summary: dict) -> None:
    statuses = ", ".join(f"{n} {s}" for s, n in summary["statuses"].items()) or "none"
    click.echo(f"\nsweep {summary['name']}: {summary['configurations']} configurations ({statuses})")
    if summary["table"]:
        click.echo(summary["table"])
    click.echo(f"results, records and MLflow store in {summary['folder']}; open them with: orchestrate ui "
               f"--name {summary['name']}")


@main.command()
@click.option("--method", required=True)
@click.option("--benchmark", required=True)
@click.option("--preset", default=None, help="a preset of the benchmark")
@click.option("--seed", "seeds", multiple=True, type=int, default=(0,), show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="a method parameter (lam=100) or a benchmark setting (benchmark.steps_per_task=20)")
@click.option("--metric", default=None, help="objective metric shown per task (default: the benchmark's first)")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="write the records here (CSV)")
@click.option("--device", default="auto", show_default=True)
def run(method, benchmark, preset, seeds, overrides, metric, out, device) -> None:
    """Run one configuration without Ray (for debugging); print per-task objectives."""
    from orchestrator.spaces import parse_yaml
    from trainables.trainable import TrialConfig, benchmark_config, method_params, run_trial

    params, bench_params = {}, ({"preset": preset} if preset else {})
    try:
        for item in overrides:
            if "=" not in item:
                raise SpaceError(f"--set: '{item}' is not key=value")
            key, text = item.split("=", 1)
            value = parse_yaml(text)
            if key.startswith("benchmark."):
                bench_params[key[len("benchmark."):]] = value
            else:
                params[key] = value
        method_params(method, params, benchmark_config(benchmark, bench_params))
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds: {list(seeds)} is not allowed; allowed: distinct integers")
    except USER_ERRORS as e:
        fail(e)
    config = TrialConfig(method=method, benchmark=benchmark, params=params, benchmark_params=bench_params,
                         seeds=tuple(seeds), objective_metric=metric or "", device=device)

    def report(metrics, records):
        per_seed = ", ".join(f"seed {k[len('objective_seed'):]}: {v:.4g}" for k, v in metrics.items()
                             if k.startswith("objective_seed"))
        click.echo(f"task {metrics['task']}: objective {metrics['objective']:.4g} ({per_seed})")

    try:
        records = run_trial(config, report)
    except USER_ERRORS as e:
        fail(e)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        records.to_csv(out, index=False)
        click.echo(f"{len(records)} records written to {out}")


@main.command(name="list")
@click.argument("what", type=click.Choice(["methods", "benchmarks", "spaces"]))
def list_(what) -> None:
    """What exists: registered methods (with their knobs), benchmarks (with presets), built-in spaces."""
    from orchestrator.spaces import builtin_spaces
    from trainables.benchmarks import BENCHMARKS
    from trainables.methods import METHODS
    from trainables.params import describe

    if what == "spaces":
        import yaml

        for name, path in sorted(builtin_spaces().items()):
            doc = yaml.safe_load(path.read_text())
            click.echo(f"{name}: {doc.get('description', '')}")
        return
    registry = METHODS if what == "methods" else BENCHMARKS
    for name, cls in sorted(registry.items()):
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        extra = f"  presets: {', '.join(cls.presets)}" if what == "benchmarks" and cls.presets else ""
        click.echo(f"{name}: {doc}{extra}")
        for field, default, allowed, help_text in describe(cls.Params if what == "methods" else cls.Config):
            click.echo(f"    {field} = {default!r}  ({allowed}) {help_text}")


@main.command()
@click.option("--name", default=None, help="the sweep (default: the most recent one in --runs-dir)")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--port", default=5000, show_default=True, type=int)
def ui(name, runs_dir, port) -> None:
    """Start the MLflow UI on 127.0.0.1 against a sweep's store and print its address."""
    import json
    import subprocess

    root = Path(runs_dir)
    sweeps = sorted((p for p in root.glob("*/sweep.json")), key=lambda p: p.stat().st_mtime)
    if name:
        sweeps = [p for p in sweeps if p.parent.name == name]
    if not sweeps:
        fail(f"--name: no sweep {'named ' + name + ' ' if name else ''}in {root.resolve()}; allowed: "
             + (", ".join(p.parent.name for p in root.glob('*/sweep.json')) or "none (run orchestrate sweep)"))
    state = json.loads(sweeps[-1].read_text())
    uri = state["tracking_uri"]
    if not uri.startswith("sqlite:"):
        click.echo(f"sweep {state['name']} logs to {uri}; open that server's UI")
        return
    click.echo(f"MLflow UI for sweep {state['name']}: http://127.0.0.1:{port}  (Ctrl+C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(port)]
    sys.exit(subprocess.call(cmd))
