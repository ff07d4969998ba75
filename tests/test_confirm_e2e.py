"""End to end through Ray, Optuna and MLflow at tiny size: a search on the first 2 of 3 tasks with seeds 0, 1
and a lower-bound objective, then each method's best configuration confirmed on seeds 2, 3 over the whole
stream; the tables report the confirmation seeds and say so."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from sweep_helpers import mlflow_runs

pytestmark = pytest.mark.e2e

SPACE = {
    "name": "confirmed",
    "benchmark": {"name": "split_digits_diffusion", "preset": "tiny", "num_tasks": 3},
    "seeds": [0, 1],
    "objective": {"metric": "fd", "reduce": "mean", "seeds": "lower_bound", "k": 1},
    "protocol": {"first_tasks": 2},
    "budget": {"num_samples": 2, "max_concurrent": 2, "sampler_seed": 7, "confirm": {"top": 1, "seeds": [2, 3]}},
    "methods": {"finetune": {"lr": {"loguniform": [1e-4, 1e-3]}}, "ewc": {"lam": {"loguniform": [10, 1000]}}},
}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("confirm")
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    out = CliRunner().invoke(main, ["sweep", "--space", str(root / "space.yaml"), "--runs-dir", str(root / "runs")])
    assert out.exit_code == 0, out.output
    return root / "runs", root / "runs" / "confirmed"


def upper_bound(records: pd.DataFrame, task: int) -> float:
    """By hand: per seed, fd of tasks 1..task at the last step of phase ``task``, averaged; then the seed
    mean plus one standard error (ddof 1): fd is lower-is-better, so the pessimistic bound is mean + SE."""
    values = []
    for _, run in records[records["metric"] == "fd"].groupby("seed"):
        phase = run[run["train_task"] == task]
        values.append(phase[phase["step"] == phase["step"].max()]["value"].mean())
    return float(np.mean(values) + np.std(values, ddof=1) / math.sqrt(len(values)))


def test_search_on_two_tasks_confirmation_on_fresh_seeds_and_all_tasks(sweep):
    _, folder = sweep
    records = pd.read_csv(folder / "records.csv")
    search, confirm = records[records["stage"] == "search"], records[records["stage"] == "confirm"]
    assert set(search["seed"]) == {0, 1} and set(confirm["seed"]) == {2, 3}
    assert search["train_task"].max() == 2 and set(search["num_tasks"]) == {2}
    assert confirm["train_task"].max() == 3 and set(confirm["num_tasks"]) == {3}
    metas = {m["config_id"]: m for m in (json.loads(p.read_text()) for p in (folder / "records").glob("*.json"))}
    confirmed = [json.loads(p.read_text()) for p in sorted((folder / "records" / "confirm").glob("*.json"))]
    assert sorted(m["method"] for m in confirmed) == ["ewc", "finetune"]
    for meta in confirmed:  # each method's best (here: its only) configuration, rerun on seeds 2, 3
        assert meta["status"] == "finished" and meta["seeds"] == [2, 3] and meta["rank"] == 1
        assert metas[meta["config_id"]]["status"] == "finished"
        mine = confirm[confirm["config_id"] == meta["config_id"]]
        assert set(mine["seed"]) == {2, 3} and set(mine["train_task"]) == {1, 2, 3}
        # the search's objective on the confirmation seeds: after task 2, mean + SE
        assert meta["selection_objective"] == pytest.approx(upper_bound(mine, 2))
        assert meta["objective"] == pytest.approx(upper_bound(mine, 3))


def test_the_lower_bound_is_what_optuna_was_told(sweep):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    _, folder = sweep
    records = pd.read_csv(folder / "records.csv")
    told = {t.params["method"]: t.value for t in optuna.load_study(
        study_name="confirmed", storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))).trials}
    for path in (folder / "records").glob("*.json"):
        meta = json.loads(path.read_text())
        mine = records[(records["config_id"] == meta["config_id"]) & (records["stage"] == "search")]
        assert meta["objective"] == pytest.approx(upper_bound(mine, 2))
        assert told[meta["method"]] == pytest.approx(meta["objective"])
        last = meta["last_result"]
        assert last["objective"] > last["objective_mean"] and last["objective_mean"] == pytest.approx(
            np.mean([last["objective_seed0"], last["objective_seed1"]]))


def test_tables_report_the_confirmation_seeds_by_default(sweep):
    runs, folder = sweep
    md = (folder / "results.md").read_text()
    assert "mean ± standard error over seeds 2, 3" in md
    assert "selected on seeds 0, 1, reported on seeds 2, 3; protocol first_tasks: 2" in md
    assert "objective on the search seeds → on the confirmation seeds: ewc" in md
    results = pd.read_csv(folder / "results.csv")
    assert set(results["seeds"]) == {2} and results["confirm_objective"].notna().all()
    records = pd.read_csv(folder / "records.csv")
    run = CliRunner().invoke
    for stage, seeds, tasks in (("confirm", {2, 3}, 3), ("search", {0, 1}, 2)):
        args = ["table", "--sweep", "confirmed", "--runs-dir", str(runs), "--metric", "fd", "--format", "csv"]
        out = run(main, args + ([] if stage == "confirm" else ["--stage", "search"]))
        assert out.exit_code == 0, out.output
        table = pd.read_csv(io.StringIO(out.output[out.output.index("method,"):])).set_index("method")
        rows = records[(records["stage"] == stage) & (records["method"] == "ewc") & (records["metric"] == "fd")]
        ends = rows[rows["train_task"] == tasks]
        ends = ends[ends["step"] == ends.groupby("seed")["step"].transform("max")]
        assert set(ends["seed"]) == seeds and table.loc["ewc", "seeds"] == 2
        assert table.loc["ewc", "final"] == pytest.approx(ends.groupby("seed")["value"].mean().mean())
    out = run(main, ["compare", "--sweep", "confirmed", "--runs-dir", str(runs), "--metric", "fd", "--baseline",
                     "finetune"])
    assert out.exit_code == 0 and "selected on seeds 0, 1, reported on seeds 2, 3" in out.output


def test_mlflow_holds_confirmation_runs_under_the_configuration_run(sweep):
    _, folder = sweep
    _, _, runs = mlflow_runs(folder)
    (parent,) = [r for r in runs if r.data.tags["level"] == "sweep"]
    assert parent.data.tags["protocol"] == "first_tasks: 2" and parent.data.params["confirm_seeds"] == "2,3"
    configs = {r.data.tags["config_id"]: r for r in runs if r.data.tags["level"] == "configuration"}
    seeds = [r for r in runs if r.data.tags["level"] == "seed"]
    confirm = [r for r in seeds if r.data.tags["stage"] == "confirm"]
    assert sorted(r.data.tags["seed"] for r in confirm) == ["2", "2", "3", "3"]
    for r in confirm:
        owner = configs[r.data.tags["config_id"]]
        assert r.data.tags["mlflow.parentRunId"] == owner.info.run_id
        assert owner.data.tags["status"] == "finished" and owner.data.tags["confirm_status"] == "finished"
        assert "confirm_final_fd" in owner.data.metrics and "final_fd" in owner.data.metrics
    assert {r.data.tags["seed"] for r in seeds if r.data.tags["stage"] == "search"} == {"0", "1"}


def test_a_resumed_sweep_reruns_only_unfinished_confirmations(sweep):
    from orchestrator import confirm
    from orchestrator.spaces import load
    from orchestrator.sweep_dir import SweepDir

    runs, folder = sweep
    space, sweep_dir = load(str(folder / "space.yaml")), SweepDir(runs, "confirmed")
    assert confirm.pending(space, sweep_dir) == [] and confirm.complete(space, sweep_dir)
    first = sorted((folder / "records" / "confirm").glob("*.json"))[0]
    text = first.read_text()
    first.unlink()
    try:
        assert [s["config_id"] for s in confirm.pending(space, sweep_dir)] == [first.stem]
    finally:
        first.write_text(text)


FRONT = {
    "name": "front",
    "benchmark": {"name": "split_digits_diffusion", "preset": "tiny"},
    "seeds": [0, 1],
    "objective": [{"metric": "fd"}, {"metric": "fd", "score": "forgetting"}],
    "budget": {"num_samples": 3, "max_concurrent": 2, "sampler_seed": 3, "start_with_defaults": False},
    "methods": {"finetune": {"lr": {"loguniform": [1e-4, 1e-3]}}},
}


def test_two_objectives_drive_optunas_multi_objective_search_and_tag_the_front(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from analysis.pareto import pareto_ranks

    (tmp_path / "space.yaml").write_text(yaml.safe_dump(FRONT))
    runs = tmp_path / "runs"
    run = CliRunner().invoke
    out = run(main, ["sweep", "--space", str(tmp_path / "space.yaml"), "--runs-dir", str(runs)])
    assert out.exit_code == 0, out.output
    folder = runs / "front"
    study = optuna.load_study(study_name="front", storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal"))))
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    metas = {m["config_id"]: m for m in (json.loads(p.read_text()) for p in (folder / "records").glob("*.json"))}
    assert sorted(tuple(t.values) for t in study.trials) == sorted(tuple(m["objectives"]) for m in metas.values())
    records = pd.read_csv(folder / "records.csv")
    for config_id, meta in metas.items():  # objective 2: forgetting of fd after task 2, seed mean, by hand
        fd = records[(records["config_id"] == config_id) & (records["metric"] == "fd") & (records["eval_task"] == 1)]
        ends = fd[fd["step"] == fd.groupby(["seed", "train_task"])["step"].transform("max")]
        per_seed = ends.pivot(index="seed", columns="train_task", values="value")
        assert meta["objectives"][1] == pytest.approx((per_seed[2] - per_seed[1]).mean())
    ids = sorted(metas)
    ranks = pareto_ranks([metas[c]["objectives"] for c in ids], [False, False])
    _, _, mlruns = mlflow_runs(folder)
    tags = {r.data.tags["config_id"]: r.data.tags for r in mlruns if r.data.tags["level"] == "configuration"}
    assert [tags[c]["pareto_rank"] for c in ids] == [str(r) for r in ranks]
    assert [tags[c]["pareto"] == "front" for c in ids] == [r == 1 for r in ranks]
    args = ["--sweep", "front", "--runs-dir", str(runs), "--metric", "fd"]
    table = run(main, ["table", *args, "--pareto", "--format", "csv"])
    assert table.exit_code == 0, table.output
    front = pd.read_csv(io.StringIO(table.output[table.output.index("method,"):])).set_index("config_id")
    assert list(front.columns[2:6]) == ["mean_fd", "mean_fd_se", "forgetting_fd", "forgetting_fd_se"]
    assert {c: bool(front.loc[c, "front"]) for c in ids} == {c: r == 1 for c, r in zip(ids, ranks)}
    plot = run(main, ["plot", *args, "--kind", "pareto", "--out", str(tmp_path / "front.png")])
    assert plot.exit_code == 0 and (tmp_path / "front.png").stat().st_size > 0
