"""LoRA task vectors and their merging (004 Perturb-and-Merge), shared by `perturb_merge` and its baselines.

- The adapter is **peft**'s: ``attach_lora`` injects a fresh ``LoraConfig(target_modules=key, value)``
  adapter (scaling lora_alpha/r = 1; 004 silent) into the merged model θ̂_{t−1}, which stays in the frozen
  base layers; ``fold`` sets the adapter's scale to α and lets peft fold it (θ̂_t = θ̂_{t−1} + α·LoRA_t).
- The perturbation (004 Eq. 15): ``draw_epsilon`` gives ε̃ ∈ {−ε, 0, +ε} with probabilities
  {(1−p₀)/2, p₀, (1−p₀)/2}; the loss is taken at θ̂_{t−1} + (1 + ε̃)·LoRA_t by setting peft's scale to 1 + ε̃
  for the batch (``set_scale``). ``gaussian_noise`` is 004 Table 4's ablation: a Gaussian matrix per adapted
  layer with Frobenius norm |ε̃|·‖LoRA_t‖_F of that layer (the norm matched per layer: 004 does not say).
- The merge (004 Eq. 8): F_t is the diagonal empirical Fisher at θ*_t, the mean over training samples of
  the squared per-sample gradient of −log p(y|x) with respect to the adapted key/value *weights* (not the
  LoRA factors): with the adapter active, ∂L/∂W_base = ∂L/∂(W_base + s·BA), so the gradient of the base
  weight at θ̂_{t−1} with LoRA_t on is the gradient at θ*_t. Per-sample gradients by ``torch.func``
  (vmap of grad). ``MergeSums`` keeps S_F = Σ_i F_i and S_Fθ = Σ_i F_i ⊙ θ*_i, so
  α_t = Σ_p (S_Fθ − S_F ⊙ θ̂_{t−1})_p Δ_p / Σ_p S_F,p Δ_p² is O(1) in t (float64 sums).
- ``FrozenRows``: only the current task's head block learns (004: previous head blocks frozen; rows of
  future classes are kept too, so AdamW's weight decay cannot touch them); the head is never merged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainables.params import knob

ADAPTER = "default"


@dataclass(frozen=True)
class LoRAParams:
    """Optimizer and adapter settings of the LoRA family (004 §4.1: AdamW, lr 1e-3 LoRA, 1e-2 head)."""

    lr: float = knob(1e-3, "AdamW rate of the LoRA factors (004: 1e-3)", low=0, low_open=True, smoke=1e-3)
    head_lr: float = knob(1e-2, "AdamW rate of the current task's head block (004: 1e-2)", low=0, low_open=True,
                          smoke=1e-2)
    weight_decay: float = knob(0.0, "AdamW's decoupled weight decay (004 silent)", low=0)
    rank: int = knob(10, "LoRA rank on the key and value projections (004: 10)", low=1, smoke=2)
    reset_optimizer: bool = knob(True, "a fresh AdamW for every task: each task trains a new LoRA and head "
                                 "block (004 Alg. 1), so there is no earlier state to keep", choices=(True,))


@dataclass(frozen=True)
class MergeKnobs:
    """Settings of the closed-form merge (004 Eq. 8)."""

    clip_alpha: bool = knob(True, "clip α to [0, 1] (Eq. 3 asks for it, Eq. 8 does not enforce it); the raw α "
                            "is recorded as alpha_raw either way")
    fisher_samples: int = knob(0, "training samples of the task the Fisher is averaged over (0: all of them, "
                               "as 004)", low=0, smoke=8)
    fisher_batch: int = knob(32, "samples per vmap call while estimating the Fisher", low=1, smoke=4)


def attach_lora(model: nn.Module, targets, rank: int):
    """``model`` with a fresh peft LoRA adapter on the modules named ``targets`` (a PeftModel around it;
    ``model`` is changed in place and its own weights are frozen)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, bias="none", target_modules=list(targets))
    with warnings.catch_warnings():  # peft asks transformers a deprecated question (is_gradient_checkpointing)
        warnings.filterwarnings("ignore", category=FutureWarning)
        return get_peft_model(model, config)


def lora_layers(peft_model) -> dict[str, nn.Module]:
    """{module path in the plain model: peft LoRA layer} of the adapted projections."""
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    return {name.removeprefix(prefix): m for name, m in peft_model.named_modules() if isinstance(m, LoraLayer)}


def set_scale(peft_model, scale: float) -> None:
    """Scale every adapter's contribution: the model computes θ̂ + scale·LoRA."""
    for layer in lora_layers(peft_model).values():
        layer.set_scale(ADAPTER, scale)


def lora_parameters(peft_model) -> list[nn.Parameter]:
    return [p for n, p in peft_model.named_parameters() if "lora_" in n]


def base_weights(peft_model) -> dict[str, torch.Tensor]:
    """{path: the adapted layer's frozen weight} (θ̂_{t−1} in the key/value weight space)."""
    return {k: m.get_base_layer().weight for k, m in lora_layers(peft_model).items()}


