"""The Fisher-information-maximisation (FIM) loss of 003 (Eq. 2-3, Algorithm 1 lines 8-16), for SIREN fields.

L_FIM = Σ_j w_j ‖f(x_j) − s_j‖² with w_j = 1 + λ g_jᵀ F⁻¹ g_j, g_j = ∇_θ log p(s_j | f_θ(x_j)) the per-sample
score and F the module's Fisher. Per coordinate, like ``NeuralFieldBenchmark.loss``: the squared error is
averaged over channels, weighted per (coordinate, field), summed over fields.

Choices 003 leaves open (all ours):
- likelihood: Gaussian with unit variance, so g_j = −∇_θ ½ mean_c (f(x_j) − s_j)² (its scale cancels below);
- F: a damped **diagonal** running estimate per module (per field), F ← ρ F + (1 − ρ) mean_j g_j² after every
  step (a batch of samples; 003 updates "after every sample"); a new task's F starts empty and its first
  step uses that batch's own mean g_j² (Algorithm 1 line 8 initialises F_i per task; 003 gives no initial
  value); the inverse uses F + δ · mean(F) (``damping`` δ, relative so that it is scale-free);
- normalisation: q_j = g_jᵀ F⁻¹ g_j is divided by its mean over the batch (per field), so the weights average
  1 + λ whatever the network and λ is of order 1;
- w is detached: a weight, not a path for gradients (also in the second-order meta-gradient);
- per-sample diagonal quadratic forms are exact and cheap: for a linear layer the per-sample gradient is
  h_j ⊗ δ_j, so Σ_ab (h_ja δ_jb)² / F_ab = (h_j²)ᵀ F⁻¹ (δ_j²) without materialising per-sample gradients.
λ = 0 gives w = 1: the plain loss (003's "Ours (mod)").
"""

from __future__ import annotations

import torch

from trainables.siren import Siren, trace


def squared_grads(model: Siren, params: dict[str, torch.Tensor], batch) -> tuple[list, list]:
    """Per layer, (h², δ²): squared inputs (F, B, n_in) and squared per-sample score gradients w.r.t. the
    pre-activations (F, B, n_out), on detached parameters (the fields and samples are independent, so the
    gradient of the summed loss w.r.t. z_l holds every sample's own δ_l)."""
    with torch.enable_grad():
        detached = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        out, inputs, preacts = trace(model, detached, batch["x"])
        half = 0.5 * ((out - batch["y"]) ** 2).mean(-1).sum()
        deltas = torch.autograd.grad(half, preacts)
    return [h.detach() ** 2 for h in inputs], [d.detach() ** 2 for d in deltas]


def batch_fisher(h2: list, d2: list) -> dict[str, torch.Tensor]:
    """The batch's mean squared per-sample gradient, per parameter (F, ...): the diagonal Fisher estimate."""
    out = {}
    for i, (a, b) in enumerate(zip(h2, d2)):
        n = a.shape[1]
        out[f"layers.{i}.weight"] = torch.einsum("fja,fjb->fab", a, b) / n
        out[f"layers.{i}.bias"] = b.mean(1, keepdim=True)
    return out


def quadratic_form(h2: list, d2: list, fisher: dict[str, torch.Tensor], damping: float) -> torch.Tensor:
    """q_j = g_jᵀ (F + δ mean F)⁻¹ g_j per field and sample, shape (B, F)."""
    total = sum(f.sum((1, 2)) for f in fisher.values())
    count = sum(f[0].numel() for f in fisher.values())
    floor = (damping * total / count).clamp_min(1e-30)  # (F,) per field
    q = 0.0
    for i, (a, b) in enumerate(zip(h2, d2)):
        inv_w = 1.0 / (fisher[f"layers.{i}.weight"] + floor[:, None, None])
        inv_b = 1.0 / (fisher[f"layers.{i}.bias"] + floor[:, None, None])
        q = q + torch.einsum("fja,fab,fjb->fj", a, inv_w, b) + (b * inv_b).sum(-1)
    return q.transpose(0, 1)


class FIMState:
    """The running diagonal Fisher of one module (all its fields) within one task."""

    def __init__(self, decay: float, damping: float) -> None:
        self.decay, self.damping = decay, damping
        self.fisher: dict[str, torch.Tensor] | None = None

    def weights(self, model: Siren, params: dict, batch, lam: float) -> torch.Tensor:
        """w (B, F) = 1 + λ q / mean_j q for this batch (detached), then F updated with the batch."""
        h2, d2 = squared_grads(model, params, batch)
        current = batch_fisher(h2, d2)
        fisher = self.fisher if self.fisher is not None else current
        q = quadratic_form(h2, d2, fisher, self.damping)
        w = 1.0 + lam * q / q.mean(0, keepdim=True).clamp_min(1e-30)
        self.fisher = current if self.fisher is None else {
            k: self.decay * fisher[k] + (1 - self.decay) * current[k] for k in current}
        return w.detach()


def fim_loss(model: Siren, params: dict, batch, state: FIMState | None, lam: float) -> torch.Tensor:
    """Per coordinate (B,): Σ_fields w ⊙ mean_c (f − s)²; plain when λ = 0 or no state."""
    err = ((torch.func.functional_call(model, params, (batch["x"],)) - batch["y"]) ** 2).mean(-1)  # (B, F)
    if lam == 0 or state is None:
        return err.sum(-1)
    return (state.weights(model, params, batch, lam) * err).sum(-1)
