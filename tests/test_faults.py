"""Fault injection end to end: the driver killed (SIGKILL, SIGTERM) right after a configuration ended, a
trial's worker killed mid-trial, a damaged checkpoint. After each, the sweep ends with every configuration
recorded exactly once (none lost, none duplicated), no MLflow run left RUNNING, and the records of the
finished configurations identical to an uninterrupted run's."""

from __future__ import annotations

import os
import json
import signal
import time

import pytest
import yaml

from orchestrator.ray_processes import reap_leftovers
from orchestrator.sweep_dir import SweepDir
from fault_helpers import (checkpoints, check_counts, ended, processes_titled, reported_tasks, resume, start,
                           wait_for, write_space)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_driver_stopped_right_after_a_configuration_ended_resumes_without_loss(tmp_path, sig):
    """The moment that used to break resume: a configuration has ended (records/<id>.json) and Ray's saved
    state may not know yet. SIGKILL leaves Ray's processes behind: resume reaps them."""
    space_path = write_space(tmp_path)
    space = yaml.safe_load(space_path.read_text())
    runs = tmp_path / "runs"
    folder = runs / "faults"
    driver = start(space_path, runs)
    wait_for(lambda: len(ended(folder)) >= 1, driver)
    if sig == signal.SIGTERM:  # while its driver runs, a sweep cannot be resumed a second time
        twice = resume(runs, "faults", timeout=120)
        assert twice.returncode == 2 and "is still running (driver process" in twice.stderr, twice.stderr
    driver.send_signal(sig)
    assert driver.wait(timeout=120) == (130 if sig == signal.SIGTERM else -signal.SIGKILL)
    assert len(ended(folder)) < 4
    done = resume(runs, "faults")
    assert done.returncode == 0, done.stdout + done.stderr
    if sig == signal.SIGKILL:
        assert "processes the previous driver's Ray left running" in done.stderr
    counts = check_counts(folder, space)
    assert counts == {"ended": 4, "finished": 4, "lost": 0, "duplicated": 0}
    manifest = json.loads((folder / "manifest.json").read_text())  # the resume is on record, the start kept
    assert [r["git_commit"] for r in manifest["resumes"]] == [manifest["git_commit"]]
    assert manifest["resumes"][0]["trial"]["device"] == "cpu" and "0" in manifest["seeds"]


def one_long_configuration(tmp_path, steps: int):
    """A sweep of one configuration on 3 tasks of ``steps`` steps, started: (space, runs, folder, driver)."""
    bench = {"name": "split_digits_diffusion", "preset": "tiny", "num_tasks": 3, "steps_per_task": steps}
    space_path = write_space(tmp_path, benchmark=bench,
                             budget={"num_samples": 1, "max_concurrent": 1, "sampler_seed": 1})
    runs = tmp_path / "runs"
    return yaml.safe_load(space_path.read_text()), runs, runs / "faults", start(space_path, runs)


def test_a_killed_trial_worker_is_retried_from_its_checkpoint(tmp_path):
    """SIGKILL of the trial's worker once it has checkpointed task 2: the retry starts from a checkpoint, so
    at most the one task whose checkpoint the driver had not yet taken in is trained (and reported) again;
    a restart from scratch would report tasks 1 and 2 again."""
    space, runs, folder, driver = one_long_configuration(tmp_path, steps=200)
    wait_for(lambda: any(c.name == "checkpoint_000001" for c in checkpoints(folder))
             and processes_titled("ray::ImplicitFunc"), driver)
    for pid in processes_titled("ray::ImplicitFunc"):
        os.kill(pid, signal.SIGKILL)
    assert driver.wait(timeout=600) == 0
    counts = check_counts(folder, space)
    assert counts == {"ended": 1, "finished": 1, "lost": 0, "duplicated": 0}
    (meta,) = ended(folder)
    tasks = reported_tasks(folder, meta["config_id"])
    assert sorted(set(tasks)) == [1, 2, 3] and tasks[-1] == 3 and len(tasks) <= 4, tasks


