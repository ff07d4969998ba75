"""A tiny task stream implementing the whole Benchmark interface, for exact checks of method math."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task
from trainables.params import knob


@dataclass(frozen=True)
class ToyConfig(Protocol):
    steps_per_task: int = knob(5, "steps", low=1)
    batch_size: int = knob(8, "batch", low=1)
    eval_every: int = knob(5, "eval", low=1)
    dense_until: int = knob(2, "dense", low=0)
    num_tasks: int = knob(2, "tasks", low=1)
    nan_after: int = knob(0, "make the loss NaN after this many loss calls (0: never)", low=0)
    stream_length: int = knob(0, "a single-pass stream: each task's stream ends after this many batches "
                              "(0: endless)", low=0)


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x):
        return self.body(x).squeeze(-1)


class ToyRegression(Benchmark):
    """Task k: y = sin(k · x·w) on 3-d inputs; the per-sample loss adds generator-drawn input noise, so
    its randomness flows through the generator like a diffusion loss's timesteps and noise."""

    name = "toy"
    Config = ToyConfig
    metrics = {"mse": MetricSpec(higher_is_better=False, cheap=True), "score": MetricSpec(higher_is_better=True)}
    capabilities = frozenset({"generative_replay", "distillation", "linear_head"})

    def __init__(self, config: ToyConfig | None = None, device="cpu") -> None:
        super().__init__(config or ToyConfig(), device)
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(3, generator=g)
        self.tasks = [Task(k + 1, f"task {k + 1}") for k in range(self.config.num_tasks)]
        self.data = {t.index: torch.randn(64, 3, generator=g) for t in self.tasks}
        self.test = {t.index: torch.randn(32, 3, generator=g) for t in self.tasks}
        self.calls = 0

    def target(self, task_index: int, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(task_index * x @ self.w)

    def make_model(self):
        return ToyNet()

    def train_batches(self, task, generator):
        batches = self._endless(task, generator)
        if not self.config.stream_length:
            return batches
        return (next(batches) for _ in range(self.config.stream_length))

    def _endless(self, task, generator):
        x = self.data[task.index]
        while True:
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x) - self.config.batch_size + 1, self.config.batch_size):
                xb = x[order[i:i + self.config.batch_size]]
                yield {"x": xb, "y": self.target(task.index, xb)}

    def train_sample(self, task, n, generator):
        x = self.data[task.index]
        idx = torch.randperm(len(x), generator=generator)[:n]
        return {"x": x[idx], "y": self.target(task.index, x[idx])}

    def loss(self, model, batch, generator, t_range=None):
        self.calls += 1
        noise = 0.1 * torch.randn(batch["x"].shape, generator=generator)
        out = (model(batch["x"] + noise) - batch["y"]) ** 2
        if self.config.nan_after and self.calls > self.config.nan_after:
            out = out * math.nan
        return out

    def replay(self, teacher, task, n, generator):
        x = torch.randn(n, 3, generator=generator)
        with torch.no_grad():
            return {"x": x, "y": teacher(x)}

    def distill_loss(self, student, teacher, batch, generator):
        with torch.no_grad():
            target = teacher(batch["x"])
        return (student(batch["x"]) - target) ** 2

    @torch.no_grad()
    def evaluate(self, model, task, metrics):
        x = self.test[task.index]
        mse = float(((model(x) - self.target(task.index, x)) ** 2).mean())
        return {name: value for name, value in (("mse", mse), ("score", -mse)) if name in metrics}
