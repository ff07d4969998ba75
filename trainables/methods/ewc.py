"""`ewc`: L_t + λ·L_EWC with L_EWC = ½ Σ_{i<t} (θ − θ*_i)ᵀ F_i (θ − θ*_i) (000 Eq. 5; Kirkpatrick et al.
2017), the Fisher diagonal or rank-1 (000 Appendix B; Wang et al. 2026). See trainables/fisher.py for
both estimators.

L = L_t + λ·L_EWC. The ½ is part of L_EWC here and in `trust_region`, so λ multiplies the same penalty in
both; relative to L_t, though, a λ in `trust_region` acts as strongly as here only with
``replay_weighting: per_task`` (L = L_t + β Σ_{i<t} (L̄_i + w·D̄_i) + λ·L_EWC). With its default
``mixed_batch`` (B current and m = round(β·B) replay samples in one mean),
L = (B·L_t + m·L̄_r)/(B + m) + w·D̄_r + λ·L_EWC ≈ (L_t + β·L̄_r)/(1 + β) + w·D̄_r + λ·L_EWC: λ acts
(1 + β) times as strongly against L_t (twice at β = 1), so λ_ewc here corresponds to λ_ewc/(1 + β) there.

Optimizer: a fresh Adam at the start of every task (``reset_optimizer: true``, the default), as
000's authors' code builds one per task; the paper is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.fisher import ElasticPenalty, consolidate
from trainables.methods.base import Method, PerTaskOptimizerParams
from trainables.methods.knobs import FisherKnobs, check_fisher_timesteps
from trainables.params import knob


@dataclass(frozen=True)
class EWCParams(PerTaskOptimizerParams, FisherKnobs):
    fisher: str = knob("rank1", "Fisher representation", choices=("diag", "rank1"))


class EWC(Method):
    name = "ewc"
    Params = EWCParams

    @classmethod
    def check(cls, params, bench_config):
        check_fisher_timesteps(cls.name, params, bench_config)

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.penalty = ElasticPenalty(params.fisher, params.rho_estimator, params.fisher_samples,
                                      params.fisher_batch)

    def update(self, batch):
        task_loss = self.bench.loss(self.model, batch, self.generator).mean()
        ewc = self.penalty(self.model)
        loss = task_loss + self.params.lam * ewc
        self.step(loss)
        return {"loss": loss.item(), "task_loss": task_loss.item(), "ewc": ewc.item()}

    def end_task(self, task):
        return consolidate(self, self.penalty, task)
