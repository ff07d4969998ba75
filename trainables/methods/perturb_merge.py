"""`perturb_merge`: Perturb-and-Merge with LoRA (004 Algorithm 1, "LoRA-P&M").

For task t, from the merged model θ̂_{t−1} (θ̂₀: the pretrained backbone):
1. a fresh peft LoRA_t on the key and value projections (rank 10) and the task's head block (earlier and
   later blocks frozen; the head is not merged);
2. each mini-batch draws ε̃ ∈ {−ε, 0, +ε} with probabilities {p₋, p₀, p₊}, p± = (1 − p₀)/2, and takes the
   loss at θ̂_{t−1} + (1 + ε̃)·LoRA_t (Eq. 15; the perturbation follows the current LoRA), AdamW;
3. θ*_t = θ̂_{t−1} + LoRA_t; the diagonal empirical Fisher F_t(θ*_t) in the key/value weight space (Eq. 10);
4. α_t = Σ_{i≤t} Σ_p F_i,p (θ*_i − θ̂_{t−1})_p Δ_p / Σ_{i≤t} Σ_p F_i,p Δ_p², Δ = θ*_t − θ̂_{t−1} (Eq. 8), from
   running sums; α₁ = 1 (Eq. 8 gives exactly 1 for t = 1: only i = 1, where θ*_1 − θ̂_0 = Δ); clipped to
   [0, 1] unless ``clip_alpha: false`` (Eq. 3's constraint); the raw α is recorded (``alpha_raw``) and the
   one used (``alpha``) every task;
5. θ̂_t = θ̂_{t−1} + α_t·LoRA_t, folded into the weights by peft.

The theory behind step 2 (004 §3.3): the expected loss under ε̃ is the loss plus (1−p₀)ε²/2·τᵀHτ, τ the task
vector, so the merge's regulariser λ·τᵀHτ is matched by p₀ = 1 − 2λ/ε² (shown, not enforced; p₀ = 1 is
plain LoRA). Switches for 004's ablations: ``merge: sequential`` (α = 1, sequential LoRA), ``average``
(α = 1/t), ``perturbation: none`` (LoRA-M), ``gaussian`` (Table 4: Gaussian noise of the same norm).

Evaluation: between tasks the merged θ̂_t; inside a task's phase (coarse or dense grid) the live model
θ̂_{t−1} + LoRA_t, the only one that exists before the merge. ε̃ and the Gaussian noise come from the
method's own numpy generator (seeded once from the run's), so a run with p₀ = 1 sees the same batches and
trains exactly as ``lora_merge``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainables import merging
from trainables.merging import LoRAParams, MergeKnobs
from trainables.methods.base import Method
from trainables.params import knob


@dataclass(frozen=True)
class PerturbMergeParams(LoRAParams, MergeKnobs):
    epsilon: float = knob(0.5, "ε, the perturbation magnitude (004: 0.5)", low=0)
    p0: float = knob(1 / 3, "p₀, probability of no perturbation; p₋ = p₊ = (1 − p₀)/2 (004: 1/3)", low=0, high=1)
    perturbation: str = knob("task_vector", "task_vector: ±ε·LoRA_t (Eq. 15); gaussian: Gaussian noise of the "
                             "same norm (Table 4); none: LoRA-M", choices=("task_vector", "gaussian", "none"))
    merge: str = knob("closed_form", "closed_form: Eq. 8's α; sequential: α = 1; average: α = 1/t",
                      choices=("closed_form", "sequential", "average"))


class PerturbMerge(Method):
    name = "perturb_merge"
    Params = PerturbMergeParams
    requires = frozenset({"lora_vit"})

    def merge_rule(self) -> str:
        return self.params.merge

    def perturbation(self) -> str:
        return self.params.perturbation

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.noise = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        self.sums = merging.MergeSums()
        self.peft = self.frozen = self.start = None

    def make_optimizer(self, parameters, lr):
        return None  # a fresh AdamW over LoRA_t and the task's head block at every task (begin_task)

    def begin_task(self, task):
        self.seen.append(task)
        p = self.params
        self.peft = merging.attach_lora(self.model, self.bench.lora_targets, p.rank)
        head = self.model.get_submodule(self.bench.head_name)
        head.requires_grad_(True)
        self.frozen = merging.FrozenRows(head, task.classes)
        self.start = {k: w.detach().clone() for k, w in merging.base_weights(self.peft).items()}
        self.optimizer = torch.optim.AdamW([{"params": merging.lora_parameters(self.peft), "lr": p.lr},
                                            {"params": list(head.parameters()), "lr": p.head_lr}],
                                           weight_decay=p.weight_decay)

    def draw(self) -> float:
        """ε̃ for this batch (0 without perturbation)."""
        if self.perturbation() == "none":
            return 0.0
        return merging.draw_epsilon(self.noise, self.params.epsilon, self.params.p0)

    def update(self, batch):
        eps, handles = self.draw(), []
        if eps and self.perturbation() == "task_vector":
            merging.set_scale(self.peft, 1 + eps)
        elif eps:
            g = torch.Generator().manual_seed(int(self.noise.integers(2**62)))
            handles = merging.gaussian_noise(self.peft, abs(eps), g)
        try:
            loss = self.bench.loss(self.model, batch, self.generator).mean()
            self.step(loss)
        finally:
            merging.set_scale(self.peft, 1.0)
            for h in handles:
                h.remove()
        self.frozen.restore()
        return {"loss": loss.item(), "epsilon": eps}

    def fisher(self, task) -> dict[str, torch.Tensor]:
        """F_t at θ*_t over the task's training samples (all of them unless ``fisher_samples``)."""
        p = self.params
        size = self.bench.train_size(task)
        n = min(size, p.fisher_samples) if p.fisher_samples else size
        batch = self.bench.train_sample(task, n, self.generator)
        names = {k: f"base_model.model.{k}.base_layer.weight" for k in merging.lora_layers(self.peft)}
        loss = lambda model, b: self.bench.loss(model, b, self.generator)  # noqa: E731
        return merging.diagonal_fisher(self.peft, names, loss, batch, p.fisher_batch)

    def coefficient(self, task, delta) -> tuple[float, float]:
        """(α used, raw α) of this task under the merge rule."""
        t, rule = len(self.seen), self.merge_rule()
        if rule == "sequential":
            return 1.0, 1.0
        if rule == "average":
            return 1.0 / t, 1.0 / t
        star = {k: self.start[k] + d for k, d in delta.items()}
        self.sums.add(self.fisher(task), star)
        raw = 1.0 if t == 1 else self.sums.alpha(self.start, delta)
        return (min(1.0, max(0.0, raw)) if self.params.clip_alpha else raw), raw

    def end_task(self, task):
        delta = merging.task_vector(self.peft)
        alpha, raw = self.coefficient(task, delta)
        self.model = merging.fold(self.peft, alpha)
        self.peft = self.frozen = self.start = self.optimizer = None
        return {"alpha": alpha, "alpha_raw": raw}
