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
    if summary.get("report"):
        click.echo(f"report: {summary['report']}")
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


def source_options(f):
    """--sweep NAME (from its MLflow store) or --records FILE (CSV or Parquet)."""
    f = click.option("--tracking-uri", default=None, help="the MLflow server holding --sweep (default: its local store)")(f)
    f = click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))(f)
    f = click.option("--records", "records_file", default=None, type=click.Path(dir_okay=False),
                     help="a records file (CSV or Parquet) with method, seed, step, train_task, eval_task, metric, value")(f)
    f = click.option("--sweep", "sweep_name", default=None, help="a sweep's name")(f)
    return f


def load_source(sweep_name, records_file, runs_dir, tracking_uri):
    from analysis.load import from_file, from_sweep

    if bool(sweep_name) == bool(records_file):
        raise ValueError("--sweep or --records: give exactly one")
    return from_sweep(sweep_name, runs_dir, tracking_uri) if sweep_name else from_file(records_file)


def emit(text: str, out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        click.echo(f"written to {out}")
    else:
        click.echo(text, nl=False)


FORMATS = click.Choice(["csv", "md", "latex", "html"])


@main.command()
@source_options
@click.option("--metric", required=True, help="e.g. fd, gen_acc, accuracy")
@click.option("--mode", type=click.Choice(["min", "max"]), default=None, help="override the metric's direction")
@click.option("--config", "configs", multiple=True, help="show this configuration for its method (default: the best)")
@click.option("--stats", default="", help="extra columns, comma-separated: sd, ci (95%% t-interval), bootstrap, iqm")
@click.option("--format", "fmt", type=FORMATS, default="md", show_default=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False))
def table(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, configs, stats, fmt, out) -> None:
    """Final average, forgetting, BWT and AAA per method: mean and standard error over seeds."""
    from analysis.report import STATS, method_table, metric_direction, render_table
    from analysis.table import IncompleteRecords

    try:
        source = load_source(sweep_name, records_file, runs_dir, tracking_uri)
        higher = metric_direction(source, metric, mode)
        wanted = tuple(s for s in stats.split(",") if s)
        bad = [s for s in wanted if s not in STATS]
        if bad:
            raise ValueError(f"--stats: '{bad[0]}' is not allowed; allowed: {', '.join(STATS)}")
        result = method_table(source, metric, higher, tuple(configs), wanted)
    except (IncompleteRecords, ValueError) as e:
        fail(e)
    emit(render_table(result, fmt, higher), out)


@main.command()
@source_options
@click.option("--metric", required=True)
@click.option("--mode", type=click.Choice(["min", "max"]), default=None)
@click.option("--task", default="1", show_default=True, help="the old task j, or 'all' (000 Tables 8-23)")
@click.option("--thresholds", default=None, help="comma-separated; default 0.1,0.2,0.3 (lower is better: "
              "value <= (1+x) P_j) or 0.99,0.9,0.8 (higher is better: value >= x P_j)")
@click.option("--reference", type=click.Choice(["end", "best"]), default="end", show_default=True,
              help="P_j: task j's value at the end of its phase, or its best during it")
@click.option("--aggregate", type=click.Choice(["curve", "seeds"]), default="curve", show_default=True,
              help="on the seed-mean curve (as the paper), or per seed then mean ± SE")
@click.option("--config", "configs", multiple=True)
@click.option("--format", "fmt", type=FORMATS, default="md", show_default=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False))
def reconvergence(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, task, thresholds, reference,
                  aggregate, configs, fmt, out) -> None:
    """Steps to re-converge: after each later task's start, the steps until old task j is back within a
    threshold of its reference (000 Table 2; empty when never)."""
    from analysis.render import plain_table
    from analysis.report import metric_direction, reconvergence_table

    try:
        source = load_source(sweep_name, records_file, runs_dir, tracking_uri)
        higher = metric_direction(source, metric, mode)
        if task != "all" and not task.isdigit():
            raise ValueError(f"--task: '{task}' is not allowed; allowed: a task number or all")
        try:
            values = tuple(float(x) for x in thresholds.split(",")) if thresholds else None
        except ValueError:
            raise ValueError(f"--thresholds: '{thresholds}' is not allowed; allowed: numbers separated by commas") from None
        result = reconvergence_table(source, metric, higher, task if task == "all" else int(task), values,
                                     reference, aggregate, tuple(configs))
    except ValueError as e:
        fail(e)
    emit(plain_table(result, fmt), out)


@main.command()
@source_options
@click.option("--metric", required=True)
@click.option("--mode", type=click.Choice(["min", "max"]), default=None)
@click.option("--task", default=1, show_default=True, type=int)
@click.option("--config", "configs", multiple=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="FILE.png or FILE.svg")
def plot(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, task, configs, out) -> None:
    """Task J's metric over steps per method (seed mean ± SE, task transitions dashed; 000 Figure 2), and
    the R[k, j] heat map per method next to it (FILE_heatmap.png)."""
    from analysis.plots import result_heatmaps, save, task_curves
    from analysis.report import metric_direction, selected_records

    path = Path(out)
    try:
        if path.suffix.lower() not in (".png", ".svg"):
            raise ValueError(f"--out: '{out}' is not allowed; allowed: a .png or .svg file")
        source = load_source(sweep_name, records_file, runs_dir, tracking_uri)
        records = selected_records(source, metric, metric_direction(source, metric, mode), tuple(configs))
        curves, heatmap = task_curves(records, metric, task=task), result_heatmaps(records, metric)
    except ValueError as e:
        fail(e)
    path.parent.mkdir(parents=True, exist_ok=True)
    heat_path = path.with_name(f"{path.stem}_heatmap{path.suffix}")
    save(curves, path)
    save(heatmap, heat_path)
    click.echo(f"written to {path} and {heat_path}")


@main.command()
@click.option("--sweep", "sweep_name", required=True)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--tracking-uri", default=None)
def report(sweep_name, runs_dir, tracking_uri) -> None:
    """All tables and figures of a sweep as report.html and report.md in runs/NAME/report/, logged with
    the CSV and LaTeX tables and the figures to the sweep's parent run in MLflow."""
    from orchestrator.reporting import report_sweep

    try:
        folder = report_sweep(sweep_name, runs_dir, tracking_uri)
    except ValueError as e:
        fail(e)
    click.echo(f"report written to {folder / 'report.html'} and logged to the sweep's parent run")
