"""`maml_cl`: MAML through the sequential adaptation, "MAML+CL" (003 Eq. 1; Finn et al. 2017).

003 Eq. 1: θ' = θ_0 − η ∇_{θ_0} (1/t) Σ_{i≤t} L_i(f_{θ_i}), where θ_i are the parameters after adapting
task by task from θ_0; the meta-gradient is taken through those inner updates (second-order).

On a continual stream (one update per batch, 000 §4's protocol for meta baselines): the batch is split
into support and query halves (`halves`; a batch of one sample serves as both); starting from θ, take
``inner_steps`` plain SGD steps of rate α on the mean support loss, θ_0 = θ, θ_{j+1} = θ_j − α∇L_S(θ_j);
the meta-loss is the mean per-sample loss over the query half concatenated with ``replay_batch`` samples
drawn uniformly (with replacement) from a reservoir memory of the stream, all evaluated at the adapted
θ_K; θ is updated with the gradient of the meta-loss by the outer optimizer (rate η = ``lr``).

Choices the paper leaves open, for a stream:
- Eq. 1 averages over the tasks seen so far; the reservoir holds a uniform sample of everything seen so
  far (the current task included, as in Eq. 1's i ≤ t), so the memory term estimates that average. Old
  tasks' losses are evaluated at the current adapted θ_K (their own θ_i no longer exist on a stream), and
  the differentiated adaptation is the current update's inner steps (truncated at the batch).
  ``memory_size: 0`` turns the memory off (the meta-loss is then the current query half only).
- second-order by default (create_graph through the inner steps, as 003); ``first_order: true`` treats
  the inner gradients as constants (FOMAML: the meta-gradient is ∇L at θ_K, applied at θ).
- defaults: inner SGD rate 1e-4 and outer Adam 2e-4 (000 Tables 3-4 for its meta-learning baselines),
  one inner step (METHODS.md §2).
- the memory is filled after each update with the whole batch (reservoir sampling); the draws happen
  before the inner steps. Diffusion attention runs in its plain (double-differentiable) form in
  second-order mode.
- episodic meta-training (003's protocol, ``meta_update``, on benchmarks with ``meta_episodes``): Eq. 1 over
  meta-training signals, ``trainables.meta_fields.sequential_meta_loss`` (θ adapted region after region
  by ``inner_steps`` SGD steps on each region's context, the meta-loss the mean of each region's query loss
  right after its adaptation), an outer step of the outer optimizer; at test time ``update`` as above.
- ``reset_optimizer`` false by default (003 is silent; one outer optimizer for the stream, as the
  earlier behaviour); when true only the outer optimizer is replaced, the inner steps being stateless SGD.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from trainables.batch import Batch, cat, halves, size
from trainables.memory import Reservoir
from trainables.methods.base import Method, TrainParams, with_params
from trainables.methods.knobs import QueryMemoryKnobs
from trainables.params import knob
from trainables.tensors import parameters_of, plain_attention, set_grads


@dataclass(frozen=True)
class MAMLCLParams(TrainParams, QueryMemoryKnobs):
    lr: float = knob(2e-4, "η: outer (meta) learning rate (000 Tables 3-4: Adam 2e-4)", low=0, low_open=True,
                     smoke=1e-3)
    inner_lr: float = knob(1e-4, "α: SGD rate of the inner steps (000 Tables 3-4: 1e-4)", low=0, low_open=True,
                           smoke=1e-3)
    inner_steps: int = knob(1, "inner SGD steps on the support half per update", low=1)
    first_order: bool = knob(False, "drop the second-order terms (FOMAML); default: differentiate through "
                             "the inner steps")



class WithQueryMemory(Method):
    """Support/query halves of a batch and the reservoir whose samples join the query."""

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.memory = Reservoir(params.memory_size, generator) if params.memory_size > 0 else None

    def split(self, batch: Batch) -> tuple[Batch, Batch]:
        """(support, meta-target): the support half, and the query half joined by memory samples."""
        support, query = halves(batch)
        if size(query) == 0:
            query = support
        m = min(self.params.replay_batch, len(self.memory)) if self.memory is not None else 0
        return support, (cat(query, self.memory.sample(m)) if m else query)

    def remember(self, batch: Batch) -> None:
        if self.memory is not None:
            self.memory.add(batch)

    def apply(self, grads: list[torch.Tensor]) -> None:
        """Outer step with the given gradients of the model's parameters."""
        self.optimizer.zero_grad(set_to_none=True)
        set_grads(parameters_of(self.model), grads)
        self.optimizer.step()


class MAMLCL(WithQueryMemory):
    name = "maml_cl"
    Params = MAMLCLParams

    def meta_gradient(self, support: Batch, target: Batch) -> tuple[list[torch.Tensor], dict[str, float]]:
        """∇_θ L_target(θ_K) through the inner steps (first-order: with the inner gradients held fixed)."""
        p = self.params
        params = parameters_of(self.model)
        second = not p.first_order
        adapted = dict(params)
        with plain_attention(self.model) if second else contextlib.nullcontext():
            for j in range(p.inner_steps):
                inner = self.bench.loss(with_params(self.model, adapted), support, self.generator).mean()
                if j == 0:
                    support_loss = inner.item()
                grads = torch.autograd.grad(inner, list(adapted.values()), create_graph=second)
                adapted = {k: w - p.inner_lr * g for (k, w), g in zip(adapted.items(), grads)}
            meta = self.bench.loss(with_params(self.model, adapted), target, self.generator).mean()
            grads = torch.autograd.grad(meta, list(params.values()))
        return list(grads), {"loss": meta.item(), "support_loss": support_loss}

    def meta_update(self, episode):
        """003 Eq. 1 over an episode of meta-training signals (``trainables.meta_fields``)."""
        from trainables.meta_fields import expanded, functional, sequential_meta_loss, step_tied

        p = self.params
        theta = expanded(self.model, episode[0][0]["y"].shape[1])
        meta, support = sequential_meta_loss(functional(self.bench, self.model), theta, episode, p.inner_steps,
                                             p.inner_lr, not p.first_order)
        step_tied(self.model, self.optimizer, meta)
        return {"loss": meta.item(), "support_loss": support}

    def update(self, batch):
        support, target = self.split(batch)
        grads, out = self.meta_gradient(support, target)
        self.apply(grads)
        self.remember(batch)
        return out
