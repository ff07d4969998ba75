"""GEM, MER, OML and MAML+CL against hand-derived updates (METHODS.md §2; GEM Eq. 10-11, MER Algorithm 1,
OML Algorithm 1, 003 Eq. 1)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from trainables.batch import cat, halves, size, take
from trainables.methods.gem import GEM, nonnegative_qp, project
from trainables.methods.maml_cl import MAMLCL
from trainables.methods.mer import MER
from trainables.methods.oml import OML, linear_head
from trainables.params import build
from trainables.tensors import flat, parameters_of
from trainables.build import make_benchmark


def make(cls, bench, **values):
    torch.manual_seed(0)
    params = build(cls.Params, values, f"methods.{cls.name}")
    return cls(params, bench.make_model(), bench, torch.Generator().manual_seed(0))


def digits(**values):
    return make_benchmark("permuted_digits", {"preset": "tiny", **values}, device="cpu")


def loss_at(bench, model, params, batch, generator=None):
    """Mean loss of ``model`` answering with ``params``, written without the methods' helpers."""
    call = lambda *a, **k: functional_call(model, params, a, k)  # noqa: E731
    return bench.loss(call, batch, generator).mean()


def snapshot(model):
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def fork(generator):
    return torch.Generator().set_state(generator.get_state())


# -- GEM --------------------------------------------------------------------------------------------------
def brute_force_gem(g, G, margin):
    """min_{v >= margin} ½ vᵀPv + (Gg)ᵀv by enumerating which bounds are active (KKT on each guess)."""
    t = len(G)
    P, c = G @ G.T, G @ g
    best, best_value = None, math.inf
    for r in range(t + 1):
        for free in itertools.combinations(range(t), r):
            free = list(free)
            fixed = [i for i in range(t) if i not in free]
            v = torch.full((t,), float(margin), dtype=torch.float64)
            if free:
                rhs = -(c[free] + P[free][:, fixed] @ v[fixed])
                v[free] = torch.linalg.lstsq(P[free][:, free], rhs.unsqueeze(1)).solution.squeeze(1)
            grad = P @ v + c
            if (v[free] < margin - 1e-9).any() or (grad[fixed] < -1e-9).any() or (grad[free].abs() > 1e-7).any():
                continue
            value = (0.5 * v @ P @ v + c @ v).item()
            if value < best_value:
                best, best_value = v, value
    return g + G.T @ best


@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.parametrize("case", ["two", "three", "three_rank_deficient"])
def test_gem_projection_matches_active_set_enumeration(case, margin):
    gen = torch.Generator().manual_seed({"two": 1, "three": 2, "three_rank_deficient": 3}[case])
    dim = 2 if case == "three_rank_deficient" else 6  # three gradients in a plane: G Gᵀ singular
    t = 2 if case == "two" else 3
    for _ in range(20):  # a draw where at least one constraint is violated
        G = torch.randn(t, dim, generator=gen, dtype=torch.float64)
        g = torch.randn(dim, generator=gen, dtype=torch.float64)
        if (G @ g < 0).any():
            break
    assert (G @ g < 0).any()
    got = project(g, G, margin)
    assert got.dtype == torch.float64
    assert (G @ got >= -1e-6).all()
    torch.testing.assert_close(got, brute_force_gem(g, G, margin), rtol=1e-6, atol=1e-8)
    if margin == 0.0:  # the primal of Eq. 10: no feasible point is closer to g
        for _ in range(200):
            candidate = got + 0.3 * torch.randn(dim, generator=gen, dtype=torch.float64)
            if (G @ candidate >= 0).all():
                assert (candidate - g).norm() >= (got - g).norm() - 1e-9


def test_gem_projection_leaves_a_non_conflicting_gradient_alone():
    g = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    G = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    assert (G @ g >= 0).all()
    torch.testing.assert_close(project(g, G, 0.0), g)
    assert nonnegative_qp((G @ G.T).numpy(), (G @ g).numpy()).tolist() == [0.0, 0.0]


