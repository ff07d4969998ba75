"""`replay`: L_t + β·L_replay, generative replay with generative distillation (Masip et al. 2025; 000 §4).
See trainables/generative_replay.py for how replay samples enter a batch."""

from __future__ import annotations

from dataclasses import dataclass

from trainables.generative_replay import GenerativeReplay, ReplayKnobs
from trainables.methods.base import Method, TrainParams


@dataclass(frozen=True)
class ReplayParams(TrainParams, ReplayKnobs):
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
