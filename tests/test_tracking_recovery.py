"""MLflow after a driver was killed mid-write: a half-written seed run is written again (never left RUNNING
beside a finished copy), and configuration runs whose configuration never ended are closed as abandoned."""

from __future__ import annotations

from core.records import Record, to_frame
from orchestrator.tracking import Tracker


def test_half_written_seed_runs_are_rewritten_and_abandoned_configurations_closed(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "s", tmp_path / "artifacts")
    parent = tracker.start_sweep({"seeds": "0"}, [])
    config = tracker.config_run(parent, "c1", "finetune", {"lr": 0.1}, tags={})
    lost = tracker.config_run(parent, "c2", "finetune", {"lr": 0.2}, tags={})
    tags = {"method": "finetune", "benchmark": "b", "config_id": "c1"}
    # what a driver killed inside seed_runs leaves: the seed's run created, part of its curve, still RUNNING
    half = tracker.client.create_run(tracker.experiment_id(), tags={"level": "seed", "seed": "0", **tags})
    tracker.log(half.info.run_id, metrics=[("fd/task1", 5.0, 1)])
    records = to_frame([Record("finetune", 0, 1, 1, 1, "fd", 5.0), Record("finetune", 0, 2, 1, 1, "fd", 4.0)])
    tracker.seed_runs(config, records, tags)
    seeds = tracker.client.search_runs([tracker.experiment_id()], "tags.level = 'seed'")
    assert [r.info.status for r in seeds] == ["FINISHED"]
    history = tracker.client.get_metric_history(seeds[0].info.run_id, "fd/task1")
    assert [(m.step, m.value) for m in history] == [(1, 5.0), (2, 4.0)]
    tracker.finish(config, "finished")

    assert tracker.close_abandoned({"c1"}) == ["c2"]
    run = tracker.client.get_run(lost)
    assert run.info.status == "KILLED" and run.data.tags["status"] == "abandoned"
    assert tracker.client.get_run(config).info.status == "FINISHED"