def test_gem_step_is_the_projected_gradient_against_every_task_memory():
    b = digits()  # 3 permutations
    m = make(GEM, b, lr=0.1, memory_size=30, memory_strength=0.5)
    for task in b.tasks[:2]:
        m.begin_task(task)
        for batch in itertools.islice(b.train_batches(task, m.generator), 3):
            m.update(batch)
        m.end_task(task)
    assert [size(mem) for mem in m.memories] == [10, 10]  # 30 // 3 tasks each
    m.begin_task(b.tasks[2])
    outcomes = set()
    params = list(m.model.parameters())
    for batch in itertools.islice(b.train_batches(b.tasks[2], m.generator), 60):
        before = flat(p.detach() for p in params).clone()
        g = flat(torch.autograd.grad(b.loss(m.model, batch, None).mean(), params))
        G = torch.stack([flat(torch.autograd.grad(b.loss(m.model, mem, None).mean(), params))
                         for mem in m.memories])
        out = m.update(batch)
        step = (before - flat(p.detach() for p in params)) / 0.1
        conflict = bool((G @ g < 0).any())
        assert out["projected"] == float(conflict) and out["violations"] == float((G @ g < 0).sum())
        expected = project(g, G, 0.5) if conflict else g
        torch.testing.assert_close(step, expected, rtol=1e-3, atol=1e-5)
        assert (G @ step >= -1e-4 * G.norm(dim=1) * step.norm()).all()
        outcomes.add(conflict)
        if len(outcomes) == 2:
            break
    assert outcomes == {False, True}


