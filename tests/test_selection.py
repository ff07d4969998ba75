"""Selection without self-deception, without Ray: the seed-aware objective on hand-computed per-seed values,
a trial's objectives from hand-built records (final, forgetting, lower bound), the Pareto set of a
hand-built table, which configurations a confirmation reruns, analysis reporting confirmation seeds by
default, and every new space key refused in one line with exit code 2."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from analysis.pareto import dominates, non_dominated, pareto_ranks, pareto_table
from core.records import Record
from core.stats import seed_objective
from orchestrator.cli import main
from orchestrator.confirm import pareto_tags, points, select_top
from orchestrator.objectives import report
from orchestrator.space_selection import Objective
from orchestrator.spaces import SpaceError, validate


def test_lower_bound_objective_on_hand_computed_seeds():
    values = [1.0, 2.0, 3.0]  # mean 2, sample SD 1, SE 1/sqrt(3) = 0.57735
    assert seed_objective(values, "mean") == 2.0
    assert seed_objective(values, "lower_bound", 1.0, higher_is_better=True) == pytest.approx(2 - 0.5773503)
    assert seed_objective(values, "lower_bound", 2.0, higher_is_better=False) == pytest.approx(2 + 1.1547005)
    assert seed_objective(values, "lower_bound", 0.0) == 2.0
    assert math.isnan(seed_objective([5.0], "lower_bound", 1.0))  # one seed: SE undefined
    assert math.isnan(seed_objective([1.0, math.nan], "lower_bound", 1.0))
    with pytest.raises(ValueError, match="objective.seeds: 'median'"):
        seed_objective(values, "median")


def _records() -> list[Record]:
    """Two seeds, three tasks of a higher-is-better metric `acc`: R[k, j] at each phase's last step, and an
    earlier evaluation in phase 3 that must not count."""
    R = {0: {1: [0.9], 2: [0.7, 0.8], 3: [0.5, 0.6, 0.9]},
         1: {1: [0.8], 2: [0.8, 0.6], 3: [0.4, 0.6, 0.7]}}
    out = []
    for seed, phases in R.items():
        for k, row in phases.items():
            out += [Record("m", seed, 10 * k, k, j + 1, "acc", v) for j, v in enumerate(row)]
        out.append(Record("m", seed, 25, 3, 1, "acc", 0.0))  # mid-phase: not the end of task 3
    return out


def test_trial_objectives_from_hand_built_records():
    goals = (Objective("acc", "mean", "max", seeds="lower_bound", k=1.0),
             Objective("acc", "mean", "min", score="forgetting"))
    out = report(_records(), [0, 1], 3, goals, {"acc": True})
    # final average after task 3: seed 0 (0.5+0.6+0.9)/3 = 0.6667, seed 1 (0.4+0.6+0.7)/3 = 0.5667
    assert out["objective_seed0"] == pytest.approx(2 / 3) and out["objective_seed1"] == pytest.approx(1.7 / 3)
    mean, se = (2 / 3 + 1.7 / 3) / 2, abs(2 / 3 - 1.7 / 3) / 2  # SE of two values: half their distance
    assert out["objective_mean"] == pytest.approx(mean) and out["objective_se"] == pytest.approx(se)
    assert out["objective"] == pytest.approx(mean - se)  # max: mean − 1·SE
    # forgetting after task 3: seed 0 ((0.9-0.5) + (0.8-0.6))/2 = 0.3, seed 1 ((0.8-0.4) + (0.6-0.6))/2 = 0.2
    assert out["objective2_seed0"] == pytest.approx(0.3) and out["objective2_seed1"] == pytest.approx(0.2)
    assert out["objective2"] == pytest.approx(0.25)
    after_1 = report(_records(), [0, 1], 1, goals, {"acc": True})
    assert after_1["objective2"] == 0.0 and after_1["objective_seed0"] == pytest.approx(0.9)
    worst = report(_records(), [0, 1], 2, (Objective("acc", "worst", "max"),), {"acc": True})
    assert worst["objective_seed0"] == pytest.approx(0.7) and worst["objective_seed1"] == pytest.approx(0.6)


def test_pareto_set_of_a_hand_built_table():
    # (accuracy: max, forgetting: min)
    table = {"a": (0.9, 0.30), "b": (0.8, 0.10), "c": (0.7, 0.20), "d": (0.9, 0.40), "e": (0.6, 0.05),
             "f": (math.nan, 0.0)}
    points = list(table.values())
    assert dominates(table["a"], table["d"], [True, False]) and not dominates(table["a"], table["b"], [True, False])
    ranks = dict(zip(table, pareto_ranks(points, [True, False])))
    assert ranks == {"a": 1, "b": 1, "e": 1, "c": 2, "d": 2, "f": 0}
    assert list(non_dominated(points, [True, False])) == [True, True, False, False, True, False]
    assert list(pareto_ranks(points, [True, True])) == [2, 3, 3, 1, 4, 0]  # d; a; b, c; e


def test_pareto_table_from_records_uses_mean_and_se_over_seeds():
    rows = []
    for config, per_seed in {"x": [(0.9, 0.7), (0.7, 0.5)], "y": [(0.8, 0.8), (0.6, 0.6)]}.items():
        for seed, (r11, r21) in enumerate(per_seed):  # two tasks: R[1,1], R[2,1]; R[2,2] = 1.0
            rows += [("m", seed, 1, 1, 1, "acc", r11), ("m", seed, 2, 2, 1, "acc", r21), ("m", seed, 2, 2, 2, "acc", 1.0)]
            rows[-3:] = [r + (config,) for r in rows[-3:]]
    records = pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value",
                                          "config_id"])
    objectives = [{"metric": "acc", "reduce": "mean"}, {"metric": "acc", "score": "forgetting"}]
    table = pareto_table(records, objectives, {"acc": True}).set_index("config_id")
    # x: final (0.7+1)/2, (0.5+1)/2 -> 0.85, 0.75: mean 0.8, SE 0.05; forgetting 0.2, 0.2 -> 0.2, SE 0
    # y: final 0.9, 0.8: mean 0.85; forgetting 0, 0 -> 0: y dominates x
    assert table.loc["x", "mean_acc"] == pytest.approx(0.8) and table.loc["x", "mean_acc_se"] == pytest.approx(0.05)
    assert table.loc["x", "forgetting_acc"] == pytest.approx(0.2) and table.loc["y", "forgetting_acc"] == 0
    assert table.loc["y", "mean_acc"] == pytest.approx(0.85)
    assert table.loc["y", "rank"] == 1 and bool(table.loc["y", "front"]) and table.loc["x", "rank"] == 2


def _meta(config_id, method, objective, status="finished", objectives=None):
    return {"config_id": config_id, "method": method, "status": status, "objective": objective,
            "params": {"lr": 0.1}, **({"objectives": objectives} if objectives else {})}


def test_confirmation_takes_each_methods_top_k_finished_configurations():
    metas = [_meta("a", "ewc", 3.0), _meta("b", "ewc", 1.0), _meta("c", "ewc", 0.5, "stopped"),
             _meta("d", "ewc", 1.0), _meta("e", "finetune", None), _meta("f", "finetune", 2.0),
             _meta("g", "replay", 9.0, "diverged")]
    chosen = select_top(metas, 2, ["min"])
    assert [(s["config_id"], s["rank"]) for s in chosen] == [("b", 1), ("d", 2), ("f", 1)]  # a tie: first id
    assert [s["config_id"] for s in select_top(metas, 1, ["max"])] == ["a", "f"]
    (point, *_) = points(chosen)
    assert point == {"method": "ewc", "ewc.lr": 0.1, "confirm_of": "b", "confirm_rank": 1}
    two = [_meta("p", "m", 1.0, objectives=[1.0, 5.0]), _meta("q", "m", 2.0, objectives=[2.0, 1.0]),
           _meta("r", "m", 0.5, objectives=[0.5, 6.0]), _meta("s", "m", 3.0, objectives=[3.0, 2.0])]
    # max, min: q and r... r dominated by p? p (1.0, 5.0) vs r (0.5, 6.0): p better on both -> r rank 2
    assert [s["config_id"] for s in select_top(two, 3, ["max", "min"])] == ["s", "q", "p"]


def test_pareto_members_are_tagged_by_the_search_objectives():
    class Space:
        objectives = (Objective("fd", "mean", "min"), Objective("fd", "mean", "min", score="forgetting"))
        objective = objectives[0]

    metas = [_meta("a", "m", 1.0, objectives=[1.0, 3.0]), _meta("b", "m", 2.0, objectives=[2.0, 1.0]),
             _meta("c", "m", 2.0, objectives=[2.5, 3.0]), _meta("d", "m", None, "diverged")]
    assert pareto_tags(Space, metas) == {"a": {"pareto_rank": "1", "pareto": "front"},
                                         "b": {"pareto_rank": "1", "pareto": "front"},
                                         "c": {"pareto_rank": "2", "pareto": "dominated"}}


def _staged_records(path):
    """Search on seeds 0, 1 (2 tasks), confirmation on seeds 2, 3 (3 tasks) of configs a and b of method m,
    and config c of method n. On the search, a beats b (lower fd); on the confirmation b would beat a."""
    rows = []
    def run(config, method, stage, seed, n, level):
        for k in range(1, n + 1):
            rows.extend((method, seed, 10 * k, k, j, "fd", level + j, config, stage, n) for j in range(1, k + 1))
    for seed in (0, 1):
        run("a", "m", "search", seed, 2, 1.0 + seed)
        run("b", "m", "search", seed, 2, 5.0 + seed)
        run("c", "n", "search", seed, 2, 3.0)
    for seed in (2, 3):
        run("a", "m", "confirm", seed, 3, 9.0 + seed)
        run("b", "m", "confirm", seed, 3, 2.0)
        run("c", "n", "confirm", seed, 3, 4.0)
    pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value", "config_id",
                                "stage", "num_tasks"]).to_csv(path, index=False)
    return str(path)


def test_analysis_reports_confirmation_seeds_of_the_search_selected_configuration(tmp_path):
    path = _staged_records(tmp_path / "r.csv")
    invoke = CliRunner().invoke
    out = invoke(main, ["table", "--records", path, "--metric", "fd", "--format", "csv"])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(pd.io.common.StringIO(out.output)).set_index("method")
    # m: a was selected on the search seeds (fd 1.5 + mean j), shown on seeds 2, 3 only: (9+2 .. ) not b's 2.0s
    assert table.loc["m", "config_id"] == "a" and table.loc["m", "seeds"] == 2
    assert table.loc["m", "final"] == pytest.approx(np.mean([9 + 2 + j for j in (1, 2, 3)] + [9 + 3 + j for j in (1, 2, 3)]))
    md = invoke(main, ["table", "--records", path, "--metric", "fd"]).output
    assert md.splitlines()[0] == "selected on seeds 0, 1, reported on seeds 2, 3"
    search = invoke(main, ["table", "--records", path, "--metric", "fd", "--stage", "search", "--format", "csv"])
    table = pd.read_csv(pd.io.common.StringIO(search.output)).set_index("method")
    assert table.loc["m", "config_id"] == "a" and table.loc["m", "final"] == pytest.approx(np.mean([2, 3, 3, 4]))
    compared = invoke(main, ["compare", "--records", path, "--metric", "fd", "--baseline", "n", "--format", "csv"])
    assert compared.exit_code == 0 and "selected on" not in compared.output
    diff = pd.read_csv(pd.io.common.StringIO(compared.output)).set_index("score").loc["final", "diff"]
    assert diff == pytest.approx(np.mean([11 + 2, 12 + 2]) - 6.0)  # a's confirmation final minus c's
    front = invoke(main, ["table", "--records", path, "--metric", "fd", "--pareto", "--format", "csv"])
    assert sorted(pd.read_csv(pd.io.common.StringIO(front.output))["config_id"]) == ["a", "b", "c"]
    bad = invoke(main, ["table", "--records", path, "--metric", "fd", "--config", "z"])
    assert bad.exit_code == 2 and "--config: 'z' has no confirmation runs" in bad.output


GOOD = {"name": "sel", "benchmark": {"name": "split_digits_diffusion", "preset": "tiny", "num_tasks": 3},
        "seeds": [0, 1], "objective": {"metric": "fd", "seeds": "lower_bound", "k": 1},
        "protocol": {"first_tasks": 2}, "budget": {"num_samples": 2, "confirm": {"top": 1, "seeds": [2, 3]}},
        "methods": {"finetune": {"lr": {"loguniform": [1e-4, 1e-3]}}}}
TWO = [{"metric": "fd"}, {"metric": "fd", "score": "forgetting"}]
BAD = [
    ("budget.confirm.seeds", [1, 2], "budget.confirm.seeds: [1, 2] is not allowed; allowed: seeds never used for "
     "selection (not 0, 1; 1 is a search seed)"),
    ("budget.confirm.seeds", [], "budget.confirm.seeds: [] is not allowed; allowed: a non-empty list of distinct"),
    ("budget.confirm.seeds", [5], "budget.confirm.seeds: [5] is not allowed with objective seeds lower_bound"),
    ("budget.confirm.top", 0, "budget.confirm.top: 0 is not allowed; allowed: an integer >= 1 and <= 1000"),
    ("budget.confirm.x", 1, "budget.confirm.x: unknown key; allowed: top, seeds"),
    ("budget.confirm", [2], "budget.confirm: [2] is not allowed; allowed: a mapping {top: K, seeds: [...]}"),
    ("protocol", "whole", "protocol: 'whole' is not allowed; allowed: full_stream, {first_tasks: k} or "
     "{held_out_stream: {benchmark settings}}"),
    ("protocol", {"first_tasks": 3}, "protocol.first_tasks: 3 is not allowed; allowed: an integer >= 1 and < the "
     "stream's 3 tasks"),
    ("protocol", {"held_out_stream": {"split_seed": 0}}, "protocol.held_out_stream: {'split_seed': 0} is the target "
     "stream itself"),
    ("protocol", {"held_out_stream": {"split_seed": -1}}, "protocol.held_out_stream.split_seed: -1 is not allowed"),
    ("protocol", {"held_out_stream": {"preset": "tiny"}}, "protocol.held_out_stream.preset: not allowed"),
    ("objective.seeds", "median", "objective.seeds: 'median' is not allowed; allowed: mean, lower_bound"),
    ("objective.k", -1, "objective.k: -1 is not allowed; allowed: a finite number >= 0 and <= 100"),
    ("objective.score", "bwt", "objective.score: 'bwt' is not allowed; allowed: final, forgetting"),
    ("seeds", [0], "objective.seeds: lower_bound is not allowed with one seed"),
    ("objective", TWO * 2, "objective: [{'metric': 'fd'}, "),
    ("objective", [TWO[0], TWO[0]], "objective[1]: mean_fd repeats objective[0]"),
    ("objective", [TWO[0], {**TWO[1], "mode": "max"}], "objective[1].mode: 'max' is not allowed for the "
     "forgetting of fd; allowed: min"),
    ("budget.scheduler", "asha", "budget.scheduler: 'asha' is not allowed with two objectives"),
]


def _changed(path: str, value):
    doc = copy.deepcopy(GOOD)
    if path == "budget.scheduler":
        doc["objective"] = TWO
    node, keys = doc, path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    if path == "objective.k":
        doc["objective"]["seeds"] = "lower_bound"
    return doc


def test_the_good_space_round_trips():
    space = validate(copy.deepcopy(GOOD))
    assert space.search_num_tasks == 2 and space.num_tasks == 3 and space.budget.confirm.seeds == (2, 3)
    assert validate(yaml.safe_load(space.to_yaml())) == space
    held = validate({**copy.deepcopy(GOOD), "protocol": {"held_out_stream": {"split_seed": 1}}, "objective": TWO})
    assert held.search_config.split_seed == 1 and held.bench_config.split_seed == 0
    assert validate(yaml.safe_load(held.to_yaml())) == held


@pytest.mark.parametrize("path,value,message", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_every_new_key_is_validated_in_one_line(path, value, message):
    with pytest.raises(SpaceError) as err:
        validate(_changed(path, value))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("path,value,message", BAD[:1] + BAD[7:8] + BAD[11:12] + BAD[-1:],
                         ids=["confirm seeds", "first_tasks", "objective seeds", "asha"])
def test_the_cli_refuses_them_with_exit_2(tmp_path, path, value, message):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(_changed(path, value)))
    out = CliRunner().invoke(main, ["sweep", "--space", str(tmp_path / "s.yaml"), "--runs-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and out.output.strip() == f"error: {out.output.strip()[7:]}"
    assert message in out.output and len(out.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_held_out_stream_searches_its_stream_and_confirms_on_the_target(tmp_path):
    from orchestrator.sweep_dir import SweepDir
    from orchestrator.tuner import Resources, trial_spec

    space = validate({**copy.deepcopy(GOOD), "protocol": {"held_out_stream": {"split_seed": 1}}})
    folder = SweepDir(tmp_path, "sel")
    search, confirm = trial_spec(space, folder, Resources()), trial_spec(space, folder, Resources(), "confirm")
    assert search.bench_config.split_seed == 1 and search.num_tasks == 3 and search.seeds == (0, 1)
    assert confirm.bench_config.split_seed == 0 and confirm.seeds == (2, 3) and confirm.selection_task == 3
    first = trial_spec(validate(copy.deepcopy(GOOD)), folder, Resources())
    assert first.num_tasks == 2 and first.bench_config == space.bench_config
