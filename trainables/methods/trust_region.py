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

Why a large λ makes it worse (issue 11): Adam, not the penalty's geometry, and no defect. Adam's step does
not scale with the gradient, so along u_i it stays ~lr per coordinate whatever λ: d_i = u_iᵀ(θ − θ*_i)
does not shrink as 1/λ (as under gradient descent) and the penalty's gradient λρ_i d_i u_i grows ∝ λ.
Where it dominates a coordinate, Adam's second moment follows that sign-flipping gradient and divides
the data gradient (L_t and replay) by it. Measured on split_digits_diffusion (laptop, lr 1e-3, β = 1,
seed 0, tasks 2-5; ρ_i = 0.07-0.57), λ = 0 / 100 / 1,000 / 10,000:
- mean |d_last| during a task: 0.02-0.03 / 0.002-0.004 / 0.002-0.003 / 0.002-0.004 (λ = 100 already
  does all that Adam allows);
- ‖λ∇L_EWC‖/‖∇(replay-mixed loss)‖: 0 / 0.3-0.5 / 1.7-2.1 / 16-33;
- Adam's step over the step it takes on the data loss alone: 1 / 0.64-0.95 / 0.17-0.36 / 0.08-0.11
  (cosine between the two: 1 / 0.90-0.99 / 0.64-0.71 / 0.30-0.34);
- so new tasks are learned less (their fd at their own end 9-20 / 10-19 / 21-29 / 73-92), their replay
  is worse, and what motion is left follows the penalty, not the replay: forgetting 13.0 / 15.7 / 19.2 /
  30.5, final fd 26.0 / 28.3 / 41.4 / 97.6 (seed 1: forgetting 7.7 / 9.6 / 13.2 / 21.7, fd 17.2 / 19.2 /
  30.8 / 86.9).
The same λ = 10,000 applied outside Adam (an exact proximal step per anchor after Adam's step on the data
loss) keeps Adam's step (cosine 0.997) and ends at fd 30.8 (forgetting 15.9). Ruled out: conflicting
anchors (|cos(u_i, u_j)| <= 0.42; at λ >= 1,000 every |d_i| <= 6e-4 at each task's end) and a noisy ρ
(0.553 from 256 samples, 0.563 from 1,024). The Fisher is far from rank-1 at this scale (per-sample
cosine to ḡ 0.0-0.34, 0.19 even at timesteps 800-1000), so pinning u_i protects little: no λ tested
beats λ = 0 here. λ must keep λρ|d| below the data gradient: the laptop default is λ = 100 (+2.0 and
+2.3 fd against λ = 0 on seeds 0-1); 000's 15,000 presumes its own ρ and lr.
tests/test_trust_region_lambda.py pins the anchors and the λ-independent Adam step.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.fisher import ElasticPenalty, consolidate
from trainables.generative_replay import GenerativeReplay, ReplayKnobs
from trainables.methods.base import Method, PerTaskOptimizerParams
from trainables.methods.knobs import FisherKnobs, check_fisher_timesteps
from trainables.params import knob


@dataclass(frozen=True)
class TrustRegionParams(PerTaskOptimizerParams, ReplayKnobs, FisherKnobs):
    lam: float = knob(100.0, "λ, weight of L_EWC (000 Table 3: 15,000 for ImageNet). Laptop default: past "
                      "~300 the penalty's gradient outweighs the data's and Adam's normalisation stalls "
                      "learning (module docstring)", low=0)


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
