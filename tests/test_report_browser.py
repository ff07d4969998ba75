"""The report as a person reads it: a synthetic 20-task sweep (3 methods × 3 seeds) rendered into
report.html and opened in headless Chromium (Debian's, driven by Playwright). It must fit in two
screens and its re-convergence pivot must hold every method. A screenshot goes to test-artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.load import Source
from analysis.report import build_report, reconvergence_cells, reconvergence_table
from analysis.report_page import pivot

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TASKS, STEPS = 20, 100
# task 1's fd during a later phase, as a multiple of its end-of-task value P, at steps 10, 30, 100 of
# the phase: A is back within 10% after 30 steps, B within 20% after 100 steps, C never within 30%
SHAPES = {"A": (2.0, 1.05, 1.02), "B": (2.0, 1.5, 1.15), "C": (2.0, 2.0, 2.0)}


def records() -> pd.DataFrame:
    rows = []
    for method, shape in SHAPES.items():
        for seed in (0, 1, 2):
            p = 10.0 + 0.1 * seed
            for k in range(1, TASKS + 1):
                for i, offset in enumerate((10, 30, STEPS)):
                    step = (k - 1) * STEPS + offset
                    rows.append((method, seed, step, k, 1, "fd", p if k == 1 else p * shape[i]))
                    rows += [(method, seed, step, k, j, "fd", 10.0 + j + k / 10) for j in range(2, k + 1)]
                    rows.append((method, seed, step, k, k, "train_loss", 1.0 / k))
    df = pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value"])
    return df.assign(config_id=df["method"], benchmark="synthetic", num_tasks=TASKS)


def source() -> Source:
    return Source(records=records(), name="synthetic20", objective={"metric": "fd", "reduce": "mean", "mode": "min"},
                  seeds=[0, 1, 2], num_tasks=TASKS, directions={"fd": False})


def test_pivot_rows_are_methods_and_columns_transitions_by_threshold():
    wide = pivot(reconvergence_cells(reconvergence_table(source(), "fd", False, 1)))
    assert list(wide.index) == ["A", "B", "C"]
    assert list(wide.columns[:3]) == [(2, 0.1), (2, 0.2), (2, 0.3)] and wide.columns[-1] == (20, 0.3)
    assert len(wide.columns) == 19 * 3
    assert set(wide.loc["A"]) == {"30"}                                  # 1.05 P <= 1.1 P at step 30
    assert list(wide.loc["B", [(5, 0.1), (5, 0.2), (5, 0.3)]]) == ["–", "100", "100"]   # 1.15 P
    assert set(wide.loc["C"]) == {"–"}


def test_report_files_and_no_long_table_inline(tmp_path):
    written = {p.name for p in build_report(source(), tmp_path)}
    assert {"report.html", "report.md", "table_fd.csv", "reconvergence_fd.csv", "task1_fd.png",
            "heatmap_fd.png"} <= written
    full = pd.read_csv(tmp_path / "reconvergence_fd.csv")
    assert len(full) == 3 * 3 * sum(range(1, TASKS))                     # every (j, k > j), linked only
    html = (tmp_path / "report.html").read_text()
    assert html.count("<tr>") < 20 and "href='reconvergence_fd.csv'" in html


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium installed (.ci/run installs Debian's chromium)")
def test_report_reads_in_two_screens_with_every_method_in_the_pivot(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    build_report(source(), tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto((tmp_path / "report.html").as_uri())
        page.wait_for_load_state("load")
        height = page.evaluate("document.body.scrollHeight")
        methods = page.eval_on_selector_all("table.pivot tbody tr td:first-child", "tds => tds.map(t => t.textContent)")
        groups = page.eval_on_selector_all("table.pivot thead tr:first-child th[colspan]", "ths => ths.length")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report_20_tasks.png"), full_page=True)
        browser.close()
    # one metric: the results table, task 1's curve (640 x 400 px) and the pivot (5 rows; 57 columns
    # scroll sideways inside their box) take about one screen; two 1080-px screens is the bound a person
    # reads without hunting, and the old inline long table (1,710 rows here) would take ~40 screens
    assert height <= 2 * 1080, height
    assert methods == ["A", "B", "C"] and groups == TASKS - 1
