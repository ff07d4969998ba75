"""`replay`: L_t + β·L_replay, generative replay with generative distillation (Masip et al. 2025; 000 §4,
Eq. 7). See trainables/generative_replay.py for how replay samples enter a batch.

Weighting (``replay_weighting``), with B current samples, m = round(β·B) replay samples, w = distill_weight,
L̄ and D̄ means of the denoising and distillation losses over the replay samples (of old task i: L̄_i, D̄_i):
- ``mixed_batch`` (default, the authors' code): L = (B·L_t + m·L̄_r)/(B + m) + w·D̄_r
  ≈ (L_t + β·L̄_r)/(1 + β) + w·D̄_r: L_t weighs 1/(1 + β) from task 2 on;
- ``per_task`` (Eq. 7 literally): L = L_t + β Σ_{i<t} (L̄_i + w·D̄_i): L_t weighs 1, each old task β.

Optimizer: a fresh Adam at the start of every task (``reset_optimizer: true``, the default), as
000's authors' code builds one per task; the paper is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.generative_replay import GenerativeReplay, ReplayKnobs
from trainables.methods.base import Method, PerTaskOptimizerParams


@dataclass(frozen=True)
class ReplayParams(PerTaskOptimizerParams, ReplayKnobs):
    pass


class Replay(Method):
    name = "replay"
    Params = ReplayParams
    requires = frozenset({"generative_replay", "distillation"})

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.replay = GenerativeReplay(bench, params, generator)

    def begin_task(self, task):
        self.replay.refresh(self.model, list(self.seen))
        super().begin_task(task)

    def update(self, batch):
        loss, parts = self.replay.loss(self.model, batch)
        self.step(loss)
        return {"loss": loss.item(), **parts}
