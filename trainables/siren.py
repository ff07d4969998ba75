"""SIREN neural fields (Sitzmann et al. 2020), batched over many signals: one independent field per signal.

A field maps a coordinate x ∈ R^d to a signal value s ∈ R^c through ``layers`` linear layers: sine after
every layer but the last, sin(ω₀ (W x + b)) for the first and sin(ω (W h + b)) for the hidden ones
(ω = ``hidden_omega0``), a plain linear output. "5 layers × d" (003 §5.2) is 5 linear layers of width d:
2→d, three d→d, d→c (5 × 128 with c = 3: 50,307 parameters; 5 × 256: 198,915).

Initialisation (Sitzmann et al. 2020, §3.2 and their public code): first layer W ~ U(−1/n, 1/n), every
later layer W ~ U(−√(6/n)/ω, √(6/n)/ω) with n the layer's fan-in; biases as PyTorch's nn.Linear,
U(−1/√n, 1/√n). ``omega0``, ``hidden_omega0`` are settings (default 30, the paper's).

Batching: every parameter has a leading dimension F (the fields); ``forward`` takes coordinates shared by
all fields, shape (B, d), and returns (B, F, c), so a batch of coordinates is a batch of "samples" whose
targets hold every signal's value there. The fields are independent: the gradient of a loss summed over
fields gives each field its own gradient, so any optimizer that acts per parameter element (SGD, Adam)
trains F fields at once exactly as it would train them one at a time. The layer count F is read from the
weights, so ``torch.func.functional_call`` with parameters of another leading size (e.g. one shared
initialisation expanded to M signals) works too.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FieldLinear(nn.Linear):
    """F independent linear layers: weight (F, n_in, n_out), bias (F, 1, n_out); y = x W + b per field.

    A subclass of nn.Linear so that methods adapting only a network's linear head (OML) find the last
    layer; its parameters are batched, not nn.Linear's (out, in)."""

    def __init__(self, fields: int, n_in: int, n_out: int) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = n_in, n_out
        self.weight = nn.Parameter(torch.empty(fields, n_in, n_out))
        self.bias = nn.Parameter(torch.empty(fields, 1, n_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # h: (F, B, n_in)
        return torch.baddbmm(self.bias, h, self.weight)


class Siren(nn.Module):
    """F SIREN fields of ``layers`` linear layers of width ``width``; ``forward(x (B, d)) -> (B, F, c)``."""

    def __init__(self, fields: int, in_dim: int, out_dim: int, width: int, layers: int = 5,
                 omega0: float = 30.0, hidden_omega0: float = 30.0) -> None:
        super().__init__()
        if layers < 2:
            raise ValueError(f"benchmark.layers: {layers} is not allowed; allowed: an integer >= 2")
        self.width, self.omega0, self.hidden_omega0 = width, omega0, hidden_omega0
        dims = [in_dim] + [width] * (layers - 1) + [out_dim]
        self.layers = nn.ModuleList(FieldLinear(fields, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.reset_parameters()

    @property
    def fields(self) -> int:
        return self.layers[0].weight.shape[0]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Sitzmann et al.'s initialisation, drawn once and repeated over the F fields (every field starts
        from the same initialisation, as every signal of 003's test set starts from one θ)."""
        for i, layer in enumerate(self.layers):
            n = layer.in_features
            bound = 1.0 / n if i == 0 else math.sqrt(6.0 / n) / self.hidden_omega0
            w = torch.empty(n, layer.out_features).uniform_(-bound, bound)
            b = torch.empty(1, layer.out_features).uniform_(-1.0 / math.sqrt(n), 1.0 / math.sqrt(n))
            layer.weight.copy_(w.expand_as(layer.weight))
            layer.bias.copy_(b.expand_as(layer.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fields = self.layers[0].weight.shape[0]
        h = x.unsqueeze(0).expand(fields, *x.shape) if x.dim() == 2 else x  # (F, B, d)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.sin((self.omega0 if i == 0 else self.hidden_omega0) * h)
        return h.transpose(0, 1)  # (B, F, c)


def num_parameters(in_dim: int, out_dim: int, width: int, layers: int) -> int:
    """Parameters of ONE field (weights and biases)."""
    dims = [in_dim] + [width] * (layers - 1) + [out_dim]
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def matched_width(in_dim: int, out_dim: int, width: int, layers: int, modules: int) -> int:
    """The largest module width whose ``modules`` modules have at most the parameters of one network of
    ``width`` (003's parameter matching: 4 × 5×128 against 5×256)."""
    budget = num_parameters(in_dim, out_dim, width, layers)
    w = 1
    while modules * num_parameters(in_dim, out_dim, w + 1, layers) <= budget:
        w += 1
    return w


def tie(model: nn.Module, source: nn.Module) -> None:
    """Copy field 0 of every parameter of ``source`` into every field of ``model`` (same architecture,
    any field counts): a shared initialisation handed to F signals."""
    with torch.no_grad():
        for p, q in zip(model.parameters(), source.parameters()):
            p.copy_(q[:1].expand_as(p))


def trace(model: Siren, params: dict[str, torch.Tensor], x: torch.Tensor):
    """``model`` answering with ``params`` on coordinates x (B, d), keeping what per-sample gradients need:
    (output (B, F, c), each layer's input h_l (F, B, n_in), each layer's pre-activation z_l (F, B, n_out)).
    The per-sample gradient of layer l is h_l ⊗ ∂ℓ/∂z_l (weight) and ∂ℓ/∂z_l (bias)."""
    fields = params["layers.0.weight"].shape[0]
    h = x.unsqueeze(0).expand(fields, *x.shape)
    inputs, preacts = [], []
    last = len(model.layers) - 1
    for i in range(len(model.layers)):
        inputs.append(h)
        z = torch.baddbmm(params[f"layers.{i}.bias"], h, params[f"layers.{i}.weight"])
        preacts.append(z)
        h = torch.sin((model.omega0 if i == 0 else model.hidden_omega0) * z) if i < last else z
    return h.transpose(0, 1), inputs, preacts
