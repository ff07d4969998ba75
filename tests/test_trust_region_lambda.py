"""trust_region's λ (issue 11, item 11): the anchors each task leaves behind, and why a large λ hurts.

The rank-1 penalty's plumbing is checked against hand-computed values (θ*_i is θ at the end of task i, u_i
and ρ_i come from task i's own loss there, old anchors survive later tasks and the optimizer reset). The
second test pins the mechanism documented in trainables/methods/trust_region.py: Adam divides each
coordinate's gradient by its own running size, so once λρ(uᵀ(θ − θ*))u dominates a coordinate, that
coordinate's step is a λ-independent ~lr in the sign pattern of u, and the data gradient drops out.
"""

from __future__ import annotations

import copy

import pytest
import torch

from toy import ToyConfig, ToyRegression
from trainables.build import method_params
from trainables.methods import get_method
from trainables.tensors import flat, parameters_of

LR = 1e-3
KNOBS = dict(lr=LR, fisher_samples=16, fisher_batch=16, buffer_per_task=10)


def make(lam: float, num_tasks: int = 2):
    bench = ToyRegression(ToyConfig(num_tasks=num_tasks))
    torch.manual_seed(0)
    params = method_params("trust_region", {**KNOBS, "lam": lam})
    return get_method("trust_region")(params, bench.make_model(), bench, torch.Generator().manual_seed(0))


def theta(m) -> torch.Tensor:
    return flat(p.detach() for p in m.model.parameters()).clone()


def train(m, task, steps: int) -> None:
    m.begin_task(task)
    for batch, _ in zip(m.bench.train_batches(task, m.generator), range(steps)):
        m.update(batch)


def per_sample_grads_of_consolidate(m, task) -> torch.Tensor:
    """The per-sample gradients of ``task``'s own loss that ``end_task`` will see: the same draws from the
    method's generator (its sample, then its seed), one batched loss (fisher_batch = fisher_samples)."""
    gen = torch.Generator()
    gen.set_state(m.generator.get_state())
    data = m.bench.train_sample(task, m.params.fisher_samples, gen)
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
    model = copy.deepcopy(m.model)
    losses = m.bench.loss(model, data, torch.Generator().manual_seed(seed))
    params = list(parameters_of(model).values())
    return torch.stack([flat(torch.autograd.grad(losses[i], params, retain_graph=True))
                        for i in range(len(losses))])


def test_each_task_leaves_its_own_anchor_at_its_end():
    m = make(lam=7.0, num_tasks=3)
    expected = []
    for task in m.bench.tasks[:2]:
        train(m, task, steps=4)
        G = per_sample_grads_of_consolidate(m, task)
        u = G.mean(0) / G.mean(0).norm()
        expected.append((theta(m), u, (G @ u).pow(2).mean().item()))
        m.end_task(task)
    train(m, m.bench.tasks[2], steps=0)  # a fresh Adam for task 3: the anchors stay
    assert len(m.penalty.anchors) == 2
    for a, (theta_i, u_i, rho_i) in zip(m.penalty.anchors, expected):
        torch.testing.assert_close(a.theta, theta_i, rtol=0, atol=0)  # θ at the end of task i, not later
        torch.testing.assert_close(a.u, u_i, rtol=1e-5, atol=1e-7)  # task i's own loss, not the replay mix
        assert a.u.norm().item() == pytest.approx(1.0, rel=1e-6)
        assert a.rho == pytest.approx(rho_i, rel=1e-5)
    assert not torch.equal(expected[0][0], expected[1][0])
    with torch.no_grad():
        for p in m.model.parameters():
            p.add_(0.03)
    now = theta(m)
    hand = sum(0.5 * rho * float(u @ (now - th)) ** 2 for th, u, rho in expected)
    assert m.penalty(m.model).item() == pytest.approx(hand, rel=1e-5)


def test_under_adam_a_stiff_penalty_steps_lr_sized_whatever_lambda():
    """Task 2 with a fresh Adam, from θ = θ*_1. Step 1: the penalty's gradient is exactly zero there, so
    every λ takes Adam's first step, lr·sign(g_data) per coordinate, and ends at the same c₁ = uᵀ(θ − θ*_1).
    Step 2: the penalty's gradient λρc₁u dwarfs the data gradient, and Adam's bias-corrected ratio makes
    the step −lr·(0.1/0.19)/√(0.001/0.001999)·sign(c₁u_j) = −0.7441·lr·sign(c₁u_j) in every coordinate,
    identical at λ = 1e7 and 1e9: λ sets neither the step nor how far it overshoots uᵀ(θ − θ*_1) = 0."""
    runs = {}
    for lam in (0.0, 1e7, 1e9):
        m = make(lam)
        train(m, m.bench.tasks[0], steps=4)
        m.end_task(m.bench.tasks[0])
        m.begin_task(m.bench.tasks[1])
        anchor = m.penalty.anchors[0]
        batches = m.bench.train_batches(m.bench.tasks[1], m.generator)
        path = [theta(m)]
        for _ in range(2):
            m.update(next(batches))
            path.append(theta(m))
        runs[lam] = (path, anchor)
    (start, one, _), anchor = runs[0.0]
    for lam in (1e7, 1e9):
        torch.testing.assert_close(runs[lam][0][1], one, rtol=0, atol=1e-9)  # step 1: λ plays no part
    step1 = one - start
    assert step1.abs().div(LR).sub(1).abs().max().item() < 1e-3  # |Δθ_j| = lr: Adam's first step
    c1 = float(anchor.u @ step1)  # = lr·Σ_j u_j sign(Δθ_j): the same at every λ
    assert abs(c1) > 1e-5
    ratio = (0.1 / 0.19) / (0.001 / 0.001999) ** 0.5  # Adam's m̂/√v̂ at step 2 when g₂ dominates: 0.7441
    hand = -ratio * LR * torch.sign(c1 * anchor.u)
    for lam in (1e7, 1e9):
        step2 = runs[lam][0][2] - runs[lam][0][1]
        torch.testing.assert_close(step2, hand, rtol=2e-3, atol=1e-8)
    data_only = runs[0.0][0][2] - runs[0.0][0][1]
    assert not torch.allclose(data_only, hand, rtol=0.1, atol=1e-5)  # without λ the step follows the data
