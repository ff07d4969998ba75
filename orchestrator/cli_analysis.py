"""The analysis commands of `orchestrate`: table, compare, reconvergence, plot, report. They read records (a file or
a sweep's MLflow store) and never import torch or Ray."""

from __future__ import annotations

from pathlib import Path

import click

from core.errors import InputError
from orchestrator.cli_io import emit, fail


def source_options(f):
    """--sweep NAME (from its MLflow store) or --records FILE (CSV or Parquet)."""
    f = click.option("--tracking-uri", default=None, help="the MLflow server holding --sweep (default: its local store)")(f)
    f = click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))(f)
    f = click.option("--records", "records_file", default=None, type=click.Path(dir_okay=False),
                     help="a records file (CSV or Parquet) with method, seed, step, train_task, eval_task, metric, value")(f)
    f = click.option("--sweep", "sweep_name", default=None, help="a sweep's name")(f)
    return f


def load_source(sweep_name, records_file, runs_dir, tracking_uri):
    """--records FILE, or the records of --sweep NAME (from its MLflow store)."""
    from analysis.load import from_file
    from orchestrator.reporting import load_sweep

    if bool(sweep_name) == bool(records_file):
        raise InputError("--sweep or --records: give exactly one")
    return load_sweep(sweep_name, runs_dir, tracking_uri) if sweep_name else from_file(records_file)


FORMATS = click.Choice(["csv", "md", "latex", "html"])


def stage_option(f):
    """--stage search|confirm: which runs of a sweep with a confirmation stage (analysis.stages)."""
    return click.option("--stage", type=click.Choice(["search", "confirm"]), default=None,
                        help="confirm (default when the sweep has confirmation runs): each method's configuration "
                        "selected on the search seeds, reported on the confirmation seeds; search: the search "
                        "seeds' own numbers")(f)


def staged_source(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, stage, configs=(),
                  one_per_method=True):
    """(the source reduced to ``stage``, whether higher ``metric`` is better)."""
    from analysis.report import metric_direction
    from analysis.stages import staged

    source = load_source(sweep_name, records_file, runs_dir, tracking_uri)
    higher = metric_direction(source, metric, mode)
    return staged(source, stage, metric, higher, tuple(configs), one_per_method), higher


@click.command()
@source_options
@click.option("--metric", required=True, help="e.g. fd, gen_acc, accuracy")
@click.option("--mode", type=click.Choice(["min", "max"]), default=None, help="override the metric's direction")
@click.option("--config", "configs", multiple=True, help="show this configuration for its method (default: the best)")
@click.option("--stats", default="", help="extra columns, comma-separated: sd, ci (95%% t-interval), bootstrap "
              "(rliable's 95%% bootstrap CI of the mean), iqm (rliable's IQM and its 95%% stratified-bootstrap CI), "
              "poi (rliable's P(row beats column))")
@click.option("--format", "fmt", type=FORMATS, default="md", show_default=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False))
@stage_option
@click.option("--pareto", is_flag=True, help="the configurations on the Pareto front of the sweep's two objectives "
              "(else final and forgetting of --metric), mean ± SE, non-dominated rank")
def table(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, configs, stats, fmt, out, stage,
          pareto) -> None:
    """Final average, forgetting, BWT and AAA per method: mean and standard error over seeds."""
    from analysis.report import STATS, method_table, render_table
    from analysis.stages import title_line

    try:
        wanted = tuple(s for s in stats.split(",") if s)
        bad = [s for s in wanted if s not in STATS]
        if bad:
            raise InputError(f"--stats: '{bad[0]}' is not allowed; allowed: {', '.join(STATS)}")
        source, higher = staged_source(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, stage,
                                       configs, one_per_method=not pareto)
        if pareto:
            from analysis.pareto import render_pareto

            emit(render_pareto(front_table(source, metric, mode), fmt, source.note), out)
            return
        result = method_table(source, metric, higher, tuple(configs), wanted)
    except InputError as e:
        fail(e)
    emit(title_line(source.note, fmt) + render_table(result, fmt, higher, stats_table=bool(wanted)), out)


def front_table(source, metric: str, mode: str | None):
    """analysis.pareto.pareto_table of the sweep's two objectives, else final and forgetting of ``metric``."""
    from analysis.pareto import default_objectives, pareto_table
    from analysis.report import metric_direction

    objectives = source.objectives if len(source.objectives) > 1 else default_objectives(metric)
    directions = {o["metric"]: metric_direction(source, o["metric"], mode if o["metric"] == metric else None)
                  for o in objectives}
    return pareto_table(source.records, objectives, directions, source.num_tasks, source.seeds or None)


@click.command()
@source_options
@click.option("--metric", required=True, help="e.g. fd, gen_acc, accuracy")
@click.option("--mode", type=click.Choice(["min", "max"]), default=None, help="override the metric's direction")
@click.option("--baseline", "baselines", multiple=True, required=True, help="a method to compare every other with")
@click.option("--unpaired", is_flag=True, help="seeds not shared: Welch's t-test and Mann-Whitney U")
@click.option("--config", "configs", multiple=True, help="compare this configuration for its method (default: the table's)")
@click.option("--format", "fmt", type=FORMATS, default="md", show_default=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False))
@stage_option
def compare(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, baselines, unpaired, configs, fmt,
            out, stage) -> None:
    """Each method against each baseline: method − baseline of final, forgetting and AAA (mean ± SE over
    shared seeds), paired t-test and Wilcoxon p-values, P(method beats baseline) and a verdict."""
    from analysis.compare import compare as run_compare, render
    from analysis.stages import title_line

    try:
        source, higher = staged_source(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, stage, configs)
        result = run_compare(source, metric, higher, tuple(dict.fromkeys(baselines)), unpaired, tuple(configs))
    except InputError as e:
        fail(e)
    emit(title_line(source.note, fmt) + render(result, fmt), out)


