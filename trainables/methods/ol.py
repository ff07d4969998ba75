"""`ol`: offline learning, 003's "OL" baseline: one network fitted to the whole signal at once.

Every update replaces the current task's batch by a batch of the same size from EVERY task of the stream
(``train_sample`` of each task, concatenated: on a neural-field benchmark, the same number of coordinates
from every region, so with the whole-region batch of ``batch_size: 0`` each step sees the whole signal),
and takes one optimizer step on its mean loss. It therefore sees future tasks: an upper bound, not a
continual learner. On the S-grid protocol its S steps per task add up to N·S steps on the whole signal
after N tasks (003 is silent on OL's step count; this gives it the continual methods' number of updates).
Random initialisation (the benchmark's); defaults: Adam 1e-3 (ours; 003 gives no rates).
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.batch import cat, size
from trainables.methods.base import Method, TrainParams
from trainables.params import knob


@dataclass(frozen=True)
class OLParams(TrainParams):
    lr: float = knob(1e-3, "learning rate (ours)", low=0, low_open=True, smoke=1e-3)


class OL(Method):
    name = "ol"
    Params = OLParams

    def whole(self, batch):
        """A batch of size(batch) samples from every task of the stream."""
        n = size(batch)
        return cat(*[self.bench.train_sample(t, n, self.generator) for t in self.bench.tasks])

    def update(self, batch):
        loss = self.bench.loss(self.model, self.whole(batch), self.generator).mean()
        self.step(loss)
        return {"loss": loss.item()}
