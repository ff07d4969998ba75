"""`mer`: Meta-Experience Replay (Riemer et al. 2019, "Learning to Learn without Forgetting by Maximizing
Transfer and Minimizing Interference", Algorithm 1; a baseline of 002 and 003).

Algorithm 1 (within-batch and across-batch Reptile with a reservoir memory M), for each incoming example
(x, y):

    θ_A ← θ
    for i = 1..s:                                    # s = batches_per_example
        B_i ← {(x, y)} ∪ (k − 1 samples of M)        # k − 1 = replay_batch
        θ_W ← θ
        for each sample of B_i, in order: θ ← θ − α ∇ℓ(sample; θ)        # one SGD step per sample
        θ ← θ_W + β (θ − θ_W)                        # within-batch Reptile, β = beta
    θ ← θ_A + γ (θ − θ_A)                            # across-batch Reptile, γ = gamma
    M ← reservoir_update(M, (x, y))

Choices (the 002-compatible variant): 002 reports La-MAML's MER numbers, whose code (`meralg1`, the MER
authors' Algorithm 1 implementation) is what this follows: every sample of an incoming batch (002's
protocol: batches of 10) is one example of Algorithm 1, processed in order and inserted into the reservoir
right after its own update, so one ``update`` call performs B across-batch meta-updates; the current
example comes first in each B_i, followed by min(replay_batch, |M|) memory samples drawn uniformly with
replacement; the memory is one reservoir over the whole stream (no task boundaries), memory_size = 200 as
in 002. Defaults are the MER authors' MNIST-permutation settings with 200 memories (lr α 0.03, β 0.03,
γ 1.0, 10 memory samples, s = 10). Algorithms 6 and 7 (one big batch; a larger rate for the current
example) are not implemented. The per-sample steps are plain SGD (``optimizer`` allows only sgd); the
gradient clipping of the authors' code is not applied. ``loss`` is the mean of the per-sample losses seen
by the SGD steps of the update. ``reset_optimizer`` admits only false: the per-sample steps are plain SGD,
which keeps no state to reset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.batch import cat, size, take
from trainables.memory import Reservoir
from trainables.methods.base import Method, OnlineParams
from trainables.methods.knobs import MemoryKnobs
from trainables.params import knob
from trainables.tensors import parameters_of


@dataclass(frozen=True)
class MERParams(OnlineParams, MemoryKnobs):
    lr: float = knob(0.03, "α: SGD rate of the per-sample steps (MER, MNIST permutations, 200 memories: 0.03)",
                     low=0, low_open=True, smoke=1e-3)
    optimizer: str = knob("sgd", "the per-sample steps are plain SGD (Reptile's inner loop)", choices=("sgd",))
    reset_optimizer: bool = knob(False, "plain SGD keeps no state: nothing to reset", choices=(False,))
    beta: float = knob(0.03, "β: within-batch Reptile meta rate", low=0, high=1, low_open=True)
    gamma: float = knob(1.0, "γ: across-batch Reptile meta rate", low=0, high=1, low_open=True)
    batches_per_example: int = knob(10, "s: batches drawn per incoming example", low=1, smoke=1)
    replay_batch: int = knob(10, "k − 1: memory samples joining the current example in each batch", low=0,
                             smoke=2)


class MER(Method):
    name = "mer"
    Params = MERParams

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.memory = Reservoir(params.memory_size, generator)

    @staticmethod
    def interpolate(params: list[torch.Tensor], start: list[torch.Tensor], rate: float) -> None:
        """θ ← θ_start + rate · (θ − θ_start), in place."""
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0 + rate * (p - p0))

    def sgd_step(self, params: list[torch.Tensor], loss: torch.Tensor) -> None:
        """θ ← θ − α∇ℓ, what ``self.step`` does with plain SGD, without the optimizer's per-call overhead
        (the per-sample steps are MER's whole cost: 110 per incoming example at its defaults)."""
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        used = [(w, g) for w, g in zip(params, grads) if g is not None]
        with torch.no_grad():
            torch._foreach_add_([w for w, _ in used], [g for _, g in used], alpha=-self.params.lr)

    def update(self, batch):
        p = self.params
        params = list(parameters_of(self.model).values())
        total, steps = 0.0, 0
        for i in range(size(batch)):
            example = take(batch, slice(i, i + 1))
            start = [w.detach().clone() for w in params]
            for _ in range(p.batches_per_example):
                before = [w.detach().clone() for w in params]
                m = min(p.replay_batch, len(self.memory))
                draw = cat(example, self.memory.sample(m)) if m else example
                for j in range(size(draw)):
                    loss = self.bench.loss(self.model, take(draw, slice(j, j + 1)), self.generator).mean()
                    self.sgd_step(params, loss)
                    total = total + loss.detach()
                    steps += 1
                self.interpolate(params, before, p.beta)
            self.interpolate(params, start, p.gamma)
            self.memory.add(example)
        return {"loss": float(total / steps), "memory": float(len(self.memory))}