@click.command()
@source_options
@click.option("--metric", required=True)
@click.option("--mode", type=click.Choice(["min", "max"]), default=None)
@click.option("--task", default="1", show_default=True, help="the old task j, or 'all' (000 Tables 8-23)")
@click.option("--thresholds", default=None, help="comma-separated; default 0.1,0.2,0.3 (lower is better: "
              "value <= (1+x) P_j) or 0.99,0.9,0.8 (higher is better: value >= x P_j)")
@click.option("--reference", type=click.Choice(["end", "best"]), default="end", show_default=True,
              help="P_j: task j's value at the end of its phase, or its best during it")
@click.option("--aggregate", type=click.Choice(["curve", "seeds"]), default="curve", show_default=True,
              help="on the seed-mean curve (as the paper), or per seed: mean ± SE when every seed "
              "re-converged, else k/n (the survivors' mean only in CSV)")
@click.option("--config", "configs", multiple=True)
@click.option("--format", "fmt", type=FORMATS, default="md", show_default=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False))
@stage_option
def reconvergence(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, task, thresholds, reference,
                  aggregate, configs, fmt, out, stage) -> None:
    """Steps to re-converge: after each later task's start, the steps until old task j is back within a
    threshold of its reference (000 Table 2; empty when never)."""
    from analysis.render import plain_table
    from analysis.report import reconvergence_cells, reconvergence_table

    try:
        source, higher = staged_source(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, stage, configs)
        if task != "all" and not task.isdigit():
            raise InputError(f"--task: '{task}' is not allowed; allowed: a task number or all")
        try:
            values = tuple(float(x) for x in thresholds.split(",")) if thresholds else None
        except ValueError:
            raise InputError(f"--thresholds: '{thresholds}' is not allowed; allowed: numbers separated by commas") from None
        result = reconvergence_table(source, metric, higher, task if task == "all" else int(task), values,
                                     reference, aggregate, tuple(configs))
    except InputError as e:
        fail(e)
    emit(plain_table(result if fmt == "csv" else reconvergence_cells(result), fmt), out)


@click.command()
@source_options
@click.option("--metric", required=True)
@click.option("--mode", type=click.Choice(["min", "max"]), default=None)
@click.option("--kind", type=click.Choice(["curves", "profile", "pareto"]), default="curves", show_default=True,
              help="curves: task J over steps and the R[k, j] heat maps; profile: rliable's performance "
              "profiles of --score over the seeds of each method's configuration; pareto: every configuration "
              "at its two objectives (the sweep's, else final and forgetting of --metric) with SE bars, the "
              "front filled")
@click.option("--task", default=1, show_default=True, type=int, help="curves: the task J")
@click.option("--score", type=click.Choice(["final", "forgetting", "bwt", "aaa"]), default="final",
              show_default=True, help="profile: the per-seed score")
@click.option("--config", "configs", multiple=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="FILE.png or FILE.svg")
@stage_option
def plot(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, kind, task, score, configs, out,
         stage) -> None:
    """curves (default): task J's metric over steps per method (seed mean ± SE, task transitions dashed;
    000 Figure 2), and the R[k, j] heat map per method next to it (FILE_heatmap.png). profile: rliable's
    performance profiles of a score (fraction of seeds above τ, 95% stratified-bootstrap bands)."""
    from analysis.plots import performance_profiles, result_heatmaps, save, task_curves
    from analysis.step_grid_plot import step_grid_plot
    from analysis.step_grid_table import is_step_grid
    from analysis.report import profile_scores, score_directions, selected_records

    path = Path(out)
    try:
        if path.suffix.lower() not in (".png", ".svg"):
            raise InputError(f"--out: '{out}' is not allowed; allowed: a .png or .svg file")
        source, higher = staged_source(sweep_name, records_file, runs_dir, tracking_uri, metric, mode, stage,
                                       configs, one_per_method=kind != "pareto")
        if kind == "pareto":
            from analysis.plots import pareto_front

            left_out = []
            figures = {path: pareto_front(front_table(source, metric, mode), source.note)}
        elif kind == "profile":
            scores, left_out = profile_scores(source, metric, higher, score, tuple(configs))
            figures = {path: performance_profiles(scores, f"{score} {metric}", score_directions(higher)[score])}
        else:
            records = selected_records(source, metric, higher, tuple(configs))
            left_out = []
            grid = is_step_grid(records, metric)  # 003's S grid: the whole signal against S (003 Figure 2)
            figures = {path: step_grid_plot(records, metric, source.num_tasks) if grid
                       else task_curves(records, metric, task=task),
                       path.with_name(f"{path.stem}_heatmap{path.suffix}"): result_heatmaps(records, metric)}
    except InputError as e:
        fail(e)
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, figure in figures.items():
        save(figure, target)
    click.echo(f"written to {' and '.join(map(str, figures))}")
    if left_out:
        click.echo(f"not in the profile (no complete configuration): {', '.join(left_out)}")


@click.command()
@click.option("--sweep", "sweep_name", required=True)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--tracking-uri", default=None)
@stage_option
def report(sweep_name, runs_dir, tracking_uri, stage) -> None:
    """All tables and figures of a sweep as report.html and report.md in runs/NAME/report/, logged with
    the CSV and LaTeX tables and the figures to the sweep's parent run in MLflow."""
    from orchestrator.reporting import report_sweep

    try:
        folder = report_sweep(sweep_name, runs_dir, tracking_uri, stage)
    except InputError as e:
        fail(e)
    click.echo(f"report written to {folder / 'report.html'} and logged to the sweep's parent run")
