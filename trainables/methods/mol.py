"""`mol`: meta-offline learning, 003's "MOL" / LearnedInit (Tancik et al. 2021), the meta upper bound.

Meta-training (``meta_update``): MAML over whole signals, ``trainables.meta_fields.joint_meta_loss``: the
shared initialisation θ is adapted by ``inner_steps`` SGD steps of rate ``inner_lr`` on the context of every
region at once, the meta-loss is the whole signal's query loss at the adapted parameters, and θ takes an
Adam step of rate ``outer_lr`` (second order unless ``first_order``). Test time: `ol`'s rule (every update
on a batch from every region: the whole signal, never continual) from the meta-learnt θ, at rate ``lr``.
Defaults are ours (003 gives none): those of `mcl_nf`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.meta_fields import expanded, functional, joint_meta_loss, step_tied
from trainables.methods.ol import OL, OLParams
from trainables.params import knob


@dataclass(frozen=True)
class MOLParams(OLParams):
    outer_lr: float = knob(1e-3, "η_outer: Adam rate of the meta-initialisation (ours)", low=0, low_open=True,
                           smoke=1e-4)
    inner_lr: float = knob(1e-2, "SGD rate of the inner steps (ours)", low=0, low_open=True, smoke=1e-3)
    inner_steps: int = knob(2, "inner SGD steps on the whole signal's context (ours)", low=1, smoke=1)
    first_order: bool = knob(False, "drop the second-order terms of the meta-gradient")


class MOL(OL):
    name = "mol"
    Params = MOLParams
    requires = frozenset({"neural_field", "meta_episodes"})

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.meta_optimizer = None

    def meta_update(self, episode):
        p = self.params
        if self.meta_optimizer is None:
            self.meta_optimizer = torch.optim.Adam(self.model.parameters(), lr=p.outer_lr)
        theta = expanded(self.model, episode[0][0]["y"].shape[1])
        meta, support = joint_meta_loss(functional(self.bench, self.model), theta, episode, p.inner_steps,
                                        p.inner_lr, not p.first_order)
        step_tied(self.model, self.meta_optimizer, meta)
        return {"loss": meta.item(), "support_loss": support}
