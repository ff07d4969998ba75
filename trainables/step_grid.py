"""003's protocol: episodic meta-training once, then the stream from that initialisation for every S in a
doubling grid (a benchmark with ``protocol = "step_grid"``; ``trainables.build.make_run`` picks it).

One run (a method, its settings, a seed):

1. The initialisation. The method instance built on ``bench.make_model()`` (a seed's random draw) is the
   template. When the method meta-learns (it overrides ``Method.meta_update``), the template takes
   ``meta_steps`` outer steps on ``bench.meta_episode(generator, meta_batch)`` (its own generator, from the
   seed). The resulting model is cached (``cache_dir(config)/meta_init/``, keyed by benchmark, its meta-
   training settings, method, its settings and seed), so a rerun, a resumed trial or a later sweep reuses
   it; the records get ``meta_steps`` (outer steps taken) and ``meta_loss`` (mean meta-loss of the last
   tenth of them) at step 0, task 1.
2. Test-time adaptation. For every S in 1, 2, 4, ..., S_max (= ``steps_per_task``; S_max added if not a
   power of two) a fresh method instance is built on a copy of that model, with its own generator from
   (seed, S); task k's phase is S of its ``update`` calls on batches of region k.

Records (the one format; ``step`` = S, test-time steps per region, not a global count): after task k's
phase of grid point S, every seen region j <= k on every metric at (step S, train_task k, eval_task j);
the whole signal (``evaluate_signal``, every region answered by ``eval_model`` of its task: routing) as
``psnr_signal``/``mse_signal`` at eval_task k; ``train_<name>`` (means over the phase) and ``end_task``
diagnostics at eval_task k. So R[k, j] at the largest step is the S_max run, and "PSNR at S after all
tasks" is (step S, train_task N). The global RNGs are reseeded from (seed, task) before each task.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
from typing import Callable

import torch

from trainables import checkpoint
from trainables.acceleration import prepare_model, training_steps
from trainables.benchmarks.base import Benchmark, cache_dir
from trainables.loop import Diverged, derived_seed, seed_everything
from trainables.methods.base import Method
from trainables.records import Record

# settings that do not change meta-training (the cache key leaves them out)
NOT_META = ("steps_per_task", "eval_every", "dense_until", "dense_metrics", "dense_tasks", "cache_dir",
            "test_signals")


def step_grid(s_max: int) -> list[int]:
    """1, 2, 4, ... <= s_max, and s_max itself."""
    grid = [2 ** i for i in range(s_max.bit_length()) if 2 ** i <= s_max]
    return grid if grid[-1] == s_max else grid + [s_max]


def meta_learns(method: Method) -> bool:
    return type(method).meta_update is not Method.meta_update


class StepGridRun:
    """One seed of one configuration under the S-grid protocol; ``run_task(k)`` runs task k for every S."""

    def __init__(self, bench: Benchmark, make_method: Callable[[torch.nn.Module, torch.Generator], Method],
                 seed: int, generator: torch.Generator) -> None:
        self.bench, self.make_method, self.seed, self.generator = bench, make_method, seed, generator
        self.template = make_method(prepare_model(bench.make_model(), bench.config), generator)
        self.method_name = self.template.name
        self.grid = step_grid(bench.config.steps_per_task)
        self.runs: dict[int, Method] = {}
        self.done = 0

    # -- the initialisation ----------------------------------------------------------------------------
    def cache_path(self):
        config = {k: v for k, v in dataclasses.asdict(self.bench.config).items() if k not in NOT_META}
        key = json.dumps([self.bench.name, config, self.method_name, dataclasses.asdict(self.template.params),
                          self.seed], sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return cache_dir(self.bench.config) / "meta_init" / f"{self.bench.name}-{self.method_name}-{digest}.pt"

    def meta_train(self) -> dict[str, float]:
        """The template's meta-training (or its cached result): {meta_steps, meta_loss}."""
        template, c = self.template, self.bench.config
        path = self.cache_path()
        if path.exists():
            try:
                saved = torch.load(path, map_location=self.bench.device, weights_only=True)
                with torch.no_grad():
                    for p, q in zip(template.model.parameters(), saved["theta"]):
                        p.copy_(q.expand_as(p))
                return {"meta_steps": saved["meta_steps"], "meta_loss": saved["meta_loss"]}
            except Exception:  # a damaged file: meta-train again and overwrite it
                pass
        generator = torch.Generator().manual_seed(derived_seed(self.seed, 4))
        tail = max(1, c.meta_steps // 10)
        losses = []
        for i in range(c.meta_steps):
            with training_steps(c, self.bench.device):
                out = template.meta_update(self.bench.meta_episode(generator, c.meta_batch))
            if not math.isfinite(out["loss"]):
                raise Diverged(f"diverged: seed {self.seed}, meta-training step {i + 1}: loss = {out['loss']}")
            losses.append(out["loss"])
        summary = {"meta_steps": float(c.meta_steps), "meta_loss": sum(losses[-tail:]) / len(losses[-tail:])}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"theta": [p.detach()[:1].cpu() for p in template.model.parameters()],
                    "optimizer": type(template.optimizer).__name__, **summary}, tmp)
        os.replace(tmp, path)
        return summary

    def grid_generator(self, s: int) -> torch.Generator:
        return torch.Generator().manual_seed(derived_seed(self.seed, 5, s))

    def start(self) -> list[Record]:
        records = []
        if meta_learns(self.template):
            for name, value in self.meta_train().items():
                records.append(Record(self.method_name, self.seed, 0, 1, 1, name, float(value)))
        self.runs = {s: self.make_method(copy.deepcopy(self.template.model), self.grid_generator(s))
                     for s in self.grid}
        return records

    # -- the stream ------------------------------------------------------------------------------------
    def run_task(self, k: int) -> list[Record]:
        if k != self.done + 1:
            raise ValueError(f"tasks run in order: expected task {self.done + 1}, got {k}")
        seed_everything(derived_seed(self.seed, 2, k))
        records = self.start() if k == 1 else []
        task = self.bench.tasks[k - 1]
        for s, method in self.runs.items():
            method.begin_task(task)
            batches = self.bench.train_batches(task, method.generator)
            sums: dict[str, float] = {}
            for i in range(s):
                with training_steps(self.bench.config, self.bench.device):
                    out = method.update(next(batches))
                bad = [n for n, v in out.items() if not math.isfinite(v)]
                if bad:
                    raise Diverged(f"diverged: seed {self.seed}, S {s}, task {k}, step {i + 1}: "
                                   + ", ".join(f"{n} = {out[n]}" for n in bad))
                for n, v in out.items():
                    sums[n] = sums.get(n, 0.0) + v
            records += [Record(self.method_name, self.seed, s, k, k, f"train_{n}", v / s) for n, v in sums.items()]
            records += [Record(self.method_name, self.seed, s, k, k, n, float(v))
                        for n, v in method.end_task(task).items()]
            records += self.evaluate(method, s, k)
        self.done = k
        return records

    def evaluate(self, method: Method, s: int, k: int) -> list[Record]:
        values = [(t.index, n, v) for t in self.bench.tasks[:k]
                  for n, v in self.bench.evaluate(method.eval_model(t), t, tuple(self.bench.metrics)).items()]
        signal = self.bench.evaluate_signal({t.index: method.eval_model(t) for t in self.bench.tasks})
        values += [(k, n, v) for n, v in signal.items()]
        for j, n, v in values:
            if not math.isfinite(v):
                raise Diverged(f"diverged: seed {self.seed}, S {s}, task {k}: {n} of task {j} = {v}")
        return [Record(self.method_name, self.seed, s, k, j, n, float(v)) for j, n, v in values]

    # -- checkpoints -----------------------------------------------------------------------------------
    def live(self, generators: dict[int, torch.Generator]) -> dict:
        """What a checkpoint refers to instead of saving: the benchmark, its tasks, the run's generator and
        each grid point's generator (memories and methods hold references to them)."""
        return {**checkpoint.live_objects(self.bench, self.generator), **{f"grid{s}": g for s, g in generators.items()}}

    def state(self) -> bytes:
        generators = {s: m.generator for s, m in self.runs.items()}
        return checkpoint.dumps({"runs": {s: m.state() for s, m in self.runs.items()},
                                 "generators": {s: g.get_state() for s, g in generators.items()},
                                 "done": self.done, "rng": checkpoint.rng_states()}, self.live(generators))

    def load_state(self, data: bytes) -> None:
        generators = {s: self.grid_generator(s) for s in self.grid}
        state = checkpoint.loads(data, self.live(generators))
        self.runs = {}
        for s, method_state in state["runs"].items():
            generators[s].set_state(state["generators"][s])
            method = self.make_method(copy.deepcopy(self.template.model), generators[s])
            method.load_state(method_state)
            self.runs[s] = method
        self.done = state["done"]
        checkpoint.set_rng_states(state["rng"])
