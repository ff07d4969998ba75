"""`orchestrate dashboard` as a person sees it: optuna-dashboard on 127.0.0.1 against a sweep's Optuna
journal, opened in headless Chromium (Debian's, driven by Playwright): the sweep's trials with their
states, the history, the parameter importances and the best trial; for a study of two objectives the
Pareto front. SIGTERM stops it with exit 0. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
browser_test = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                  reason="no Chromium installed (.ci/run installs Debian's chromium)")
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard(runs: Path, name: str, stopped: dict):
    """`orchestrate dashboard` in its own process: yields the address it prints; on exit SIGTERM, and
    ``stopped`` gets its exit code and whether its port still answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "dashboard", "--name", name, "--runs-dir",
                             str(runs), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"optuna-dashboard for sweep {name}: "), line
        address = line.split(": ", 1)[1].split()[0]
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "the dashboard did not answer within 60 s"
                time.sleep(0.3)
        yield address
        proc.send_signal(signal.SIGTERM)  # the command itself, not its group: it must stop its server
        stopped["code"] = proc.wait(timeout=30)
        with socket.socket() as s:
            stopped["port_open"] = s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def _shown(page, text: str, timeout: float = 60_000) -> None:
    """Wait until ``text`` is visible on the page (the side menu hides items named like the cards)."""
    page.get_by_text(text).filter(visible=True).first.wait_for(timeout=timeout)


@browser_test
def test_dashboard_shows_the_sweeps_trials_history_and_importances(finished_sweep):
    sync_api = pytest.importorskip("playwright.sync_api")
    result, folder = finished_sweep
    assert result.exit_code == 0, result.output
    metas = [json.loads(p.read_text()) for p in (folder / "records").glob("*.json")]
    best = min(m["objective"] for m in metas if m["status"] == "finished")  # the objective is fd: min
    states = {"finished": "Complete", "diverged": "Fail"}
    expected = sorted(states[m["status"]] for m in metas)  # e2e: two finished, ewc diverged
    ARTIFACTS.mkdir(exist_ok=True)
    stopped: dict = {}
    with dashboard(folder.parent, folder.name, stopped) as address, sync_api.sync_playwright() as p:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/dashboard/studies/0", address)  # the study's own page
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(address)
        for heading in ("History", "Hyperparameter Importance", "Best Trial (number="):
            _shown(page, heading)
        _shown(page, repr(best), 30_000)
        page.wait_for_timeout(1000)  # plotly draws the importances after the heading
        page.screenshot(path=str(ARTIFACTS / "optuna_dashboard_study.png"), full_page=True)
        body = page.inner_text("body")
        assert "method" in body  # the importance of the method choice is plotted
        page.goto(f"{address}/trials")
        _shown(page, f"{len(metas)} Trials")
        listed = re.findall(r"^Trial (\d+)\n(\w+)$", page.inner_text("body"), flags=re.M)
        page.screenshot(path=str(ARTIFACTS / "optuna_dashboard_trials.png"), full_page=True)
        browser.close()
    assert sorted(int(n) for n, _ in listed) == list(range(len(metas)))
    assert sorted(state for _, state in listed) == expected
    assert stopped == {"code": 0, "port_open": False}


def _two_objective_sweep(runs: Path) -> None:
    """A sweep folder whose journal holds a hand-built study of (final accuracy: max, forgetting: min)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    folder = runs / "front"
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"name": "front", "optuna_storage": None}))
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study = optuna.create_study(study_name="front", storage=storage, directions=["maximize", "minimize"])
    space = {"method": CategoricalDistribution(["ewc", "replay"]), "lr": FloatDistribution(1e-4, 1e-2, log=True)}
    # trial 2 (0.7, 0.2) is dominated by trial 1 (0.8, 0.1); trials 0, 1, 3 trade accuracy for forgetting
    for method, lr, values in [("ewc", 1e-3, [0.9, 0.3]), ("ewc", 3e-3, [0.8, 0.1]), ("replay", 1e-3, [0.7, 0.2]),
                               ("replay", 2e-3, [0.95, 0.5])]:
        study.add_trial(optuna.trial.create_trial(params={"method": method, "lr": lr}, distributions=space,
                                                  values=values))


@browser_test
def test_dashboard_shows_the_pareto_front_of_two_objectives(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    _two_objective_sweep(tmp_path / "runs")
    stopped: dict = {}
    with dashboard(tmp_path / "runs", "front", stopped) as address, sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(address)
        for text in ("Pareto Front", "Best Trials", "Trial 3"):
            _shown(page, text)
        page.screenshot(path=str(ARTIFACTS / "optuna_dashboard_pareto.png"), full_page=True)
        body = page.inner_text("body")
        browser.close()
    front = body[body.index("Best Trials"):]
    assert re.findall(r"^Trial (\d+)$", front, flags=re.M) == ["0", "1", "3"]
    assert "Objective Values = [0.8, 0.1]" in front and "Objective Values = [0.7, 0.2]" not in front
    assert stopped == {"code": 0, "port_open": False}


def test_dashboard_bad_input_exits_2_in_one_line(tmp_path):
    runs = tmp_path / "runs"
    _two_objective_sweep(runs)
    remote = runs / "team"
    remote.mkdir()
    (remote / "sweep.json").write_text(json.dumps({"name": "team", "optuna_storage": "postgresql://u:***@db/x"}))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--name", "nope"], "--name: no sweep named nope in "),
            (["--name", "front", "--port", str(port)], f"--port: cannot listen on 127.0.0.1:{port}"),
            (["--name", "front", "--port", "70000"], "--port: 70000 is not allowed; allowed: 1 to 65535"),
            (["--name", "team"], "--optuna-storage: sweep team uses postgresql://u:***@db/x, whose password is "
                                 "not saved"),
            (["--name", "team", "--optuna-storage", "postgresql://v:pw@db/x"],
             "--optuna-storage: sweep team uses postgresql://u:***@db/x; give that one"),
        ]
        for args, message in cases:
            result = CliRunner().invoke(main, ["dashboard", "--runs-dir", str(runs), *args])
            assert result.exit_code == 2, (args, result.output)
            assert message in result.output and len(result.output.strip().splitlines()) == 1, (args, result.output)
    assert "allowed: front, team" in CliRunner().invoke(main, ["dashboard", "--runs-dir", str(runs), "--name",
                                                               "x"]).output
