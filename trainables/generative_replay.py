"""Generative replay with generative distillation for diffusion models (Masip et al. 2025; 000 §4).

At the start of task t > 1 a frozen copy of the model (the teacher, θ*_{t−1}) generates
``buffer_per_task`` samples of every old task (paper: 1,300 per task). Each update on a batch of B current
samples then adds replay samples, trained with the denoising loss, and generative distillation regresses the
student's prediction on the replay samples onto the teacher's, with its own weight w (``distill_weight``).
Either part can be switched off (``denoise_replay: false`` or ``distill_weight: 0``); β = 0 (or task 1,
with no buffer yet) gives L = L_t. How 000 Eq. 7's L_t + β Σ_{i<t} L_i is weighted (``replay_weighting``):

- ``mixed_batch`` (default; the authors' code, and the results of every earlier version): m = round(β·B)
  samples drawn uniformly with replacement from the buffer of all old tasks join the batch, and the
  denoising loss is the mean over the B + m samples:
      L = (B·L_t + m·L̄_r)/(B + m) + w·D̄_r  ≈  (L_t + β·L̄_r)/(1 + β) + w·D̄_r,
  with L̄_r, D̄_r the means over the replay samples (old tasks in proportion to their share of the buffer,
  L̄_r ≈ (1/(t−1)) Σ_{i<t} L_i). So L_t weighs 1/(1+β) from task 2 on (1 on task 1), the old tasks
  together β/(1+β), and relative to L_t the distillation weighs w·(1+β). With ``denoise_replay: false``
  the first term is L_t alone.
- ``per_task`` (Eq. 7 literally): every old task i < t gets its own max(1, round(β·B/(t−1))) samples
  (uniform with replacement from its part of the buffer, so about as many replay samples as mixed_batch),
  and  L = L_t + β Σ_{i<t} (L̄_i + w·D̄_i),  L̄_i and D̄_i the means over task i's samples. L_t weighs 1
  on every task; each old task weighs β against the current one, so the replay total grows as β(t−1).

A λ·L_EWC added to L (`trust_region`) therefore acts (1+β) times more strongly against L_t under
mixed_batch than λ·L_EWC does in `ewc` (L = L_t + λ·L_EWC), and exactly as strongly under per_task.
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
    replay_weighting: str = knob("mixed_batch", "mixed_batch: one mean over current + replay samples (the "
                                 "authors' code; L_t weighs 1/(1+β)); per_task: 000 Eq. 7 literally, L_t + "
                                 "β Σ_i (mean loss of old task i + w · its distillation)",
                                 choices=("mixed_batch", "per_task"))


class GenerativeReplay:
    """The teacher, its replay buffer, and the replay-weighted loss."""

    def __init__(self, bench: Benchmark, knobs: ReplayKnobs, generator: torch.Generator) -> None:
        self.bench, self.knobs, self.generator = bench, knobs, generator
        self.teacher: nn.Module | None = None
        self.buffer: Batch | None = None  # old task j's samples (from 0) at [j·n, (j+1)·n), n = buffer_per_task
        self.old_tasks = 0

    def refresh(self, model: nn.Module, old_tasks: list[Task]) -> None:
        """Freeze a copy of ``model`` as the teacher and let it generate the buffer of ``old_tasks``."""
        if not old_tasks:
            return
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        n = self.knobs.buffer_per_task
        self.buffer = cat(*[self.bench.replay(self.teacher, t, n, self.generator) for t in old_tasks])
        self.old_tasks = len(old_tasks)

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The replay-weighted loss of ``replay_weighting`` (see the module docstring) and its parts."""
        k = self.knobs
        if k.replay_weighting == "per_task" and self.buffer is not None and k.replay_ratio > 0:
            return self._per_task(model, batch)
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

    def _per_task(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """L_t + β Σ_i (L̄_i + w·D̄_i): one denoising pass over the batch and every old task's samples."""
        k, b, tasks = self.knobs, size(batch), self.old_tasks
        n, each = self.knobs.buffer_per_task, max(1, round(k.replay_ratio * b / tasks))
        idx = torch.cat([j * n + torch.randint(n, (each,), generator=self.generator) for j in range(tasks)])
        replay = take(self.buffer, idx)
        if k.denoise_replay:
            losses = self.bench.loss(model, cat(batch, replay), self.generator)
            current, old = losses[:b].mean(), losses[b:].reshape(tasks, each).mean(1)
        else:
            current, old = self.bench.loss(model, batch, self.generator).mean(), None
        parts = {"denoise": current.item()}
        total = torch.zeros((), device=current.device)
        if old is not None:
            total = total + old.sum()
            parts["replay_denoise"] = old.mean().item()
        if k.distill_weight > 0:
            distill = self.bench.distill_loss(model, self.teacher, replay, self.generator).reshape(tasks, each).mean(1)
            total = total + k.distill_weight * distill.sum()
            parts["distill"] = distill.mean().item()
        return current + k.replay_ratio * total, parts
