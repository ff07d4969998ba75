"""MLflow layout of a sweep; only the driver process writes here.

One experiment per sweep. A parent run for the sweep (space file, git commit, package versions, sampler
seed). Under it a run per configuration (= Ray trial): its parameters, the seed-mean objective after each
task, per-task seed-mean and standard error of every metric, final average and forgetting with their
standard errors, and a status tag (finished, failed, diverged, stopped). Under each configuration a run per
seed: step-indexed curves ``<metric>/task<j>`` of every evaluated task (training statistics as
``train_<name>``), tagged method, benchmark, seed, config_id and stage (search, or confirm for a rerun of
the configuration on a confirmation seed, whose aggregates on the configuration run are ``confirm_*``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.table import summarize
from core.stats import mean_se
from orchestrator.storage import mlflow_uri, remember

PARENT_TAG = "mlflow.parentRunId"
# MLflow's UI reads a shared view of the runs table from the experiment tag "mlflow.sharedViewState.<key>"
# when its address carries "?viewStateShareKey=<key>" (MLflow >= 2.10; the column choice otherwise lives
# in the browser's local storage only).
VIEW_KEY = "clsweep"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"


def runs_view(metric: str, higher: bool) -> str:
    """The runs table a sweep opens on: its configuration runs, best first by the objective metric's final
    average, with the final and forgetting means and their standard errors as columns."""
    columns = [f"metrics.`{name}_{metric}{se}`" for name in ("final", "forgetting") for se in ("", "_se")]
    return json.dumps({"searchFilter": "tags.level = 'configuration'", "orderByKey": columns[0],
                       "orderByAsc": not higher, "selectedColumns": ["tags.`method`", *columns],
                       "runsHiddenMode": "SHOW_ALL"})


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Writes one sweep's runs; holds only strings, so Ray can pickle the callback that owns it. The URI it
    holds (and Ray pickles) is masked; the real one stays in this process (``orchestrator.storage``)."""

    def __init__(self, tracking_uri: str, sweep: str, artifact_root: Path) -> None:
        self.tracking_uri, self.sweep, self.artifact_root = remember(tracking_uri), sweep, str(artifact_root)
        self._client = None

    def __getstate__(self):
        return {**self.__dict__, "_client": None}

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=mlflow_uri(self.tracking_uri))
        return self._client

    def experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.sweep)
        if exp is not None:
            return exp.experiment_id
        # a tracking server keeps the artifacts where its team reads them; else the sweep's folder does.
        # The kind makes MLflow's UI open the experiment on its training-runs table, not the GenAI overview
        served = self.tracking_uri.lower().startswith(("http://", "https://", "databricks"))
        location = None if served else Path(self.artifact_root).as_uri()
        return self.client.create_experiment(self.sweep, artifact_location=location,
                                             tags={"mlflow.experimentKind": "custom_model_development"})

    def start_sweep(self, params: dict[str, Any], artifacts: list[Path], view: str | None = None) -> str:
        """The sweep's parent run; ``view`` (``runs_view``) is what the UI's address opens on."""
        if view is not None:
            self.client.set_experiment_tag(self.experiment_id(), VIEW_TAG, view)
        run = self.client.create_run(self.experiment_id(), run_name=f"sweep {self.sweep}",
                                     tags={"level": "sweep", "sweep": self.sweep})
        self.log(run.info.run_id, params=params)
        for path in artifacts:
            self.client.log_artifact(run.info.run_id, str(path))
        return run.info.run_id

    def find_run(self, **tags: str) -> str | None:
        query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([self.experiment_id()], filter_string=query, max_results=1)
        return runs[0].info.run_id if runs else None

    def close_abandoned(self, ended: set[str]) -> list[str]:
        """Configuration runs still RUNNING whose configuration never ended (a driver killed before Ray saved
        it; Ray proposed it again under a new id) are ended as ``abandoned``; returns their config ids."""
        runs = self.client.search_runs([self.experiment_id()], "tags.level = 'configuration' and "
                                       "attributes.status = 'RUNNING'", max_results=10_000)
        abandoned = [r for r in runs if r.data.tags.get("config_id") not in ended]
        for run in abandoned:
            self.log(run.info.run_id, tags={"status": "abandoned"})
            self.client.set_terminated(run.info.run_id, "KILLED")
        return [r.data.tags.get("config_id", "") for r in abandoned]

    def config_run(self, parent: str, config_id: str, method: str, params: dict[str, Any],
                   tags: dict[str, str]) -> str:
        """The configuration's run, created once (a resumed sweep finds it again)."""
        found = self.find_run(level="configuration", config_id=config_id)
        if found:
            return found
        run = self.client.create_run(self.experiment_id(), run_name=f"{method} {config_id}",
                                     tags={PARENT_TAG: parent, "level": "configuration", "config_id": config_id,
                                           "method": method, "sweep": self.sweep, "status": "running", **tags})
        self.log(run.info.run_id, params={"method": method, **params})
        return run.info.run_id

    def log(self, run_id: str, metrics: list[tuple[str, float, int]] = (), params: dict[str, Any] | None = None,
            tags: dict[str, str] | None = None) -> None:
        """Metrics as (key, value, step), in batches MLflow accepts."""
        from mlflow.entities import Metric, Param, RunTag

        ts = _now_ms()
        ms = [Metric(k, float(v), ts, int(s)) for k, v, s in metrics if v is not None and not math.isnan(v)]
        ps = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        tg = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        for i in range(0, len(ms), 1000):  # MLflow's limits: 1000 metrics, 100 params, 100 tags a batch
            self.client.log_batch(run_id, metrics=ms[i:i + 1000])
        for i in range(0, max(len(ps), len(tg)), 100):
            self.client.log_batch(run_id, params=ps[i:i + 100], tags=tg[i:i + 100])

    def seed_runs(self, config_run: str, records: pd.DataFrame, tags: dict[str, str]) -> None:
        """A run per seed under the configuration, with every curve of the records."""
        for seed, rows in records.groupby("seed"):
            found = self.find_run(level="seed", config_id=tags["config_id"], seed=str(seed))
            if found and self.client.get_run(found).info.status == "FINISHED":
                continue
            if found:  # half-written by a driver that was killed while writing it: write it again
                self.client.delete_run(found)
            run = self.client.create_run(self.experiment_id(), run_name=f"{tags['method']} seed {seed}",
                                         tags={PARENT_TAG: config_run, "level": "seed", "seed": str(seed),
                                               "sweep": self.sweep, **tags})
            keys = np.where(rows["metric"].str.startswith("train_"), rows["metric"],
                            rows["metric"] + "/task" + rows["eval_task"].astype(str))
            metrics = list(zip(keys, rows["value"].astype(float), rows["step"].astype(int)))
            self.log(run.info.run_id, metrics=metrics)
            self.client.set_terminated(run.info.run_id, "FINISHED")

    def aggregates(self, run_id: str, records: pd.DataFrame, metrics: dict[str, bool], num_tasks: int,
                   seeds: list[int], prefix: str = "") -> None:
        """Per-task seed-mean and SE after each task, and final/forgetting (mean and SE over seeds); every
        key prefixed by ``prefix`` (``confirm_`` for a confirmation's seeds)."""
        out: list[tuple[str, float, int]] = []
        for metric, higher in metrics.items():
            rows = records[records["metric"] == metric]
            if rows.empty:
                continue
            ends = rows.groupby(["seed", "train_task"])["step"].transform("max")
            end_rows = rows[rows["step"] == ends]
            for (_, j), group in end_rows.groupby(["train_task", "eval_task"]):
                mean, se, n = mean_se(group["value"])
                step = int(group["step"].max())
                out.append((f"{metric}/task{j}/mean", mean, step))
                if n > 1:
                    out.append((f"{metric}/task{j}/se", se, step))
            summary = summarize(records, metric, higher, num_tasks=num_tasks, seeds=seeds).iloc[0]
            for name in ("final", "forgetting", "bwt", "aaa"):
                out.append((f"{name}_{metric}", float(summary[name]), 0))
                out.append((f"{name}_{metric}_se", float(summary[f"{name}_se"]), 0))
        self.log(run_id, metrics=[(prefix + key, value, step) for key, value, step in out])

    def tag_configurations(self, tags: dict[str, dict[str, str]]) -> None:
        """Tags on configuration runs, by config id (e.g. ``pareto=front`` on the Pareto front's members)."""
        for config_id, values in tags.items():
            found = self.find_run(level="configuration", config_id=config_id)
            if found:
                self.log(found, tags=values)

    def finish(self, run_id: str, status: str, tags: dict[str, str] | None = None) -> None:
        """MLflow status FINISHED for finished, stopped and twin runs, FAILED otherwise; our status as a tag."""
        self.log(run_id, tags={"status": status, **(tags or {})})
        self.client.set_terminated(run_id, "FINISHED" if status in ("finished", "stopped", "twin") else "FAILED")