# -- MER --------------------------------------------------------------------------------------------------
def test_mer_update_is_within_and_across_batch_reptile():
    b = digits(hidden=[8])
    lr, beta, gamma, s, k1 = 0.2, 0.5, 0.7, 2, 2
    m = make(MER, b, lr=lr, beta=beta, gamma=gamma, batches_per_example=s, replay_batch=k1, memory_size=4)
    stream = b.train_batches(b.tasks[0], torch.Generator().manual_seed(3))
    memory = take(next(stream), slice(0, 4))
    m.memory.add(memory)
    example = take(next(stream), slice(0, 1))
    theta0 = snapshot(m.model)
    gen = fork(m.generator)
    out = m.update(example)

    theta, losses = dict(theta0), []
    for _ in range(s):
        idx = torch.randint(4, (k1,), generator=gen)
        draw = cat(example, take(memory, idx))  # the current example first, then k − 1 memory samples
        start = dict(theta)
        for j in range(size(draw)):
            loss = loss_at(b, m.model, theta, take(draw, slice(j, j + 1)))
            losses.append(loss.item())
            grads = torch.func.grad(lambda p: loss_at(b, m.model, p, take(draw, slice(j, j + 1))))(theta)
            theta = {n: theta[n] - lr * grads[n] for n in theta}
        theta = {n: start[n] + beta * (theta[n] - start[n]) for n in theta}
    theta = {n: theta0[n] + gamma * (theta[n] - theta0[n]) for n in theta}

    for n, p in m.model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[n], rtol=1e-5, atol=1e-6)
    assert out["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    assert len(losses) == s * (1 + k1) and m.memory.seen == 5  # the example entered the reservoir


def test_mer_with_gamma_one_and_empty_memory_is_sgd_then_beta_interpolation():
    b = digits(hidden=[8])
    m = make(MER, b, lr=0.1, beta=1.0, gamma=1.0, batches_per_example=1, replay_batch=5)
    example = take(next(b.train_batches(b.tasks[0], torch.Generator().manual_seed(0))), slice(0, 1))
    theta0 = snapshot(m.model)
    m.update(example)  # memory empty: one SGD step on the example
    grads = torch.func.grad(lambda p: loss_at(b, m.model, p, example))(theta0)
    for n, p in m.model.named_parameters():
        torch.testing.assert_close(p.detach(), theta0[n] - 0.1 * grads[n])


# -- OML --------------------------------------------------------------------------------------------------
def test_oml_head_is_the_last_linear_and_other_models_are_refused():
    assert linear_head(digits().make_model()) == "4"
    from toy import ToyNet

    assert linear_head(ToyNet()) == "body.2"
    with pytest.raises(ValueError, match="nn.Linear head.*Conv1d"):
        linear_head(nn.Sequential(nn.Linear(4, 4), nn.Unflatten(1, (1, 4)), nn.Conv1d(1, 1, 3)))
    diffusion = make_benchmark("split_digits_diffusion", {"preset": "tiny"}, device="cpu")
    with pytest.raises(ValueError, match="method oml needs linear_head, which benchmark split_digits_diffusion"):
        OML(build(OML.Params, {}, "methods.oml"), diffusion.make_model(), diffusion, torch.Generator())


def oml_reference(b, m, batch, memory_idx, alpha, second_order):
    """θ and W_k after OML's inner loop, and the meta-gradient, computed independently."""
    support, query = halves(batch)
    target = cat(query, take(m.memory.contents(), memory_idx))
    theta = snapshot(m.model)
    head = [n for n in theta if n.startswith("2.")]  # 64 → 8 → 10: the head is module 2

    def meta(theta):
        w = dict(theta)
        for j in range(size(support)):
            sample = take(support, slice(j, j + 1))
            g = torch.func.grad(lambda hw: loss_at(b, m.model, {**w, **hw}, sample))({n: w[n] for n in head})
            if not second_order:
                g = {n: v.detach() for n, v in g.items()}
            w = {**w, **{n: w[n] - alpha * g[n] for n in head}}
        return loss_at(b, m.model, w, target), w

    grads, adapted = torch.func.grad(meta, has_aux=True)(theta)
    return theta, adapted, grads, head


@pytest.mark.parametrize("first_order", [True, False])
def test_oml_inner_loop_moves_only_the_head_and_outer_step_is_the_query_gradient(first_order):
    b = digits(hidden=[8])
    alpha, eta = 0.3, 0.1
    m = make(OML, b, lr=eta, inner_lr=alpha, first_order=first_order, memory_size=6, replay_batch=3)
    stream = b.train_batches(b.tasks[0], torch.Generator().manual_seed(5))
    m.memory.add(take(next(stream), slice(0, 6)))
    batch = next(stream)

    adapted, _ = m.adapt(halves(batch)[0])
    model_params = parameters_of(m.model)
    assert m.head == ["2.weight", "2.bias"]
    for n, w in adapted.items():
        if n in m.head:
            assert not torch.allclose(w, model_params[n])
        else:
            assert w is model_params[n]  # the representation is not touched by the inner loop

    gen = fork(m.generator)
    idx = torch.randint(6, (3,), generator=gen)  # the memory draw the update will make
    theta, w_k, grads, head = oml_reference(b, m, batch, idx, alpha, second_order=not first_order)
    for n in head:
        torch.testing.assert_close(adapted[n].detach(), w_k[n].detach(), rtol=1e-5, atol=1e-6)
    if first_order:  # the meta-gradient is the query gradient at (θ, W_k), W_k a plain input
        at_wk = {n: (w_k[n] if n in head else theta[n]).detach() for n in theta}
        target = cat(halves(batch)[1], take(m.memory.contents(), idx))
        direct = torch.func.grad(lambda p: loss_at(b, m.model, p, target))(at_wk)
        for n in theta:
            torch.testing.assert_close(grads[n], direct[n], rtol=1e-5, atol=1e-7)
    out = m.update(batch)
    assert math.isfinite(out["loss"])
    for n, p in m.model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[n] - eta * grads[n], rtol=1e-5, atol=1e-6)


