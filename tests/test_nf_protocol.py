"""003's S-grid protocol end to end at tiny size: splits, records encoding, the meta-init cache, the table
(PSNR at S = 1, best, S_max) and the plot (PSNR against S)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from analysis.step_grid_table import step_grid_summary
from core.records import validate
from orchestrator.cli import main
from trainables.build import configure, make_benchmark, make_run, method_params
from trainables.step_grid import step_grid
from trainables.trainable import run_configuration


def test_step_grid_doubles_up_to_s_max():
    assert step_grid(1) == [1]
    assert step_grid(8) == [1, 2, 4, 8]
    assert step_grid(12) == [1, 2, 4, 8, 12]


def test_faces_split_is_80_20_and_meta_test_faces_never_reach_meta_training(tmp_path):
    bench = make_benchmark("nf_faces", {"cache_dir": str(tmp_path)})
    assert bench.meta_train.shape == (80, 784, 1) and bench.test.shape == (20, 784, 1)
    assert [len(r) for r in bench.regions] == [196] * 4  # four 28×7 strips
    train, test = bench.meta_train.flatten(1), bench.test.flatten(1)
    assert torch.cdist(test, train).min() > 0  # no test face equals a meta-training face
    again = make_benchmark("nf_faces", {"cache_dir": str(tmp_path)})
    assert torch.equal(again.test, bench.test)  # deterministic split
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        for context, query in bench.meta_episode(generator, 4):
            for batch in (context, query):  # every episode value is a meta-training face's pixel
                idx = torch.cat([torch.nonzero((bench.coords == x).all(1)) for x in batch["x"]]).squeeze(1)
                values = batch["y"].transpose(0, 1)  # (n, B, 1)
                hits = (bench.meta_train[:, idx].unsqueeze(0) == values.unsqueeze(1)).all(-1).all(-1)
                assert hits.any(1).all() and not (bench.test[:, idx].unsqueeze(0)
                                                   == values.unsqueeze(1)).all(-1).all(-1).any()


def test_records_encode_s_as_step_and_meta_init_is_cached(tmp_path):
    settings = {"preset": "tiny", "cache_dir": str(tmp_path)}
    bench = make_benchmark("nf_faces", settings)
    params = method_params("mcl_nf", {"inner_steps": 1})
    run = make_run(bench, "mcl_nf", params, seed=0)
    records = [r for k in (1, 2, 3, 4) for r in run.run_task(k)]
    df = validate(pd.DataFrame([vars(r) for r in records]))
    meta = df[df["metric"].str.startswith("meta_")]
    assert dict(zip(meta["metric"], meta["value"]))["meta_steps"] == 2 and set(meta["step"]) == {0}
    evals = df[df["metric"] == "psnr"]
    assert sorted(set(evals["step"])) == [1, 2, 4]
    for k in (1, 2, 3, 4):
        for s in (1, 2, 4):
            rows = evals[(evals["train_task"] == k) & (evals["step"] == s)]
            assert sorted(rows["eval_task"]) == list(range(1, k + 1))
            signal = df[(df["metric"] == "psnr_signal") & (df["train_task"] == k) & (df["step"] == s)]
            assert list(signal["eval_task"]) == [k]
    cached = list((tmp_path / "meta_init").glob("nf_faces-mcl_nf-*.pt"))
    assert len(cached) == 1
    saved = torch.load(cached[0], weights_only=True)
    assert saved["optimizer"] == "Adam" and saved["meta_steps"] == 2
    # a second run loads the cache: the same initialisation without meta-training (no meta_update call)
    second = make_run(make_benchmark("nf_faces", settings), "mcl_nf", params, seed=0)
    second.template.meta_update = None  # would fail if called
    again = second.run_task(1)
    first_psnr = [r.value for r in records if r.train_task == 1 and r.metric == "psnr"]
    assert [r.value for r in again if r.metric == "psnr"] == first_psnr


@pytest.fixture(scope="module")
def grid_records(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("nf"))
    frames = []
    for method, params in (("mcl_nf", {"inner_steps": 1}), ("finetune", {"lr": 1e-3})):
        config = configure(method, params, "nf_faces", {"preset": "tiny", "cache_dir": cache}, seeds=(0, 1))
        frames.append(run_configuration(config, context={"config_id": method}))
    return pd.concat(frames, ignore_index=True)


def test_table_shows_psnr_at_s1_best_and_s_max(grid_records, tmp_path):
    path = tmp_path / "records.csv"
    grid_records.to_csv(path, index=False)
    summary = step_grid_summary(grid_records, "psnr", higher_is_better=True)
    row = summary[summary["method"] == "finetune"].iloc[0]
    curve = grid_records[(grid_records["metric"] == "psnr_signal") & (grid_records["train_task"] == 4)
                         & (grid_records["method"] == "finetune")]
    per_s = curve.groupby("step")["value"].mean()
    assert row["S=1"] == pytest.approx(per_s[1]) and row["S=max"] == pytest.approx(per_s[4])
    assert row["best"] == pytest.approx(per_s.max()) and row["best_S"] == per_s.idxmax()
    two = curve[curve["step"] == 1]["value"].to_numpy()
    assert row["S=1_se"] == pytest.approx(abs(two[0] - two[1]) / 2)  # SE of two seeds: |a − b| / 2
    out = CliRunner().invoke(main, ["table", "--records", str(path), "--metric", "psnr", "--format", "csv"])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(pd.io.common.StringIO(out.output))
    assert {"S=1", "best", "best_S", "S=max", "final"} <= set(table.columns)
    md = CliRunner().invoke(main, ["table", "--records", str(path), "--metric", "psnr"])
    assert "| method | seeds | best_S | S=1 | best | S=max |" in md.output


def test_plot_draws_psnr_against_s(grid_records, tmp_path):
    path = tmp_path / "records.csv"
    grid_records.to_csv(path, index=False)
    out = CliRunner().invoke(main, ["plot", "--records", str(path), "--metric", "psnr", "--out",
                                    str(tmp_path / "fig.svg")])
    assert out.exit_code == 0, out.output
    svg = (tmp_path / "fig.svg").read_text()
    assert "test-time steps S per task" in svg or "test-time" in svg
    assert "band:mcl_nf" in svg and "band:finetune" in svg


def test_mcl_nf_mod_is_mcl_nf_with_lambda_zero(tmp_path):
    """003's 'Ours (mod)': the same meta-training and test-time records as mcl_nf at λ = 0, value for value;
    λ > 0 changes them (the FIM weights are not all 1)."""
    def psnr(method, params):
        bench = make_benchmark("nf_faces", {"preset": "tiny", "cache_dir": str(tmp_path / method / str(params))})
        run = make_run(bench, method, method_params(method, {"inner_steps": 1, **params}), seed=0)
        return [(r.train_task, r.step, r.eval_task, r.value) for k in (1, 2) for r in run.run_task(k)
                if r.metric == "psnr"]

    mod = psnr("mcl_nf_mod", {})
    assert mod == psnr("mcl_nf", {"lam": 0.0})
    assert mod != psnr("mcl_nf", {"lam": 1.0})


def test_a_sweeps_results_md_has_the_s_grid_columns(grid_records, tmp_path):
    """results.md / results.tex of an S-grid sweep show PSNR at S = 1, best (with best_S) and S_max, as
    `orchestrate table` does."""
    from types import SimpleNamespace

    from analysis.load import Source
    from analysis.report import method_table
    from orchestrator.results import write_results
    from orchestrator.sweep_dir import SweepDir

    table = method_table(Source(records=grid_records, seeds=[0, 1]), "psnr", True)
    space = SimpleNamespace(name="nf", objective=SimpleNamespace(metric="psnr"), directions={"psnr": True},
                            seeds=(0, 1), results_note="")
    sweep = SweepDir(tmp_path, "nf")
    sweep.create()
    paths = write_results(table, sweep, space)
    md = paths["md"].read_text()
    assert "| method | config_id | seeds | best_S | S=1 | best | S=max | final |" in md
    row = table[table["method"] == "finetune"].iloc[0]
    assert f"{row['S=max']:.2f}" in md.split("| finetune |")[1].split("\n")[0]
    assert "S=1" in paths["tex"].read_text()


def test_the_report_of_an_s_grid_sweep_draws_psnr_against_s(grid_records, tmp_path):
    """An S-grid sweep's report: the S-grid table and 003 Figure 2, not task curves over a stream whose step
    is S (which would mix the runs of every S)."""
    from analysis.load import Source
    from analysis.report import build_report

    files = build_report(Source(records=grid_records, seeds=[0, 1], objective={"metric": "psnr", "mode": "max"}),
                         tmp_path / "report")
    names = {f.name for f in files}
    assert {"steps_psnr.png", "steps_mse.png", "report.md", "report.html"} <= names
    assert not any(n.startswith(("task1_", "reconvergence_")) for n in names)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| method | seeds | best_S | S=1 | best | S=max |" in md and "(003 Figure 2)" in md
