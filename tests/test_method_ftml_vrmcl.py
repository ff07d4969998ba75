"""FTML and VR-MCL (METHODS.md §2; 000 §4, Table 3): one inner SGD step on the support half, the outer
step with the query loss at the adapted parameters, and VR-MCL's momentum control variate, all checked
against hand-computed updates on the toy regression."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.func import functional_call

from trainables.batch import cat, size, take
from trainables.methods.ftml import FTML
from trainables.methods.vrmcl import VRMCL
from trainables.params import build
from trainables.build import make_benchmark


def make(cls, bench, **values):
    torch.manual_seed(0)
    params = build(cls.Params, values, f"methods.{cls.name}")
    return cls(params, bench.make_model(), bench, torch.Generator().manual_seed(0))


def fork(generator):
    g = torch.Generator()
    g.set_state(generator.get_state())
    return g


def thetas(model):
    return [p.detach().clone() for p in model.parameters()]


def with_params(model, values):
    net = copy.deepcopy(model)
    with torch.no_grad():
        for p, v in zip(net.parameters(), values):
            p.copy_(v)
    return net


def batches(bench, task, seed):
    return bench.train_batches(task, torch.Generator().manual_seed(seed))


def first_order_by_hand(bench, model, support, query, alpha, gen, teacher=None, replay=None, w=0.0):
    """∇_θ' [L_Q(θ') + w·distill(θ')] at θ' = θ − α∇L_S(θ), with explicit copies of the network."""
    net = copy.deepcopy(model)
    support_loss = bench.loss(net, support, gen).mean()
    grads = torch.autograd.grad(support_loss, list(net.parameters()))
    with torch.no_grad():
        for p, g in zip(net.parameters(), grads):
            p.sub_(alpha * g)
    query_loss = bench.loss(net, query, gen).mean()
    outer = query_loss
    if w:
        outer = outer + w * bench.distill_loss(net, teacher, replay, gen).mean()
    return list(torch.autograd.grad(outer, list(net.parameters()))), query_loss.item()


def test_first_order_step_is_minus_lr_times_query_gradient_at_adapted_params(toy):
    eta, alpha = 0.1, 0.3
    m = make(FTML, toy, optimizer="sgd", lr=eta, inner_lr=alpha)
    m.begin_task(toy.tasks[0])
    batch = next(batches(toy, toy.tasks[0], 5))
    before = thetas(m.model)
    start = fork(m.generator)
    # no replay on the first task: support = the first 4 samples, query = the last 4
    support, query = take(batch, slice(0, 4)), take(batch, slice(4, 8))
    g, query_loss = first_order_by_hand(toy, m.model, support, query, alpha, fork(start))
    out = m.update(batch)
    for p, t, gq in zip(m.model.parameters(), before, g):
        torch.testing.assert_close(p.detach(), t - eta * gq, rtol=1e-6, atol=1e-7)
    assert out["loss"] == pytest.approx(query_loss, rel=1e-6)
    # the inner step matters: with the same draws, the query gradient at θ itself is another update
    plain, _ = first_order_by_hand(toy, with_params(m.model, before), support, query, 0.0, fork(start))
    assert max((a - b).abs().max().item() for a, b in zip(plain, g)) > 1e-3


def test_second_order_equals_autograd_through_the_inner_step(toy):
    eta, alpha = 0.1, 0.5
    m = make(FTML, toy, optimizer="sgd", lr=eta, inner_lr=alpha, second_order=True)
    m.begin_task(toy.tasks[0])
    batch = next(batches(toy, toy.tasks[0], 5))
    support, query = take(batch, slice(0, 4)), take(batch, slice(4, 8))
    model = copy.deepcopy(m.model)
    theta = {k: v.detach().clone() for k, v in model.named_parameters()}
    gen = fork(m.generator)

    def loss_at(params, b):
        return toy.loss(lambda x: functional_call(model, params, (x,)), b, gen).mean()

    def meta_objective(params):
        g = torch.func.grad(loss_at)(params, support)
        return loss_at({k: params[k] - alpha * g[k] for k in params}, query)

    expected = torch.func.grad(meta_objective)(theta)
    first, _ = first_order_by_hand(toy, model, support, query, alpha, fork(m.generator))
    m.update(batch)
    for (name, p), fo in zip(m.model.named_parameters(), first):
        torch.testing.assert_close(p.detach(), theta[name] - eta * expected[name], rtol=1e-5, atol=1e-7)
    # the Hessian term is not negligible here, so a first-order step would fail the check above
    assert max((expected[k] - fo).abs().max().item() for k, fo in zip(theta, first)) > 1e-3


def run_stream(method, bench, updates, seed=3):
    """Params and losses after each update through 2 tasks, on batches from a fixed outside generator."""
    trace = []
    for task in bench.tasks[:2]:
        method.begin_task(task)
        for batch, _ in zip(batches(bench, task, seed + task.index), range(updates)):
            out = method.update(batch)
            trace.append((thetas(method.model), out["loss"]))
        method.end_task(task)
    return trace


@pytest.mark.parametrize("bench_name", ["toy", "permuted_digits"])
def test_vrmcl_with_zero_momentum_is_ftml_step_for_step(toy, bench_name):
    bench = toy if bench_name == "toy" else make_benchmark("permuted_digits", {"preset": "tiny"}, device="cpu")
    knobs = dict(lr=1e-2, inner_lr=0.1, replay_ratio=0.5, buffer_per_task=10, memory_size=30)
    a = run_stream(make(FTML, bench, **knobs), bench, updates=4)
    b = run_stream(make(VRMCL, bench, momentum=0.0, **knobs), bench, updates=4)
    assert len(a) == len(b) == 8
    for (pa, la), (pb, lb) in zip(a, b):
        assert la == lb and all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert not torch.equal(a[0][0][0], a[-1][0][0])  # the parameters did move


def test_vrmcl_estimate_is_the_momentum_formula_on_the_same_episode(toy):
    """Task 2 (with replay, β = 0.5 of B = 8, mixed split): by hand, ĝ_1 = g(θ_1; B_1) and
    ĝ_k = g(θ_k; B_k) + r(ĝ_{k−1} − g(θ_{k−1}; B_k)) with the same replay draw and loss noise at both
    points; SGD outer step θ_{k+1} = θ_k − η ĝ_k."""
    eta, alpha, r = 0.05, 0.2, 0.7
    m = make(VRMCL, toy, optimizer="sgd", lr=eta, inner_lr=alpha, momentum=r, replay_ratio=0.5,
             buffer_per_task=10)
    m.begin_task(toy.tasks[0])
    m.end_task(toy.tasks[0])
    m.begin_task(toy.tasks[1])  # the teacher generates the replay buffer of task 1
    buffer = m.replay.buffer
    theta, prev, est = thetas(m.model), None, None
    for k, (batch, _) in enumerate(zip(batches(toy, toy.tasks[1], 9), range(3))):
        gen = fork(m.generator)
        replay = take(buffer, torch.randint(size(buffer), (4,), generator=gen))
        support = cat(take(batch, slice(0, 4)), take(replay, slice(0, 2)))
        query = cat(take(batch, slice(4, 8)), take(replay, slice(2, 4)))
        state = gen.get_state()
        g, _ = first_order_by_hand(toy, with_params(m.model, theta), support, query, alpha, gen)
        if est is None:
            new_est = g
        else:
            gen.set_state(state)
            g_prev, _ = first_order_by_hand(toy, with_params(m.model, prev), support, query, alpha, gen)
            new_est = [a + r * (e - b) for a, e, b in zip(g, est, g_prev)]
        out = m.update(batch)
        expected = [t - eta * e for t, e in zip(theta, new_est)]
        for p, x in zip(m.model.parameters(), expected):
            torch.testing.assert_close(p.detach(), x, rtol=1e-5, atol=1e-7)
        for e, x in zip(m.estimate, new_est):
            torch.testing.assert_close(e, x, rtol=1e-5, atol=1e-7)
        for p, x in zip(m.previous.values(), theta):  # θ_k, kept for the next update
            torch.testing.assert_close(p, x, rtol=1e-5, atol=1e-7)
        assert (k > 0) == ("correction_norm" in out)
        prev, theta, est = theta, expected, new_est
    assert out["correction_norm"] > 0


def record_losses(bench, monkeypatch):
    seen = []
    original = bench.loss

    def loss(model, batch, generator, t_range=None):
        seen.append(batch)
        return original(model, batch, generator)

    monkeypatch.setattr(bench, "loss", loss)
    return seen


@pytest.mark.parametrize("split,beta,sizes", [("mixed", 0.5, [6, 6]), ("mixed", 0.2, [5, 5]),
                                              ("current_replay", 0.5, [8, 4])])
def test_generative_replay_mixes_round_beta_b_samples_and_splits(toy, monkeypatch, split, beta, sizes):
    m = make(FTML, toy, replay_ratio=beta, buffer_per_task=12, split=split)
    m.begin_task(toy.tasks[0])
    first = next(batches(toy, toy.tasks[0], 1))
    seen = record_losses(toy, monkeypatch)
    m.update(first)
    assert [size(b) for b in seen] == [4, 4]  # no replay on the first task: halves of B = 8
    m.begin_task(toy.tasks[1])
    seen.clear()
    batch = next(batches(toy, toy.tasks[1], 2))
    m.update(batch)
    assert [size(b) for b in seen] == sizes  # round(β·8) replay samples: 4, or 2 for β = 0.2 (1.6)
    support, query = seen
    buffer_rows = {tuple(x.tolist()) for x in m.replay.buffer["x"]}
    n_cur = 4 if split == "mixed" else 8
    assert torch.equal(support["x"][:n_cur], batch["x"][:n_cur])
    replay_part = torch.cat([support["x"][n_cur:], query["x"][4 if split == "mixed" else 0:]])
    assert len(replay_part) == round(beta * 8)
    assert all(tuple(x.tolist()) in buffer_rows for x in replay_part)


def test_reservoir_replay_on_a_stream_without_generative_replay(monkeypatch):
    bench = make_benchmark("permuted_digits", {"preset": "tiny"}, device="cpu")
    m = make(FTML, bench, replay_ratio=0.5, memory_size=25)
    assert m.memory is not None and m.replay is None
    m.begin_task(bench.tasks[0])
    stream = batches(bench, bench.tasks[0], 0)
    seen = record_losses(bench, monkeypatch)
    b1 = next(stream)
    m.update(b1)
    B = size(b1)
    assert [size(b) for b in seen] == [(B + 1) // 2, B // 2] and len(m.memory) == B  # empty memory: no replay
    seen.clear()
    m.update(next(stream))
    r = round(0.5 * B)
    assert [size(b) for b in seen] == [(B + 1) // 2 + (r + 1) // 2, B // 2 + r // 2]
    replay_x = torch.cat([seen[0]["x"][(B + 1) // 2:], seen[1]["x"][B // 2:]])
    rows = {tuple(x.tolist()) for x in b1["x"]}
    assert all(tuple(x.tolist()) in rows for x in replay_x)  # drawn from the memory of the first batch


def test_vrmcl_second_meta_gradient_sees_the_same_episode(toy, monkeypatch):
    m = make(VRMCL, toy, momentum=0.5, replay_ratio=1.0, buffer_per_task=10)
    m.begin_task(toy.tasks[0])
    m.begin_task(toy.tasks[1])
    stream = batches(toy, toy.tasks[1], 4)
    seen = record_losses(toy, monkeypatch)
    m.update(next(stream))
    assert len(seen) == 2  # no previous parameters yet
    seen.clear()
    m.update(next(stream))
    assert len(seen) == 4
    for a, b in ((seen[0], seen[2]), (seen[1], seen[3])):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_distillation_on_the_query_replay_adds_to_the_outer_loss(toy):
    eta, alpha, w = 0.1, 0.2, 0.7
    m = make(FTML, toy, optimizer="sgd", lr=eta, inner_lr=alpha, replay_ratio=0.5, buffer_per_task=10,
             distill_weight=w)
    m.begin_task(toy.tasks[0])
    m.begin_task(toy.tasks[1])
    batch = next(batches(toy, toy.tasks[1], 1))
    gen = fork(m.generator)
    replay = take(m.replay.buffer, torch.randint(10, (4,), generator=gen))
    support = cat(take(batch, slice(0, 4)), take(replay, slice(0, 2)))
    query = cat(take(batch, slice(4, 8)), take(replay, slice(2, 4)))
    g, _ = first_order_by_hand(toy, m.model, support, query, alpha, gen, m.replay.teacher,
                               take(replay, slice(2, 4)), w)
    before = thetas(m.model)
    out = m.update(batch)
    assert out["distill"] >= 0
    for p, t, x in zip(m.model.parameters(), before, g):
        torch.testing.assert_close(p.detach(), t - eta * x, rtol=1e-5, atol=1e-7)


def test_check_rejects_current_replay_without_denoising_replay():
    params = build(FTML.Params, {"split": "current_replay", "denoise_replay": False}, "methods.ftml")
    with pytest.raises(ValueError, match="denoise_replay"):
        FTML.check(params, None)
    FTML.check(build(FTML.Params, {}, "methods.ftml"), None)


def smoke(cls, bench, metric, **values):
    m = make(cls, bench, **values)
    losses = []
    for task in bench.tasks[:2]:
        m.begin_task(task)
        for batch, _ in zip(bench.train_batches(task, m.generator), range(3)):
            losses.append(m.update(batch)["loss"])
        m.end_task(task)
        value = bench.evaluate(m.eval_model(task), task, [metric])[metric]
        assert math.isfinite(value)
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize("cls", [FTML, VRMCL])
def test_smoke_permuted_digits(cls):
    bench = make_benchmark("permuted_digits", {"preset": "tiny"}, device="cpu")
    smoke(cls, bench, "accuracy", lr=1e-3, inner_lr=0.01)


@pytest.mark.parametrize("cls,second_order", [(FTML, False), (VRMCL, True)])
def test_smoke_split_digits_diffusion(cls, second_order):
    """The UNet has a self-attention block: second order must run it with a twice-differentiable kernel."""
    bench = make_benchmark("split_digits_diffusion", {"preset": "tiny"}, device="cpu")
    smoke(cls, bench, "denoise_loss", buffer_per_task=6, second_order=second_order)
