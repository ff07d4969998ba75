"""The sweep's manifest and `orchestrate rerun`: a stored seed run again in-process matches its records
exactly on the CPU; a record changed by one ulp, or a changed class order, is named; bad input exits 2."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from core.records import read_csv
from orchestrator.cli import main

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]


def _sweep(finished_sweep) -> Path:
    result, folder = finished_sweep
    assert result.exit_code == 0, result.output
    return folder


def _config(folder: Path, method: str) -> str:
    """The id of the sweep's configuration of ``method`` that left records."""
    metas = [json.loads(p.read_text()) for p in (folder / "records").glob("*.json")]
    return next(m["config_id"] for m in metas if m["method"] == method and (folder / "records" /
                                                                            f"{m['config_id']}.csv").exists())


def _copy(folder: Path, tmp_path: Path) -> Path:
    """What rerun reads of a sweep (space, state, manifest, records), in a folder a test may change."""
    copy = tmp_path / "runs" / folder.name
    shutil.copytree(folder / "records", copy / "records")
    for name in ("space.yaml", "sweep.json", "manifest.json"):
        shutil.copy(folder / name, copy / name)
    return copy


def _rerun(runs: Path, *args: str):
    return CliRunner().invoke(main, ["rerun", "--runs-dir", str(runs), "--sweep", "e2e", *args])


