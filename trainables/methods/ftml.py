"""`ftml`: Follow the Meta Leader (Finn et al. 2019, "Online Meta-Learning"), in the one-inner-step form
000 uses as a continual meta-learning baseline (000 §4 and Appendix C, Tables 3-4; METHODS.md §2).

Each update (one meta-update = one optimizer step of the model):

1. the batch of B current samples is mixed with round(β·B) replay samples of the tasks seen so far;
2. the mixed batch is split evenly into a support half S and a query half Q (``split`` below);
3. ONE inner SGD step on the support half: θ' = θ − α ∇_θ L_S(θ) (α = ``inner_lr``);
4. the outer step with the query loss at θ': first order (000's choice, "the standard first-order
   approximation", Nichol et al. 2018) uses g = ∇_θ' L_Q(θ') and applies it at θ; ``second_order``
   differentiates through the inner step, g = ∇_θ L_Q(θ − α ∇L_S(θ)) = (I − α ∇²L_S(θ)) ∇L_Q(θ');
   g goes through the model's optimizer (000 Table 3: Adam, outer lr η = ``lr`` = 2e-4, inner 1e-4).

L_S and L_Q are the means of the benchmark's per-sample losses over the half (the denoising loss for
diffusion, cross-entropy for classification), so a sample weighs the same in every half.

Choices the papers leave open, made here:
- Replay. On benchmarks with capability ``generative_replay`` the replay samples come from a frozen
  teacher (``GenerativeReplay``, refreshed at the start of every task as in `trust_region`): 000 §4
  "replace[s] experience replay with generative replay" for the meta-learning baselines and names no
  distillation term for them, so by default the generated samples simply join the batch (with the
  denoising loss) and ``distill_weight`` is 0; a positive weight adds w · distillation onto the teacher,
  on the query half's replay samples at θ', to the outer loss (``denoise_replay: false`` keeps the replay
  samples out of both halves, for distillation only). On other benchmarks (002's online streams) a
  reservoir of real samples of every task seen so far (the current one included, as in `er`) supplies
  them; the batch enters the reservoir after the update. Replay draws are uniform with replacement, and
  none are drawn while the buffer is empty (the first task).
- Split. 000 only says "split each training batch evenly into a support/query pair" (Table 3: 64 + 64 of
  128). ``mixed`` (default): each half gets half of the current samples and half of the replay samples
  (``trainables.batch.halves`` of each part; the first ⌈n/2⌉ go to the support), so both halves hold
  current and replay samples in the proportion β, FTML's "adapt and evaluate on the same task
  distribution". ``current_replay``: support = the current samples, query = the replay samples (adapt on
  the new task, evaluate on the old ones: the MAML reading of 000 §3); on the first task, before any
  replay exists, it falls back to the halves of the current batch.
- Unused parameters (a head no sample of the half reaches) get a zero gradient in the inner step.
- Optimizer at task boundaries: ``reset_optimizer`` is false by default, because 000's authors' FTML script
  builds its outer Adam once for the whole stream; when true only that outer optimizer is replaced (the
  inner step is plain SGD without state; the replay teacher and the reservoir are kept).
- Replay weighting: replay enters by mixing before the split (``replay_weighting`` admits only
  mixed_batch; `replay`'s per_task weighting has no support/query counterpart here).
- The model's buffers (none in the models here: the UNet uses GroupNorm) are the module's own, shared by
  the inner and outer forward passes.

Cost (scripts/bench_second_order.py, one H100, fp32): first order 0.197 s and second order 0.515 s per
update for the `imagenet32` UNet at 64 + 64 (2.6x; 000 Table 6 reports about 5x).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from trainables.batch import Batch, cat, halves, size, take
from trainables.generative_replay import GenerativeReplay, ReplayKnobs
from trainables.memory import Reservoir
from trainables.methods.base import Method, TrainParams, with_params
from trainables.methods.knobs import MemoryKnobs
from trainables.params import knob
from trainables.tensors import parameters_of, plain_attention, set_grads


@dataclass(frozen=True)
class FTMLParams(TrainParams, ReplayKnobs, MemoryKnobs):
    lr: float = knob(2e-4, "η: outer (meta) learning rate of the model's optimizer (000 Table 3: Adam 2e-4)",
                     low=0, low_open=True, smoke=1e-3)
    inner_lr: float = knob(1e-4, "α: step size of the one inner SGD step on the support half (000 Table 3: "
                           "1e-4)", low=0, smoke=1e-3)
    second_order: bool = knob(False, "differentiate the query loss through the inner step (create_graph); "
                              "false: first order, as 000 runs it (about 5x cheaper at its scale)")
    split: str = knob("mixed", "support/query split of the replay-mixed batch: mixed (each half: half the "
                      "current and half the replay samples) or current_replay (support = current samples, "
                      "query = replay samples)", choices=("mixed", "current_replay"))
    replay_ratio: float = knob(1.0, "β: replay samples per current sample in a batch, mixed in before the "
                               "split (000 Table 3: 1.0 for the bilevel baselines); 0: no replay", low=0)
    distill_weight: float = knob(0.0, "weight of generative distillation onto the teacher on the query half's "
                                 "replay samples, added to the outer loss (generative replay only; 0: off, "
                                 "000 names no distillation for the meta baselines)", low=0)
    memory_size: int = knob(200, "real samples the reservoir holds on benchmarks without generative replay "
                            "(002: 200 for MNIST permutations); unused with generative replay", low=1,
                            smoke=12)
    replay_weighting: str = knob("mixed_batch", "replay samples are mixed into the batch before the support/"
                                 "query split (the only weighting of the meta-learners)", choices=("mixed_batch",))


@dataclass
class Episode:
    """One meta-update's data: the support half, the query half, and the replay samples of the query
    half (for distillation; None when there are none)."""

    support: Batch
    query: Batch
    query_replay: Batch | None



class FTML(Method):
    name = "ftml"
    Params = FTMLParams

    @classmethod
    def check(cls, params, bench_config):
        if params.split == "current_replay" and not params.denoise_replay:
            raise ValueError(f"methods.{cls.name}.denoise_replay: false is not allowed with split "
                             "current_replay; allowed: true (the replay samples are the query half)")

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.generative = "generative_replay" in bench.capabilities
        self.replay = GenerativeReplay(bench, params, generator) if self.generative else None
        self.memory = None if self.generative else Reservoir(params.memory_size, generator)

    def begin_task(self, task):
        if self.generative and self.params.replay_ratio > 0:
            self.replay.refresh(self.model, list(self.seen))
        super().begin_task(task)

    # -- the data of one meta-update ------------------------------------------------------------------
    def draw_replay(self, n: int) -> Batch | None:
        """n replay samples (uniform, with replacement), or None when there are none to draw."""
        if n == 0:
            return None
        if self.generative:
            buffer = self.replay.buffer
            if buffer is None:
                return None
            return take(buffer, torch.randint(size(buffer), (n,), generator=self.generator))
        return self.memory.sample(n) if len(self.memory) else None

    def episode(self, batch: Batch) -> Episode:
        """Mix round(β·B) replay samples into the batch and split it into support and query halves."""
        p = self.params
        replay = self.draw_replay(round(p.replay_ratio * size(batch)))
        if replay is None:
            support, query = halves(batch)
            return Episode(support, query, None)
        if p.split == "current_replay":
            return Episode(batch, replay, replay)
        cur_s, cur_q = halves(batch)
        rep_s, rep_q = halves(replay)
        if not p.denoise_replay:
            return Episode(cur_s, cur_q, rep_q)
        return Episode(cat(cur_s, rep_s), cat(cur_q, rep_q), rep_q)

    def remember(self, batch: Batch) -> None:
        if self.memory is not None:
            self.memory.add(batch)

    # -- the meta-gradient --------------------------------------------------------------------------------
    def meta_gradient(self, params: dict[str, torch.Tensor], ep: Episode) -> tuple[list[torch.Tensor], dict]:
        """g(θ; episode) at the parameters ``params`` (leaves that require grad): the first-order
        ∇_θ' L_Q(θ') or, with ``second_order``, ∇_θ L_Q(θ − α∇L_S(θ)); returns (g, named losses).
        Draws (loss noise, timesteps) come from the run's generator: support first, then query.
        Second order runs attention in the math backend of scaled_dot_product_attention, the one whose
        backward is itself differentiable (the fused kernels have no double backward)."""
        attention = plain_attention(self.model) if self.params.second_order else contextlib.nullcontext()
        with attention:
            return self._meta_gradient(params, ep)

    def _meta_gradient(self, params, ep):
        p, names, leaves = self.params, list(params), list(params.values())
        support_loss = self.bench.loss(with_params(self.model, params), ep.support, self.generator).mean()
        inner = torch.autograd.grad(support_loss, leaves, create_graph=p.second_order, allow_unused=True)
        if p.second_order:
            adapted = {n: t if g is None else t - p.inner_lr * g for n, t, g in zip(names, leaves, inner)}
        else:
            with torch.no_grad():
                adapted = {n: (t if g is None else t - p.inner_lr * g).clone().requires_grad_()
                           for n, t, g in zip(names, leaves, inner)}
        query_model = with_params(self.model, adapted)
        query_loss = self.bench.loss(query_model, ep.query, self.generator).mean()
        out = {"loss": query_loss.item(), "support": support_loss.item()}
        outer = query_loss
        if self.generative and p.distill_weight > 0 and ep.query_replay is not None:
            distill = self.bench.distill_loss(query_model, self.replay.teacher, ep.query_replay,
                                              self.generator).mean()
            outer = outer + p.distill_weight * distill
            out["distill"] = distill.item()
        wrt = leaves if p.second_order else list(adapted.values())
        grads = torch.autograd.grad(outer, wrt, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g.detach() for t, g in zip(leaves, grads)], out

    def direction(self, ep: Episode) -> tuple[list[torch.Tensor], dict]:
        """The gradient handed to the optimizer, in the order of ``parameters_of(self.model)``."""
        return self.meta_gradient(parameters_of(self.model), ep)

    def apply(self, grads: list[torch.Tensor]) -> None:
        """One optimizer step of the model's parameters with ``grads`` as their gradients."""
        self.optimizer.zero_grad(set_to_none=True)
        set_grads(parameters_of(self.model), grads)
        self.optimizer.step()

    def update(self, batch):
        ep = self.episode(batch)
        grads, out = self.direction(ep)
        self.apply(grads)
        self.remember(batch)
        return out
