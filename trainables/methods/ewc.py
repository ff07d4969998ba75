"""`ewc`: L_t + λ·L_EWC with L_EWC = ½ Σ_{i<t} (θ − θ*_i)ᵀ F_i (θ − θ*_i) (000 Eq. 5; Kirkpatrick et al.
2017), the Fisher diagonal or rank-1 (000 Appendix B; Wang et al. 2026). See trainables/fisher.py for
both estimators. The ½ is part of L_EWC here and in `trust_region`, so λ means the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.fisher import ElasticPenalty
from trainables.methods.base import Method, TrainParams
from trainables.params import knob


@dataclass(frozen=True)
class FisherKnobs:
    lam: float = knob(1000.0, "λ, weight of L_EWC (000 Table 3: 15,000 for ImageNet, rank-1 projection)",
                      low=0)
    rho_estimator: str = knob("projection", "rank-1 ρ: mean (g_nᵀu)² ('projection') or ‖ḡ‖² "
                              "('mean_outer')", choices=("projection", "mean_outer"))
    fisher_samples: int = knob(256, "training samples of a task the Fisher is estimated on (paper: 10,000)",
                               low=1)
    fisher_batch: int = knob(32, "samples per forward pass while estimating the Fisher", low=1)
    fisher_t_min: int = knob(0, "lowest diffusion timestep sampled for the Fisher", low=0)
    fisher_t_max: int | None = knob(None, "one past the highest timestep sampled for the Fisher (default: "
                                    "all timesteps; collinearity is strongest late)", low=1)


@dataclass(frozen=True)
class EWCParams(TrainParams, FisherKnobs):
    fisher: str = knob("rank1", "Fisher representation", choices=("diag", "rank1"))


def check_fisher_timesteps(name: str, params, bench_config) -> None:
    """0 <= fisher_t_min < fisher_t_max <= the benchmark's diffusion timesteps."""
    total = getattr(bench_config, "num_train_timesteps", None)
    if total is None:
        return
    t_max = params.fisher_t_max if params.fisher_t_max is not None else total
    if t_max > total:
        raise ValueError(f"methods.{name}.fisher_t_max: {t_max} is not allowed; allowed: an integer <= {total} "
                         "(the benchmark's num_train_timesteps)")
    if params.fisher_t_min >= t_max:
        raise ValueError(f"methods.{name}.fisher_t_min: {params.fisher_t_min} is not allowed; allowed: an "
                         f"integer < fisher_t_max ({t_max})")


def fisher_loss(method: Method):
    """The per-sample loss the Fisher is estimated on, with the knobs' timestep range."""
    p = method.params
    t_range = None
    if "timesteps" in method.bench.capabilities and (p.fisher_t_min > 0 or p.fisher_t_max is not None):
        t_range = (p.fisher_t_min, p.fisher_t_max or method.bench.config.num_train_timesteps)
    return lambda model, batch, generator: method.bench.loss(model, batch, generator, t_range)


def consolidate(method: Method, penalty: ElasticPenalty, task) -> dict[str, float]:
    """Estimate task's Fisher at θ*_task on fresh training samples and add its anchor."""
    data = method.bench.train_sample(task, method.params.fisher_samples, method.generator)
    seed = int(torch.randint(2**31 - 1, (1,), generator=method.generator))
    return penalty.consolidate(method.model, data, fisher_loss(method), seed)


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