def test_manifest_holds_what_a_rerun_needs(finished_sweep):
    folder = _sweep(finished_sweep)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["space_hash"] == hashlib.sha256((folder / "space.yaml").read_bytes()).hexdigest()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert manifest["git_commit"] in (head, head + "-dirty")
    if manifest["git_commit"].endswith("-dirty"):
        assert manifest["git"]["diff"].startswith("diff --git")
    else:
        assert "git" not in manifest
    freeze = manifest["pip_freeze"]
    for pkg in ("torch", "optuna", "optuna-dashboard", "ray", "mlflow"):
        assert f"{pkg}=={version(pkg)}" in freeze
    assert manifest["torch"]["torch"] == torch.__version__
    assert manifest["torch"]["deterministic_algorithms"] is False and manifest["torch"]["cudnn_benchmark"] is False
    assert manifest["trial"] == {"device": "cpu", "device_setting": "auto", "threads": 1, "seeds_parallel": False}
    # derived_seed(seed, 0), (seed, 1), (seed, 2, k): ((seed * 1000003 + a) * 1000003 + b) mod (2^31 - 1)
    assert manifest["seeds"]["0"]["derived_seeds"] == {"build": 0, "generator": 1, "task1": 2000007, "task2": 2000008}
    assert manifest["seeds"]["1"]["derived_seeds"] == {"build": 1000003, "generator": 1000004,
                                                       "task1": 1428104161, "task2": 1428104162}
    for seed in ("0", "1"):  # the tiny preset: 2 tasks of 2 classes, in class order
        assert [t["classes"] for t in manifest["seeds"][seed]["tasks"]] == [[0, 1], [2, 3]]
        assert manifest["seeds"][seed]["config_seeds"] == {"eval_seed": 1234, "split_seed": 0}
    # the same file is an artifact of the sweep's parent run
    from mlflow.tracking import MlflowClient

    parent = json.loads((folder / "sweep.json").read_text())["parent_run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    assert "manifest.json" in [a.path for a in client.list_artifacts(parent)]
    shared = Path(client.download_artifacts(parent, "manifest.json"))
    assert json.loads(shared.read_text()) == manifest


def test_seed_manifest_reports_the_permutations_a_seed_trains_on():
    from trainables.build import make_benchmark, seed_manifest

    bench = make_benchmark("permuted_digits", {"preset": "tiny"}, "cpu")
    three, four = seed_manifest(bench, 3), seed_manifest(bench, 4)
    assert three["permutations"] == [p.tolist() for p in bench.for_seed(3).permutations]
    assert len(three["permutations"]) == 3 and sorted(three["permutations"][0]) == list(range(64))
    assert three["permutations"] != four["permutations"]
    assert three["config_seeds"] == {"split_seed": 0, "permutation_seed": None}
    fixed = make_benchmark("permuted_digits", {"preset": "tiny", "permutation_seed": 5}, "cpu")
    assert seed_manifest(fixed, 3)["permutations"] == seed_manifest(fixed, 4)["permutations"]


def test_records_compare_exactly_on_the_cpu_and_within_the_tolerance_off_it():
    import pandas as pd

    from orchestrator.record_compare import Tolerance, first_difference

    stored = pd.DataFrame({"method": ["ewc"] * 3, "seed": [0] * 3, "step": [5, 10, 10], "train_task": [1, 1, 1],
                           "eval_task": [1, 1, 1], "metric": ["fd", "fd", "gen_acc"], "value": [100.0, 90.0, 0.5],
                           "wall_time": [1.0, 2.0, 3.0]})
    new = stored.assign(value=[100.0, 90.00005, 0.5], wall_time=[7.0, 8.0, 9.0])  # wall clock is not compared
    gpu = Tolerance(exact=False, rtol=1e-6, atol=0.0)  # |90.00005 - 90| = 5e-5 <= 1e-6 * 90 = 9e-5
    assert first_difference(stored, new, gpu) is None
    assert first_difference(stored, stored.assign(wall_time=0.0), Tolerance(exact=True)) is None
    up = [100.0, float(np.nextafter(np.nextafter(90.0, 91), 91)), 0.5]  # 2 ulp above 90
    assert first_difference(stored, stored.assign(value=up), Tolerance(exact=True, ulps=2)) is None
    assert "differs in value" in first_difference(stored, stored.assign(value=up), Tolerance(exact=True, ulps=1))
    from orchestrator.record_compare import ulp_distance

    assert list(ulp_distance(np.array([1.0, -1.0, 0.0, 1.0]), np.array([1.0, np.nextafter(-1.0, -2), -0.0, -1.0]))) == [
        0, 1, 0, np.iinfo(np.int64).max]
    assert first_difference(stored, new, Tolerance(exact=True)).startswith("record 2 of 3 stored (3 rerun) differs "
                                                                           "in value:")
    off = first_difference(stored, new.assign(value=[100.0, 90.0002, 0.5]), gpu)  # 2e-4 > 9e-5
    assert off.startswith("record 2 of 3 stored (3 rerun) differs in value:") and "90.0 | 90.0002   <- differs" in off
    short = first_difference(stored, new.iloc[:2], gpu)
    assert short.startswith("record 3 of 3 stored (2 rerun) differs in method, seed, step")
    assert "'gen_acc' | (none)   <- differs" in short


def test_rerun_of_a_stored_seed_matches_exactly(finished_sweep):
    folder = _sweep(finished_sweep)
    config = _config(folder, "trust_region")
    stored = read_csv(folder / "records" / f"{config}.csv")
    result = _rerun(folder.parent, "--config", config, "--seed", "1")
    assert result.exit_code == 0, result.output
    assert (f"match: {int((stored['seed'] == 1).sum())} records of seed 1 (identical records up to 4 ulp in a value; "
            "all bitwise equal)") in result.output


def test_rerun_names_the_first_record_that_differs(finished_sweep, tmp_path):
    folder = _copy(_sweep(finished_sweep), tmp_path)
    config = _config(folder, "finetune")
    path = folder / "records" / f"{config}.csv"
    records = read_csv(path)
    seed0 = records.index[records["seed"] == 0]
    row = records.index[(records["seed"] == 0) & (records["metric"] == "fd") & (records["train_task"] == 2)][0]
    original = float(records.loc[row, "value"])
    changed = float(np.nextafter(original, np.inf))  # one ulp: only a bitwise comparison (--ulps 0) sees it
    records.loc[row, "value"] = changed
    records.to_csv(path, index=False)
    allowed = _rerun(folder.parent, "--config", config, "--seed", "0")
    assert allowed.exit_code == 0, allowed.output
    assert "(identical records up to 4 ulp in a value; 1 value(s) not bitwise equal, at most 1 ulp off)" in allowed.output
    result = _rerun(folder.parent, "--config", config, "--seed", "0", "--ulps", "0")
    assert result.exit_code == 1, result.output
    k = list(seed0).index(row) + 1
    assert f"record {k} of {len(seed0)} stored ({len(seed0)} rerun) differs in value:" in result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["column", "stored", "|", "rerun"])
    shown = {}  # column -> (stored, rerun, marked) from the lines "  column  stored | rerun[   <- differs]"
    for line in lines[header + 1:]:
        column, rest = line.split(None, 1)
        stored_value, rerun_value = rest.replace("   <- differs", "").split(" | ")
        shown[column] = (stored_value, rerun_value, line.endswith("<- differs"))
    assert shown["value"] == (repr(changed), repr(original), True)
    assert [c for c, (_, _, marked) in shown.items() if marked] == ["value"]
    assert shown["metric"] == ("'fd'", "'fd'", False) and shown["train_task"] == ("2", "2", False)
    assert shown["seed"] == ("0", "0", False) and shown["config_id"] == (repr(config), repr(config), False)

