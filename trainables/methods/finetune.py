"""`finetune`: naive sequential fine-tuning, min L_t on each task in turn (000 §4 baseline).

Optimizer: a fresh Adam at the start of every task (``reset_optimizer: true``, the default), as
000's authors' code builds one per task; the paper is silent.
"""

from __future__ import annotations

from trainables.methods.base import Method, PerTaskOptimizerParams


class Finetune(Method):
    name = "finetune"
    Params = PerTaskOptimizerParams

    def update(self, batch):
        loss = self.bench.loss(self.model, batch, self.generator).mean()
        self.step(loss)
        return {"loss": loss.item()}
