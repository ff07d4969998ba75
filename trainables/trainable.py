"""The Ray Tune trainable without Ray in it.

``run_trial`` builds a validated :class:`~trainables.build.Configuration` once (the benchmark and one run
per seed) and trains it task by task (tasks outside, seeds inside). After each task it calls
``report(metrics, records)`` with the seed-mean objective, its standard error, every seed's value
(``core.stats.seed_summary``) and all records so far; orchestrator/ passes in Ray's report and
checkpointing, ``orchestrate run`` and the tests pass plain functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from core.records import Record, to_frame
from core.stats import REDUCTIONS, reduce_tasks, seed_summary
from trainables.build import Configuration, configure, make_runs

__all__ = ["REDUCTIONS", "Report", "TrialConfig", "objective_value", "run_configuration", "run_trial"]


@dataclass(frozen=True)
class TrialConfig:
    """One configuration of one method as raw values (validated by ``run_trial``), run over several seeds."""

    method: str
    benchmark: str
    params: dict[str, Any] = field(default_factory=dict)
    benchmark_params: dict[str, Any] = field(default_factory=dict)  # may hold "preset"
    seeds: tuple[int, ...] = (0,)
    objective_metric: str = ""
    objective_reduce: str = "mean"  # over the seen tasks at each task's end: mean | worst | last
    device: str = "auto"
    context: dict[str, str] = field(default_factory=dict)  # config_id, sweep: added to every record

    def config_id(self) -> str:
        """A stable id of (method, params, benchmark settings), used when none is given."""
        key = json.dumps([self.method, self.params, self.benchmark, self.benchmark_params], sort_keys=True,
                         default=str)
        return hashlib.sha1(key.encode()).hexdigest()[:10]

    def configure(self) -> Configuration:
        return configure(self.method, self.params, self.benchmark, self.benchmark_params, self.seeds,
                         self.objective_metric, self.objective_reduce, self.device)


def objective_value(records: list[Record], k: int, metric: str, reduce: str, higher_is_better: bool) -> float:
    """The objective of one seed after task k: ``metric`` of the seen tasks at task k's last evaluation,
    reduced over tasks by ``core.stats.reduce_tasks`` (mean: the running final average; worst; last)."""
    rows = [r for r in records if r.train_task == k and r.metric == metric]
    if not rows:
        return float("nan")
    end = max(r.step for r in rows)
    return reduce_tasks({r.eval_task: r.value for r in rows if r.step == end}, reduce, higher_is_better)


Report = Callable[[dict[str, float], pd.DataFrame], None]


def run_configuration(config: Configuration, report: Report | None = None,
                      context: dict[str, str] | None = None) -> pd.DataFrame:
    """Train ``config`` over its seeds task by task; report after each task; return all records.
    ``context`` (config_id, sweep, ...) becomes constant columns of the records, with ``benchmark``."""
    context = {"benchmark": config.benchmark, **(context or {})}
    runs = make_runs(config)
    metric, higher = config.metric, config.higher_is_better
    records: list[Record] = []
    for k in range(1, len(runs[0].bench.tasks) + 1):
        values = {}
        for run in runs:
            new = run.run_task(k)
            records += new
            values[run.seed] = objective_value(new, k, metric, config.objective_reduce, higher)
        if report is not None:
            report({"task": k, **seed_summary(values)}, to_frame(records, **context))
    return to_frame(records, **context)


def run_trial(config: TrialConfig, report: Report | None = None) -> pd.DataFrame:
    """Validate ``config`` (ParamError/ValueError name the field), then ``run_configuration``."""
    context = {"config_id": config.context.get("config_id") or config.config_id(), **config.context}
    return run_configuration(config.configure(), report, context)
