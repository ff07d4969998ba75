"""`agem`: Averaged GEM (Chaudhry et al. 2019, Eq. 11; a baseline of 002). With g the gradient on the
current batch and g_ref the gradient on a batch drawn from the episodic memory of previous tasks, the
update uses g̃ = g − (gᵀg_ref / g_refᵀg_ref) g_ref when gᵀg_ref < 0, else g. The memory keeps an equal
share (memory_size / number of tasks) of each finished task's stream, chosen by reservoir sampling over
that task's stream.

``reset_optimizer`` is false by default: the La-MAML repository's A-GEM code, whose numbers 002 reports,
builds one plain SGD for the whole stream, which holds no state (true matters only with ``optimizer: adam``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.batch import cat
from trainables.memory import Reservoir
from trainables.methods.base import Method, OnlineParams
from trainables.methods.knobs import MemoryKnobs
from trainables.params import knob
from trainables.tensors import flat, parameters_of, set_flat_grad


@dataclass(frozen=True)
class AGEMParams(OnlineParams, MemoryKnobs):
    reference_batch: int = knob(64, "memory samples behind the reference gradient g_ref", low=1, smoke=4)


class AGEM(Method):
    name = "agem"
    Params = AGEMParams

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.per_task = max(1, params.memory_size // len(bench.tasks))
        self.current = Reservoir(self.per_task, generator)
        self.memory: dict | None = None  # the previous tasks' samples

    def begin_task(self, task):
        super().begin_task(task)
        self.current = Reservoir(self.per_task, self.generator)

    def gradient(self, batch) -> tuple[torch.Tensor, float]:
        params = list(parameters_of(self.model).values())
        loss = self.bench.loss(self.model, batch, self.generator).mean()
        return flat(torch.autograd.grad(loss, params)), loss.item()

    def update(self, batch):
        g, loss = self.gradient(batch)
        projected = 0.0
        if self.memory is not None:
            n = next(iter(self.memory.values())).shape[0]
            idx = torch.randperm(n, generator=self.generator)[:self.params.reference_batch]
            g_ref, _ = self.gradient({k: v[idx] for k, v in self.memory.items()})
            dot = g @ g_ref
            if dot < 0:
                g = g - dot / (g_ref @ g_ref) * g_ref
                projected = 1.0
        self.optimizer.zero_grad(set_to_none=True)
        set_flat_grad(parameters_of(self.model), g)
        self.optimizer.step()
        self.current.add(batch)
        return {"loss": loss, "projected": projected}

    def end_task(self, task):
        kept = self.current.contents()
        self.memory = kept if self.memory is None else cat(self.memory, kept)
        return {}
