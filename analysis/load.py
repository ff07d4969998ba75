"""Records of one sweep, from a records file (CSV or Parquet) or from an MLflow store (read only).

A sweep in MLflow is the experiment named after it; its parent run (tag level=sweep) holds the records
as the artifact ``records.csv`` and the objective as params; the configuration runs carry each
configuration's status. Nothing here writes to MLflow.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from trainables.records import read, read_csv, validate


@dataclass
class Source:
    """Records and what is known about the sweep they come from."""

    records: pd.DataFrame
    name: str = ""
    objective: dict = field(default_factory=dict)  # metric, reduce, mode (a sweep's)
    seeds: list[int] = field(default_factory=list)  # the seeds every configuration should have
    num_tasks: int | None = None
    configs: dict[str, dict] = field(default_factory=dict)  # config_id -> {method, status, error}
    tracking_uri: str = ""
    parent_run_id: str = ""


def from_file(path: str) -> Source:
    """A records file from anywhere: the seeds every configuration should have are all seeds present."""
    if not Path(path).exists():
        raise ValueError(f"--records: no such file {path}")
    records = read(path)
    return Source(records=records, name=Path(path).stem, seeds=sorted(int(s) for s in records["seed"].unique()))


def sweep_tracking_uri(name: str, runs_dir: str, tracking_uri: str | None) -> str:
    state = Path(runs_dir) / name / "sweep.json"
    if tracking_uri:
        return tracking_uri
    if state.exists():
        return json.loads(state.read_text())["tracking_uri"]
    raise ValueError(f"--sweep: no sweep named {name} in {Path(runs_dir).resolve()} (give --runs-dir, or "
                     "--tracking-uri of the MLflow server that holds it)")


def from_sweep(name: str, runs_dir: str = "runs", tracking_uri: str | None = None) -> Source:
    """The records of sweep ``name`` from its MLflow store (the local one in runs/NAME by default)."""
    from mlflow.tracking import MlflowClient

    uri = sweep_tracking_uri(name, runs_dir, tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise ValueError(f"--sweep: no experiment named {name} in {uri}")
    parents = client.search_runs([exp.experiment_id], "tags.level = 'sweep'", max_results=1)
    if not parents:
        raise ValueError(f"--sweep: experiment {name} in {uri} has no sweep run")
    parent = parents[0]
    params = parent.data.params
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(parent.info.run_id, "records.csv", tmp)
            records = validate(read_csv(path))
        except Exception:  # not finished yet: what the driver wrote so far, when this is its machine
            local = sorted((Path(runs_dir) / name / "records").glob("*.csv"))
            if not local:
                raise ValueError(f"--sweep: sweep {name} has no records yet") from None
            records = validate(pd.concat([read_csv(p) for p in local], ignore_index=True))
    configs = client.search_runs([exp.experiment_id], "tags.level = 'configuration'", max_results=10_000)
    return Source(
        records=records, name=name,
        objective={k: params[f"objective_{k}"] for k in ("metric", "reduce", "mode") if f"objective_{k}" in params},
        seeds=[int(s) for s in params.get("seeds", "").split(",") if s],
        num_tasks=int(params["num_tasks"]) if "num_tasks" in params else None,
        configs={r.data.tags.get("config_id", ""): {"method": r.data.tags.get("method", ""),
                                                     "status": r.data.tags.get("status", ""),
                                                     "error": r.data.tags.get("error", "")} for r in configs},
        tracking_uri=uri, parent_run_id=parent.info.run_id)
