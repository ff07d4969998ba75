"""The `orchestrate` command: click commands only; the work lives in the other modules.

Heavy packages (torch, ray, mlflow, diffusers, metaworld) are imported inside the command that needs
them, so `orchestrate --help` and the analysis commands answer at once. Only bad input (``InputError``:
a space, a parameter, a records file, an option) becomes one line and exit 2; anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

import sys

import click

from core.errors import InputError
from orchestrator.cli_analysis import compare, plot, reconvergence, report, table
from orchestrator.cli_io import fail, run_options
from orchestrator.cli_reproduce import reproduce


@click.group()
def main() -> None:
    """Sweep hyper-parameters and seeds of continual-learning methods; compare them across seeds."""


for command in (table, compare, reconvergence, plot, report, reproduce):
    main.add_command(command)


@main.command()
@click.option("--space", help="a search-space YAML file or a built-in space name (orchestrate list spaces)")
@click.option("--resume", "resume_name", metavar="NAME", help="continue the interrupted sweep runs/NAME")
@click.option("--name", help="sweep name (default: the space's name); results go to runs/NAME/")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a space entry, e.g. benchmark.steps_per_task=50 or methods.ewc.lam=100")
@run_options
def sweep(space, resume_name, name, overrides, cpus_per_trial, gpus_per_trial, address, tracking_uri,
          optuna_storage, runs_dir, device, max_failures, seeds_parallel, cpus_per_seed, gpus_per_seed) -> None:
    """Run an Optuna search over Ray Tune; every configuration over all the space's seeds."""
    from orchestrator import sweep as sw

    options = sw.SweepOptions(name=name, runs_dir=runs_dir, cpus_per_trial=cpus_per_trial,
                              gpus_per_trial=gpus_per_trial, address=address, tracking_uri=tracking_uri,
                              optuna_storage=optuna_storage, device=device, max_failures=max_failures,
                              seeds_parallel=seeds_parallel, cpus_per_seed=cpus_per_seed,
                              gpus_per_seed=gpus_per_seed)
    try:
        if resume_name:
            if space or overrides:
                raise InputError("--resume: takes the saved space; do not pass --space or --set with it")
            space_obj, folder, state = sw.resume(resume_name, options)
        else:
            if not space:
                raise InputError("--space: required (a YAML file or a built-in name), or --resume NAME")
            space_obj, folder = sw.prepare(space, list(overrides), options)
    except InputError as e:
        fail(e)
    summary = sw.continue_sweep(space_obj, folder, state) if resume_name else sw.start(space_obj, folder, options)
    statuses = ", ".join(f"{n} {s}" for s, n in summary["statuses"].items()) or "none"
    click.echo(f"\nsweep {summary['name']}: {summary['configurations']} configurations ({statuses})")
    if summary["table"]:
        click.echo(summary["table"])
    if summary.get("report"):
        click.echo(f"report: {summary['report']}")
    click.echo(f"results, records and MLflow store in {summary['folder']}; open them with: orchestrate ui "
               f"--name {summary['name']}")
    if not summary["complete"]:
        click.echo(f"sweep interrupted: {summary['configurations']} of {summary['num_samples']} configurations "
                   f"ended; continue with: orchestrate sweep --resume {summary['name']}", err=True)
        sys.exit(130)
    if not summary["finished"]:
        click.echo(f"error: no configuration of sweep {summary['name']} finished ({statuses}); their errors are in "
                   f"{summary['folder']}/records/*.json", err=True)
        sys.exit(1)


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
    from orchestrator.space_overrides import split_run_overrides
    from trainables.loop import Diverged
    from trainables.trainable import TrialConfig, run_configuration

    try:
        params, bench_params = split_run_overrides(overrides)
        trial = TrialConfig(method=method, benchmark=benchmark, params=params,
                            benchmark_params={**({"preset": preset} if preset else {}), **bench_params},
                            seeds=tuple(seeds), objective_metric=metric or "", device=device)
        config = trial.configure()
    except InputError as e:
        fail(e)

    def report(metrics, records):
        per_seed = ", ".join(f"seed {k[len('objective_seed'):]}: {v:.4g}" for k, v in metrics.items()
                             if k.startswith("objective_seed"))
        click.echo(f"task {metrics['task']}: objective {metrics['objective']:.4g} ({per_seed})")

    try:
        records = run_configuration(config, report, {"config_id": trial.config_id()})
    except Diverged as e:  # an outcome of the configuration, not a bug
        fail(e, code=1)
    if out:
        from pathlib import Path

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        records.to_csv(out, index=False)
        click.echo(f"{len(records)} records written to {out}")


