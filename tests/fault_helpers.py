"""Fault injection for the end-to-end tests: a sweep in a subprocess, waiting for a moment in it, the
processes to kill, and the counts that must hold afterwards (configurations finished, lost, duplicated,
records identical to an uninterrupted run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from sweep_helpers import mlflow_runs

TINY = {"name": "faults", "benchmark": {"name": "split_digits_diffusion", "preset": "tiny", "num_tasks": 3},
        "seeds": [0, 1], "objective": {"metric": "fd", "reduce": "mean", "mode": "min"},
        "budget": {"num_samples": 4, "max_concurrent": 2, "sampler_seed": 1},
        "methods": {"finetune": {"lr": {"loguniform": [1e-4, 1e-3]}}}}


def write_space(folder: Path, **changes) -> Path:
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def start(space: Path, runs: Path, *args: str) -> subprocess.Popen:
    log = open(runs.parent / f"driver-{time.time_ns()}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "sweep", "--space", str(space), "--runs-dir",
                             str(runs), *args], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def resume(runs: Path, name: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", "sweep", "--resume", name, "--runs-dir", str(runs)],
                          capture_output=True, text=True, timeout=timeout)


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before the moment to inject the fault")
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the moment to inject the fault")


def ended(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))]


def checkpoints(folder: Path) -> list[Path]:
    return sorted((folder / "ray").glob("*/checkpoint_*"))


def processes_titled(title: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "cmdline").read_bytes().startswith(title.encode()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def reference_records(space: dict, meta: dict) -> pd.DataFrame:
    """The configuration of ``meta`` run straight through, in this process, without Ray."""
    from trainables.build import configure
    from trainables.trainable import run_configuration

    bench = dict(space["benchmark"])
    name = bench.pop("name")
    config = configure(meta["method"], meta["params"], name, bench, tuple(space["seeds"]),
                       space["objective"]["metric"], space["objective"]["reduce"])
    return run_configuration(config)


def check_counts(folder: Path, space: dict, compare: int = 4) -> dict:
    """Every configuration ended once, none lost or duplicated, in records/ and in MLflow; no MLflow run
    left RUNNING; the records of up to ``compare`` finished configurations equal an uninterrupted run's."""
    from core.records import COLUMNS, read_csv

    metas = ended(folder)
    ids = [m["config_id"] for m in metas]
    assert len(ids) == len(set(ids)) == space["budget"]["num_samples"], ids
    _, _, runs = mlflow_runs(folder)
    config_runs = [r.data.tags["config_id"] for r in runs if r.data.tags["level"] == "configuration"
                   and r.data.tags.get("status") != "abandoned"]  # proposed, then lost with Ray's unsaved state
    assert sorted(config_runs) == sorted(ids)
    seed_runs = [(r.data.tags["config_id"], r.data.tags["seed"]) for r in runs if r.data.tags["level"] == "seed"]
    assert len(seed_runs) == len(set(seed_runs))
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    finished = [m for m in metas if m["status"] == "finished"]
    for meta in finished[:compare]:
        got = read_csv(folder / "records" / f"{meta['config_id']}.csv")[list(COLUMNS)]
        want = reference_records(space, meta)[list(COLUMNS)]
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    return {"ended": len(metas), "finished": len(finished), "lost": space["budget"]["num_samples"] - len(metas),
            "duplicated": len(ids) - len(set(ids))}


def reported_tasks(folder: Path, config_id: str) -> list[int]:
    (trial_dir,) = [p for p in (folder / "ray").iterdir() if config_id in p.name]
    return [json.loads(line)["task"] for line in (trial_dir / "result.json").read_text().splitlines() if line]
