"""`lamaml`: Look-ahead MAML (Gupta, Yadav & Paull 2020, "La-MAML", Algorithm 1; a baseline of 002 with its
Table II settings).

One call of ``update`` is one meta-update on a batch b of k current samples, with θ0 the parameters and α
a learnable learning rate per parameter (same shapes as θ, initialised to α0 = ``lr``):

1. Inner loop, one SGD step per sample of b, in batch order: θ_{κ} = θ_{κ−1} − max(0, α) ⊙ ∇ℓ(θ_{κ−1};
   b[κ]) (ℓ the sample's loss).
2. Meta-loss at the adapted parameters θk: the mean per-sample loss over b together with ``replay_batch``
   samples drawn (with replacement) from a reservoir memory of the stream seen so far (none while the
   memory is empty). ``meta_loss: every_step`` (the authors' code) averages it over every intermediate
   θ1..θk instead.
3. α ← α − η·∇_α(meta-loss), plain SGD with η = ``alpha_lr``; the meta-gradient of α flows through all k
   inner steps (θk depends on α through every max(0, α) ⊙ g_κ).
4. θ0 ← θ0 − max(0, α) ⊙ ∇_θ0(meta-loss), with the α just updated (the paper's Algorithm 1 and the
   authors' code both update α first). A parameter whose α is ≤ 0 does not move, and since max(0, ·) has
   zero slope there, neither does its α.
5. The batch enters the memory (reservoir sampling) after the update.

``glances: g`` repeats steps 1-4 g times on the same batch, each with the batch in a fresh order and a
fresh memory draw (the authors' MNIST scripts: 5 for permutations, 10 for many permutations); the batch
enters the memory once, after the first glance (the code fills it on the first pass only).

First-order in θ by default, as the authors' code by default (``second_order`` off): the inner gradients
g_κ are taken as constants, so ∂θk/∂θ0 = I and ∇_θ0(meta-loss) is the meta-loss gradient at θk, and
∇_α(meta-loss) = −Σ_κ g_κ ⊙ 1[α > 0] ⊙ ∇(meta-loss)(θk). ``second_order: true`` differentiates through the
inner gradients (Hessian-vector products) for both θ and α.

Choices the paper leaves open or where this differs from the authors' code (montrealrobotics/La-MAML,
read, not copied):
- The meta-loss is taken at θk only by default (the paper's Algorithm 1); the code averages it over every
  intermediate θ_κ (``meta_loss: every_step``).
- One reservoir over the whole stream (``MemoryKnobs``, 002: 200 samples for MNIST permutations); the
  code's scripts replay only what the memory held at the start of the current task
  (``--use_old_task_memory``) and push each sample into the memory inside the inner loop.
- One meta-update per batch by default (the code's MNIST scripts take 5 "glances" per batch: ``glances``);
  no gradient clipping by default (the code clips the norms of ∇θ and ∇α to 2.0: ``clip_norm``).
- Defaults from 002 Table II for MNIST permutations: α0 0.3, lr of α 0.15 (many permutations 0.1 / 0.1,
  CIFAR-100 and miniImageNet 0.1 / 0.3). The authors' own MNIST-permutations script uses the swapped pair
  (alpha_init 0.15, opt_lr 0.3); 002 may have transposed them. Measured on permuted_digits (tiny preset,
  3 tasks, one seed), mean final accuracy: 0.13 with these defaults (per-sample steps of 0.3 make the
  inner losses grow on 8×8 digits), 0.17 with the swapped pair, 0.32 with α0 0.03 and lr of α 0.03;
  finetune (SGD 0.03) reaches 0.39 there. Tune α0 for the laptop-scale streams.
- No optimizer state: θ and α are both stepped by plain SGD in place (the code's ``opt_wt`` and ``opt_lr``
  are plain SGD built once for the stream), so ``reset_optimizer`` admits only false; the learnt rates α
  are method state, kept across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.batch import cat, size, take
from trainables.memory import Reservoir
from trainables.methods.base import Method, OnlineParams, with_params
from trainables.methods.knobs import MemoryKnobs
from trainables.params import knob
from trainables.tensors import parameters_of


@dataclass(frozen=True)
class LaMAMLParams(OnlineParams, MemoryKnobs):
    lr: float = knob(0.3, "α0: initial value of every per-parameter learning rate α (002 Table II: 0.3 MNIST "
                     "perm., 0.1 many perm. / CIFAR-100 / miniImageNet)", low=0, low_open=True, smoke=1e-3)
    optimizer: str = knob("sgd", "θ ← θ − max(0, α)·∇θ(meta-loss): plain SGD with the learnt rates",
                          choices=("sgd",))
    reset_optimizer: bool = knob(False, "θ and α are stepped by plain SGD in place: no optimizer state to "
                                 "reset (α is kept)", choices=(False,))
    alpha_lr: float = knob(0.15, "η: SGD learning rate of α (002 Table II: 0.15 MNIST perm., 0.1 many perm., "
                           "0.3 CIFAR-100 / miniImageNet)", low=0, smoke=1e-3)
    replay_batch: int = knob(10, "memory samples added to the batch in the meta-loss (authors' scripts: 10)",
                             low=0, smoke=2)
    second_order: bool = knob(False, "differentiate through the inner gradients (default: first-order in θ, "
                              "as the authors' code)")
    clip_norm: float = knob(0.0, "clip the norms of ∇θ and of ∇α of the meta-loss, each as a whole, before "
                            "the steps (0: off; authors' code: 2.0)", low=0)
    meta_loss: str = knob("last", "where the meta-loss is taken: at θk ('last', the paper's Algorithm 1) or "
                          "averaged over every intermediate θ1..θk ('every_step', the authors' code)",
                          choices=("last", "every_step"))
    glances: int = knob(1, "meta-updates per incoming batch, each on the batch reshuffled (authors' MNIST "
                        "scripts: 5 permutations, 10 many permutations)", low=1, high=100, smoke=1)



def _clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    if max_norm <= 0:
        return grads
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    return [g * scale for g in grads]


class LaMAML(Method):
    name = "lamaml"
    Params = LaMAMLParams

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.memory = Reservoir(params.memory_size, generator)
        self.alpha = {k: torch.full_like(p, params.lr).detach().requires_grad_(True)
                      for k, p in parameters_of(model).items()}

    def adapt(self, batch, theta: dict[str, torch.Tensor], query=None) -> tuple[dict[str, torch.Tensor], float, list]:
        """(θk, mean inner loss, meta-losses): one step θ − max(0, α)·∇ℓ per sample, differentiable in θ0
        and α; with ``query``, the meta-loss on it at every θκ (κ = 1..k)."""
        fast, total, metas = dict(theta), 0.0, []
        for i in range(size(batch)):
            loss = self.bench.loss(with_params(self.model, fast), take(batch, slice(i, i + 1)),
                                   self.generator).sum()
            grads = torch.autograd.grad(loss, list(fast.values()), create_graph=self.params.second_order,
                                        allow_unused=True)
            total += loss.item()
            fast = {k: t - torch.relu(self.alpha[k]) * g if g is not None else t
                    for (k, t), g in zip(fast.items(), grads)}
            if query is not None:
                metas.append(self.bench.loss(with_params(self.model, fast), query, self.generator).mean())
        return fast, total / size(batch), metas

    def update(self, batch):
        out = {}
        for glance in range(self.params.glances):
            order = torch.randperm(size(batch), generator=self.generator) if glance else None
            out = self.glance(batch if order is None else take(batch, order))
            if glance == 0:
                self.memory.add(batch)
        return out

    def glance(self, batch):
        """One meta-update on ``batch`` (steps 1-4); ``update`` takes ``glances`` of them."""
        p = self.params
        theta = parameters_of(self.model)
        replayed = len(self.memory) > 0 and p.replay_batch > 0
        if p.meta_loss == "every_step":  # the query is needed at every θκ: drawn first
            meta_batch = cat(batch, self.memory.sample(p.replay_batch)) if replayed else batch
            _, inner_loss, metas = self.adapt(batch, theta, meta_batch)
            meta_loss = torch.stack(metas).mean()
        else:
            fast, inner_loss, _ = self.adapt(batch, theta)
            meta_batch = cat(batch, self.memory.sample(p.replay_batch)) if replayed else batch
            meta_loss = self.bench.loss(with_params(self.model, fast), meta_batch, self.generator).mean()
        names = list(theta)
        grads = torch.autograd.grad(meta_loss, [theta[k] for k in names] + [self.alpha[k] for k in names],
                                    allow_unused=True)
        grads = [g if g is not None else torch.zeros_like(t)
                 for g, t in zip(grads, [theta[k] for k in names] + [self.alpha[k] for k in names])]
        g_theta = _clip(grads[:len(names)], p.clip_norm)
        g_alpha = _clip(grads[len(names):], p.clip_norm)
        with torch.no_grad():
            for k, ga in zip(names, g_alpha):
                self.alpha[k].sub_(p.alpha_lr * ga)
            for k, gt in zip(names, g_theta):
                theta[k].sub_(torch.relu(self.alpha[k]) * gt)
        alpha = torch.cat([a.detach().reshape(-1) for a in self.alpha.values()])
        return {"loss": meta_loss.item(), "inner_loss": inner_loss, "alpha_mean": alpha.mean().item(),
                "alpha_nonpositive": (alpha <= 0).float().mean().item(),
                "alpha_grad_norm": torch.sqrt(sum((g * g).sum() for g in g_alpha)).item()}
