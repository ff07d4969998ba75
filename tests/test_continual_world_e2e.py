"""Continual-World through the command line: `orchestrate run` and a sweep on a reduced cw_mini."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from trainables.records import read

# cw_mini cut to seconds: 2 tasks, a few steps, short episodes
REDUCED = {"num_tasks": 2, "steps_per_task": 6, "eval_every": 3, "dense_until": 2, "demos_per_task": 4,
           "heldout_demos": 1, "eval_rollouts": 3, "max_episode_steps": 24, "ddim_steps": 2,
           "replay_ddim_steps": 2, "batch_size": 16, "demo_workers": 1}


def test_run_on_cw_mini_records_success_of_every_seen_task_at_every_evaluation(tmp_path):
    out = tmp_path / "r.csv"
    sets = [f"benchmark.{k}={v}" for k, v in REDUCED.items()]
    result = CliRunner().invoke(main, ["run", "--method", "trust_region", "--benchmark", "continual_world",
                                       "--preset", "cw_mini", "--set", "lr=1e-3", "--set", "buffer_per_task=20",
                                       "--set", "fisher_samples=16", *sum((["--set", s] for s in sets), [])
                                       + ["--out", str(out)]])
    assert result.exit_code == 0, result.output
    assert "task 2: objective" in result.output
    df = read(out)
    success = df[df["metric"] == "success"]
    seen = success.groupby("step")["eval_task"].apply(sorted).to_dict()
    assert seen == {3: [1], 6: [1], 9: [1, 2], 12: [1, 2]}  # eval_every 3 and each task's end
    assert success["value"].between(0, 1).all()
    # the value is a fraction of 3 rollouts
    assert all(round(v * 3) == pytest.approx(v * 3) for v in success["value"])
    denoise = df[df["metric"] == "denoise_loss"]
    assert {1, 2} <= set(denoise["step"])  # the cheap metric also runs on the dense grid


@pytest.mark.e2e
def test_sweep_on_reduced_cw_mini_tables_success_and_forgetting_per_method(tmp_path):
    space = {"name": "cw_e2e", "benchmark": {"name": "continual_world", "preset": "cw_mini", **REDUCED},
             "seeds": [0, 1], "objective": {"metric": "success", "reduce": "mean", "mode": "max"},
             "budget": {"num_samples": 2, "max_concurrent": 2, "sampler_seed": 0, "start_with_defaults": True},
             "methods": {"finetune": {"lr": 1e-3},
                         "trust_region": {"lr": 1e-3, "lam": {"loguniform": [1.0, 100.0]}, "buffer_per_task": 20,
                                          "fisher_samples": 16}}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    out = CliRunner().invoke(main, ["sweep", "--space", str(tmp_path / "space.yaml"), "--runs-dir",
                                    str(tmp_path / "runs"), "--cpus-per-trial", "1"])
    assert out.exit_code == 0, out.output
    folder = tmp_path / "runs" / "cw_e2e"
    metas = [json.loads(p.read_text()) for p in (folder / "records").glob("*.json")]
    assert sorted(m["method"] for m in metas) == ["finetune", "trust_region"]
    assert all(m["status"] == "finished" for m in metas)
    table = pd.read_csv(folder / "results.csv", dtype={"config_id": str})
    assert sorted(table["method"]) == ["finetune", "trust_region"] and (table["seeds"] == 2).all()
    for column in ("final", "final_se", "forgetting", "forgetting_se"):
        assert table[column].between(-1, 1).all(), column
    records = pd.concat(read(p) for p in (folder / "records").glob("*.csv"))
    ends = records[(records["metric"] == "success") & (records["step"] == 12)]
    assert sorted(ends.groupby("method")["seed"].nunique().items()) == [("finetune", 2), ("trust_region", 2)]
    assert "Meta-World 3.1.1 -v3" in (folder / "results.md").read_text()