def task_vector(peft_model) -> dict[str, torch.Tensor]:
    """{path: LoRA_t's weight delta s·B·A} (detached), at the adapter's configured scale."""
    out = {}
    for k, m in lora_layers(peft_model).items():
        scale = m.scaling[ADAPTER]
        m.set_scale(ADAPTER, 1.0)
        out[k] = m.get_delta_weight(ADAPTER).detach().clone()
        m.scaling[ADAPTER] = scale
    return out


def fold(peft_model, alpha: float) -> nn.Module:
    """The plain model with θ̂_{t−1} + α·LoRA_t folded into its weights by peft (merge_and_unload)."""
    set_scale(peft_model, alpha)
    model = peft_model.merge_and_unload()
    vars(model).pop("peft_config", None)
    return model


def draw_epsilon(rng: np.random.Generator, epsilon: float, p0: float) -> float:
    """ε̃ ∈ {−ε, 0, +ε} with probabilities {(1−p₀)/2, p₀, (1−p₀)/2} (004 Eq. 15)."""
    u = rng.random()
    p_minus = (1 - p0) / 2
    return -epsilon if u < p_minus else (0.0 if u < p_minus + p0 else epsilon)


def gaussian_noise(peft_model, magnitude: float, generator: torch.Generator) -> list:
    """Forward hooks adding x·Gᵀ to each adapted layer, G Gaussian with ‖G‖_F = magnitude·‖LoRA_t‖_F of the
    layer (detached); the caller removes the returned handles after the batch."""
    handles = []
    for layer, delta in zip(lora_layers(peft_model).values(), task_vector(peft_model).values()):
        g = torch.randn(delta.shape, generator=generator).to(delta)
        g = g * (magnitude * delta.norm() / g.norm().clamp_min(1e-12))
        handles.append(layer.register_forward_hook(lambda _m, inputs, out, g=g: out + inputs[0] @ g.T))
    return handles


def diagonal_fisher(model: nn.Module, names: dict[str, str], loss, batch: dict, chunk: int) -> dict[str, torch.Tensor]:
    """{path: mean over the batch's samples of the squared per-sample gradient of ``loss`` (a per-sample
    −log p(y|x), called as loss(callable_model, batch)) with respect to the parameter ``names[path]``}."""
    params = dict(model.named_parameters())
    chosen = {n: params[n].detach() for n in names.values()}

    def one(p, sample):
        single = {k: v.unsqueeze(0) for k, v in sample.items()}
        call = lambda *a, **kw: torch.func.functional_call(model, p, a, kw)  # noqa: E731
        return loss(call, single).sum()

    grad = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0))
    n = len(next(iter(batch.values())))
    total = {k: torch.zeros_like(v) for k, v in chosen.items()}
    for start in range(0, n, chunk):
        part = {k: v[start:start + chunk] for k, v in batch.items()}
        for k, g in grad(chosen, part).items():
            total[k] += g.detach().pow(2).sum(0)
    return {path: total[name] / n for path, name in names.items()}


class MergeSums:
    """Running sums S_F = Σ_i F_i and S_Fθ = Σ_i F_i ⊙ θ*_i (float64), and Eq. 8's α from them."""

    def __init__(self) -> None:
        self.s_f: dict[str, torch.Tensor] = {}
        self.s_ftheta: dict[str, torch.Tensor] = {}

    def add(self, fisher: dict[str, torch.Tensor], star: dict[str, torch.Tensor]) -> None:
        for k, f in fisher.items():
            f64, ft = f.double(), f.double() * star[k].double()
            self.s_f[k] = self.s_f[k] + f64 if k in self.s_f else f64
            self.s_ftheta[k] = self.s_ftheta[k] + ft if k in self.s_ftheta else ft

    def alpha(self, prev: dict[str, torch.Tensor], delta: dict[str, torch.Tensor]) -> float:
        """Σ_i Σ_p F_i,p (θ*_i − θ̂_{t−1})_p Δ_p / Σ_i Σ_p F_i,p Δ_p²; 1 when the denominator is 0."""
        num = sum(((self.s_ftheta[k] - self.s_f[k] * prev[k].double()) * delta[k].double()).sum() for k in delta)
        den = sum((self.s_f[k] * delta[k].double() ** 2).sum() for k in delta)
        return float(num / den) if float(den) > 0 else 1.0


def alpha_explicit(fishers: list[dict], stars: list[dict], prev: dict, delta: dict) -> float:
    """Eq. 8 summed task by task (every F_i and θ*_i kept), for checking ``MergeSums``."""
    num = sum(float((f[k].double() * (s[k].double() - prev[k].double()) * delta[k].double()).sum())
              for f, s in zip(fishers, stars) for k in delta)
    den = sum(float((f[k].double() * delta[k].double() ** 2).sum()) for f in fishers for k in delta)
    return num / den


class FrozenRows:
    """Every row of the head but the current task's classes held at its value (restore after each step)."""

    def __init__(self, head: nn.Linear, classes) -> None:
        self.head = head
        self.keep = torch.ones(head.out_features, dtype=torch.bool, device=head.weight.device)
        self.keep[list(classes)] = False
        self.weight = head.weight.detach().clone()
        self.bias = None if head.bias is None else head.bias.detach().clone()

    @torch.no_grad()
    def restore(self) -> None:
        self.head.weight[self.keep] = self.weight[self.keep]
        if self.bias is not None:
            self.head.bias[self.keep] = self.bias[self.keep]
