"""Team storage: a tiny sweep against a real PostgreSQL server (--optuna-storage) and a real MLflow
tracking server (--tracking-uri). Each test starts its server on 127.0.0.1 on a free port in a temporary
folder and stops it by its own process id; it skips, saying why, when the server cannot start."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweep_helpers import SPACE

pytestmark = pytest.mark.e2e
PG_PASSWORD = "team-Pg-pw-71"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_space(folder: Path, name: str) -> Path:
    """Two configurations of one method, one seed: the smallest sweep that exercises the search."""
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(dict(SPACE, name=name, seeds=[0],
                                        budget={"num_samples": 2, "max_concurrent": 2, "sampler_seed": 5},
                                        methods={"finetune": {"lr": {"loguniform": [1e-4, 1e-3]}}})))
    return path


def orchestrate(*args: str, timeout: float = 500) -> subprocess.CompletedProcess:
    """`orchestrate ARGS` in a subprocess, stdout and stderr together (no MLflow credentials inherited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, group: bool = False) -> None:
    """Stop a server we started, by its process id (its process group when it has workers)."""
    if proc.poll() is None:
        (os.killpg if group else os.kill)(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@contextlib.contextmanager
def postgres_server():
    """A throw-away PostgreSQL cluster with database ``sweeps``; yields its URL (with a password). As root
    the server runs as the ``postgres`` user (it refuses root)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries missing (Debian package postgresql; .ci/run installs it)")
    pytest.importorskip("psycopg", reason="no PostgreSQL driver for Python (pip install 'psycopg[binary]')")
    import psycopg

    bin_dir = Path(bins[-1]).parent
    as_user = {}
    folder = Path(tempfile.mkdtemp(prefix="clsweep-pg-"))  # not under pytest's root-only folders
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    (folder / "pw").write_text(PG_PASSWORD)
    os.chmod(folder / "pw", 0o644)
    init = subprocess.run([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
                           "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}", "-E", "UTF8"],
                          capture_output=True, text=True, cwd=folder, **as_user)
    if init.returncode:
        shutil.rmtree(folder)
        pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    port = free_port()
    proc = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(folder / "data"), "-h", "127.0.0.1",
                             "-p", str(port), "-k", str(folder)], stdout=subprocess.DEVNULL,
                            stderr=open(folder / "server.log", "w"), cwd=folder, **as_user)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PG_PASSWORD,
                                     dbname="postgres", autocommit=True, connect_timeout=5) as conn:
                    conn.execute("CREATE DATABASE sweeps")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.skip(f"PostgreSQL did not start: {(folder / 'server.log').read_text()[-300:]}")
                time.sleep(0.3)
        yield f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/sweeps"
    finally:
        stop(proc, signal.SIGINT)  # PostgreSQL's fast shutdown (SIGTERM waits for clients to leave)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(folder: Path):
    """``mlflow server`` on 127.0.0.1 with a SQLite store and proxied artifacts in ``folder``; yields
    (its URL, its process)."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                             "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.skip(f"mlflow server did not start: {(folder / 'server.log').read_text()[-300:]}")
            time.sleep(0.5)
        yield url, proc
    finally:
        stop(proc, group=True)
        log.close()


def files_containing(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_optuna_study_in_postgresql(tmp_path):
    import optuna

    with postgres_server() as url:
        runs = tmp_path / "runs"
        done = orchestrate("sweep", "--space", str(tiny_space(tmp_path, "team_pg")), "--runs-dir", str(runs),
                           "--optuna-storage", url)
        assert done.returncode == 0, done.stdout
        assert "sweep team_pg: 2 configurations (2 finished)" in done.stdout
        folder = runs / "team_pg"
        assert not (folder / "optuna.journal").exists()
        trials = optuna.load_study(study_name="team_pg", storage=url).trials
        assert sorted(t.state.name for t in trials) == ["COMPLETE", "COMPLETE"]
        assert all("finetune.lr" in t.params for t in trials), [t.params for t in trials]
        table = pd.read_csv(folder / "results.csv")
        assert list(table["method"]) == ["finetune"] and list(table["status"]) == ["finished"]
        assert "| finetune |" in (folder / "results.md").read_text()

        # the password is in no file of the sweep (sweep.json, Ray's pickles) nor in the output
        assert PG_PASSWORD not in done.stdout
        assert files_containing(folder, PG_PASSWORD) == []
        assert "postgres:***@" in (folder / "sweep.json").read_text()
        # so --resume needs the URL again: one line, exit 2
        again = orchestrate("sweep", "--resume", "team_pg", "--runs-dir", str(runs))
        assert again.returncode == 2 and again.stdout.startswith("error: --optuna-storage"), again.stdout
        # and a new sweep of the same name in the same database is refused
        clash = orchestrate("sweep", "--space", str(tiny_space(tmp_path, "team_pg")), "--runs-dir",
                            str(tmp_path / "other"), "--optuna-storage", url)
        assert clash.returncode == 2 and "already holds a study named team_pg" in clash.stdout, clash.stdout


def test_runs_on_an_mlflow_tracking_server(tmp_path):
    from mlflow.tracking import MlflowClient

    with mlflow_server(tmp_path / "server") as (url, _):
        runs = tmp_path / "runs"
        done = orchestrate("sweep", "--space", str(tiny_space(tmp_path, "team_mlflow")), "--runs-dir", str(runs),
                           "--tracking-uri", url)
        assert done.returncode == 0, done.stdout
        client = MlflowClient(tracking_uri=url)
        exp = client.get_experiment_by_name("team_mlflow")
        assert exp is not None and exp.artifact_location.startswith("mlflow-artifacts:")
        levels = {}
        for run in client.search_runs([exp.experiment_id], max_results=100):
            levels.setdefault(run.data.tags["level"], []).append(run)
        (parent,) = levels["sweep"]
        assert parent.info.status == "FINISHED"
        assert len(levels["configuration"]) == 2 and len(levels["seed"]) == 2
        assert {"records.csv", "results.csv"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert not (runs / "team_mlflow" / "mlflow.db").exists()

        # a teammate's machine: nothing of the sweep's folder, only the server
        table = orchestrate("table", "--sweep", "team_mlflow", "--tracking-uri", url, "--runs-dir",
                            str(tmp_path / "elsewhere"), "--metric", "fd", "--format", "csv", timeout=120)
        assert table.returncode == 0, table.stdout
        assert "\nmethod," in "\n" + table.stdout and "\nfinetune," in table.stdout, table.stdout
