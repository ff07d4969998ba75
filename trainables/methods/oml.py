"""`oml`: Online-aware Meta-Learning (Javed & White 2019, Algorithm 1 "OML"; a baseline of 003).

The network is split into a representation φ_θ (every parameter but the head's) and a head W: the last
module with parameters, in registration order, which must be an nn.Linear (for an nn.Sequential MLP, its
last Linear). Per update, on a batch of the current task split into support and query halves:

- inner loop (head only): W_0 = W; for each support sample j in order, W_{j+1} = W_j − α ∇_W ℓ(x_j; θ, W_j)
  (one SGD step per sample, OML's online trajectory S_traj);
- outer: the meta-loss is the mean per-sample loss over the query half joined by ``replay_batch`` samples
  of a reservoir memory of the stream (the analogue of OML's S_rand; ``memory_size: 0`` turns it off), at
  (θ, W_k); its gradient w.r.t. θ and the initial head W goes to the outer optimizer (rate η = ``lr``).

Choices: OML's meta-loss is on S_traj ∪ S_rand; following 000 §4's protocol for meta baselines the support
samples are not reused, the query half (and memory) is the meta-target (a batch of one sample serves as
both). First-order by default: the inner head gradients are held fixed, so ∂W_k/∂W = I and θ gets only its
direct gradient at (θ, W_k); ``first_order: false`` differentiates through the inner loop as the paper
does. Outer optimizer: 002's online protocol (SGD 0.03; OML's paper uses Adam with meta rate 1e-4 offline),
inner rate 0.03 (the protocol's SGD rate). The memory is filled with the whole batch after each update.

``reset_optimizer`` is false by default: neither OML's paper nor 002's online protocol restarts an optimizer
at task boundaries, and the protocol's plain SGD holds no state; when true only the outer one is replaced.

Episodic meta-training (003's protocol, ``meta_update``, on benchmarks with ``meta_episodes``): as
`maml_cl`'s (003 Eq. 1 through the region sequence) with only the head adapted in the inner loop, by
``inner_steps`` = 1 SGD step per region on its whole context (not per sample: 003's regions are hundreds of
coordinates); representation and head initialisation take the outer step.

Models without a Linear head are rejected: the diffusion UNet ends in a convolution (``conv_out``), so
``check`` refuses diffusion benchmarks and the constructor raises for any other such model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainables.batch import Batch, size, take
from trainables.methods.base import OnlineParams, with_params
from trainables.methods.knobs import QueryMemoryKnobs
from trainables.methods.maml_cl import WithQueryMemory
from trainables.params import knob
from trainables.tensors import parameters_of


@dataclass(frozen=True)
class OMLParams(OnlineParams, QueryMemoryKnobs):
    inner_lr: float = knob(0.03, "α: SGD rate of the per-sample head steps of the inner loop", low=0,
                           low_open=True, smoke=1e-3)
    first_order: bool = knob(True, "hold the inner head gradients fixed in the meta-gradient (default); "
                             "false: differentiate through the inner loop")


def linear_head(model: nn.Module) -> str:
    """Name of the model's head: its last module with parameters (registration order), an nn.Linear; else
    ValueError saying what OML needs."""
    owners = [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if not owners or not isinstance(owners[-1][1], nn.Linear) or len(owners) < 2:
        last = f"{type(owners[-1][1]).__name__} '{owners[-1][0]}'" if owners else "no parameters"
        raise ValueError(f"method oml needs a model split into a representation and a final nn.Linear head "
                         f"(its last module with parameters, e.g. an nn.Sequential ending in nn.Linear); "
                         f"{type(model).__name__} ends in {last}")
    return owners[-1][0]


class OML(WithQueryMemory):
    name = "oml"
    Params = OMLParams
    requires = frozenset({"linear_head"})  # the diffusion UNet ends in a convolution, not a Linear head

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)  # checks the benchmark's capabilities first
        head = linear_head(model)
        self.head = [k for k in parameters_of(model) if k.startswith(head + ".")]

    def adapt(self, support: Batch) -> tuple[dict[str, torch.Tensor], float]:
        """The parameters after the inner loop (representation unchanged, head adapted) and the mean
        support loss met along the way."""
        second = not self.params.first_order
        adapted = dict(parameters_of(self.model))
        total = 0.0
        for j in range(size(support)):
            loss = self.bench.loss(with_params(self.model, adapted), take(support, slice(j, j + 1)),
                                   self.generator).mean()
            grads = torch.autograd.grad(loss, [adapted[k] for k in self.head], create_graph=second)
            for k, g in zip(self.head, grads):
                adapted[k] = adapted[k] - self.params.inner_lr * g
            total += loss.item()
        return adapted, total / max(1, size(support))

    def meta_update(self, episode):
        """003 Eq. 1 over an episode of meta-training signals, only the head adapting (``trainables.meta_fields``)."""
        from trainables.meta_fields import expanded, functional, sequential_meta_loss, step_tied

        theta = expanded(self.model, episode[0][0]["y"].shape[1])
        meta, support = sequential_meta_loss(functional(self.bench, self.model), theta, episode, 1,
                                             self.params.inner_lr, not self.params.first_order, self.head)
        step_tied(self.model, self.optimizer, meta)
        return {"loss": meta.item(), "support_loss": support}

    def update(self, batch):
        support, target = self.split(batch)
        adapted, support_loss = self.adapt(support)
        meta = self.bench.loss(with_params(self.model, adapted), target, self.generator).mean()
        grads = torch.autograd.grad(meta, list(parameters_of(self.model).values()))
        self.apply(list(grads))
        self.remember(batch)
        return {"loss": meta.item(), "support_loss": support_loss}