@main.command(name="list")
@click.argument("what", type=click.Choice(["methods", "benchmarks", "spaces", "reproductions"]))
def list_(what) -> None:
    """What exists: registered methods (with their knobs), benchmarks (with presets), built-in spaces,
    reproduction specs (orchestrate reproduce)."""
    from orchestrator.listing import describe

    for line in describe(what):
        click.echo(line)


@main.command()
@click.option("--name", default=None, help="the sweep (default: the most recent one in --runs-dir)")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="the interface to bind; anything but 127.0.0.1 exposes the UI (unauthenticated) to others")
@click.option("--open", "open_browser", is_flag=True, help="open the sweep's page in a web browser")
def ui(name, runs_dir, port, host, open_browser) -> None:
    """Start the MLflow UI (on 127.0.0.1 unless --host) against a sweep's store and print the address of
    the sweep's experiment page (MLflow's telemetry off unless MLFLOW_DISABLE_TELEMETRY=false)."""
    from orchestrator.ui import serve

    try:
        code = serve(name, runs_dir, port, click.echo, host, open_browser)
    except InputError as e:
        fail(e)
    sys.exit(code)


@main.command(name="rerun")
@click.option("--sweep", "name", required=True, help="the sweep (runs/NAME)")
@click.option("--config", "config_id", required=True, help="a configuration id of the sweep (records/ID.csv)")
@click.option("--seed", required=True, type=int, help="one of the configuration's seeds")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the device of the sweep's trials, "
              "the CPU when no GPU is here)")
@click.option("--rtol", default=1e-3, show_default=True, type=float, help="relative tolerance of values when "
              "the sweep or the rerun ran on a GPU (on the CPU: identical up to --ulps)")
@click.option("--atol", default=1e-6, show_default=True, type=float, help="absolute tolerance, with --rtol")
@click.option("--ulps", default=4, show_default=True, type=int, help="on the CPU, floats may differ by this many "
              "units in the last place (BLAS reductions round by memory alignment); 0: bitwise")
def rerun_(name, config_id, seed, runs_dir, device, rtol, atol, ulps) -> None:
    """Run one seed of a configuration again from the sweep's manifest, without Ray, and compare its
    records with the stored ones: exit 0 when they match, 1 with the first differing record."""
    from orchestrator.rerun import rerun

    try:
        if rtol < 0 or atol < 0:
            raise InputError(f"--rtol/--atol: {rtol}/{atol} is not allowed; allowed: numbers >= 0")
        if ulps < 0:
            raise InputError(f"--ulps: {ulps} is not allowed; allowed: an integer >= 0")
        code = rerun(name, runs_dir, config_id, seed, click.echo, device, rtol, atol, ulps)
    except InputError as e:
        fail(e)
    sys.exit(code)


@main.command()
@click.option("--name", default=None, help="the sweep (default: the most recent one in --runs-dir)")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="the interface to bind; anything but 127.0.0.1 exposes the dashboard (unauthenticated) to others")
@click.option("--optuna-storage", default=None, help="the sweep's Optuna RDB URL again, with its password "
              "(passwords are never saved)")
def dashboard(name, runs_dir, port, host, optuna_storage) -> None:
    """Start optuna-dashboard on a sweep's Optuna study (history, parameter importances, the Pareto front
    of two objectives) and print its address; Ctrl+C stops it."""
    from orchestrator.dashboard import serve

    try:
        code = serve(name, runs_dir, port, click.echo, host, optuna_storage)
    except InputError as e:
        fail(e)
    sys.exit(code)
