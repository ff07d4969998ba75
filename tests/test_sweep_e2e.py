"""End to end through the real Ray Tune + Optuna + MLflow path at tiny size: the store's layout, the
results table against a recomputation from the records, a diverged trial, and resume after Ctrl+C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sweep_helpers import SPACE, mlflow_runs
from orchestrator.cli import main

pytestmark = pytest.mark.e2e


def test_sweep_finishes_and_records_the_diverged_trial(finished_sweep):
    result, folder = finished_sweep
    assert result.exit_code == 0, result.output
    metas = {m["method"]: m for m in (json.loads(p.read_text()) for p in (folder / "records").glob("*.json"))}
    assert {m: meta["status"] for m, meta in metas.items()} == {
        "finetune": "finished", "trust_region": "finished", "ewc": "diverged"}
    # its first evaluation (step 1 of the dense grid) is already NaN: a divergence, named with the metric
    assert metas["ewc"]["error"].startswith("diverged: seed 0, task 1, step 1: denoise_loss of task 1 = nan")
    assert "sweep e2e: 3 configurations (1 diverged, 2 finished)" in result.output


def test_mlflow_store_layout(finished_sweep):
    _, folder = finished_sweep
    client, exp, runs = mlflow_runs(folder)
    by_level = {}
    for r in runs:
        by_level.setdefault(r.data.tags["level"], []).append(r)
    (parent,) = by_level["sweep"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sampler_seed"] == "7" and parent.data.params["benchmark"] == "split_digits_diffusion"
    assert len(parent.data.params["git_commit"]) >= 7
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"space.yaml", "versions.json", "records.csv", "results.csv", "results.md"} <= artifacts

    configs = {r.data.tags["method"]: r for r in by_level["configuration"]}
    assert set(configs) == {"finetune", "trust_region", "ewc"}
    for r in configs.values():
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id and r.data.tags["seeds"] == "0,1"
    assert configs["ewc"].info.status == "FAILED" and configs["ewc"].data.tags["status"] == "diverged"
    assert configs["ewc"].data.tags["error"].startswith("diverged:")
    seeds = by_level["seed"]
    assert sorted((r.data.tags["method"], r.data.tags["seed"]) for r in seeds) == [
        ("finetune", "0"), ("finetune", "1"), ("trust_region", "0"), ("trust_region", "1")]

    records = pd.read_csv(folder / "records.csv")
    for method in ("finetune", "trust_region"):
        cfg = configs[method]
        assert cfg.info.status == "FINISHED" and cfg.data.tags["status"] == "finished"
        assert {"final_fd", "final_fd_se", "forgetting_fd", "forgetting_fd_se", "fd/task1/mean", "fd/task2/se"} \
            <= set(cfg.data.metrics)
        assert [m.step for m in client.get_metric_history(cfg.info.run_id, "objective")] == [1, 2]
        for seed_run in (r for r in seeds if r.data.tags["method"] == method):
            tags = seed_run.data.tags
            assert tags["mlflow.parentRunId"] == cfg.info.run_id and tags["config_id"] == cfg.data.tags["config_id"]
            assert tags["benchmark"] == "split_digits_diffusion"
            mine = records[(records["config_id"] == tags["config_id"]) & (records["seed"] == int(tags["seed"]))
                           & (records["metric"] == "fd") & (records["eval_task"] == 1)]
            history = client.get_metric_history(seed_run.info.run_id, "fd/task1")
            assert sorted((h.step, h.value) for h in history) == sorted(zip(mine["step"], mine["value"]))


def recompute(records: pd.DataFrame, config_id: str):
    """final and forgetting of fd (lower is better) per seed, by hand, then mean and SE (ddof=1)."""
    rows = records[(records["config_id"] == config_id) & (records["metric"] == "fd")]
    finals, forgets = [], []
    for _, seed_rows in rows.groupby("seed"):
        ends = seed_rows.groupby("train_task")["step"].transform("max")
        at_end = seed_rows[seed_rows["step"] == ends]
        r1 = at_end[at_end["train_task"] == 1].set_index("eval_task")["value"]
        r2 = at_end[at_end["train_task"] == 2].set_index("eval_task")["value"]
        finals.append((r2[1] + r2[2]) / 2)
        forgets.append(r2[1] - r1[1])
    mean_se = lambda v: (sum(v) / len(v), pd.Series(v).std(ddof=1) / math.sqrt(len(v)))  # noqa: E731
    return mean_se(finals), mean_se(forgets)


def test_results_table_matches_a_recomputation_from_the_records(finished_sweep):
    _, folder = finished_sweep
    table = pd.read_csv(folder / "results.csv")
    records = pd.read_csv(folder / "records.csv")
    assert list(table["method"]) == ["ewc", "finetune", "trust_region"]
    for row in table[table["complete"]].itertuples():
        (final, final_se), (forget, forget_se) = recompute(records, row.config_id)
        assert row.final == pytest.approx(final) and row.final_se == pytest.approx(final_se)
        assert row.forgetting == pytest.approx(forget) and row.forgetting_se == pytest.approx(forget_se)
        assert row.seeds == 2
    ewc = table[table["method"] == "ewc"].iloc[0]
    assert not ewc["complete"] and math.isnan(ewc["final"])
    md = (folder / "results.md").read_text()
    assert "| ewc |" in md and "incomplete" in md


def test_optuna_journal_holds_the_trials(finished_sweep):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    _, folder = finished_sweep
    study = optuna.load_study(study_name="e2e", storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal"))))
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]


def test_resume_after_interrupt_never_repeats_a_finished_configuration(tmp_path):
    space = dict(SPACE, name="resumable", budget={"num_samples": 3, "max_concurrent": 1, "sampler_seed": 1},
                 methods={"finetune": {"lr": {"loguniform": [1e-4, 1e-3]}}})
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "orchestrator", "sweep", "--space", str(tmp_path / "space.yaml"),
           "--runs-dir", str(runs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    records = runs / "resumable" / "records"
    deadline = time.time() + 240
    while time.time() < deadline and not list(records.glob("*.json")) and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=240)[0]
    metas = sorted(records.glob("*.json"))
    assert 1 <= len(metas) < 3, output
    assert proc.returncode == 130, output
    assert "continue with: orchestrate sweep --resume resumable" in output
    before = {p.name: p.read_text() for p in records.iterdir()}

    done = subprocess.run([sys.executable, "-m", "orchestrator", "sweep", "--resume", "resumable",
                           "--runs-dir", str(runs)], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    after = {p.name: p.read_text() for p in records.iterdir()}
    assert len([n for n in after if n.endswith(".json")]) == 3
    for name, text in before.items():  # finished configurations were neither rerun nor rewritten
        assert after[name] == text
    _, _, mruns = mlflow_runs(runs / "resumable")
    config_ids = [r.data.tags["config_id"] for r in mruns if r.data.tags["level"] == "configuration"]
    assert len(config_ids) == len(set(config_ids)) == 3
    seed_runs = [r for r in mruns if r.data.tags["level"] == "seed"]
    assert len(seed_runs) == 6
    for meta in after:
        if meta.endswith(".json"):
            trial_id = meta[:-5]
            (trial_dir,) = [p for p in (runs / "resumable" / "ray").iterdir() if trial_id in p.name]
            lines = (trial_dir / "result.json").read_text().strip().splitlines()
            # each task reported once: finished ones were not run again, and the one interrupted mid-way
            # reports from the task after its checkpoint on
            assert [json.loads(line)["task"] for line in lines] == [1, 2]


def test_orchestrate_ui_serves_the_sweeps_store(finished_sweep):
    """`orchestrate ui` starts MLflow on 127.0.0.1 against the sweep's store and prints the address."""
    import socket
    import urllib.request

    _, folder = finished_sweep
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "ui", "--name", "e2e", "--runs-dir",
                             str(folder.parent), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert f"MLflow UI for sweep e2e: http://127.0.0.1:{port}/#/experiments/" in first
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=e2e"
        deadline, body = time.time() + 90, None
        while time.time() < deadline and body is None:
            try:
                body = json.loads(urllib.request.urlopen(url, timeout=5).read())
            except OSError:
                time.sleep(0.5)
        assert body is not None and body["experiment"]["name"] == "e2e"
        assert f"/#/experiments/{body['experiment']['experiment_id']}/runs" in first
        proc.send_signal(signal.SIGTERM)  # to `orchestrate ui` alone: it stops the server it started
        assert proc.wait(timeout=30) is not None
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_report_is_on_the_parent_run_and_analysis_reads_the_sweep_from_mlflow(finished_sweep):
    _, folder = finished_sweep
    client, _, runs = mlflow_runs(folder)
    (parent,) = [r for r in runs if r.data.tags["level"] == "sweep"]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    for name in ("report.html", "report.md", "table_fd.csv", "table_fd.tex", "reconvergence_fd.csv",
                 "task1_fd.png", "heatmap_fd.png", "table_gen_acc.csv"):
        assert f"report/{name}" in logged
    html = (folder / "report" / "report.html").read_text()
    assert "<h2>fd (lower is better)</h2>" in html and "data:image/png;base64," in html

    runner = CliRunner()
    runs_dir = str(folder.parent)
    out = runner.invoke(main, ["table", "--sweep", "e2e", "--runs-dir", runs_dir, "--metric", "fd", "--format", "csv"])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(__import__("io").StringIO(out.stdout), dtype={"config_id": str})
    results = pd.read_csv(folder / "results.csv", dtype={"config_id": str})
    for row in table[table["method"] != "ewc"].itertuples():  # the same best configuration and numbers
        mine = results[results["method"] == row.method].iloc[0]
        assert row.config_id == mine["config_id"] and row.final == pytest.approx(mine["final"])
    assert "no configuration left records" in table[table["method"] == "ewc"].iloc[0]["missing"]
    out = runner.invoke(main, ["reconvergence", "--sweep", "e2e", "--runs-dir", runs_dir, "--metric",
                               "denoise_loss", "--format", "csv", "--aggregate", "seeds"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0] == "method,threshold,after_task,steps,steps_se,reconverged,seeds,steps_reconverged_mean"
    out = runner.invoke(main, ["report", "--sweep", "e2e", "--runs-dir", runs_dir])
    assert out.exit_code == 0 and "report written to" in out.output


def test_asha_stops_configurations_at_task_boundaries_and_optuna_learns_only_full_runs(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    space = dict(SPACE, name="asha", benchmark={"name": "split_digits_diffusion", "preset": "tiny", "num_tasks": 3},
                 # one at a time: ASHA's decisions then follow the sampler's order, not the machine's load
                 budget={"num_samples": 4, "max_concurrent": 1, "scheduler": "asha", "grace_period": 1,
                         "reduction_factor": 4, "sampler_seed": 3},
                 methods={"finetune": {"lr": {"loguniform": [1e-5, 1e-2]}}})
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    out = CliRunner().invoke(main, ["sweep", "--space", str(tmp_path / "space.yaml"), "--runs-dir",
                                    str(tmp_path / "runs"), "--cpus-per-trial", "0.5"])
    assert out.exit_code == 0, out.output
    folder = tmp_path / "runs" / "asha"
    metas = [json.loads(p.read_text()) for p in (folder / "records").glob("*.json")]
    stopped = [m for m in metas if m["status"] == "stopped"]
    finished = [m for m in metas if m["status"] == "finished"]
    assert stopped and finished and len(metas) == 4
    assert all(m["tasks_done"] < 3 for m in stopped) and all(m["tasks_done"] == 3 for m in finished)
    study = optuna.load_study(study_name="asha", storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal"))))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == len(finished)  # a stopped run is no finished one to the sampler
    table = pd.read_csv(folder / "results.csv", dtype={"config_id": str})
    assert table.iloc[0]["config_id"] in {m["config_id"] for m in finished}
