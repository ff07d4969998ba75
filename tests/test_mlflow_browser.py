"""The MLflow UI as a person sees it: a real `mlflow server` on 127.0.0.1 with a small sweep's store,
opened in headless Chromium (Debian's, driven by Playwright): the run of every method and seed, their
tags, and the seed-aggregated metrics as columns must be on the page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium installed (.ci/run installs Debian's chromium)"),
]


@pytest.fixture(scope="module")
def server(finished_sweep):
    """`orchestrate ui` against the sweep's store: (the address it prints, the sweep folder)."""
    result, folder = finished_sweep
    assert result.exit_code == 0, result.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "ui", "--name", folder.name, "--runs-dir",
                             str(folder.parent), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    address = proc.stdout.readline().split(": ", 1)[1].split()[0]
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield address, folder
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def runs_page(base: str, experiment_id: str, search: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs?searchFilter={urllib.parse.quote(search)}"


def expand_nested_runs(page, first_row: str) -> None:
    """Open every collapsed parent row of the runs table (child runs are hidden under their parent)."""
    page.get_by_text(first_row, exact=False).first.wait_for(timeout=90_000)
    expanders = page.locator("button[data-component-id*='runnamecellrenderer']")
    for i in range(expanders.count()):
        expanders.nth(i).click()


def test_runs_tags_and_aggregated_metrics_are_on_the_page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    from sweep_helpers import mlflow_runs

    address, folder = server
    base = address.split("/#/")[0]
    _, exp, runs = mlflow_runs(folder)
    # the sweep's page with its saved view, not MLflow's home page
    assert address == f"{base}/#/experiments/{exp.experiment_id}/runs?viewStateShareKey=clsweep"
    seed_runs = [r for r in runs if r.data.tags["level"] == "seed"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 3200, "height": 1100})

        # the printed address opens on the sweep's configuration runs, best first, with the seed-aggregated
        # metrics as columns: no Columns menu, no filter to type (the sweep's shared view)
        page.goto(address)
        for method in ("finetune", "trust_region", "ewc"):
            page.get_by_text(f"{method} ", exact=False).first.wait_for(timeout=90_000)
        headers = page.locator("[role=columnheader]").all_inner_texts()
        page.screenshot(path=str(ARTIFACTS / "mlflow_sweep_page.png"), full_page=True)
        assert "sweep e2e" not in page.locator("[role=grid]").first.inner_text()  # configuration runs only, not the parent
        assert "orderByKey=metrics.%60final_fd%60" in page.url

        # every seed run, under its configuration (expand the nested rows), with its tags on its page; a
        # new page (its own browser context): the shared view above must not carry over
        page = browser.new_page(viewport={"width": 3200, "height": 1100})
        page.goto(runs_page(base, exp.experiment_id, "tags.level = 'seed'"))
        expand_nested_runs(page, "trust_region")
        for r in seed_runs:
            page.get_by_text(r.info.run_name, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "mlflow_seed_runs.png"), full_page=True)
        one = seed_runs[0]
        page.goto(f"{base}/#/experiments/{exp.experiment_id}/runs/{one.info.run_id}")
        page.get_by_text("config_id", exact=True).first.wait_for(timeout=60_000)
        run_page = page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "mlflow_seed_run_tags.png"), full_page=True)
        for key in ("method", "seed", "config_id", "benchmark"):
            assert f"{key}\n: {one.data.tags[key]}" in run_page, f"tag {key} is not on the run's page"
        assert "fd/task1" in run_page  # its curves are listed among the metrics

        browser.close()
    shown = " ".join(headers)
    for column in ("final_fd", "final_fd_se", "forgetting_fd", "forgetting_fd_se"):
        assert column in shown, f"{column} is not a column of the runs table: {headers}"
