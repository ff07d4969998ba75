"""Start-up and exit faults of `orchestrate sweep`: bad options fail at once in one line (exit 2) with
nothing written; a start that fails before sweep.json leaves no folder; a sweep stopped before Ray saved
its experiment resumes from scratch; a sweep where no configuration finished exits 1 after its summary."""

from __future__ import annotations

import json
import os
import socket
import time

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from sweep_helpers import SPACE


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(dict(SPACE, name="faults")))
    return path


BAD = [
    (["--name", "."], "--name"),
    (["--name", ".."], "--name"),
    (["--name", ".hidden"], "--name"),
    (["--name", "a/b"], "--name"),
    (["--name", "../escape"], "--name"),
    (["--name", "two\nlines"], "--name"),
    (["--name", "bell\x07"], "--name"),
    (["--name", "with space"], "--name"),
    (["--tracking-uri", "garbage"], "--tracking-uri"),
    (["--tracking-uri", "ftp://127.0.0.1/x"], "--tracking-uri"),
    (["--tracking-uri", f"http://127.0.0.1:{_closed_port()}"], "--tracking-uri"),
    (["--address", "not a host::"], "--address"),
    (["--address", "127.0.0.1:1"], "--address"),
    (["--address", f"ray://127.0.0.1:{_closed_port()}"], "--address"),
    (["--optuna-storage", "garbage"], "--optuna-storage"),
    (["--optuna-storage", f"postgresql://u:pw@127.0.0.1:{_closed_port()}/db"], "--optuna-storage"),
    (["--cpus-per-trial", str(_cpus() + 1)], "--cpus-per-trial"),
    (["--seeds-parallel", "--cpus-per-seed", str(_cpus() + 1)], "--cpus-per-seed"),
    (["--seeds-parallel", "--gpus-per-seed", str(_gpus() + 1)], "--gpus-per-seed"),
    (["--gpus-per-trial", str(_gpus() + 1)], "--gpus-per-trial"),
    (["--max-failures", "-1"], "--max-failures"),
    (["--cpus-per-seed", "0"], "--cpus-per-seed"),
]


@pytest.mark.parametrize("args,field", BAD, ids=[" ".join(a).replace("\n", "\\n") for a, _ in BAD])
def test_bad_option_is_one_line_exit_2_and_nothing_written(tmp_path, space_file, args, field):
    runs = tmp_path / "runs"
    began = time.time()
    out = CliRunner().invoke(main, ["sweep", "--space", str(space_file), "--runs-dir", str(runs), *args])
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), out.output
    assert "pw@" not in out.output  # a password in a URL is never printed
    assert not runs.exists() or not any(runs.iterdir())
    assert time.time() - began < 20


def test_cpus_per_seed_is_free_without_seeds_parallel(tmp_path, space_file, monkeypatch):
    """--cpus-per-seed only matters with --seeds-parallel; validation then stops at the next fault."""
    out = CliRunner().invoke(main, ["sweep", "--space", str(space_file), "--runs-dir", str(tmp_path / "runs"),
                                    "--cpus-per-seed", str(_cpus() + 1), "--address", "not a host::"])
    assert out.exit_code == 2 and "--address" in out.output, out.output


@pytest.mark.parametrize("bad_name", ["..", "a/b", "x\ny"])
def test_resume_of_a_bad_name_is_one_line(tmp_path, bad_name):
    out = CliRunner().invoke(main, ["sweep", "--resume", bad_name, "--runs-dir", str(tmp_path / "runs")])
    assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1, out.output
    assert out.output.startswith("error: --resume")


@pytest.mark.parametrize("fault", [KeyboardInterrupt, RuntimeError])
def test_a_start_failing_before_the_state_is_written_leaves_no_folder(tmp_path, space_file, monkeypatch, fault):
    from orchestrator import sweep as sw
    from orchestrator.tracking import Tracker

    def boom(*args, **kwargs):
        raise fault("between the folder and sweep.json")

    monkeypatch.setattr(Tracker, "start_sweep", boom)
    options = sw.SweepOptions(runs_dir=str(tmp_path / "runs"))
    space, folder = sw.prepare(str(space_file), [], options)
    with pytest.raises(fault):
        sw.start(space, folder, options)
    assert not folder.path.exists() and not any((tmp_path / "runs").iterdir())


@pytest.mark.e2e
def test_all_diverged_sweep_exits_1_after_its_summary_and_resumes_an_unsaved_start(tmp_path, monkeypatch):
    """Interrupted after sweep.json but before Ray saved anything, --resume starts the Tuner afresh; a
    sweep whose every configuration diverged prints its summary, says so, and exits 1."""
    space = dict(SPACE, name="diverging", seeds=[0], budget={"num_samples": 1, "max_concurrent": 1},
                 methods={"ewc": {"lr": 1e30, "optimizer": "sgd"}})
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    runs = tmp_path / "runs"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("orchestrator.tuner.run_tuner", interrupted)
    out = CliRunner().invoke(main, ["sweep", "--space", str(tmp_path / "space.yaml"), "--runs-dir", str(runs)])
    assert out.exit_code != 0 and (runs / "diverging" / "sweep.json").exists()
    monkeypatch.undo()

    out = CliRunner().invoke(main, ["sweep", "--resume", "diverging", "--runs-dir", str(runs)])
    assert out.exit_code == 1, out.output
    assert "sweep diverging: 1 configurations (1 diverged)" in out.output
    assert "error: no configuration of sweep diverging finished" in out.output
    folder = runs / "diverging"
    (meta,) = [json.loads(p.read_text()) for p in (folder / "records").glob("*.json")]
    assert meta["status"] == "diverged"


@pytest.mark.e2e
def test_results_csv_gives_each_row_its_real_status(finished_sweep):
    """The shared tiny sweep: ewc diverged (no records), the others finished."""
    _, folder = finished_sweep
    table = pd.read_csv(folder / "results.csv")
    assert dict(zip(table["method"], table["status"])) == {
        "ewc": "diverged", "finetune": "finished", "trust_region": "finished"}
