"""Records of one sweep, from a records file (CSV or Parquet) or from an MLflow store (read only).

A sweep in MLflow is the experiment named after it; its parent run (tag level=sweep) holds the records
as the artifact ``records.csv`` and the objective and each metric's direction (``direction.<metric>`` =
max|min) as params; the configuration runs carry each configuration's status. Nothing here writes to
MLflow. No torch: the schema comes from core.records.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from analysis.directions import from_params
from core.errors import InputError
from core.urls import mask
from core.records import read, read_csv, validate

OBJECTIVE_KEYS = ("metric", "reduce", "mode", "score", "seeds", "k")  # parent-run params objective[2]_<key>


@dataclass
class Source:
    """Records and what is known about the sweep they come from."""

    records: pd.DataFrame
    name: str = ""
    objective: dict = field(default_factory=dict)  # metric, reduce, mode (a sweep's)
    seeds: list[int] = field(default_factory=list)  # the seeds every configuration should have
    num_tasks: int | None = None
    configs: dict[str, dict] = field(default_factory=dict)  # config_id -> {method, status, error}
    directions: dict[str, bool] = field(default_factory=dict)  # metric -> higher is better (sweep metadata)
    tracking_uri: str = ""
    parent_run_id: str = ""
    objectives: list[dict] = field(default_factory=list)  # every objective (two: a Pareto front)
    confirm_seeds: list[int] = field(default_factory=list)  # budget.confirm's seeds, when the sweep has them
    search_num_tasks: int | None = None  # the stream's length a search trial trained (protocol first_tasks)
    protocol: str = ""  # the sweep's tuning protocol (full_stream, first_tasks: k, held_out_stream: {...})
    note: str = ""  # which seeds selected and which report the numbers (analysis.stages), for titles


def from_file(path: str) -> Source:
    """A records file from anywhere: the seeds every configuration should have are all seeds present."""
    if not Path(path).exists():
        raise InputError(f"--records: no such file {path}")
    try:
        records = read(path)
    except InputError:
        raise
    except ValueError as err:  # an unreadable or malformed records file is bad input, not a bug
        raise InputError(str(err)) from err
    return Source(records=records, name=Path(path).stem, seeds=sorted(int(s) for s in records["seed"].unique()))


def from_sweep(name: str, tracking_uri: str, record_files: Iterable[str | Path] = ()) -> Source:
    """The records of sweep ``name`` from the MLflow store at ``tracking_uri`` (the caller, which knows
    where the sweep's folder is, resolves it).

    The records are the parent run's ``records.csv``; only when that artifact does not exist (the sweep
    has not finished) are they ``record_files`` (the per-configuration records written so far), with a
    one-line note on stderr. Any other failure (store unreachable, download failed) propagates.
    Directions come from the parent run's params ``direction.<metric>``."""
    from mlflow.tracking import MlflowClient

    uri = str(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise InputError(f"--sweep: no experiment named {name} in {mask(uri)}")
    parents = client.search_runs([exp.experiment_id], "tags.level = 'sweep'", max_results=1)
    if not parents:
        raise InputError(f"--sweep: experiment {name} in {mask(uri)} has no sweep run")
    parent = parents[0]
    params = parent.data.params
    run_id = parent.info.run_id
    if any(a.path == "records.csv" for a in client.list_artifacts(run_id)):
        with tempfile.TemporaryDirectory() as tmp:
            records = validate(read_csv(client.download_artifacts(run_id, "records.csv", tmp)))
    else:  # not finished yet: what the driver wrote so far, when this is its machine
        local = [Path(f) for f in record_files]
        if not local:
            raise InputError(f"--sweep: sweep {name} has no records yet (no records.csv in its parent run, "
                             "no per-configuration record files)")
        where = os.path.commonpath([str(f.parent) for f in local])
        print(f"note: sweep {name} has no records.csv yet (not finished); using the {len(local)} "
              f"per-configuration record files in {where}", file=sys.stderr)
        records = validate(pd.concat([read_csv(f) for f in local], ignore_index=True))
    configs = client.search_runs([exp.experiment_id], "tags.level = 'configuration'", max_results=10_000)
    objectives = [{k: params[f"{p}_{k}"] for k in OBJECTIVE_KEYS if f"{p}_{k}" in params}
                  for p in ("objective", "objective2") if f"{p}_metric" in params]
    return Source(
        records=records, name=name,
        objective=objectives[0] if objectives else {}, objectives=objectives,
        confirm_seeds=[int(s) for s in params.get("confirm_seeds", "").split(",") if s],
        search_num_tasks=int(params["search_num_tasks"]) if "search_num_tasks" in params else None,
        protocol=params.get("protocol", ""),
        seeds=[int(s) for s in params.get("seeds", "").split(",") if s],
        num_tasks=int(params["num_tasks"]) if "num_tasks" in params else None,
        configs={r.data.tags.get("config_id", ""): {"method": r.data.tags.get("method", ""),
                                                     "status": r.data.tags.get("status", ""),
                                                     "error": r.data.tags.get("error", "")} for r in configs},
        directions=from_params(params), tracking_uri=uri, parent_run_id=run_id)
