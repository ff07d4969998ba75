"""Fisher estimates at θ*_i and the elastic (EWC) penalty of 000 Eq. 5, diagonal or rank-1.

Rank-1 (000 Appendix B): F_i = ρ_i u_i u_iᵀ, u_i = ḡ/‖ḡ‖ with ḡ the mean per-sample gradient over N
samples at θ*_i. Two estimators of ρ_i (METHODS.md §1):
- ``projection``: ρ_i = mean_n (g_nᵀ u_i)², the top eigenvalue when per-sample gradients are collinear
  with their mean; one Jacobian-vector product of the per-sample losses along u_i per batch, no per-sample
  gradients;
- ``mean_outer``: F_i = ḡḡᵀ, i.e. ρ_i = ‖ḡ‖² (never larger than ``projection``).
Diagonal: F_i = mean_n g_n ⊙ g_n from per-sample gradients (classic EWC).

Penalty: L_EWC = ½ Σ_i (θ − θ*_i)ᵀ F_i (θ − θ*_i); rank-1 makes it ½ Σ_i ρ_i (u_iᵀ(θ − θ*_i))², O(P)
memory per task. The caller multiplies by λ. ``consolidate`` is what `ewc` and `trust_region` do at the end
of a task, with the knobs of ``trainables.methods.knobs.FisherKnobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from trainables.batch import Batch, size, take
from trainables.tensors import flat, parameters_of, plain_attention, unflat

LossFn = Callable[[Callable, Batch, torch.Generator], torch.Tensor]  # per-sample losses, shape (B,)


def chunks(batch: Batch, chunk: int) -> list[Batch]:
    n = size(batch)
    return [take(batch, slice(i, i + chunk)) for i in range(0, n, chunk)]


def mean_gradient(model: nn.Module, loss_fn: LossFn, batches: list[Batch], seed: int) -> torch.Tensor:
    """ḡ: the gradient of the mean per-sample loss over all samples of ``batches`` (flat)."""
    params = parameters_of(model)
    total = sum(size(b) for b in batches)
    grad = torch.zeros(sum(p.numel() for p in params.values()), device=next(iter(params.values())).device)
    generator = torch.Generator().manual_seed(seed)
    for b in batches:
        losses = loss_fn(model, b, generator)
        g = torch.autograd.grad(losses.sum() / total, list(params.values()))
        grad += flat(g)
    return grad


def directional_derivatives(model: nn.Module, loss_fn: LossFn, batches: list[Batch], u: torch.Tensor,
                            seed: int) -> torch.Tensor:
    """g_nᵀu for every sample n without per-sample gradients: the Jacobian-vector product J u of the
    per-sample losses, one per batch. Computed as ∂/∂v ⟨Jᵀv, u⟩ (reverse over reverse), which needs
    only double-backward support (PyTorch's forward-mode AD fails on GroupNorm after attention)."""
    params = list(parameters_of(model).values())
    parts = list(unflat(u, parameters_of(model)).values())
    generator = torch.Generator().manual_seed(seed)
    out = []
    with plain_attention(model):
        for b in batches:
            losses = loss_fn(model, b, generator)
            v = torch.zeros_like(losses, requires_grad=True)
            grads = torch.autograd.grad(losses, params, grad_outputs=v, create_graph=True)
            inner = sum((g * p).sum() for g, p in zip(grads, parts))
            out.append(torch.autograd.grad(inner, v)[0].detach())
    return torch.cat(out)


def per_sample_gradients(model: nn.Module, loss_fn: LossFn, batch: Batch,
                         generator: torch.Generator) -> torch.Tensor:
    """(n, P) per-sample gradients, one forward and backward per sample."""
    params = list(parameters_of(model).values())
    rows = []
    for i in range(size(batch)):
        loss = loss_fn(model, take(batch, slice(i, i + 1)), generator).sum()
        rows.append(flat(torch.autograd.grad(loss, params)))
    return torch.stack(rows)


@dataclass
class Anchor:
    """What task i leaves behind: θ*_i and its Fisher (diag F, or ρ and u)."""

    theta: torch.Tensor
    diag: torch.Tensor | None = None
    rho: float = 0.0
    u: torch.Tensor | None = None


class ElasticPenalty:
    """Σ_i ½ (θ − θ*_i)ᵀ F_i (θ − θ*_i) over the anchors of finished tasks (000 Eq. 5)."""

    def __init__(self, fisher: str, rho_estimator: str, samples: int, batch: int) -> None:
        self.fisher, self.rho_estimator, self.samples, self.batch = fisher, rho_estimator, samples, batch
        self.anchors: list[Anchor] = []

    def consolidate(self, model: nn.Module, data: Batch, loss_fn: LossFn, seed: int,
                    diagnostic_samples: int = 16) -> dict[str, float]:
        """Estimate F at the current θ (= θ*_i) from ``data`` and keep the anchor; returns diagnostics:
        ρ (rank-1) or the Fisher's trace (diag), and the mean cosine between per-sample gradients
        and ḡ on the first ``diagnostic_samples`` samples."""
        theta = flat(p.detach() for p in parameters_of(model).values()).clone()
        batches = chunks(data, self.batch)
        g_bar = mean_gradient(model, loss_fn, batches, seed)
        norm = g_bar.norm()
        u = g_bar / norm.clamp_min(1e-30)
        n_diag = min(diagnostic_samples, size(data))
        sample_grads = per_sample_gradients(model, loss_fn, take(data, slice(0, n_diag)),
                                            torch.Generator().manual_seed(seed + 1))
        cosine = (sample_grads @ u / sample_grads.norm(dim=1).clamp_min(1e-30)).mean().item()
        if self.fisher == "diag":
            diag = torch.zeros_like(theta)
            generator = torch.Generator().manual_seed(seed + 2)  # fresh draws for every sample
            for b in batches:
                diag += (per_sample_gradients(model, loss_fn, b, generator) ** 2).sum(0)
            diag /= size(data)
            self.anchors.append(Anchor(theta, diag=diag))
            return {"fisher_trace": diag.sum().item(), "fisher_cosine": cosine}
        if self.rho_estimator == "projection":
            rho = (directional_derivatives(model, loss_fn, batches, u, seed) ** 2).mean().item()
        else:
            rho = (norm ** 2).item()
        self.anchors.append(Anchor(theta, rho=rho, u=u))
        return {"fisher_rho": rho, "fisher_cosine": cosine}

    def __call__(self, model: nn.Module) -> torch.Tensor:
        """½ Σ_i (θ − θ*_i)ᵀ F_i (θ − θ*_i), differentiable in θ."""
        params = list(parameters_of(model).values())
        if not self.anchors:
            return params[0].new_zeros(())
        theta = flat(params)
        total = theta.new_zeros(())
        for a in self.anchors:
            d = theta - a.theta
            total = total + ((a.diag * d * d).sum() if a.diag is not None else a.rho * (a.u @ d) ** 2)
        return 0.5 * total


def fisher_loss(method: Any) -> LossFn:
    """The per-sample loss a method's Fisher is estimated on: its benchmark's loss, restricted to the
    timestep range of its ``FisherKnobs`` (fisher_t_min, fisher_t_max) when the benchmark has timesteps."""
    p = method.params
    t_range = None
    if "timesteps" in method.bench.capabilities and (p.fisher_t_min > 0 or p.fisher_t_max is not None):
        t_range = (p.fisher_t_min, p.fisher_t_max or method.bench.config.num_train_timesteps)
    return lambda model, batch, generator: method.bench.loss(model, batch, generator, t_range)


def consolidate(method: Any, penalty: ElasticPenalty, task) -> dict[str, float]:
    """Estimate ``task``'s Fisher at the method's current θ (= θ*_task) on fresh training samples
    (``fisher_samples`` of them, drawn with the method's generator) and add its anchor to ``penalty``."""
    data = method.bench.train_sample(task, method.params.fisher_samples, method.generator)
    seed = int(torch.randint(2**31 - 1, (1,), generator=method.generator))
    return penalty.consolidate(method.model, data, fisher_loss(method), seed)
