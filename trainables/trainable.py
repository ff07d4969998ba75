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
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from core.records import COLUMNS, Record, read_csv, to_frame
from core.stats import REDUCTIONS, reduce_tasks, seed_summary
from trainables.benchmarks import get_benchmark
from trainables.build import Configuration, configure, make_runs

__all__ = ["REDUCTIONS", "Report", "SeedFailed", "Trial", "TrialConfig", "objective_value", "run_configuration", "run_trial"]


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


class SeedFailed(RuntimeError):
    """One seed of a configuration failed (not diverged): the configuration fails, naming the seed; it is
    never averaged over the seeds that survived."""


def seed_task(seed: int, k: int, work: Callable, *args):
    """``work(*args)`` for seed ``seed`` at task ``k``; an error other than a divergence names the seed."""
    from trainables.loop import Diverged

    try:
        return work(*args)
    except Diverged:
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[-1]  # Ray's wrapped errors end with the cause's line
        raise SeedFailed(f"seed {seed} failed at task {k}: {type(e).__name__}: {first}") from e


class Trial:
    """A configuration's seeds, trained task by task; checkpointed and restored at task boundaries.

    ``runs`` are the seeds' runs: :class:`~trainables.loop.ContinualRun` objects here, or stand-ins with
    the same ``seed``, ``run_task``, ``state`` and ``load_state`` (the orchestrator's Ray actors);
    ``run_task`` trains task k on every seed, one after another unless a subclass overrides it.
    """

    def __init__(self, config: Configuration, runs: list, context: dict[str, str] | None = None) -> None:
        self.config, self.runs = config, runs
        self.num_tasks = config.bench_config.num_tasks
        # the stream's length travels with the records: a run stopped early is incomplete to analysis
        data = get_benchmark(config.benchmark).data_source(config.bench_config)
        self.context = {"benchmark": config.benchmark, "num_tasks": self.num_tasks,
                        **({"data": data} if data else {}), **(context or {})}
        self.records: list[Record] = []
        self.done = 0
        self._csv: list[str] = []  # records.csv as text, in pieces: records[:_csv_rows] already written
        self._csv_rows = 0

    def run_task(self, k: int) -> list[list[Record]]:
        return [seed_task(run.seed, k, run.run_task, k) for run in self.runs]

    def next_task(self) -> dict[str, float]:
        """Train the next task on every seed; the report: task, seed-mean objective, its SE, each seed's."""
        k = self.done + 1
        values = {}
        for run, new in zip(self.runs, self.run_task(k)):
            self.records += new
            values[run.seed] = objective_value(new, k, self.config.metric, self.config.objective_reduce,
                                               self.config.higher_is_better)
        self.done = k
        return {"task": k, **seed_summary(values)}

    def frame(self) -> pd.DataFrame:
        return to_frame(self.records, **self.context)

    def close(self) -> None:
        """Release what the seeds' runs hold outside this process (nothing for local runs)."""

    def records_csv(self) -> str:
        """All records so far as records.csv's text; only the records added since the last call are
        serialised (a report after task k would otherwise re-serialise every earlier task's records)."""
        new = self.records[self._csv_rows:]
        if new or not self._csv:
            self._csv.append(to_frame(new, **self.context).to_csv(index=False, header=not self._csv))
            self._csv_rows = len(self.records)
        return "".join(self._csv)

    def save(self, folder: Path) -> None:
        """Records so far (records.csv) and every seed's full state (seed<S>.state) into ``folder``."""
        (folder / "records.csv").write_text(self.records_csv(), encoding="utf-8")
        for run in self.runs:
            (folder / f"seed{run.seed}.state").write_bytes(run.state())

    def load(self, folder: Path) -> None:
        """Continue from ``save``'s folder: the next task is the one after the saved one."""
        frame = read_csv(folder / "records.csv")
        self.records = [Record(*row) for row in frame[list(COLUMNS)].itertuples(index=False)]
        self._csv, self._csv_rows = [], 0
        for run in self.runs:
            run.load_state((folder / f"seed{run.seed}.state").read_bytes())
        self.done = int(frame["train_task"].max()) if len(frame) else 0


def run_configuration(config: Configuration, report: Report | None = None,
                      context: dict[str, str] | None = None) -> pd.DataFrame:
    """Train ``config`` over its seeds task by task; report after each task; return all records.
    ``context`` (config_id, sweep, ...) becomes constant columns of the records, with ``benchmark``."""
    trial = Trial(config, make_runs(config), context)
    while trial.done < trial.num_tasks:
        metrics = trial.next_task()
        if report is not None:
            report(metrics, trial.frame())
    return trial.frame()


def run_trial(config: TrialConfig, report: Report | None = None) -> pd.DataFrame:
    """Validate ``config`` (ParamError/ValueError name the field), then ``run_configuration``."""
    context = {"config_id": config.context.get("config_id") or config.config_id(), **config.context}
    return run_configuration(config.configure(), report, context)
