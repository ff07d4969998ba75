"""A password in --tracking-uri (or --optuna-storage) is never written or printed: not in the output, the
sweep's folder (sweep.json, Ray's tuner.pkl and searcher state, records), the MLflow store, its
artifacts, or Ray's session logs. MLflow still gets the credentials, through its own environment
variables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from orchestrator import storage
from test_team_storage import files_containing, mlflow_server, tiny_space

SECRET = "s3cr3t-PW"


def test_mask_replaces_only_the_password():
    assert storage.mask(f"http://user:{SECRET}@127.0.0.1:5000/x") == "http://user:***@127.0.0.1:5000/x"
    assert storage.mask(f"postgresql+psycopg://u:{SECRET}@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert storage.mask("p://u:a@b@h/db") == "p://u:***@h/db"  # an unencoded @ in the password
    for plain in ("sqlite:///runs/x/mlflow.db", "http://127.0.0.1:5000", "http://user@h", None):
        assert storage.mask(plain) == plain
    assert SECRET not in storage.masked_text(f"could not reach http://u:{SECRET}@h:1/api (refused)")


def test_mlflow_gets_http_credentials_from_its_environment(monkeypatch):
    from mlflow.utils.credentials import get_default_host_creds

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    uri = storage.mlflow_uri(f"http://user:{SECRET}@127.0.0.1:5000")
    assert uri == "http://127.0.0.1:5000"
    creds = get_default_host_creds(uri)
    assert (creds.username, creds.password) == ("user", SECRET)
    # a masked URI (from sweep.json) resolves to the real one given in this process
    shown = storage.remember(f"postgresql://u:{SECRET}@h/db")
    assert shown == "postgresql://u:***@h/db" and storage.reveal(shown) == f"postgresql://u:{SECRET}@h/db"


def test_tracker_pickles_without_the_password():
    import pickle

    from orchestrator.tracking import Tracker

    tracker = Tracker(f"postgresql://u:{SECRET}@127.0.0.1:1/mlflow", "x", "/tmp/x")
    state = pickle.dumps(tracker)
    assert SECRET.encode() not in state
    assert storage.reveal(pickle.loads(state).tracking_uri) == f"postgresql://u:{SECRET}@127.0.0.1:1/mlflow"


@pytest.mark.e2e
def test_a_sweep_never_writes_or_prints_the_tracking_password(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="clsweep-ray-")  # short: Ray's socket paths must stay < 108 chars
    try:
        with mlflow_server(tmp_path / "server") as (url, _):
            uri = url.replace("http://", f"http://user:{SECRET}@")
            runs = tmp_path / "runs"
            env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
            env["RAY_TMPDIR"] = ray_tmp
            cmd = [sys.executable, "-m", "orchestrator", "sweep", "--space", str(tiny_space(tmp_path, "secret")),
                   "--runs-dir", str(runs), "--tracking-uri", uri]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=500, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
            folder = runs / "secret"
            assert (folder / "ray" / "tuner.pkl").exists()
            assert SECRET not in done.stdout and SECRET not in done.stderr
            assert files_containing(folder, SECRET) == []
            assert files_containing(tmp_path / "server", SECRET) == []
            assert files_containing(__import__("pathlib").Path(ray_tmp), SECRET) == []
            assert f"user:***@{url[len('http://'):]}" in (folder / "sweep.json").read_text()

            again = subprocess.run([sys.executable, "-m", "orchestrator", "sweep", "--resume", "secret",
                                    "--runs-dir", str(runs)], capture_output=True, text=True, timeout=120, env=env)
            assert again.returncode == 2 and "error: --tracking-uri" in again.stderr, again.stderr
            assert len(again.stderr.strip().splitlines()) == 1
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_ui_binds_127_0_0_1_unless_host_is_given(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from orchestrator import ui
    from orchestrator.cli import main

    for name, uri in (("local", f"sqlite:///{tmp_path}/local/mlflow.db"), ("team", "http://u:***@10.0.0.1:5000")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sweep.json").write_text(json.dumps({"tracking_uri": uri}))
    calls = []

    class Server:  # stands in for the MLflow server process
        pid = 0

        def __init__(self, cmd, **kwargs):
            calls.append(cmd)

        def wait(self):
            return 0

    monkeypatch.setattr(ui.subprocess, "Popen", Server)
    monkeypatch.setattr(ui, "runs_address", lambda uri, name: "7/runs")
    out = CliRunner().invoke(main, ["ui", "--name", "local", "--runs-dir", str(tmp_path), "--port", "5009"])
    assert out.exit_code == 0 and "http://127.0.0.1:5009/#/experiments/7/runs" in out.output
    assert calls[-1][calls[-1].index("--host") + 1] == "127.0.0.1"
    out = CliRunner().invoke(main, ["ui", "--name", "local", "--runs-dir", str(tmp_path), "--host", "0.0.0.0"])
    assert out.exit_code == 0 and calls[-1][calls[-1].index("--host") + 1] == "0.0.0.0"
    out = CliRunner().invoke(main, ["ui", "--name", "team", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 0 and "logs to http://u:***@10.0.0.1:5000" in out.output
