"""The continual loop: task order, step counting, evaluation of every seen task, records, seeding.

It names no method and no benchmark. Evaluation grid inside each task's phase (local step i = 1..S):
every metric at i % eval_every == 0 and at the end of the task (i = S, after the method's ``end_task``);
the benchmark's cheap metrics also at i = 1, 2, 4, 8, ... <= dense_until, so that steps-to-re-converge
after a transition is resolved finely. Training statistics (the method's update outputs, averaged since
the previous evaluation) are recorded as ``train_<name>`` with eval_task = the current task, and
``end_task`` diagnostics under their own names.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from trainables import checkpoint
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
class Schedule:
    steps_per_task: int
    eval_every: int
    dense_until: int
    cheap_metrics: tuple[str, ...]
    all_metrics: tuple[str, ...]

    @classmethod
    def of(cls, bench: Benchmark) -> "Schedule":
        c = bench.config
        return cls(c.steps_per_task, c.eval_every, c.dense_until,
                   tuple(m for m, spec in bench.metrics.items() if spec.cheap), tuple(bench.metrics))

    def metrics_at(self, i: int) -> tuple[str, ...]:
        """Metrics evaluated at local step i of a phase (empty: none)."""
        if i % self.eval_every == 0 or i == self.steps_per_task:
            return self.all_metrics
        if i <= self.dense_until and i & (i - 1) == 0:
            return self.cheap_metrics
        return ()


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
        for i in range(1, schedule.steps_per_task + 1):
            batch = next(batches, None)
            if batch is None:  # a single-pass stream ran out: the phase ends here
                break
            out = method.update(batch)
            self.step += 1
            bad = [name for name, v in out.items() if not math.isfinite(v)]
            if bad:
                raise Diverged(f"diverged: seed {self.seed}, task {k}, step {self.step}: "
                               + ", ".join(f"{n} = {out[n]}" for n in bad))
            for name, v in out.items():
                sums[name] = sums.get(name, 0.0) + v
            count += 1
            metrics = schedule.metrics_at(i)
            if metrics and i != schedule.steps_per_task:
                records += self._train_stats(k, sums, count)
                sums, count = {}, 0
                records += self._evaluate(k, metrics)
        if count:
            records += self._train_stats(k, sums, count)
        for name, value in method.end_task(task).items():
            records.append(Record(self.method_name, self.seed, self.step, k, k, name, float(value)))
        records += self._evaluate(k, schedule.all_metrics)
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

    def _evaluate(self, k: int, metrics: tuple[str, ...]) -> list[Record]:
        records = []
        for task in self.bench.tasks[:k]:
            model = self.method.eval_model(task)
            for name, value in self.bench.evaluate(model, task, metrics).items():
                records.append(Record(self.method_name, self.seed, self.step, k, task.index, name,
                                      float(value)))
        return records
