"""Generic helpers on a model's parameters and gradients: the trainable parameters by name, flattening them
to one vector and back, writing gradients into ``.grad``, and diffusers attention that supports
higher-order differentiation."""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import nn


def parameters_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters that require grad, by name, in registration order."""
    return {k: p for k, p in model.named_parameters() if p.requires_grad}


def flat(tensors) -> torch.Tensor:
    """The tensors concatenated into one vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(vector: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``vector`` cut into views shaped as the tensors of ``like`` (the inverse of ``flat``)."""
    out, i = {}, 0
    for k, t in like.items():
        out[k] = vector[i:i + t.numel()].view_as(t)
        i += t.numel()
    return out


def set_grads(params: dict[str, torch.Tensor], grads: Iterable[torch.Tensor]) -> None:
    """Make copies of ``grads`` (one per entry of ``params``, in order) the parameters' ``.grad``."""
    for p, g in zip(params.values(), grads):
        p.grad = g.detach().clone()


def set_flat_grad(params: dict[str, torch.Tensor], vector: torch.Tensor) -> None:
    """``set_grads`` with the gradients given as one flat vector (the layout of ``flat``)."""
    set_grads(params, unflat(vector, params).values())


@contextlib.contextmanager
def plain_attention(model: nn.Module):
    """Swap diffusers' fused attention for the plain matmul-softmax one, which supports forward-mode AD
    (scaled_dot_product_attention has no forward-AD formula on CPU); restored afterwards."""
    layers = [m for m in model.modules() if hasattr(m, "set_processor") and hasattr(m, "processor")]
    saved = [m.processor for m in layers]
    if layers:
        from diffusers.models.attention_processor import AttnProcessor

        for m in layers:
            m.set_processor(AttnProcessor())
    try:
        yield
    finally:
        for m, processor in zip(layers, saved):
            m.set_processor(processor)
