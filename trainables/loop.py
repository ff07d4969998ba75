"""The continual loop: task order, step counting, evaluation of every seen task, records, seeding.

It names no method and no benchmark. Evaluation grid inside each task's phase (local step i = 1..S, S the
number of updates the phase makes: ``steps_per_task``, or fewer when a single-pass stream ends first):

- coarse: every metric on every seen task at i % eval_every == 0 and at the end of the phase (i = S,
  after the method's ``end_task``), with the benchmark's full evaluation settings;
- dense: at i = 1, 2, 4, 8, ... <= dense_until, when not a coarse step, the benchmark's ``dense_metrics``
  (default: its cheap metrics) on the seen tasks among its ``dense_tasks`` (default: all), through
  ``Benchmark.evaluate_dense`` (which may use fewer samples: e.g. ``dense_eval_samples_per_class``; the
  records carry the same metric name, and the settings of the configuration say which steps were dense).

One evaluation per step, whatever the stream's length: when a single-pass stream ends at a step that had
an evaluation scheduled, that step's evaluation is the end-of-phase one (after ``end_task``), not both.
The loop looks one batch ahead only at a scheduled step, to know whether the stream ends there; in a
fixed-length phase the batches, the updates and every random draw are the same as without looking ahead
(evaluation draws from its own generators). Training statistics (the method's update outputs, averaged
since the previous evaluation) are recorded as ``train_<name>`` with eval_task = the current task, and
``end_task`` diagnostics under their own names.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from trainables import checkpoint
from trainables.acceleration import training_steps
from trainables.benchmarks.base import Benchmark
from trainables.methods.base import Method
from trainables.records import Record


class Diverged(RuntimeError):
    """A training loss became NaN or infinite."""


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derived_seed(*parts: int) -> int:
    """A deterministic seed from integers (stable across processes, unlike hash())."""
    value = 0
    for p in parts:
        value = (value * 1_000_003 + int(p)) % (2**31 - 1)
    return value


@dataclass(frozen=True)
class Evaluation:
    """What one step of the grid evaluates: metrics, on which seen tasks (None: all), and whether it is a
    dense-only step (the benchmark's dense evaluation settings apply)."""

    metrics: tuple[str, ...]
    tasks: tuple[int, ...] | None = None
    dense: bool = False


@dataclass(frozen=True)
class Schedule:
    steps_per_task: int
    eval_every: int
    dense_until: int
    dense_metrics: tuple[str, ...]
    all_metrics: tuple[str, ...]
    dense_tasks: tuple[int, ...] | None = None  # None: every seen task

    @classmethod
    def of(cls, bench: Benchmark) -> "Schedule":
        c = bench.config
        dense = bench.dense_grid_metrics()
        tasks = None if c.dense_tasks is None else tuple(sorted(set(c.dense_tasks)))
        return cls(c.steps_per_task, c.eval_every, c.dense_until, dense, tuple(bench.metrics), tasks)

    def at(self, i: int) -> Evaluation | None:
        """The evaluation at local step i of a phase (None: none)."""
        if i % self.eval_every == 0 or i == self.steps_per_task:
            return Evaluation(self.all_metrics)
        if i <= self.dense_until and i & (i - 1) == 0 and self.dense_metrics:
            return Evaluation(self.dense_metrics, self.dense_tasks, dense=True)
        return None

    def metrics_at(self, i: int) -> tuple[str, ...]:
        """Metrics evaluated at local step i of a phase (empty: none)."""
        evaluation = self.at(i)
        return evaluation.metrics if evaluation else ()


_END = object()  # the stream has no further batch


class ContinualRun:
    """One method instance on one benchmark with one seed; ``run_task(k)`` trains task k and returns its
    records. ``trainables.build.make_run`` builds it (the seed's stream, seeded model and method).

    Seeds of a configuration can be interleaved task by task: each run has its own torch.Generator for
    data order, noise and replay draws (the one its method holds), and the global RNGs are reseeded from
    (seed, task) before each task, so a run's records do not depend on what ran before it in the process.
    """

    def __init__(self, bench: Benchmark, method: Method, seed: int, generator: torch.Generator) -> None:
        self.bench, self.method, self.seed, self.generator = bench, method, seed, generator
        self.method_name = method.name
        self.schedule = Schedule.of(bench)
        self.step = 0
        self.done = 0

    def run_task(self, k: int) -> list[Record]:
        if k != self.done + 1:
            raise ValueError(f"tasks run in order: expected task {self.done + 1}, got {k}")
        seed_everything(derived_seed(self.seed, 2, k))
        task = self.bench.tasks[k - 1]
        method, schedule = self.method, self.schedule
        records: list[Record] = []
        method.begin_task(task)
        batches = self.bench.train_batches(task, self.generator)
        sums: dict[str, float] = {}
        count = 0
        ahead = None  # the next batch when it was fetched early (at a scheduled step)
        for i in range(1, schedule.steps_per_task + 1):
            batch = next(batches, _END) if ahead is None else ahead
            ahead = None
            if batch is _END:  # a single-pass stream ran out: the phase ends here
                break
            with training_steps(self.bench.config, self.bench.device):
                out = method.update(batch)
            self.step += 1
            bad = [name for name, v in out.items() if not math.isfinite(v)]
            if bad:
                raise Diverged(f"diverged: seed {self.seed}, task {k}, step {self.step}: "
                               + ", ".join(f"{n} = {out[n]}" for n in bad))
            for name, v in out.items():
                sums[name] = sums.get(name, 0.0) + v
            count += 1
            evaluation = schedule.at(i)
            if evaluation is None or i == schedule.steps_per_task:
                continue
            ahead = next(batches, _END)
            if ahead is _END:  # the stream ends at this step: its evaluation is the end-of-phase one below
                break
            if self._tasks(k, evaluation):
                records += self._train_stats(k, sums, count)
                sums, count = {}, 0
                records += self._evaluate(k, evaluation)
        if count:
            records += self._train_stats(k, sums, count)
        for name, value in method.end_task(task).items():
            records.append(Record(self.method_name, self.seed, self.step, k, k, name, float(value)))
        records += self._evaluate(k, Evaluation(schedule.all_metrics))
        self.done = k
        return records

    def state(self) -> bytes:
        """A full-state checkpoint at a task boundary (see ``trainables.checkpoint``)."""
        return checkpoint.dumps({"method": self.method.state(), "generator": self.generator.get_state(),
                                 "step": self.step, "done": self.done, "rng": checkpoint.rng_states()},
                                checkpoint.live_objects(self.bench, self.generator))

    def load_state(self, data: bytes) -> None:
        """Continue from ``state()``'s bytes: the next ``run_task`` is the task after the saved one."""
        state = checkpoint.loads(data, checkpoint.live_objects(self.bench, self.generator))
        self.method.load_state(state["method"])
        self.generator.set_state(state["generator"])
        self.step, self.done = state["step"], state["done"]
        checkpoint.set_rng_states(state["rng"])

    def _train_stats(self, k: int, sums: dict[str, float], count: int) -> list[Record]:
        return [Record(self.method_name, self.seed, self.step, k, k, f"train_{name}", total / count)
                for name, total in sums.items()]

    def _tasks(self, k: int, evaluation: Evaluation) -> list:
        """The seen tasks (1..k) the evaluation covers."""
        seen = self.bench.tasks[:k]
        return seen if evaluation.tasks is None else [t for t in seen if t.index in evaluation.tasks]

    def _evaluate(self, k: int, evaluation: Evaluation) -> list[Record]:
        records = []
        for task in self._tasks(k, evaluation):
            model = self.bench.eval_view(self.method.eval_model(task), k)
            evaluate = self.bench.evaluate_dense if evaluation.dense else self.bench.evaluate
            for name, value in evaluate(model, task, evaluation.metrics).items():
                if not math.isfinite(value):  # e.g. a NaN fd from NaN samples: the model has diverged
                    raise Diverged(f"diverged: seed {self.seed}, task {k}, step {self.step}: {name} of task "
                                   f"{task.index} = {value}")
                records.append(Record(self.method_name, self.seed, self.step, k, task.index, name,
                                      float(value)))
        return records
