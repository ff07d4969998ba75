"""`finetune`: naive sequential fine-tuning, min L_t on each task in turn (000 §4 baseline)."""

from __future__ import annotations

from trainables.methods.base import Method, TrainParams


class Finetune(Method):
    name = "finetune"
    Params = TrainParams

    def update(self, batch):
        loss = self.bench.loss(self.model, batch, self.generator).mean()
        self.step(loss)
        return {"loss": loss.item()}
