"""Generative replay with generative distillation for diffusion models (Masip et al. 2025; 000 §4).

At the start of task t > 1 a frozen copy of the model (the teacher, θ*_{t−1}) generates
``buffer_per_task`` samples of every old task (paper: 1,300 per task). Each training batch of B current
samples is then mixed with round(β·B) replay samples drawn uniformly from the buffer of all old tasks
(the usual implementation of Eq. 7's β Σ_{i<t} L_i: old tasks enter in proportion to their share of the
buffer), and trained with the denoising loss over the combined batch; generative distillation regresses
the student's prediction on the replay samples onto the teacher's, with its own weight. Either part can be
switched off (``denoise_replay: false`` or ``distill_weight: 0``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from trainables.batch import Batch, cat, size, take
from trainables.benchmarks.base import Benchmark, Task
from trainables.params import knob


@dataclass(frozen=True)
class ReplayKnobs:
    replay_ratio: float = knob(1.0, "β: replay samples per current sample in a batch (000 Table 3: 1.0); "
                               "0 turns replay off, distillation included", low=0)
    buffer_per_task: int = knob(200, "replay samples the teacher generates per old task (paper: 1,300)",
                                low=1, smoke=6)
    distill_weight: float = knob(1.0, "weight of the distillation loss onto the teacher (0: off)", low=0)
    denoise_replay: bool = knob(True, "train on replay samples with the denoising loss")


class GenerativeReplay:
    """The teacher, its replay buffer, and the replay-mixed loss."""

    def __init__(self, bench: Benchmark, knobs: ReplayKnobs, generator: torch.Generator) -> None:
        self.bench, self.knobs, self.generator = bench, knobs, generator
        self.teacher: nn.Module | None = None
        self.buffer: Batch | None = None

    def refresh(self, model: nn.Module, old_tasks: list[Task]) -> None:
        """Freeze a copy of ``model`` as the teacher and let it generate the buffer of ``old_tasks``."""
        if not old_tasks:
            return
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        n = self.knobs.buffer_per_task
        self.buffer = cat(*[self.bench.replay(self.teacher, t, n, self.generator) for t in old_tasks])

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Denoising loss on the batch mixed with replay, plus weighted distillation on the replay part."""
        k = self.knobs
        m = round(k.replay_ratio * size(batch)) if self.buffer is not None else 0
        if m == 0:
            loss = self.bench.loss(model, batch, self.generator).mean()
            return loss, {"denoise": loss.item()}
        replay = take(self.buffer, torch.randint(size(self.buffer), (m,), generator=self.generator))
        mixed = cat(batch, replay) if k.denoise_replay else batch
        denoise = self.bench.loss(model, mixed, self.generator).mean()
        parts = {"denoise": denoise.item()}
        loss = denoise
        if k.distill_weight > 0:
            distill = self.bench.distill_loss(model, self.teacher, replay, self.generator).mean()
            loss = loss + k.distill_weight * distill
            parts["distill"] = distill.item()
        return loss, parts
