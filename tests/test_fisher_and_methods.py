"""Method math on tiny models, against brute force (METHODS.md §1; 000 Eq. 5, 7, 8, Appendix B)."""

from __future__ import annotations

import copy

import pytest
import torch

from trainables.batch import size, take
from trainables.fisher import ElasticPenalty, directional_derivatives, mean_gradient
from trainables.methods import get_method
from trainables.tensors import flat, parameters_of
from trainables.build import make_benchmark, method_params


def brute_per_sample_grads(model, loss_fn, batch, seed):
    """Per-sample gradients with exactly the draws the batched estimator sees: one batched loss, then one
    backward per sample (B² work; fine for tiny B)."""
    losses = loss_fn(model, batch, torch.Generator().manual_seed(seed))
    params = list(parameters_of(model).values())
    return torch.stack([flat(torch.autograd.grad(losses[i], params, retain_graph=True))
                        for i in range(len(losses))])


def toy_loss(bench):
    return lambda model, batch, generator: bench.loss(model, batch, generator)


def test_mean_gradient_and_projection_match_brute_force(toy):
    torch.manual_seed(0)
    model = toy.make_model()
    data = toy.train_sample(toy.tasks[0], 16, torch.Generator().manual_seed(1))
    G = brute_per_sample_grads(model, toy_loss(toy), data, seed=7)
    g_bar = mean_gradient(model, toy_loss(toy), [data], seed=7)
    torch.testing.assert_close(g_bar, G.mean(0), rtol=1e-5, atol=1e-7)
    u = g_bar / g_bar.norm()
    d = directional_derivatives(model, toy_loss(toy), [data], u, seed=7)
    torch.testing.assert_close(d, G @ u, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("estimator", ["projection", "mean_outer"])
def test_rank1_penalty_equals_brute_force(toy, estimator):
    """(λ/2) ρ (uᵀd)² with ρ, u from per-sample gradients computed one by one."""
    torch.manual_seed(0)
    model = toy.make_model()
    data = toy.train_sample(toy.tasks[0], 16, torch.Generator().manual_seed(1))
    penalty = ElasticPenalty("rank1", estimator, samples=16, batch=16)
    penalty.consolidate(model, data, toy_loss(toy), seed=3)
    G = brute_per_sample_grads(model, toy_loss(toy), data, seed=3)
    g_bar = G.mean(0)
    u = g_bar / g_bar.norm()
    rho = (G @ u).pow(2).mean() if estimator == "projection" else g_bar.norm() ** 2
    theta_star = flat(p.detach() for p in model.parameters()).clone()
    assert penalty(model).item() == pytest.approx(0.0, abs=1e-12)  # zero at θ*
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    d = flat(p.detach() for p in model.parameters()) - theta_star
    lam = 250.0
    expected = lam / 2 * rho * (u @ d) ** 2
    assert (lam * penalty(model)).item() == pytest.approx(expected.item(), rel=1e-5)


def test_mean_outer_rho_is_never_larger_than_projection(toy):
    torch.manual_seed(0)
    model = toy.make_model()
    data = toy.train_sample(toy.tasks[0], 32, torch.Generator().manual_seed(1))
    rhos = {}
    for est in ("projection", "mean_outer"):
        p = ElasticPenalty("rank1", est, samples=32, batch=8)
        rhos[est] = p.consolidate(model, data, toy_loss(toy), seed=5)["fisher_rho"]
    assert 0 < rhos["mean_outer"] <= rhos["projection"]


def test_diagonal_fisher_matches_brute_force(toy):
    torch.manual_seed(0)
    model = toy.make_model()
    data = toy.train_sample(toy.tasks[0], 12, torch.Generator().manual_seed(1))
    penalty = ElasticPenalty("diag", "projection", samples=12, batch=5)  # chunks of 5, 5, 2
    diag_out = penalty.consolidate(model, data, toy_loss(toy), seed=11)
    # per-sample gradients of single-sample forward passes, drawing noise in the same order
    gen = torch.Generator().manual_seed(11 + 2)
    params = list(model.parameters())
    rows = [flat(torch.autograd.grad(toy.loss(model, take(data, slice(i, i + 1)), gen).sum(), params))
            for i in range(size(data))]
    F = torch.stack(rows).pow(2).mean(0)
    torch.testing.assert_close(penalty.anchors[0].diag, F, rtol=1e-5, atol=1e-9)
    assert diag_out["fisher_trace"] == pytest.approx(F.sum().item(), rel=1e-5)
    theta_star = penalty.anchors[0].theta
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    d = flat(p.detach() for p in model.parameters()) - theta_star
    assert penalty(model).item() == pytest.approx((0.5 * (F * d * d).sum()).item(), rel=1e-5)


def test_projection_on_a_unet_with_attention_matches_brute_force():
    """The Jacobian-vector product runs through diffusers' UNet (attention swapped for the plain one)."""
    bench = make_benchmark("split_digits_diffusion", {"preset": "tiny", "num_tasks": 1})
    torch.manual_seed(0)
    model = bench.make_model()
    data = bench.train_sample(bench.tasks[0], 6, torch.Generator().manual_seed(0))
    loss_fn = lambda m, b, g: bench.loss(m, b, g)  # noqa: E731
    G = brute_per_sample_grads(model, loss_fn, data, seed=2)
    u = G.mean(0) / G.mean(0).norm()
    d = directional_derivatives(model, loss_fn, [data], u, seed=2)
    torch.testing.assert_close(d, G @ u, rtol=1e-3, atol=1e-6)
    # the fused attention processors are back afterwards
    names = {type(m.processor).__name__ for m in model.modules() if hasattr(m, "processor")}
    assert names == {"AttnProcessor2_0"}


def _method(name, bench, **params):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    return get_method(name)(method_params(name, params), bench.make_model(), bench, generator)


def test_ewc_penalty_is_zero_at_theta_star_and_pulls_back(toy):
    m = _method("ewc", toy, lam=10.0, fisher_samples=16, fisher_batch=8, fisher="rank1")
    m.begin_task(toy.tasks[0])
    for batch, _ in zip(toy.train_batches(toy.tasks[0], m.generator), range(3)):
        m.update(batch)
    diag = m.end_task(toy.tasks[0])
    assert diag["fisher_rho"] > 0 and -1 <= diag["fisher_cosine"] <= 1
    assert m.penalty(m.model).item() == pytest.approx(0.0, abs=1e-12)
    out = m.update(next(toy.train_batches(toy.tasks[1], m.generator)))
    assert out["ewc"] == pytest.approx(0.0, abs=1e-12)  # penalty taken at θ* before the step
    assert m.penalty(m.model).item() > 0


def test_trust_region_gradient_is_the_sum_of_its_parts(toy):
    m = _method("trust_region", toy, lam=50.0, fisher_samples=16, fisher_batch=8, buffer_per_task=10,
                replay_ratio=0.5, distill_weight=0.7)
    m.begin_task(toy.tasks[0])
    for batch, _ in zip(toy.train_batches(toy.tasks[0], m.generator), range(3)):
        m.update(batch)
    m.end_task(toy.tasks[0])
    m.begin_task(toy.tasks[1])
    with torch.no_grad():
        for p in m.model.parameters():
            p.add_(0.05)
    batch = next(toy.train_batches(toy.tasks[1], m.generator))
    state = m.generator.get_state()
    params = list(m.model.parameters())
    total, _ = m.objective(batch)
    g_total = torch.autograd.grad(total, params)
    m.generator.set_state(state)
    replay_loss, parts = m.replay.loss(m.model, batch)
    g_replay = torch.autograd.grad(replay_loss, params)
    g_ewc = torch.autograd.grad(m.params.lam * m.penalty(m.model), params)
    for a, b, c in zip(g_total, g_replay, g_ewc):
        torch.testing.assert_close(a, b + c)
    assert "distill" in parts and parts["distill"] >= 0


def test_replay_mixes_round_beta_b_samples_and_switches_off(toy):
    m = _method("replay", toy, buffer_per_task=20, replay_ratio=0.5, distill_weight=0.0)
    m.begin_task(toy.tasks[0])
    m.begin_task(toy.tasks[1])  # teacher of task 1 generates its buffer
    assert size(m.replay.buffer) == 20
    seen = []
    original = toy.loss
    toy.loss = lambda model, batch, g, t_range=None: (seen.append(size(batch)), original(model, batch, g))[1]
    batch = next(toy.train_batches(toy.tasks[1], m.generator))
    m.replay.loss(m.model, batch)
    assert seen == [8 + 4]  # B current + round(0.5 * B) replay in one denoising loss
    seen.clear()
    off = _method("replay", toy, buffer_per_task=20, replay_ratio=0.5, distill_weight=0.0, denoise_replay=False)
    off.begin_task(toy.tasks[0])
    off.begin_task(toy.tasks[1])
    off.replay.loss(off.model, batch)
    assert seen == [8]
    toy.loss = original


def test_teacher_is_a_frozen_copy(toy):
    m = _method("replay", toy, buffer_per_task=4)
    m.begin_task(toy.tasks[0])
    before = copy.deepcopy(m.model.state_dict())
    m.begin_task(toy.tasks[1])
    teacher = m.replay.teacher
    assert all(not p.requires_grad for p in teacher.parameters())
    m.update(next(toy.train_batches(toy.tasks[1], m.generator)))
    for k, v in teacher.state_dict().items():
        torch.testing.assert_close(v, before[k])
