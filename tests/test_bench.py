"""scripts/bench.py: a cheap section rendered into BENCHMARKS.md's blocks, the GPU rows on CPU, the merge
of a later ``--only`` run, and the section-1 fix (a report serialises only the new records, same bytes)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
OLD = "# Benchmarks\n\nFigures by hand.\n\n## Start-up time\n\n| a | b |\n| --- | ---: |\n| x | 1 |\n"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return {name: importlib.import_module(f"bench.{name}") for name in ("cli", "common", "fisher_cost", "gpu")}


def test_table_aligns_and_formats(bench):
    text = bench["common"].table(["what", "seconds"], [["a", 1.23456], ["b", "2.0"]])
    assert text.splitlines() == ["| what | seconds |", "| --- | ---: |", "| a | 1.23 |", "| b | 2.0 |"]


def test_fisher_section_and_gpu_rows_render(bench, tmp_path):
    cli = bench["cli"]
    fisher = bench["fisher_cost"].measure(quick=True, samples=8)
    assert fisher.ratio == pytest.approx(float(fisher.ratio_text.split("×")[0]), rel=0.05)
    assert fisher.verdict() == ("met" if fisher.ratio >= 10 else "missed")
    gpu = cli.run_section("gpu", quick=True)
    info = {"cpu": "2", "memory": "1 GiB", "gpu": "none", "python": "3", "os": "linux", "versions": "torch",
            "load": "0", "date": "2026-01-01 00:00"}
    text = cli.render({"fisher": fisher, "gpu": gpu}, OLD, " --quick", info, 12.0)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert "| diagonal seconds / rank-1 seconds | " + f"{fisher.ratio:.1f} |" in rows
    assert any(r.startswith("| rank-1 (ḡ, then ρ by projection) |") for r in rows)
    assert any(r.startswith("| diagonal (per-sample gradients) |") for r in rows)
    if not torch.cuda.is_available():
        gpu_rows = [r for r in rows if r.startswith(("| imagenet32 paper UNet", "| cw10_paper policy"))]
        assert len(gpu_rows) == 2
        assert all(r.count("not measured (no GPU on this machine)") == 8 for r in gpu_rows)
        assert gpu.verdict() == "not measured" and gpu.ratio is None
    summary = [r for r in rows if r.startswith("| 3. Rank-1")]
    assert len(summary) == 1 and f"| {fisher.ratio_text} | **{fisher.verdict()}** |" in summary[0]
    # the hand-run figures of a file without markers move below their own heading, headings demoted
    assert "## Earlier hand-run figures" in text and "### Start-up time" in text and "| x | 1 |" in text
    assert text.index("<!-- section:fisher -->") < text.index("## Earlier hand-run figures")
    # a later --only run replaces its own block and keeps the others and the earlier figures once
    again = cli.render({"gpu": gpu}, text, " --only gpu", {**info, "date": "2026-01-02 00:00"}, 1.0)
    assert again.count("<!-- section:fisher -->") == 1 and again.count("### Start-up time") == 1
    assert "Measured 2026-01-01 00:00 with `scripts/bench.py --quick`" in again
    assert "Measured 2026-01-02 00:00 with `scripts/bench.py --only gpu`" in again
    assert "| overhead | | not run yet | **not measured** | |" in again


def test_report_serialises_only_new_records_with_the_same_bytes(tmp_path):
    from trainables.build import configure, make_runs
    from trainables.trainable import Trial

    config = configure("finetune", {"optimizer": "sgd", "lr": 0.03}, "permuted_digits", {"preset": "tiny"},
                       seeds=(0, 1), objective_metric="accuracy")
    trial = Trial(config, make_runs(config), {"config_id": "0012e4", "sweep": "s", "stage": "search"})
    trial.save(tmp_path)  # no records yet: the header only
    assert (tmp_path / "records.csv").read_text().splitlines() == [
        "method,seed,step,train_task,eval_task,metric,value,config_id,benchmark,sweep,num_tasks,stage"]
    for k in (1, 2, 3):
        trial.next_task()
        trial.save(tmp_path)
        assert trial._csv_rows == len(trial.records) and len(trial._csv) == k + 1  # one piece per report
        trial.frame().to_csv(tmp_path / "whole.csv", index=False)
        assert (tmp_path / "records.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    restored = Trial(config, make_runs(config), trial.context)
    restored.load(tmp_path)
    assert restored._csv == [] and restored.done == 3
    restored.save(tmp_path)
    restored.frame().to_csv(tmp_path / "whole.csv", index=False)
    assert (tmp_path / "records.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
