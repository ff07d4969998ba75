"""`mcl_nf`: modular meta-continual learning of neural fields with the FIM loss (003 Algorithm 1, Eq. 2-3).

Meta-training (``meta_update``, called by the S-grid protocol ``meta_steps`` times): one shared initialisation
θ_sh, a SIREN of the benchmark's ``module_width``. Per outer step, for each of the episode's meta-training
signals and each region i: θ_i^(0) = θ_sh, k = ``inner_steps`` SGD steps of rate ``inner_lr`` on the FIM
loss of region i's context (Algorithm 1 lines 9-17), then the FIM loss of region i's query at θ_i^(k)
(line 23); the meta-loss is the mean over regions (Eq. 2's 1/t Σ_i) summed over signals, and θ_sh takes an
Adam step of rate ``outer_lr`` through the inner steps (second order by default, as 003; ``first_order``:
the inner gradients held fixed, so the meta-gradient is the query gradient at the adapted parameters).

Test time (``update``): module i (one per region, each a copy of θ_sh, Algorithm 1 lines 3-5) trains on
region i only, with the FIM loss and its own optimizer (``optimizer``/``lr``), from the start of task i; it
is then frozen (no later update touches it). ``eval_model(task j)`` is module j: a coordinate is answered
by its region's module (routing G_i(x), one-hot by region, line 30; ``Routed`` composes them).

The FIM loss is ``trainables.fim_loss`` (w = 1 + λ gᵀF⁻¹g, damped diagonal running F per module,
normalised quadratic form, w detached: its docstring says each choice). λ = 0 is 003's "Ours (mod)".

Choices 003 leaves open, all ours. The rates, k and λ are the best of the ``mcl_nf_faces`` sweep (20
configurations × seeds 0-2 on nf_faces at nf_compare's laptop settings: 64 coordinates a step, 50 outer
steps of 4 faces, S_max 128; mean strip PSNR 41.9 ± 1.4 dB on its own seeds), rounded to two digits:
test-time Adam 1.5e-4 (003 gives no test-time optimizer; a meta-learnt SGD rate is not meant for thousands
of steps, and the test-time rate mattered most: 1e-3 gave 25 dB), inner SGD rate 1.1e-3, k = 3 inner
steps, outer Adam 1.2e-3, λ = 2.6; damping 1e-3 and Fisher decay 0.9 were not swept. The inner loop's F
starts afresh for every region of every signal; the query loss weights use the F of its region's inner
loop. ``reset_optimizer`` does not apply: each module has its own optimizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from trainables.fim_loss import FIMState, fim_loss
from trainables.meta_fields import adapt, expanded, step_tied
from trainables.methods.base import Method, TrainParams
from trainables.params import knob
from trainables.tensors import parameters_of


@dataclass(frozen=True)
class MCLNFParams(TrainParams):
    lr: float = knob(1.5e-4, "test-time Adam rate of each module (ours: mcl_nf_faces)", low=0, low_open=True,
                     smoke=1e-3)
    outer_lr: float = knob(1.2e-3, "η_outer: Adam rate of the meta-initialisation θ_sh (ours: mcl_nf_faces)",
                           low=0, low_open=True, smoke=1e-4)
    inner_lr: float = knob(1.1e-3, "η_inner: SGD rate of the inner steps (ours: mcl_nf_faces)", low=0,
                           low_open=True, smoke=1e-3)
    inner_steps: int = knob(3, "k: inner SGD steps per region (ours: mcl_nf_faces)", low=1, smoke=1)
    first_order: bool = knob(False, "drop the second-order terms of the meta-gradient (003: second order)")
    lam: float = knob(2.6, "λ: weight of the Fisher term of the FIM loss (ours: mcl_nf_faces; 0: mcl_nf_mod)", low=0)
    damping: float = knob(1e-3, "δ: F + δ·mean(F) is inverted (relative damping)", low=0, low_open=True)
    fisher_decay: float = knob(0.9, "ρ: F ← ρ F + (1 − ρ) mean g² after every step", low=0, high=1)
    reset_optimizer: bool = knob(False, "does not apply: every module has its own optimizer", choices=(False,))


class Routed(nn.Module):
    """003 Algorithm 1 line 30: s(x) = Σ_i G_i(x) f_{θ_i}(x), G_i one-hot: the module of x's region."""

    def __init__(self, modules: list[nn.Module], region_of) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self.region_of = region_of  # coordinates (B, d) -> 0-based region (B,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = self.region_of(x)
        outs = torch.stack([m(x) for m in self.parts])  # (T, B, F, c)
        gate = nn.functional.one_hot(region, len(self.parts)).T.to(outs.dtype)  # (T, B)
        return (gate[:, :, None, None] * outs).sum(0)


class MCLNF(Method):
    name = "mcl_nf"
    Params = MCLNFParams
    requires = frozenset({"neural_field", "meta_episodes"})

    def __init__(self, params, model, bench, generator):
        missing = self.requires - bench.capabilities
        if not missing and getattr(model, "width", None) != bench.config.module_width:
            model = bench.make_field(bench.config.module_width)  # θ_sh is one module, parameter-matched
        super().__init__(params, model, bench, generator)  # checks the capabilities
        self.parts = [copy.deepcopy(model) for _ in bench.tasks]  # test-time modules, copies of θ_sh
        self.current = None
        self.fim = None
        self.meta_optimizer = None

    def loss_fn(self, model: nn.Module, state: FIMState | None):
        return lambda params, batch: fim_loss(model, params, batch, state, self.params.lam)

    def meta_update(self, episode):
        p = self.params
        if self.meta_optimizer is None:
            self.meta_optimizer = torch.optim.Adam(self.model.parameters(), lr=p.outer_lr)
        theta = expanded(self.model, episode[0][0]["y"].shape[1])
        total, support = 0.0, 0.0
        for context, query in episode:
            state = FIMState(p.fisher_decay, p.damping)
            loss = self.loss_fn(self.model, state)
            adapted, first = adapt(loss, theta, context, p.inner_steps, p.inner_lr, not p.first_order)
            total = total + loss(adapted, query).mean()
            support += first
        meta = total / len(episode)
        step_tied(self.model, self.meta_optimizer, meta)
        return {"loss": meta.item(), "support_loss": support / len(episode)}

    def begin_task(self, task):
        super().begin_task(task)
        self.current = self.parts[task.index - 1]
        self.optimizer = self.make_optimizer(self.current.parameters(), self.params.lr)
        self.fim = FIMState(self.params.fisher_decay, self.params.damping)

    def update(self, batch):
        module = self.current
        loss = fim_loss(module, parameters_of(module), batch, self.fim, self.params.lam).mean()
        self.step(loss)
        return {"loss": loss.item()}

    def eval_model(self, task):
        return self.parts[task.index - 1]

    def routed(self) -> Routed:
        """Every module behind the one-hot routing by region (the whole signal's field)."""
        return Routed(self.parts, self.bench.region_of)
