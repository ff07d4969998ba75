"""``replay_weighting``: the replay-mixed loss of `replay` and `trust_region` against hand-computed values
(000 Eq. 7-8) on a one-weight linear model whose replay samples are constants per old task."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task
from trainables.build import method_params
from trainables.fisher import Anchor
from trainables.generative_replay import GenerativeReplay
from trainables.methods import get_method
from trainables.params import ParamError, knob


@dataclass(frozen=True)
class LineConfig(Protocol):
    num_tasks: int = knob(3, "tasks", low=1)


class Line(Benchmark):
    """Per-sample loss (w·x − y)², distillation (w·x − w_T·x)²; old task i's replay samples are all
    x = i, y = 10·i, so any draw of them gives the same per-task mean."""

    name = "line"
    Config = LineConfig
    metrics = {"mse": MetricSpec(higher_is_better=False, cheap=True)}
    capabilities = frozenset({"generative_replay", "distillation"})

    def __init__(self):
        super().__init__(LineConfig())
        self.tasks = [Task(k + 1, f"t{k + 1}") for k in range(3)]

    def make_model(self):
        return nn.Linear(1, 1, bias=False)

    def loss(self, model, batch, generator, t_range=None):
        return (model(batch["x"]).squeeze(1) - batch["y"]) ** 2

    def distill_loss(self, student, teacher, batch, generator):
        with torch.no_grad():
            target = teacher(batch["x"])
        return ((student(batch["x"]) - target) ** 2).squeeze(1)

    def replay(self, teacher, task, n, generator):
        return {"x": torch.full((n, 1), float(task.index)), "y": torch.full((n,), 10.0 * task.index)}


CURRENT = {"x": torch.tensor([[1.0], [2.0]]), "y": torch.tensor([1.0, 1.0])}  # w = 2: losses 1 and 9, L_t = 5


def replay_loss(old_tasks: int, **knobs):
    """The loss on CURRENT with the teacher at w_T = 0.5, the student at w = 2, after ``old_tasks`` tasks."""
    bench = Line()
    model = bench.make_model()
    params = method_params("replay", {"buffer_per_task": 4, **knobs})
    replay = GenerativeReplay(bench, params, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.weight.fill_(0.5)
    replay.refresh(model, bench.tasks[:old_tasks])
    with torch.no_grad():
        model.weight.fill_(2.0)
    loss, parts = replay.loss(model, CURRENT)
    return loss.item(), parts


def test_mixed_batch_is_one_mean_over_current_and_replay_samples():
    # one old task (x = 1, y = 10): replay loss (2 − 10)² = 64, distillation (2 − 0.5)² = 2.25;
    # β = 1, B = 2: m = 2, L = (1 + 9 + 64 + 64) / 4 + 0.5 · 2.25
    loss, parts = replay_loss(1, replay_ratio=1.0, distill_weight=0.5)
    assert loss == pytest.approx(34.5 + 1.125) and parts["denoise"] == pytest.approx(34.5)
    # β = 0.5: m = 1, L = (1 + 9 + 64) / 3 (+ nothing: w = 0)
    assert replay_loss(1, replay_ratio=0.5, distill_weight=0.0)[0] == pytest.approx(74 / 3)
    # denoise_replay off: L = L_t + w · D̄
    assert replay_loss(1, replay_ratio=1.0, distill_weight=0.5, denoise_replay=False)[0] == pytest.approx(5 + 1.125)


def test_mixed_batch_with_two_old_tasks_weighs_them_by_their_draws():
    # old task 2: x = 2, y = 20: loss (4 − 20)² = 256, distillation (4 − 1)² = 9; β = 1.5, B = 2: m = 3
    draws = torch.randint(8, (3,), generator=torch.Generator().manual_seed(0))  # the loss's draws (refresh
    # draws nothing here): buffer indices 0-3 are task 1's samples, 4-7 task 2's
    olds = [1 if i < 4 else 2 for i in draws.tolist()]
    denoise = (1 + 9 + sum(64 if t == 1 else 256 for t in olds)) / 5
    distill = sum(2.25 if t == 1 else 9 for t in olds) / 3
    loss, _ = replay_loss(2, replay_ratio=1.5, distill_weight=0.5)
    assert loss == pytest.approx(denoise + 0.5 * distill)


def test_per_task_is_equation_7_literally():
    # L = L_t + β Σ_i (L̄_i + w D̄_i) = 5 + 0.5 · ((64 + 0.5 · 2.25) + (256 + 0.5 · 9))
    loss, parts = replay_loss(2, replay_ratio=0.5, distill_weight=0.5, replay_weighting="per_task")
    assert loss == pytest.approx(5 + 0.5 * (64 + 1.125 + 256 + 4.5))
    assert parts == pytest.approx({"denoise": 5.0, "replay_denoise": 160.0, "distill": 5.625})
    # one old task, β = 2, no distillation: 5 + 2 · 64; denoise_replay off: distillation only
    assert replay_loss(1, replay_ratio=2.0, distill_weight=0.0, replay_weighting="per_task")[0] == pytest.approx(133)
    off = replay_loss(2, replay_ratio=1.0, distill_weight=1.0, denoise_replay=False, replay_weighting="per_task")
    assert off[0] == pytest.approx(5 + 2.25 + 9)
    # β = 0: replay and distillation off, L = L_t, in both weightings
    for weighting in ("per_task", "mixed_batch"):
        assert replay_loss(2, replay_ratio=0.0, replay_weighting=weighting)[0] == pytest.approx(5)


def test_per_task_draws_each_old_task_its_share_of_samples():
    bench = Line()
    seen = []
    loss = bench.loss
    bench.loss = lambda model, batch, g, t_range=None: (seen.append(batch["x"].squeeze(1).tolist()), loss(model, batch, g))[1]
    params = method_params("replay", {"buffer_per_task": 5, "replay_ratio": 2.0, "replay_weighting": "per_task"})
    replay = GenerativeReplay(bench, params, torch.Generator().manual_seed(0))
    model = bench.make_model()
    replay.refresh(model, bench.tasks[:2])
    replay.loss(model, CURRENT)
    assert seen == [[1.0, 2.0, 1.0, 1.0, 2.0, 2.0]]  # B = 2 current, then round(2 · 2 / 2) = 2 per old task


@pytest.mark.parametrize("weighting, old_tasks, knobs, replay_part", [
    ("mixed_batch", 1, {"replay_ratio": 1.0, "distill_weight": 0.5}, 34.5 + 1.125),
    ("per_task", 2, {"replay_ratio": 0.5, "distill_weight": 0.5}, 5 + 0.5 * (64 + 1.125 + 256 + 4.5))])
def test_trust_region_adds_lambda_ewc_to_either_weighting(weighting, old_tasks, knobs, replay_part):
    """L = replay part + λ · ½ ρ (uᵀ(θ − θ*))²; with θ* = 0.5, u = 1, ρ = 4, θ = 2: λ · 4.5 (λ = 3)."""
    bench = Line()
    params = method_params("trust_region", {"lam": 3.0, "buffer_per_task": 4, "replay_weighting": weighting,
                                            **knobs})
    m = get_method("trust_region")(params, bench.make_model(), bench, torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.model.weight.fill_(0.5)
    m.penalty.anchors.append(Anchor(torch.tensor([0.5]), rho=4.0, u=torch.tensor([1.0])))
    m.seen = list(bench.tasks[:old_tasks])
    m.begin_task(bench.tasks[old_tasks])  # the teacher (w_T = 0.5) generates the old tasks' buffer
    with torch.no_grad():
        m.model.weight.fill_(2.0)
    total, parts = m.objective(CURRENT)
    assert total.item() == pytest.approx(replay_part + 3.0 * 4.5) and parts["ewc"] == pytest.approx(4.5)


def test_meta_learners_admit_only_mixed_batch():
    for method in ("ftml", "vrmcl"):
        with pytest.raises(ParamError, match=f"methods.{method}.replay_weighting: 'per_task' is not allowed"):
            method_params(method, {"replay_weighting": "per_task"})
