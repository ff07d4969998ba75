"""How the command line answers: bad input as one line and exit 2, results to stdout or a file."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def fail(message, code: int = 2) -> None:
    """One line on stderr, no traceback, and the exit code (2: bad input)."""
    click.echo(f"error: {str(message).strip(chr(39))}", err=True)
    sys.exit(code)


def emit(text: str, out: str | None) -> None:
    """``text`` to ``out`` (saying so), or to stdout."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        click.echo(f"written to {out}")
    else:
        click.echo(text, nl=False)


def run_options(f):
    """The options of how a sweep's trials run and where it is recorded (``sweep`` and ``reproduce``)."""
    for option in reversed(_RUN_OPTIONS):
        f = option(f)
    return f


_RUN_OPTIONS = [
    click.option("--cpus-per-trial", default=1.0, show_default=True, type=float),
    click.option("--gpus-per-trial", default=0.0, show_default=True, type=float, help="fractions share a GPU"),
    click.option("--address", default=None, help="an existing Ray cluster: host:port, ray://host:port or auto "
                  "(default: start a local one)"),
    click.option("--tracking-uri", default=None, help="an MLflow server, e.g. http://user:password@host:5000 (default: "
                  "runs/NAME/mlflow.db); a password is never saved: repeat it on --resume"),
    click.option("--optuna-storage", default=None, help="an Optuna RDB URL shared by a team, e.g. "
                  "postgresql://user:password@host:5432/db (default: runs/NAME/optuna.journal); repeat it on --resume"),
    click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False)),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N"),
    click.option("--max-failures", default=2, show_default=True, type=int,
                  help="retries of a trial whose worker died, each from its last checkpoint"),
    click.option("--seeds-parallel/--no-seeds-parallel", default=False, show_default=True,
                  help="run each seed of a configuration in its own Ray actor"),
    click.option("--cpus-per-seed", default=1.0, show_default=True, type=float, help="with --seeds-parallel"),
    click.option("--gpus-per-seed", default=0.0, show_default=True, type=float, help="with --seeds-parallel"),
]
