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
