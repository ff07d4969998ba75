"""`orchestrate ui`: the MLflow UI against a sweep's local store, bound to 127.0.0.1 unless --host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import webbrowser
from typing import Callable

from core.errors import InputError
from core.urls import mask
from orchestrator.sweep_dir import SweepDir


def serve(name: str | None, runs_dir: str, port: int, say: Callable[[str], None], host: str = "127.0.0.1",
          open_browser: bool = False) -> int:
    """Run the UI of sweep ``name`` (default: the most recent) until it stops; its exit code. The printed
    address (and ``open_browser``'s) is the sweep's experiment page, not MLflow's home page."""
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
    address = f"http://{shown}:{port}/#/experiments/{runs_address(uri, sweep.name)}"
    say(f"MLflow UI for sweep {sweep.name}: {address}  (Ctrl+C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    # MLflow's telemetry stays off unless the user turned it on
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true")}
    server = subprocess.Popen(cmd, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if open_browser and wait_until_up(f"http://{shown}:{port}/health", server):
            webbrowser.open(address)
        return server.wait()
    except KeyboardInterrupt:
        return stop(server)
    finally:
        signal.signal(signal.SIGTERM, previous)


def runs_address(uri: str, name: str) -> str:
    """``<experiment id>/runs`` of the sweep's experiment in its store (read only), with the sweep's view
    of the configuration runs (``tracking.runs_view``) where the sweep saved one."""
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking import VIEW_KEY, VIEW_TAG

    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    if experiment is None:
        raise InputError(f"--name: sweep {name} has no experiment in its store {mask(uri)} (it never started)")
    view = f"?viewStateShareKey={VIEW_KEY}" if VIEW_TAG in experiment.tags else ""
    return f"{experiment.experiment_id}/runs{view}"


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except OSError:
            time.sleep(0.3)
    return False


def stop(server: subprocess.Popen) -> int:
    """Stop the server this command started (its own process group: MLflow's workers too), also on Ctrl+C
    or SIGTERM."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
            return server.wait(timeout=10)
        except ProcessLookupError:
            return server.wait()
        except subprocess.TimeoutExpired:
            continue
    return server.wait()
