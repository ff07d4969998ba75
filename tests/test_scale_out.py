"""Scale-out end to end: seeds as parallel Ray actors give the sequential records, repeated proposals are
answered by their finished twin, and a sweep across a real two-node Ray cluster survives losing a node."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from fault_helpers import check_counts, ended, start, wait_for, write_space
from sweep_helpers import mlflow_runs

pytestmark = pytest.mark.e2e


def tiny_config(seeds=(0, 1, 2)):
    from trainables.build import configure

    return configure("trust_region", {"lr": 1e-3, "fisher_samples": 8, "buffer_per_task": 6},
                     "split_digits_diffusion", {"preset": "tiny", "num_tasks": 2}, seeds=seeds)


@pytest.fixture
def local_ray():
    import ray

    tests = str(Path(__file__).parent)  # the actor classes of this file, importable by Ray's workers
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": tests}})
    yield
    ray.shutdown()


def test_seeds_as_actors_give_the_sequential_records_and_checkpoint_alike(local_ray, tmp_path):
    from orchestrator.seed_actors import ParallelTrial, start_seed_actors
    from trainables.build import make_runs
    from trainables.trainable import Trial

    config = tiny_config()
    sequential = Trial(config, make_runs(config))
    while sequential.done < sequential.num_tasks:
        sequential.next_task()
    parallel = ParallelTrial(config, start_seed_actors(config, cpus=0.5, gpus=0))
    parallel.next_task()
    parallel.save(tmp_path)
    parallel.close()
    restored = ParallelTrial(config, start_seed_actors(config, cpus=0.5, gpus=0))
    restored.load(tmp_path)
    assert restored.next_task()["task"] == 2
    pd.testing.assert_frame_equal(restored.frame(), sequential.frame())


def test_a_failing_seed_fails_its_configuration_by_name(local_ray):
    from orchestrator.seed_actors import ParallelTrial, RemoteRun
    from trainables.trainable import SeedFailed

    import ray

    config = tiny_config(seeds=(0, 5))
    healthy, broken = ray.remote(_Echo).remote(), ray.remote(Broken).remote()
    trial = ParallelTrial(config, [RemoteRun(0, healthy), RemoteRun(5, broken)])
    with pytest.raises(SeedFailed, match=r"seed 5 failed at task 1: .*disk full"):
        trial.next_task()


class _Echo:
    def run_task(self, k):
        return []


class Broken:
    def run_task(self, k):
        raise OSError("disk full")


def test_repeated_proposals_are_answered_by_their_finished_twin(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from orchestrator.cli import main

    space = write_space(tmp_path, budget={"num_samples": 4, "max_concurrent": 1, "sampler_seed": 0},
                        methods={"finetune": {"lr": {"choice": [1e-4, 1e-3]}}})
    out = CliRunner().invoke(main, ["sweep", "--space", str(space), "--runs-dir", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    folder = tmp_path / "runs" / "faults"
    metas = ended(folder)
    finished = {m["params"]["lr"]: m for m in metas if m["status"] == "finished"}
    twins = [m for m in metas if m["status"] == "twin"]
    assert len(metas) == 4 and len(finished) + len(twins) == 4 and twins  # 4 proposals of 2 points
    for twin in twins:
        original = finished[twin["params"]["lr"]]
        assert twin["twin_of"] == original["config_id"] and twin["objective"] == original["objective"]
        assert not (folder / "records" / f"{twin['config_id']}.csv").exists()  # no records twice
    study = optuna.load_study(study_name="faults",
                              storage=JournalStorage(JournalFileBackend(str(folder / "optuna.journal"))))
    values = sorted(t.value for t in study.trials if t.state.name == "COMPLETE")
    assert len(values) == 4 and set(values) == {m["objective"] for m in finished.values()}
    _, _, runs = mlflow_runs(folder)
    tagged = {r.data.tags["config_id"]: r.data.tags.get("twin_of") for r in runs
              if r.data.tags["level"] == "configuration"}
    assert all(tagged[t["config_id"]] == t["twin_of"] for t in twins)
    records = pd.read_csv(folder / "records.csv", dtype={"config_id": str})
    assert set(records["config_id"]) == {m["config_id"] for m in finished.values()}


def test_a_sweep_across_two_nodes_survives_losing_one(tmp_path):
    """A real two-node Ray cluster on this machine (a head and a second node with its own resources and
    session); trials land on both (Ray's GCS actor table); the second node is killed mid-trial and the
    sweep still ends with every configuration recorded once, its records those of an uninterrupted run."""
    import ray
    from ray._private import state as ray_state
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        space_path = write_space(tmp_path, budget={"num_samples": 2, "max_concurrent": 2, "sampler_seed": 2})
        space = yaml.safe_load(space_path.read_text())
        runs = tmp_path / "runs"
        folder = runs / "faults"
        driver = start(space_path, runs, "--address", cluster.address)
        ray.init(address=cluster.address)
        nodes = set()

        def trials_on_both_nodes() -> bool:
            for actor in ray_state.actors().values():
                if actor["ActorClassName"].endswith("ImplicitFunc") and actor["State"] == "ALIVE":
                    nodes.add(actor["Address"]["NodeID"])
            return len(nodes) == 2 and len(list(folder.glob("ray/*/checkpoint_*"))) >= 1

        wait_for(trials_on_both_nodes, driver, timeout=300)
        cluster.remove_node(second, allow_graceful=False)
        assert driver.wait(timeout=600) == 0, Path(driver.args[0]).name
        assert check_counts(folder, space) == {"ended": 2, "finished": 2, "lost": 0, "duplicated": 0}
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_sweep_with_seeds_in_parallel_records_what_the_sequential_run_does(tmp_path):
    """`--seeds-parallel`: each seed in its own actor of the trial's placement group; the records equal the
    configuration run straight through, seed after seed, in this process."""
    space_path = write_space(tmp_path, budget={"num_samples": 1, "max_concurrent": 1, "sampler_seed": 1})
    space = yaml.safe_load(space_path.read_text())
    runs = tmp_path / "runs"
    driver = start(space_path, runs, "--seeds-parallel", "--cpus-per-seed", "0.5")
    assert driver.wait(timeout=600) == 0
    assert check_counts(runs / "faults", space) == {"ended": 1, "finished": 1, "lost": 0, "duplicated": 0}
