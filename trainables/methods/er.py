"""`er`: experience replay from a reservoir memory (Chaudhry et al. 2019, "On Tiny Episodic Memories"; a
baseline of 002). Each batch of B current samples is trained together with round(β·B) samples drawn from
the memory (one cross-entropy over the combined batch); the current batch then enters the reservoir.

``reset_optimizer`` is false by default: the La-MAML repository's ER code, whose numbers 002 reports,
builds one plain SGD for the whole stream, which holds no state (true matters only with ``optimizer: adam``).
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.batch import cat, size
from trainables.memory import Reservoir
from trainables.methods.base import Method, OnlineParams
from trainables.methods.knobs import MemoryKnobs
from trainables.params import knob


@dataclass(frozen=True)
class ERParams(OnlineParams, MemoryKnobs):
    replay_ratio: float = knob(1.0, "β: memory samples per current sample in a batch", low=0)


class ER(Method):
    name = "er"
    Params = ERParams

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.memory = Reservoir(params.memory_size, generator)

    def update(self, batch):
        m = round(self.params.replay_ratio * size(batch)) if len(self.memory) else 0
        mixed = cat(batch, self.memory.sample(m)) if m else batch
        loss = self.bench.loss(self.model, mixed, self.generator).mean()
        self.step(loss)
        self.memory.add(batch)
        return {"loss": loss.item()}