# -- MAML+CL ----------------------------------------------------------------------------------------------
def maml_reference(toy, model, theta, support, target, alpha, steps, second_order, gen):
    """The meta-gradient by torch.func: nested grads through the inner SGD steps, the generator's noise
    drawn in the method's order (support losses, then the meta-loss)."""

    def meta(theta):
        w = theta
        for _ in range(steps):
            g = torch.func.grad(lambda p: loss_at(toy, model, p, support, gen))(w)
            if not second_order:
                g = {n: v.detach() for n, v in g.items()}
            w = {n: w[n] - alpha * g[n] for n in w}
        return loss_at(toy, model, w, target, gen)

    return torch.func.grad(meta)(theta)


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_cl_meta_gradient_matches_torch_func_through_the_inner_steps(toy, first_order):
    alpha, eta, steps = 0.5, 0.1, 2
    m = make(MAMLCL, toy, lr=eta, optimizer="sgd", inner_lr=alpha, inner_steps=steps, first_order=first_order,
             memory_size=8, replay_batch=4)
    stream = toy.train_batches(toy.tasks[0], torch.Generator().manual_seed(2))
    m.memory.add(next(stream))
    batch = next(stream)
    theta = snapshot(m.model)
    gen = fork(m.generator)
    idx = torch.randint(8, (4,), generator=gen)
    support, query = halves(batch)
    target = cat(query, take(m.memory.contents(), idx))
    grads = maml_reference(toy, m.model, theta, support, target, alpha, steps, not first_order, gen)
    if first_order:  # FOMAML: the plain gradient of the meta-loss at the adapted θ_K
        g2 = fork(m.generator)
        torch.randint(8, (4,), generator=g2)
        w = theta
        for _ in range(steps):
            g = torch.func.grad(lambda p: loss_at(toy, m.model, p, support, g2))(w)
            w = {n: w[n] - alpha * g[n] for n in w}
        at_k = torch.func.grad(lambda p: loss_at(toy, m.model, p, target, g2))(w)
        for n in theta:
            torch.testing.assert_close(grads[n], at_k[n], rtol=1e-5, atol=1e-7)
    else:  # the second-order terms are not negligible here, so the check can tell the two apart
        g2 = fork(m.generator)
        torch.randint(8, (4,), generator=g2)
        first = maml_reference(toy, m.model, theta, support, target, alpha, steps, False, g2)
        assert max((grads[n] - first[n]).abs().max().item() for n in theta) > 1e-3
    m.update(batch)
    for n, p in m.model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[n] - eta * grads[n], rtol=1e-5, atol=1e-6)
    assert len(m.memory) == 8 and m.memory.seen == 16


# -- smoke: two tasks through the loop's calls ------------------------------------------------------------
SMOKE = {GEM: {"memory_size": 30}, MER: {"batches_per_example": 2, "replay_batch": 3, "memory_size": 20},
         OML: {"memory_size": 20}, MAMLCL: {"memory_size": 20, "first_order": False}}


@pytest.mark.parametrize("cls", list(SMOKE), ids=lambda c: c.name)
def test_two_tasks_of_permuted_digits(cls):
    b = digits()
    m = make(cls, b, **SMOKE[cls])
    for task in b.tasks[:2]:
        m.begin_task(task)
        for batch in itertools.islice(b.train_batches(task, m.generator), 5):
            out = m.update(batch)
            assert math.isfinite(out["loss"])
        assert all(math.isfinite(v) for v in m.end_task(task).values())
        for seen in m.seen:
            assert 0.0 <= b.evaluate(m.eval_model(seen), seen, ["accuracy"])["accuracy"] <= 1.0
    if cls is GEM:
        assert len(m.memories) == 2


@pytest.mark.parametrize("cls", [MAMLCL, GEM], ids=lambda c: c.name)
def test_two_tasks_of_split_digits_diffusion(cls):
    b = make_benchmark("split_digits_diffusion", {"preset": "tiny"}, device="cpu")
    m = make(cls, b, memory_size=12)
    for task in b.tasks:
        m.begin_task(task)
        for batch in itertools.islice(b.train_batches(task, m.generator), 2):
            assert math.isfinite(m.update(batch)["loss"])
        m.end_task(task)
    for task in b.tasks:
        assert math.isfinite(b.evaluate(m.eval_model(task), task, ["denoise_loss"])["denoise_loss"])
