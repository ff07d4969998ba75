"""`emcl`: Efficient Meta-Learning for Continual Learning (002 §IV, Algorithm 1, Eq. 6-21, Table II).

One call of ``update`` is one meta-update j on a batch b of k samples, with θ0 the current parameters:

1. Importance (Eq. 11-13): Ω_m = |∂L(θ0; b)/∂θ_{0,m} · θ_{0,m}| with L the MEAN per-sample loss of the
   whole current batch b at θ0 (one extra forward/backward; 002 writes L_t, the loss of all tasks seen,
   but EMCL keeps no memory: §V lists only GEM, A-GEM, MER and La-MAML as storing past samples and §VI
   says EMCL stores only h and α, so the current batch is the only data at hand; Algorithm 1 line 9 also
   writes L_t(θ0, b)). 002 says the gradient "is already available after inner-update", which at θ0 is
   only the first sample's; the whole batch's is taken instead. Its moving average
   (Eq. 7) h ← η·h + (1 − η)·Ω is updated at the START of the meta-update, before the inner loop, so the
   inner prox (Eq. 6, 21), the meta-gradient (Eq. 10) and the meta lr modulation (Eq. 8) of update j all
   use h^j. The first update sets h = Ω (a zero start would bias h toward 0 for ~1/(1−η) updates and
   inflate r/h); h is never reset, also not at task boundaries.
2. Inner loop (Algorithm 1 line 6, Eq. 16, 17, 21): one step per sample of b, in batch order:
   θ̂ = θ − β∇ℓ(θ; b[κ]) (ℓ the sample's loss), then the closed-form prox of (λ/2)Σ_m h_m(θ_m − θ0_m)²
   θ = (θ̂ + γλh·θ0)/(γλh + 1), elementwise. Eq. 16 writes the gradient step with γ, but Table II has
   both an inner lr β and a "scalar for pgd" γ, and Algorithm 1 line 6 steps with β: here β is the
   gradient step and γ the prox scalar (as METHODS.md §2 states).
3. Meta-gradient in closed form (Eq. 9-10, first-order, no Hessian): g = λH²(θ0 − θk), H² = diag(h).
   Eq. 10 takes the meta-loss at θk, assumed the minimiser of Eq. 6, and its data drop out: the step depends
   only on the inner loop, so which samples L_t would cover changes nothing here. ``meta_target: mean``
   (outside the paper) takes it at the mean of θ1..θk, g = λH²(θ0 − mean_κ θκ), the analogue of La-MAML's
   code averaging its meta-loss over every inner step; the default ``last`` is Eq. 10 as written.
4. Outer step (Algorithm 1 line 9): plain SGD with the per-parameter meta lr, θ0 ← θ0 − α ⊙ g (Adam would
   normalise the step and cancel Eq. 8's modulation; hence ``optimizer`` admits only sgd).
5. Meta lr modulation (Eq. 8): α ← (r / max(h, h_floor)) ⊙ α, compounding over updates, clamped to
   [0, alpha_max]. Order: Eq. 8's indices, α^j = (r/h^j)·α^{j−1}, then the step of update j uses α^j
   (modulate, then step; ``modulation_order: eq8``). Algorithm 1 lines 8-9 can also be read as "step with
   the old α, then modulate" (line 9 steps with α^j after line 8 computed α^{j+1}; ``modulation_order:
   algorithm1``, where update 1 steps with α0 itself); that order makes the step fraction
   α^j·λ·h^j = λ·r·α^{j−1}·h^j/h^{j−1} grow without bound whenever h jumps up (measured: NaN on permuted
   digits with r 1e-3, alpha_max 1000). With Eq. 8's order the h of the step cancels:
   α^j·λ·h^j = min(λ·r·α^{j−1}, λ·h^j·alpha_max) ≤ λ·r·max(α0, alpha_max), so alpha_max bounds the
   fraction of the way to θk an outer step may go. The first update already steps with (r/h^0)·α0; α0 is
   the rate before any modulation.
   Division by zero: h_m is 0 exactly when ∂L/∂θ_m·θ_m was 0 at every update so far (a dead ReLU unit, a
   zero weight, an unused head); the divisor is max(h_m, h_floor) and ``alpha_max`` (always finite) caps
   the result, so α stays finite (such a parameter gets α = alpha_max, and its step λ·h·α·(θ0 − θk) is
   0 anyway; without a cap α would compound to inf and inf·0 give NaN).
   ``lr_modulation: from_initial`` is an option outside the paper: α = α0·r/max(h, h_floor) at every update
   (not compounding), which makes the outer step α0·r·λ·(θ0 − θk), a Reptile step free of h.

No episodic memory (002 §V). 002 gives no η and no r, and no cap. Defaults, measured on permuted_digits
(tiny preset, Table II presets otherwise, 3 tasks, one seed):
- η = 0.9: the usual decay of a moving average (an effective window of ~10 batches ≈ 100 samples, short
  against a task's stream).
- r = 3e-4, alpha_max = 300: with compounding a parameter with h above r is slowed geometrically (α → 0,
  it is frozen while it stays important) and one below r is sped up to the cap. Ω is tiny for 002's 2×100
  MLP (median h ≈ 1e-5 to 1e-4, mean ≈ 3e-4), so r near the mean h leaves ~63 % of the weights at the cap
  at the end of the stream and slows or freezes the rest; λ·r·alpha_max = 0.9 keeps every outer step short
  of θk. Mean final accuracy over the 3 tasks: 0.71 with these defaults; 0.66 (r 1e-4, cap 1000), 0.68
  (r 1e-3, cap 100), 0.63 (r 3e-4, cap 100); with a cap of 1 nothing is learnt (0.11, chance: λ·h·α
  ~ 1e-3). Finetune with SGD 0.03 / 0.1 reaches 0.39 / 0.49 there.
- h_floor = 1e-12.
- No optimizer state: the outer step is applied in place with the rates α, so ``reset_optimizer`` admits
  only false; α and h are method state, kept across task boundaries (002 resets neither).
Presets, 002 Table II: MNIST permutations α0 0.3, β 0.15, λ 10, γ 0.3 (the defaults); many permutations
0.15 / 0.03 / 10 / 0.1; CIFAR-100 and miniImageNet 0.1 / 0.075 / 50 / 0.1 (with λ = 50 keep λ·r·alpha_max
below 1, e.g. alpha_max 60).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.batch import size, take
from trainables.methods.base import Method, OnlineParams, with_params
from trainables.params import knob
from trainables.tensors import parameters_of


@dataclass(frozen=True)
class EMCLParams(OnlineParams):
    lr: float = knob(0.3, "α0: initial per-parameter meta (outer) learning rate (002 Table II: 0.3 MNIST "
                     "perm., 0.15 many perm., 0.1 CIFAR-100 / miniImageNet)", low=0, low_open=True, smoke=1e-3)
    optimizer: str = knob("sgd", "outer optimizer: plain SGD with the per-parameter rates α (Adam would "
                          "cancel Eq. 8)", choices=("sgd",))
    reset_optimizer: bool = knob(False, "the outer step is applied in place with the rates α: no optimizer "
                                 "state to reset (α and h are kept)", choices=(False,))
    inner_lr: float = knob(0.15, "β: inner SGD step per sample (002 Table II: 0.15 MNIST perm., 0.03 many "
                           "perm., 0.075 CIFAR-100 / miniImageNet)", low=0, smoke=1e-3)
    gamma: float = knob(0.3, "γ: scalar of the proximal step, Eq. 21 (002 Table II: 0.3 MNIST perm., 0.1 "
                        "otherwise)", low=0)
    lam: float = knob(10.0, "λ: weight of the importance-weighted inner regulariser, Eq. 6 (002 Table II: "
                      "10 MNIST perm. / many perm., 50 CIFAR-100 / miniImageNet)", low=0)
    eta: float = knob(0.9, "η: decay of the importance moving average h, Eq. 7 (002 gives none)",
                      low=0, high=1)
    r: float = knob(3e-4, "r: scale of the meta lr modulation α ← (r/h)·α, Eq. 8: α shrinks where h > r, "
                    "grows where h < r (002 gives none; ≈ the mean h of the 2×100 MLP on permuted digits)",
                    low=0, low_open=True)
    h_floor: float = knob(1e-12, "divisor floor of Eq. 8: α ← r/max(h, h_floor)·α (guards h = 0)",
                          low=0, low_open=True)
    lr_modulation: str = knob("compound", "Eq. 8 applied to the previous α ('compound', as written) or "
                              "to α0 ('from_initial': α = α0·r/h, the outer step is then α0·r·λ·(θ0 − θk), "
                              "free of h)", choices=("compound", "from_initial"))
    alpha_max: float = knob(300.0, "cap of α after each Eq. 8 update; with compounding the outer step "
                            "fraction α·λ·h stays <= λ·r·max(α0, alpha_max)", low=0, low_open=True)
    meta_target: str = knob("last", "the θ the closed-form meta-gradient λH²(θ0 − θ) is taken at: θk, the end "
                            "of the inner loop ('last', Eq. 9-10), or the mean of θ1..θk ('mean', as La-MAML's "
                            "code averages its meta-loss over every inner step)", choices=("last", "mean"))
    modulation_order: str = knob("eq8", "when Eq. 8 modulates α within update j: before the outer step ('eq8': "
                                 "α^j = (r/h^j)·α^{j−1} is the step's rate) or after it ('algorithm1': line 9 "
                                 "steps with the α of the previous update, line 8 then modulates)",
                                 choices=("eq8", "algorithm1"))



class EMCL(Method):
    name = "emcl"
    Params = EMCLParams

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        theta = parameters_of(model)
        self.h: dict[str, torch.Tensor] | None = None  # set by the first update
        self.alpha = {k: torch.full_like(p, params.lr, requires_grad=False) for k, p in theta.items()}

    # -- the pieces of one meta-update (tests call them directly) -------------------------------------------
    def importance(self, batch) -> tuple[float, dict[str, torch.Tensor]]:
        """(mean batch loss at the model's θ0, Ω = |∂L/∂θ0 · θ0|), Eq. 13."""
        theta = parameters_of(self.model)
        loss = self.bench.loss(self.model, batch, self.generator).mean()
        grads = torch.autograd.grad(loss, list(theta.values()), allow_unused=True)
        omega = {k: (g.detach() * p.detach()).abs() if g is not None else torch.zeros_like(p)
                 for (k, p), g in zip(theta.items(), grads)}
        return loss.item(), omega

    def update_importance(self, omega: dict[str, torch.Tensor]) -> None:
        """h ← η h + (1 − η) Ω (Eq. 7); h = Ω at the first update."""
        if self.h is None:
            self.h = {k: o.clone() for k, o in omega.items()}
            return
        eta = self.params.eta
        self.h = {k: eta * self.h[k] + (1 - eta) * omega[k] for k in self.h}

    def adapt(self, batch, theta0: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
        """(θ, mean inner loss): k proximal gradient steps from θ0, one per sample (Eq. 16, 17, 21); θ is θk
        (``meta_target: last``) or the mean of θ1..θk (``mean``)."""
        p = self.params
        theta = {k: t.clone() for k, t in theta0.items()}
        mean = {k: torch.zeros_like(t) for k, t in theta0.items()}
        total = 0.0
        for i in range(size(batch)):
            leaf = {k: t.detach().requires_grad_(True) for k, t in theta.items()}
            sample = take(batch, slice(i, i + 1))
            loss = self.bench.loss(with_params(self.model, leaf), sample, self.generator).sum()
            grads = torch.autograd.grad(loss, list(leaf.values()), allow_unused=True)
            total += loss.item()
            for (k, t), g in zip(leaf.items(), grads):
                hat = t.detach() - p.inner_lr * g if g is not None else t.detach()
                c = p.gamma * p.lam * self.h[k]
                theta[k] = (hat + c * theta0[k]) / (c + 1)
                mean[k] += theta[k] / size(batch)
        return (mean if p.meta_target == "mean" else theta), total / size(batch)

    def meta_gradient(self, theta0, theta_k) -> dict[str, torch.Tensor]:
        """λH²(θ0 − θk), Eq. 10."""
        return {k: self.params.lam * self.h[k] * (theta0[k] - theta_k[k]) for k in theta0}

    def modulate(self) -> None:
        """α ← r / max(h, h_floor) · α (Eq. 8), clamped to [0, alpha_max]."""
        p = self.params
        for k, a in self.alpha.items():
            if p.lr_modulation == "from_initial":
                a.fill_(p.lr)
            a.mul_(p.r / self.h[k].clamp_min(p.h_floor))
            a.clamp_(max=p.alpha_max)

    # -- the loop's hook ----------------------------------------------------------------------------------
    def update(self, batch):
        loss, omega = self.importance(batch)
        self.update_importance(omega)
        theta0 = {k: t.detach().clone() for k, t in parameters_of(self.model).items()}
        theta_k, inner_loss = self.adapt(batch, theta0)
        meta = self.meta_gradient(theta0, theta_k)
        if self.params.modulation_order == "eq8":
            self.modulate()
        step = {k: self.alpha[k] * meta[k] for k in meta}
        with torch.no_grad():
            for k, t in parameters_of(self.model).items():
                t.sub_(step[k])
        if self.params.modulation_order == "algorithm1":
            self.modulate()
        step = torch.cat([s.reshape(-1) for s in step.values()])
        alpha = torch.cat([a.reshape(-1) for a in self.alpha.values()])
        h = torch.cat([v.reshape(-1) for v in self.h.values()])
        return {"loss": loss, "inner_loss": inner_loss,
                "meta_grad_norm": torch.cat([m.reshape(-1) for m in meta.values()]).norm().item(),
                "step_norm": step.norm().item(), "h_mean": h.mean().item(), "h_median": h.median().item(),
                "alpha_mean": alpha.mean().item(), "alpha_min": alpha.min().item(),
                "alpha_at_cap": (alpha >= self.params.alpha_max).float().mean().item()}
