"""Episodic meta-training of a shared initialisation θ over many signals (003 §3.2, Algorithm 1; Finn et
al. 2017), for methods whose model is a batch of fields (``trainables.siren``) and whose benchmark offers
``meta_episode``.

θ is field 0 of the method's model; the model's F fields are kept tied (every field gets θ's gradient, so
an element-wise optimizer moves them alike and the meta-initialisation is handed to F test signals as is).
Per outer step, θ is expanded to the episode's M signals (one differentiable copy each), every copy is
adapted by inner SGD steps on its own signal, and the meta-loss (summed over signals) is differentiated
back to θ: through the inner steps (second order: ``create_graph``) or with the inner gradients held fixed
(first order: the meta-gradient is the query gradient at the adapted parameters, FOMAML).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from trainables.batch import Batch, cat
from trainables.tensors import parameters_of

LossFn = Callable[[dict, Batch], torch.Tensor]  # (parameters, batch) -> per-sample loss (B,)


def expanded(model: nn.Module, m: int) -> dict[str, torch.Tensor]:
    """θ (field 0 of every parameter) expanded to m signals, differentiable w.r.t. the model's parameters."""
    return {k: p[:1].expand(m, *p.shape[1:]) for k, p in parameters_of(model).items()}


def adapt(loss: LossFn, params: dict, batch: Batch, steps: int, lr: float, second_order: bool,
          keys: Sequence[str] | None = None) -> tuple[dict, float]:
    """``steps`` SGD steps of rate ``lr`` on the mean per-sample loss of ``batch``, on the parameters named
    in ``keys`` (default all); returns the adapted parameters and the first step's loss."""
    keys = list(params) if keys is None else list(keys)
    first = float("nan")
    for j in range(steps):
        value = loss(params, batch).mean()
        if j == 0:
            first = value.item()
        grads = torch.autograd.grad(value, [params[k] for k in keys], create_graph=second_order)
        params = {**params, **{k: params[k] - lr * g for k, g in zip(keys, grads)}}
    return params, first


def sequential_meta_loss(loss: LossFn, theta: dict, episode, steps: int, lr: float, second_order: bool,
                         keys=None) -> tuple[torch.Tensor, float]:
    """003 Eq. 1 (MAML through the region sequence, "MAML+CL"): θ_0 = θ, θ_i = θ_{i−1} adapted on region i's
    context; meta-loss (1/t) Σ_i L_i^query(θ_i), region i's query loss right after its adaptation."""
    params, total, support = theta, 0.0, 0.0
    for context, query in episode:
        params, first = adapt(loss, params, context, steps, lr, second_order, keys)
        total = total + loss(params, query).mean()
        support += first
    return total / len(episode), support / len(episode)


def joint_meta_loss(loss: LossFn, theta: dict, episode, steps: int, lr: float,
                    second_order: bool) -> tuple[torch.Tensor, float]:
    """LearnedInit (Tancik et al. 2021; 003's MOL): adapt on every region's context at once, meta-loss on
    the whole signal's query."""
    context = cat(*[c for c, _ in episode])
    query = cat(*[q for _, q in episode])
    params, first = adapt(loss, theta, context, steps, lr, second_order)
    return loss(params, query).mean(), first


def step_tied(model: nn.Module, optimizer: torch.optim.Optimizer, meta_loss: torch.Tensor) -> None:
    """One outer step: θ's gradient (field 0's) written to every field, then the optimizer's step."""
    params = parameters_of(model)
    grads = torch.autograd.grad(meta_loss, list(params.values()))
    optimizer.zero_grad(set_to_none=True)
    for p, g in zip(params.values(), grads):
        p.grad = g[:1].expand_as(p).clone()
    optimizer.step()


def functional(bench, model: nn.Module) -> LossFn:
    """The benchmark's per-sample loss of ``model`` answering with given parameters."""
    return lambda params, batch: bench.loss(
        lambda x: torch.func.functional_call(model, params, (x,)), batch)
