"""The analysis commands on a records file from outside the project: the contract columns, golden
Markdown and LaTeX layouts, and clear errors for broken input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from orchestrator.cli import main

GOLDEN = Path(__file__).parent / "golden"

# accuracy R[k, j] per method and seed (higher is better), evaluated at the end of each of 2 tasks (steps
# 10 and 20) plus a mid-phase evaluation at step 15 that must not count as the end of task 2
R = {("er", 0): {(1, 1): 0.90, (2, 1): 0.70, (2, 2): 0.80},
     ("er", 1): {(1, 1): 0.80, (2, 1): 0.60, (2, 2): 0.90},
     ("sgd", 0): {(1, 1): 0.95, (2, 1): 0.20, (2, 2): 0.96},
     ("sgd", 1): {(1, 1): 0.85, (2, 1): 0.30, (2, 2): 0.94}}


def write_records(path: Path, drop=None, num_tasks=2) -> Path:
    """The records of R as a CSV; ``num_tasks`` is the stream's length column (None: old records
    without it)."""
    rows = []
    for (method, seed), entries in R.items():
        for (k, j), value in entries.items():
            if drop == (method, seed, k, j):
                continue
            rows.append((method, seed, 10 * k, k, j, "accuracy", value))
            if k == 2:
                rows.append((method, seed, 15, 2, j, "accuracy", 0.0))
    df = pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value"])
    if num_tasks is not None:
        df["num_tasks"] = num_tasks
    df.to_csv(path, index=False)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_table_csv_has_the_contract_columns_and_hand_computed_numbers(tmp_path):
    out = invoke("table", "--records", write_records(tmp_path / "r.csv"), "--metric", "accuracy", "--format", "csv")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "method,seeds,final,final_se,forgetting,forgetting_se,bwt,bwt_se,aaa,aaa_se,config_id"
    df = pd.read_csv(tmp_path / "r.csv").pipe(lambda _: pd.read_csv(__import__("io").StringIO(out.output)))
    er = df[df["method"] == "er"].iloc[0]
    # er seed 0: final (0.7+0.8)/2 = 0.75, forgetting 0.9-0.7 = 0.2, bwt -0.2, aaa (0.9 + 0.75)/2 = 0.825
    # er seed 1: final 0.75, forgetting 0.2, bwt -0.2, aaa (0.8 + 0.75)/2 = 0.775
    assert er["final"] == pytest.approx(0.75) and er["final_se"] == pytest.approx(0.0)
    assert er["forgetting"] == pytest.approx(0.2) and er["bwt"] == pytest.approx(-0.2)
    assert er["aaa"] == pytest.approx(0.8) and er["aaa_se"] == pytest.approx(0.025)  # sd 0.0354 / sqrt 2
    sgd = df[df["method"] == "sgd"].iloc[0]
    # sgd: forgetting 0.75 and 0.55 -> mean 0.65, SE 0.1
    assert sgd["forgetting"] == pytest.approx(0.65) and sgd["forgetting_se"] == pytest.approx(0.1)


@pytest.mark.parametrize("fmt,suffix", [("md", "md"), ("latex", "tex"), ("html", "html")])
def test_table_layouts_match_golden_files(tmp_path, fmt, suffix):
    out = invoke("table", "--records", write_records(tmp_path / "r.csv"), "--metric", "accuracy", "--format", fmt,
                 "--out", tmp_path / f"t.{suffix}")
    assert out.exit_code == 0, out.output
    assert (tmp_path / f"t.{suffix}").read_text() == (GOLDEN / f"table.{suffix}").read_text()


def test_a_missing_entry_makes_the_method_incomplete_not_a_shorter_average(tmp_path):
    path = write_records(tmp_path / "r.csv", drop=("er", 1, 2, 1))
    out = invoke("table", "--records", path, "--metric", "accuracy", "--format", "csv")
    assert out.exit_code == 0
    df = pd.read_csv(__import__("io").StringIO(out.output))
    er = df[df["method"] == "er"].iloc[0]
    assert pd.isna(er["final"]) and "seed 1: task 1 after task 2 missing" in er["missing"]
    assert df[df["method"] == "sgd"].iloc[0]["final"] == pytest.approx(0.60)  # untouched by er's hole


def test_broken_input_gives_one_line_errors(tmp_path):
    path = write_records(tmp_path / "r.csv")
    out = invoke("table", "--records", path, "--metric", "fd")
    assert out.exit_code == 2 and out.output.strip() == "error: metric 'fd' not in records; metrics present: accuracy"
    out = invoke("table", "--records", tmp_path / "none.csv", "--metric", "accuracy")
    assert out.exit_code == 2 and "no such file" in out.output
    pd.read_csv(path).rename(columns={"eval_task": "task"}).to_csv(tmp_path / "bad.csv", index=False)
    out = invoke("table", "--records", tmp_path / "bad.csv", "--metric", "accuracy")
    assert out.exit_code == 2 and "missing column(s) eval_task" in out.output
    pd.read_csv(path).assign(metric="bleu").to_csv(tmp_path / "bleu.csv", index=False)
    out = invoke("table", "--records", tmp_path / "bleu.csv", "--metric", "bleu")
    assert out.exit_code == 2 and "direction of 'bleu' is unknown" in out.output and "--mode" in out.output
    assert invoke("table", "--records", tmp_path / "bleu.csv", "--metric", "bleu", "--mode", "max").exit_code == 0
    out = invoke("table", "--metric", "accuracy")
    assert out.exit_code == 2 and "--sweep or --records: give exactly one" in out.output


def test_reconvergence_and_plot_commands_on_a_records_file(tmp_path):
    """er's task 1 after task 2 starts (s_2 = 10): 0.0 at step 15 (the mid-phase evaluation), then
    0.65 (seed mean) at step 20; P_1 = R[1, 1] = 0.85, so x = 0.8 needs 0.68 (never met) and a
    threshold of 0.75 needs 0.6375 (met at step 20: 10 steps)."""
    path = write_records(tmp_path / "r.csv")
    out = invoke("reconvergence", "--records", path, "--metric", "accuracy", "--thresholds", "0.8,0.75",
                 "--format", "csv")
    assert out.exit_code == 0, out.output
    rows = pd.read_csv(__import__("io").StringIO(out.output))
    er = rows[rows["method"] == "er"].set_index("threshold")["steps"]
    assert pd.isna(er[0.8]) and er[0.75] == 10
    assert list(rows.columns) == ["method", "threshold", "after_task", "steps"]
    md = invoke("reconvergence", "--records", path, "--metric", "accuracy", "--thresholds", "0.8").output
    assert "| er | 0.8 | 2 | – |" in md
    out = invoke("reconvergence", "--records", path, "--metric", "accuracy", "--task", "x")
    assert out.exit_code == 2 and "--task: 'x' is not allowed" in out.output
    out = invoke("plot", "--records", path, "--metric", "accuracy", "--out", tmp_path / "f.png")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "f_heatmap.png").exists()
    out = invoke("plot", "--records", path, "--metric", "accuracy", "--out", tmp_path / "f.jpg")
    assert out.exit_code == 2 and "a .png or .svg file" in out.output


def test_an_inf_value_is_one_line_naming_its_row_and_exit_2(tmp_path):
    path = write_records(tmp_path / "r.csv")
    df = pd.read_csv(path)
    df.loc[3, "value"] = float("inf")       # row 3: er, seed 0, R[2, 2] at step 20
    df.to_csv(path, index=False)
    row = df.loc[3]
    out = invoke("table", "--records", path, "--metric", "accuracy")
    assert out.exit_code == 2
    assert out.output.strip() == (f"error: records: row 3 (method {row['method']}, seed {row['seed']}, step "
                                  f"{row['step']}, metric accuracy) has value inf; allowed: finite numbers")


def test_old_records_without_num_tasks_get_a_note(tmp_path):
    out = invoke("table", "--records", write_records(tmp_path / "r.csv", num_tasks=None), "--metric", "accuracy")
    assert out.exit_code == 0
    assert out.output.splitlines()[-1].startswith("note: the records carry no num_tasks column, so the "
                                                  "stream's length N = 2 tasks is inferred")


def test_reconvergence_per_seed_cells_k_of_n_and_survivors_only_in_csv(tmp_path):
    """er, task 1 after task 2 (s_2 = 10), at step 20: seed 0 is at 0.70 of P = 0.90, seed 1 at 0.60 of
    P = 0.80. x = 0.74: seed 0 (0.70 >= 0.666) and seed 1 (0.60 >= 0.592) both, 10 steps each: 10±0;
    x = 0.77: only seed 0 (0.60 < 0.616): '1/2' in the table, the survivor's 10 only in the CSV."""
    path = write_records(tmp_path / "r.csv")
    args = ("reconvergence", "--records", path, "--metric", "accuracy", "--thresholds", "0.74,0.77",
            "--aggregate", "seeds")
    md = invoke(*args).output
    assert "| er | 0.74 | 2 | 10.0±0.0 |" in md and "| er | 0.77 | 2 | 1/2 |" in md
    rows = pd.read_csv(__import__("io").StringIO(invoke(*args, "--format", "csv").output))
    assert list(rows.columns) == ["method", "threshold", "after_task", "steps", "steps_se", "reconverged",
                                  "seeds", "steps_reconverged_mean"]
    er = rows[rows["method"] == "er"].set_index("threshold")
    assert pd.isna(er.loc[0.77, "steps"]) and er.loc[0.77, "steps_reconverged_mean"] == 10
    assert (er.loc[0.77, "reconverged"], er.loc[0.77, "seeds"]) == (1, 2)
