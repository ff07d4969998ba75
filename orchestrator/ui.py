"""`orchestrate ui`: the MLflow UI against a sweep's local store, bound to 127.0.0.1 unless --host."""

from __future__ import annotations

import subprocess
import sys
from typing import Callable

from core.errors import InputError
from core.urls import mask
from orchestrator.sweep_dir import SweepDir


def serve(name: str | None, runs_dir: str, port: int, say: Callable[[str], None], host: str = "127.0.0.1") -> int:
    """Run the UI of sweep ``name`` (default: the most recent) until it stops; its exit code."""
    sweeps = SweepDir.all(runs_dir)
    chosen = [s for s in sweeps if s.name == name] if name else sweeps
    if not chosen:
        where = SweepDir(runs_dir, ".").runs_dir.resolve()
        raise InputError(f"--name: no sweep {'named ' + name + ' ' if name else ''}in {where}; allowed: "
                         + (", ".join(s.name for s in sweeps) or "none (run orchestrate sweep)"))
    sweep = chosen[-1]
    uri = sweep.tracking_uri()
    if not uri.startswith("sqlite:"):
        say(f"sweep {sweep.name} logs to {mask(uri)}; open that server's UI")
        return 0
    shown = f"[{host}]" if ":" in host else host
    say(f"MLflow UI for sweep {sweep.name}: http://{shown}:{port}  (Ctrl+C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    return subprocess.call(cmd)