def test_a_damaged_checkpoint_reruns_its_configuration_from_the_start(tmp_path):
    space, runs, folder, driver = one_long_configuration(tmp_path, steps=300)
    wait_for(lambda: checkpoints(folder), driver)
    time.sleep(4)  # Ray saves its state every 2 s: let it name the checkpoint, or the resume starts afresh
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    reap_leftovers(SweepDir(runs, "faults"))  # the orphaned trial would go on writing checkpoints
    latest = checkpoints(folder)[-1]
    assert not ended(folder) and latest.name != "checkpoint_000002", latest  # killed before its last task
    for kept in checkpoints(folder):  # Ray's saved state may name an older one than the newest on disk
        (kept / "seed0.state").write_bytes(b"not a checkpoint")
    done = resume(runs, "faults")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cannot be read; rerunning this configuration from task 1" in done.stdout + done.stderr
    assert check_counts(folder, space) == {"ended": 1, "finished": 1, "lost": 0, "duplicated": 0}


def test_a_start_killed_before_it_saved_its_state_can_start_again(tmp_path):
    """SIGKILL between creating the folder and writing sweep.json leaves a folder without state: the next
    start of the same sweep removes it (saying so) instead of refusing the name."""
    space_path = write_space(tmp_path, budget={"num_samples": 1, "max_concurrent": 1, "sampler_seed": 1})
    runs = tmp_path / "runs"
    (runs / "faults" / "records").mkdir(parents=True)
    (runs / "faults" / "space.yaml").write_text(space_path.read_text())  # what a killed start leaves
    driver = start(space_path, runs)
    assert driver.wait(timeout=600) == 0
    log = sorted(tmp_path.glob("driver-*.log"))[-1].read_text()
    assert "left by a start that was killed before it finished" in log
    assert [m["status"] for m in ended(runs / "faults")] == ["finished"]


def test_a_restore_gets_back_the_checkpoint_rays_state_may_name(tmp_path):
    """Ray deletes checkpoint k−1 once k is written and saves its state every ~2 s: for an unfinished
    configuration the missing k−1 is recreated from k before a restore; an ended one, a trial without
    checkpoints and a first checkpoint are left alone. A confirmation trial counts as its configuration."""
    from orchestrator.restore_repair import fill_missing_predecessors

    def trial(name: str, indices, params=None):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps(params or {"method": "finetune"}))
        for i in indices:
            (folder / f"checkpoint_{i:06d}").mkdir()
            (folder / f"checkpoint_{i:06d}" / "records.csv").write_text(f"task {i + 1}\n")
        return folder

    running = trial("tune_trainable_aaaa1111_1_method=finetune", [2])
    done = trial("tune_trainable_bbbb2222_2_method=finetune", [3])
    first = trial("tune_trainable_cccc3333_3_method=finetune", [0])
    confirm = trial("tune_trainable_cfc03_00000_0_x", [1], {"confirm_of": "dddd4444"})
    ended_confirm = trial("tune_trainable_cfc03_00001_1_x", [1], {"confirm_of": "bbbb2222"})
    trial("tune_trainable_eeee5555_5_method=finetune", [])
    made = fill_missing_predecessors(tmp_path, lambda config: config == "bbbb2222")
    assert made == [running / "checkpoint_000001", confirm / "checkpoint_000000"]
    assert (running / "checkpoint_000001" / "records.csv").read_text() == "task 3\n"  # the newest, copied
    assert not (done / "checkpoint_000002").exists() and not (ended_confirm / "checkpoint_000000").exists()
    assert sorted(p.name for p in first.iterdir()) == ["checkpoint_000000", "params.json"]
    assert fill_missing_predecessors(tmp_path, lambda config: False) == [done / "checkpoint_000002",
                                                                         ended_confirm / "checkpoint_000000"]
