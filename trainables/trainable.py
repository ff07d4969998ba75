"""The Ray Tune trainable without Ray in it.

``run_trial`` builds the benchmark and one run per seed from a TrialConfig and trains them task by task
(tasks outside, seeds inside). After each task it calls ``report(metrics, records)`` with the seed-mean
objective, every seed's value, and all records so far; orchestrator/ passes in Ray's report and
checkpointing, ``orchestrate run`` and the tests pass plain functions.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from trainables.benchmarks import Benchmark, get_benchmark
from trainables.loop import ContinualRun
from trainables.methods import get_method
from trainables.params import build
from trainables.records import Record, to_frame

REDUCTIONS = ("mean", "worst", "last")


@dataclass(frozen=True)
class TrialConfig:
    """One configuration of one method, run over several seeds."""

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


def benchmark_config(name: str, values: dict[str, Any]):
    """The benchmark's Config: defaults, then the named preset, then ``values``."""
    cls = get_benchmark(name)
    values = dict(values)
    preset = values.pop("preset", None)
    if preset is not None:
        if preset not in cls.presets:
            raise ValueError(f"benchmark.preset: unknown preset '{preset}' of {name}; allowed: "
                             f"{', '.join(sorted(cls.presets)) or 'none'}")
        values = {**cls.presets[preset], **values}
    config = build(cls.Config, values, "benchmark")
    cls.check(config)
    return config


def method_params(name: str, values: dict[str, Any], bench_config=None):
    """The method's Params from ``values``, checked (against the benchmark's settings when given)."""
    cls = get_method(name)
    params = build(cls.Params, values, f"methods.{name}")
    if bench_config is not None:
        cls.check(params, bench_config)
    return params


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_benchmark(name: str, values: dict[str, Any], device: str = "auto") -> Benchmark:
    return get_benchmark(name)(benchmark_config(name, values), resolve_device(device))


def objective_value(records: list[Record], k: int, metric: str, reduce: str, higher_is_better: bool) -> float:
    """The objective of one seed after task k: ``metric`` of the seen tasks at task k's last evaluation,
    reduced over tasks (mean: the running final average; worst; last: task k only)."""
    rows = [r for r in records if r.train_task == k and r.metric == metric]
    if not rows:
        return math.nan
    end = max(r.step for r in rows)
    values = {r.eval_task: r.value for r in rows if r.step == end}
    if reduce == "last":
        return values[k]
    if reduce == "worst":
        return min(values.values()) if higher_is_better else max(values.values())
    return float(np.mean(list(values.values())))


Report = Callable[[dict[str, float], pd.DataFrame], None]


def run_trial(config: TrialConfig, report: Report | None = None) -> pd.DataFrame:
    """Train ``config`` over its seeds task by task; report after each task; return all records."""
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise ValueError(f"seeds: {list(config.seeds)} is not allowed; allowed: a non-empty list of distinct integers")
    bench = make_benchmark(config.benchmark, config.benchmark_params, config.device)
    params = method_params(config.method, config.params, bench.config)
    metric = config.objective_metric or next(iter(bench.metrics))
    if metric not in bench.metrics:
        raise ValueError(f"objective.metric: '{metric}' is not a metric of {config.benchmark}; allowed: "
                         f"{', '.join(bench.metrics)}")
    higher = bench.metrics[metric].higher_is_better
    context = {"config_id": config.context.get("config_id") or config.config_id(),
               "benchmark": config.benchmark, **config.context}
    runs = [ContinualRun(bench, config.method, params, seed) for seed in config.seeds]
    records: list[Record] = []
    for k in range(1, len(bench.tasks) + 1):
        values = {}
        for run in runs:
            new = run.run_task(k)
            records += new
            values[run.seed] = objective_value(new, k, metric, config.objective_reduce, higher)
        seed_values = list(values.values())
        metrics = {"task": k, "objective": float(np.mean(seed_values)),
                   "objective_se": float(np.std(seed_values, ddof=1) / math.sqrt(len(seed_values)))
                   if len(seed_values) > 1 else math.nan,
                   **{f"objective_seed{s}": v for s, v in values.items()}}
        if report is not None:
            report(metrics, to_frame(records, **context))
    return to_frame(records, **context)
