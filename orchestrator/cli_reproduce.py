"""`orchestrate reproduce`: a published table (a spec in reproductions/) run and compared with ours."""

from __future__ import annotations

import shlex
import sys

import click

from core.errors import InputError
from orchestrator.cli_io import fail, run_options


@click.command()
@click.argument("name")
@click.option("--seeds", default=None, help="our seeds, e.g. 0-4 or 0,1,2 (default: the spec's)")
@click.option("--dry-run", is_flag=True, help="validate the spec and print the plan with its estimated cost")
@click.option("--no-run", is_flag=True, help="only the table of the rows that have ended (the others show as not "
              "run); nothing runs")
@click.option("--columns", default=None, help="only these columns (a comma list; default: all)")
@click.option("--methods", default=None, help="only these methods (a comma list; default: all); the table says "
              "what was left out")
@click.option("--name", "prefix", default=None, help="sweeps are PREFIX-<column> (default: the spec's name)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override an entry of every column's space, e.g. benchmark.data_dir=/data/mnist")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="also write the side-by-side table here (e.g. docs/reproductions/002_table3.md)")
@run_options
def reproduce(name, seeds, dry_run, no_run, columns, methods, prefix, overrides, out, cpus_per_trial, gpus_per_trial, address, tracking_uri,
              optuna_storage, runs_dir, device, max_failures, seeds_parallel, cpus_per_seed, gpus_per_seed) -> None:
    """Run a reproduction spec (orchestrate list reproductions) as sweeps of fixed configurations, one per
    column, and print the paper's numbers next to ours with a verdict per cell and Kendall's τ."""
    from orchestrator import reproduce as rp
    from orchestrator.preflight import check_name
    from orchestrator.reproduction_spec import read_spec
    from orchestrator.sweep import SweepOptions

    try:
        full = read_spec(name)
        spec = rp.select(full, columns, methods)
        chosen = rp.parse_seeds(seeds, spec.seeds)
        prefix = prefix or spec.name
        check_name(prefix, "--name")
        planned = rp.plan(spec, chosen, list(overrides), prefix, dry_run)
        if dry_run:
            click.echo("\n".join(rp.describe(spec, planned, chosen)))
            return
        options = SweepOptions(runs_dir=runs_dir, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                               address=address, tracking_uri=tracking_uri, optuna_storage=optuna_storage,
                               device=device, max_failures=max_failures, seeds_parallel=seeds_parallel,
                               cpus_per_seed=cpus_per_seed, gpus_per_seed=gpus_per_seed)
        command = "orchestrate reproduce " + shlex.join(sys.argv[2:] if len(sys.argv) > 2 else [name])
        markdown, rows, interrupted = rp.run(spec, planned, options, chosen, prefix, command, rp.left_out(full, spec),
                                             execute=not no_run)
    except InputError as e:
        fail(e)
    click.echo(markdown)
    from orchestrator.reproduce_report import write

    for path in write(markdown, rows, runs_dir, prefix, out):
        click.echo(f"written: {path}", err=True)
    if interrupted:
        click.echo(f"interrupted: sweep {interrupted[0]} saved its state; run the same command again to continue it "
                   "(its rows above are incomplete)", err=True)
        sys.exit(130)
