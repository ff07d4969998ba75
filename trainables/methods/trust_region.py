"""`trust_region`: L_t + β·L_replay + λ·L_EWC with the rank-1 Fisher (000 Eq. 8): generative replay
supplies the gradient on past tasks, the rank-1 Fisher bounds the step along the dominant curvature
direction. L_EWC carries the ½ of Eq. 5, as in `ewc` (L = L_t + λ·L_EWC).

How β and λ scale (``replay_weighting``; B current samples, m = round(β·B) replay samples, w =
distill_weight, L̄/D̄ means of the denoising/distillation losses over replay samples, of old task i: L̄_i/D̄_i):
- ``mixed_batch`` (default, the authors' code): L = (B·L_t + m·L̄_r)/(B + m) + w·D̄_r + λ·L_EWC
  ≈ (L_t + β·L̄_r)/(1 + β) + w·D̄_r + λ·L_EWC. Against L_t, λ acts (1 + β) times as strongly as in
  `ewc` (twice at β = 1): this λ equals an `ewc` λ of (1 + β)·λ.
- ``per_task`` (000 Eq. 7-8 literally): L = L_t + β Σ_{i<t} (L̄_i + w·D̄_i) + λ·L_EWC: λ means what it
  means in `ewc`, and each old task weighs β against the current one.

Optimizer: a fresh Adam at the start of every task (``reset_optimizer: true``, the default), as
000's authors' code builds one per task; the paper is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.fisher import ElasticPenalty, consolidate
from trainables.generative_replay import GenerativeReplay, ReplayKnobs
from trainables.methods.base import Method, PerTaskOptimizerParams
from trainables.methods.knobs import FisherKnobs, check_fisher_timesteps


@dataclass(frozen=True)
class TrustRegionParams(PerTaskOptimizerParams, ReplayKnobs, FisherKnobs):
    pass


class TrustRegion(Method):
    name = "trust_region"
    Params = TrustRegionParams
    requires = frozenset({"generative_replay", "distillation"})

    @classmethod
    def check(cls, params, bench_config):
        check_fisher_timesteps(cls.name, params, bench_config)

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.replay = GenerativeReplay(bench, params, generator)
        self.penalty = ElasticPenalty("rank1", params.rho_estimator, params.fisher_samples,
                                      params.fisher_batch)

    def begin_task(self, task):
        self.replay.refresh(self.model, list(self.seen))
        super().begin_task(task)

    def objective(self, batch):
        """(total, parts): the replay-mixed loss plus λ·L_EWC."""
        replay_loss, parts = self.replay.loss(self.model, batch)
        ewc = self.penalty(self.model)
        return replay_loss + self.params.lam * ewc, {**parts, "ewc": ewc.item()}

    def update(self, batch):
        loss, parts = self.objective(batch)
        self.step(loss)
        return {"loss": loss.item(), **parts}

    def end_task(self, task):
        return consolidate(self, self.penalty, task)
