"""`full_ft`: full fine-tuning (004 Table 2's lower bound): every weight of the ViT trained on each task in
turn from the previous task's weights, with the task's head block (earlier and later blocks frozen, as in
`perturb_merge`); no adapter, no merge. AdamW, a fresh one per task; 004 gives no rate for it: the default
is the LoRA rate (1e-3) for the backbone and 1e-2 for the head, so it differs from `lora_seq` only in what
is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.merging import FrozenRows
from trainables.methods.base import Method
from trainables.params import knob


@dataclass(frozen=True)
class FullFTParams:
    lr: float = knob(1e-3, "AdamW rate of the backbone (004 silent)", low=0, low_open=True, smoke=1e-4)
    head_lr: float = knob(1e-2, "AdamW rate of the current task's head block (004: 1e-2)", low=0, low_open=True,
                          smoke=1e-2)
    weight_decay: float = knob(0.0, "AdamW's decoupled weight decay (004 silent)", low=0)
    reset_optimizer: bool = knob(True, "a fresh AdamW for every task, as the LoRA family builds one per "
                                 "task (004 silent for full fine-tuning)", choices=(True,))


class FullFT(Method):
    name = "full_ft"
    Params = FullFTParams
    requires = frozenset({"lora_vit"})

    def make_optimizer(self, parameters, lr):
        return None  # a fresh AdamW at every task (begin_task)

    def begin_task(self, task):
        self.seen.append(task)
        p = self.params
        head = self.model.get_submodule(self.bench.head_name)
        self.model.requires_grad_(True)
        self.frozen = FrozenRows(head, task.classes)
        body = [w for n, w in self.model.named_parameters() if not n.startswith(self.bench.head_name + ".")]
        self.optimizer = torch.optim.AdamW([{"params": body, "lr": p.lr},
                                            {"params": list(head.parameters()), "lr": p.head_lr}],
                                           weight_decay=p.weight_decay)

    def update(self, batch):
        loss = self.bench.loss(self.model, batch, self.generator).mean()
        self.step(loss)
        self.frozen.restore()
        return {"loss": loss.item()}

    def end_task(self, task):
        self.frozen = self.optimizer = None
        return {}