def test_rerun_stops_when_the_seed_stream_is_not_the_manifests(finished_sweep, tmp_path):
    folder = _copy(_sweep(finished_sweep), tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["seeds"]["0"]["tasks"][1]["classes"] = [3, 2]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = _rerun(folder.parent, "--config", _config(folder, "finetune"), "--seed", "0")
    assert result.exit_code == 1, result.output
    assert "differs: seed 0's stream is not the manifest's: tasks.1.classes.0: 3 (manifest) vs 2 (now)" in result.output


def test_rerun_bad_input_exits_2_naming_the_allowed_values(finished_sweep, tmp_path):
    folder = _sweep(finished_sweep)
    runs = folder.parent
    with_records = sorted(p.stem for p in (folder / "records").glob("*.csv"))
    diverged = next(p.stem for p in (folder / "records").glob("*.json") if p.stem not in with_records)
    first = with_records[0]
    cases = [
        (["--sweep", "nope", "--config", first, "--seed", "0"], "--sweep: no sweep named nope"),
        (["--sweep", "e2e", "--config", "nope", "--seed", "0"],
         f"--config: 'nope' is not a configuration of sweep e2e with records; allowed: {', '.join(with_records)}"),
        (["--sweep", "e2e", "--config", diverged, "--seed", "0"], f"allowed: {', '.join(with_records)}"),
        (["--sweep", "e2e", "--config", first, "--seed", "5"],
         f"--seed: 5 is not a seed of configuration {first}; allowed: 0, 1"),
        (["--sweep", "e2e", "--config", first, "--seed", "0", "--rtol", "-1"],
         "--rtol/--atol: -1.0/1e-06 is not allowed"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(main, ["rerun", "--runs-dir", str(runs), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
    copy = _copy(folder, tmp_path)
    (copy / "manifest.json").unlink()
    result = _rerun(copy.parent, "--config", with_records[0], "--seed", "0")
    assert result.exit_code == 2 and "--sweep: sweep e2e has no manifest.json" in result.output


def test_a_resume_is_appended_to_the_manifest_and_named_by_rerun(tmp_path):
    """--resume records the code it continued with; rerun names a resume on other code as a possible cause."""
    from types import SimpleNamespace

    from orchestrator import manifest
    from orchestrator.provenance import git_commit
    from orchestrator.rerun import _notes
    from orchestrator.sweep_dir import SweepDir

    sweep = SweepDir(tmp_path, "s")
    sweep.create()
    sweep.space_yaml.write_text("name: s\n")
    start = {"space_hash": manifest.space_hash("name: s\n"), "git_commit": git_commit(), "versions": {},
             "seeds": {"0": {}}}
    sweep.write_manifest(json.dumps(start))
    options = SimpleNamespace(seeds_parallel=False, cpus_per_trial=2.0, gpus_per_trial=0.0, device="cpu")
    manifest.record_resume(sweep, options)
    manifest.record_resume(sweep, options)
    after = sweep.read_manifest()
    assert {k: after[k] for k in start} == start and len(after["resumes"]) == 2
    assert after["resumes"][0]["git_commit"] == git_commit() and after["resumes"][0]["trial"]["device"] == "cpu"
    assert not any("resumed" in n for n in _notes(after, sweep))
    after["resumes"][1]["git_commit"] = "0123abc"
    assert [n for n in _notes(after, sweep) if "resumed" in n] == [
        f"the sweep was resumed at {after['resumes'][1]['at']} on code at 0123abc: seeds that ran after that ran "
        "on it (manifest.json: resumes)"]
