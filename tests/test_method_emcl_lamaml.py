"""EMCL (002 Eq. 7, 8, 10, 13, 16-21, Algorithm 1) and La-MAML (Gupta et al. 2020, Algorithm 1) against
derivations done by hand: the toy network's gradients are written out analytically (no autograd), and the
generator's draws are replayed so the toy loss sees the same input noise as the method."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from toy import ToyRegression
from trainables.batch import cat, take
from trainables.methods.emcl import EMCL
from trainables.methods.lamaml import LaMAML
from trainables.params import ParamError, build
from trainables.build import make_benchmark


def make(cls, bench, **values):
    torch.manual_seed(0)
    return cls(build(cls.Params, values, f"methods.{cls.name}"), bench.make_model(), bench,
               torch.Generator().manual_seed(0))


def params(model) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def replay_of(generator: torch.Generator) -> torch.Generator:
    g = torch.Generator()
    g.set_state(generator.get_state())
    return g


def toy_batch(bench, n, seed=1, task=0):
    return bench.train_sample(bench.tasks[task], n, torch.Generator().manual_seed(seed))


def toy_grads(theta, x, y, noise):
    """Per-sample losses (B,) and the gradient of their MEAN for ToyNet (Linear 3→4, tanh, Linear 4→1)
    with loss (f(x + noise) − y)², written out by hand."""
    w1, b1, w2, b2 = (theta[k] for k in ("body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"))
    xn = x + noise
    a = torch.tanh(xn @ w1.T + b1)                  # (B, 4)
    out = a @ w2[0] + b2[0]                         # (B,)
    d = 2 * (out - y) / len(y)                      # ∂ mean / ∂ out
    dz = d[:, None] * w2[0][None, :] * (1 - a * a)  # (B, 4)
    grads = {"body.0.weight": dz.T @ xn, "body.0.bias": dz.sum(0),
             "body.2.weight": (d[:, None] * a).sum(0)[None, :], "body.2.bias": d.sum(0, keepdim=True)}
    return (out - y) ** 2, grads


def noise_like(g, n):
    return 0.1 * torch.randn((n, 3), generator=g)  # ToyRegression.loss's draw


# ---------------------------------------------------------------------------------------------- EMCL --

def emcl_prox_by_hand(theta0, h, batch, g, beta, gamma, lam, anchor=None):
    """k steps θ̂ = θ − β∇ℓ(θ; b[κ]), θ = (θ̂ + γλh θ0)/(γλh + 1) (Eq. 16, 21); the prox's θ0 is ``anchor``
    when given (the start θ otherwise)."""
    theta, anchor = dict(theta0), theta0 if anchor is None else anchor
    for i in range(len(batch["y"])):
        _, grad = toy_grads(theta, batch["x"][i:i + 1], batch["y"][i:i + 1], noise_like(g, 1))
        theta = {k: (theta[k] - beta * grad[k] + gamma * lam * h[k] * anchor[k]) / (gamma * lam * h[k] + 1)
                 for k in theta}
    return theta


def emcl_prox_mean_by_hand(theta0, h, batch, g, beta, gamma, lam):
    """The mean of θ1..θk of the steps of ``emcl_prox_by_hand`` (``meta_target: mean``)."""
    theta, total, k = dict(theta0), {n: torch.zeros_like(t) for n, t in theta0.items()}, len(batch["y"])
    for i in range(k):
        theta = emcl_prox_by_hand(theta, h, take(batch, slice(i, i + 1)), g, beta, gamma, lam, anchor=theta0)
        total = {n: total[n] + theta[n] / k for n in theta}
    return total


def omega_by_hand(theta, batch, g):
    """Ω = |∂L/∂θ · θ| with L the mean batch loss (Eq. 13)."""
    _, grad = toy_grads(theta, batch["x"], batch["y"], noise_like(g, len(batch["y"])))
    return {k: (grad[k] * theta[k]).abs() for k in theta}


def test_emcl_inner_steps_are_the_closed_form_prox_of_eq21(toy):
    m = make(EMCL, toy, inner_lr=0.2, gamma=0.5, lam=3.0)
    theta0 = params(m.model)
    m.h = {k: torch.rand(t.shape, generator=torch.Generator().manual_seed(4)) for k, t in theta0.items()}
    batch = toy_batch(toy, 3)
    g = replay_of(m.generator)
    theta_k, inner_loss = m.adapt(batch, theta0)
    expected = emcl_prox_by_hand(theta0, m.h, batch, g, beta=0.2, gamma=0.5, lam=3.0)
    for k in theta0:
        torch.testing.assert_close(theta_k[k], expected[k], rtol=1e-5, atol=1e-7)
    # the prox matters: plain SGD steps (h = 0) land elsewhere
    plain = emcl_prox_by_hand(theta0, {k: torch.zeros_like(t) for k, t in theta0.items()}, batch,
                              replay_of(m.generator), beta=0.2, gamma=0.5, lam=3.0)
    assert max((plain[k] - expected[k]).abs().max().item() for k in theta0) > 1e-3
    # one step, one parameter entry, Eq. 21 with numbers: θ1 = (θ̂1 + γλh θ0)/(γλh + 1)
    g = replay_of(m.generator)
    one = take(batch, slice(0, 1))
    theta_1, _ = m.adapt(one, theta0)
    _, grad = toy_grads(theta0, one["x"], one["y"], noise_like(g, 1))
    w, h, gw = theta0["body.2.bias"].item(), m.h["body.2.bias"].item(), grad["body.2.bias"].item()
    assert theta_1["body.2.bias"].item() == pytest.approx((w - 0.2 * gw + 0.5 * 3.0 * h * w) / (1.5 * h + 1),
                                                          rel=1e-5)
    assert math.isfinite(inner_loss)


def test_emcl_outer_step_is_alpha_times_closed_form_meta_gradient(toy):
    """θ0 ← θ0 − α ⊙ λH²(θ0 − θk) (Eq. 10) with h = Ω at the first update and α = α0·r/h (Eq. 8)."""
    lam, r, a0 = 4.0, 0.01, 0.3
    m = make(EMCL, toy, lr=a0, inner_lr=0.1, gamma=0.3, lam=lam, r=r, alpha_max=1e30)
    theta0 = params(m.model)
    batch = toy_batch(toy, 4)
    g = replay_of(m.generator)
    out = m.update(batch)
    omega = omega_by_hand(theta0, batch, g)
    theta_k = emcl_prox_by_hand(theta0, omega, batch, g, beta=0.1, gamma=0.3, lam=lam)
    meta = {k: lam * omega[k] * (theta0[k] - theta_k[k]) for k in theta0}
    alpha = {k: a0 * r / omega[k] for k in theta0}
    after = params(m.model)
    for k in theta0:
        torch.testing.assert_close(m.h[k], omega[k], rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(m.alpha[k], alpha[k], rtol=1e-4, atol=0.0)
        torch.testing.assert_close(theta0[k] - after[k], alpha[k] * meta[k], rtol=1e-3, atol=1e-9)
    step = torch.cat([(theta0[k] - after[k]).reshape(-1) for k in theta0])
    assert step.norm() > 1e-4 and out["step_norm"] == pytest.approx(step.norm().item(), rel=1e-3)
    # the reported diagnostic is the same meta-gradient
    assert out["meta_grad_norm"] == pytest.approx(torch.cat([v.reshape(-1) for v in meta.values()]).norm().item(),
                                                  rel=1e-4)


def test_emcl_meta_lr_compounds_and_h_is_the_eta_moving_average(toy):
    """After two updates: h2 = η Ω1 + (1 − η) Ω2 (Eq. 7), α2 = (r/h2)(r/h1) α0 (Eq. 8, compounding), and the
    second step uses α2."""
    eta, r, a0, lam = 0.7, 0.02, 0.3, 2.0
    m = make(EMCL, toy, lr=a0, inner_lr=0.1, gamma=0.3, lam=lam, r=r, eta=eta, alpha_max=1e30)
    theta0 = params(m.model)
    b1, b2 = toy_batch(toy, 3, seed=1), toy_batch(toy, 3, seed=2)
    g = replay_of(m.generator)
    m.update(b1)
    omega1 = omega_by_hand(theta0, b1, g)
    emcl_prox_by_hand(theta0, omega1, b1, g, beta=0.1, gamma=0.3, lam=lam)  # advance the draws
    theta1 = params(m.model)
    h1 = {k: v.clone() for k, v in m.h.items()}
    m.update(b2)
    omega2 = omega_by_hand(theta1, b2, g)
    h2 = {k: eta * omega1[k] + (1 - eta) * omega2[k] for k in theta0}
    theta_k = emcl_prox_by_hand(theta1, h2, b2, g, beta=0.1, gamma=0.3, lam=lam)
    after = params(m.model)
    for k in theta0:
        torch.testing.assert_close(h1[k], omega1[k], rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(m.h[k], h2[k], rtol=1e-5, atol=1e-9)
        alpha2 = (r / h2[k]) * (r / omega1[k]) * a0
        torch.testing.assert_close(m.alpha[k], alpha2, rtol=1e-3, atol=0.0)
        torch.testing.assert_close(theta1[k] - after[k], alpha2 * lam * h2[k] * (theta1[k] - theta_k[k]),
                                   rtol=2e-3, atol=1e-9)
    assert not torch.allclose(m.h["body.0.weight"], omega2["body.0.weight"])  # an average, not the last Ω


def test_emcl_meta_target_mean_steps_toward_the_mean_of_the_inner_iterates(toy):
    """``meta_target: mean``: θ0 ← θ0 − α ⊙ λH²(θ0 − mean(θ1..θk)), the rest as Eq. 10."""
    lam, r, a0 = 4.0, 0.01, 0.3
    m = make(EMCL, toy, lr=a0, inner_lr=0.1, gamma=0.3, lam=lam, r=r, alpha_max=1e30, meta_target="mean")
    theta0 = params(m.model)
    batch = toy_batch(toy, 3)
    g = replay_of(m.generator)
    m.update(batch)
    omega = omega_by_hand(theta0, batch, g)
    mean = emcl_prox_mean_by_hand(theta0, omega, batch, g, beta=0.1, gamma=0.3, lam=lam)
    after = params(m.model)
    for k in theta0:
        expected = (a0 * r / omega[k]) * lam * omega[k] * (theta0[k] - mean[k])
        torch.testing.assert_close(theta0[k] - after[k], expected, rtol=1e-3, atol=1e-3 * expected.abs().max())
    assert max((theta0[k] - after[k]).abs().max() for k in theta0) > 1e-4
    # by hand on one entry with k = 1: the mean of θ1 alone is θ1, so 'mean' and 'last' agree
    m1, m2 = (make(EMCL, toy, lr=a0, lam=lam, r=r, alpha_max=1e30, meta_target=t) for t in ("mean", "last"))
    one = toy_batch(toy, 1)
    m1.update(one), m2.update(one)
    for k in theta0:
        torch.testing.assert_close(params(m1.model)[k], params(m2.model)[k])


def test_emcl_algorithm1_order_steps_with_the_previous_meta_lr(toy):
    """``modulation_order: algorithm1``: update j steps with α^j, then sets α^{j+1} = (r/h^j)·α^j. Update 1
    steps with α0 itself; update 2 with α0·r/h1; after it α = (r/h2)(r/h1)α0."""
    eta, r, a0, lam = 0.7, 0.02, 0.3, 2.0
    m = make(EMCL, toy, lr=a0, inner_lr=0.1, gamma=0.3, lam=lam, r=r, eta=eta, alpha_max=1e30,
             modulation_order="algorithm1")
    theta0 = params(m.model)
    b1, b2 = toy_batch(toy, 3, seed=1), toy_batch(toy, 3, seed=2)
    g = replay_of(m.generator)
    m.update(b1)
    omega1 = omega_by_hand(theta0, b1, g)
    theta_k = emcl_prox_by_hand(theta0, omega1, b1, g, beta=0.1, gamma=0.3, lam=lam)
    theta1 = params(m.model)
    for k in theta0:
        expected = a0 * lam * omega1[k] * (theta0[k] - theta_k[k])  # α0, unmodulated
        torch.testing.assert_close(theta0[k] - theta1[k], expected, rtol=1e-3, atol=1e-3 * expected.abs().max())
        torch.testing.assert_close(m.alpha[k], a0 * r / omega1[k], rtol=1e-4, atol=0.0)
    m.update(b2)
    omega2 = omega_by_hand(theta1, b2, g)
    h2 = {k: eta * omega1[k] + (1 - eta) * omega2[k] for k in theta0}
    theta_k = emcl_prox_by_hand(theta1, h2, b2, g, beta=0.1, gamma=0.3, lam=lam)
    after = params(m.model)
    for k in theta0:
        alpha1 = a0 * r / omega1[k]
        expected = alpha1 * lam * h2[k] * (theta1[k] - theta_k[k])
        torch.testing.assert_close(theta1[k] - after[k], expected, rtol=2e-3, atol=1e-3 * expected.abs().max())
        torch.testing.assert_close(m.alpha[k], (r / h2[k]) * alpha1, rtol=1e-3, atol=0.0)


def test_emcl_zero_importance_keeps_the_meta_lr_finite(toy):
    """A weight that is 0 has Ω = 0 and so h = 0: α = min(α·r/h_floor, alpha_max), finite; it never moves."""
    m = make(EMCL, toy, alpha_max=50.0)
    with torch.no_grad():
        m.model.body[0].weight[1].zero_()
    for seed in range(3):
        out = m.update(toy_batch(toy, 4, seed=seed))
        assert all(math.isfinite(v) for v in out.values())
    assert (m.h["body.0.weight"][1] == 0).all()
    assert (m.alpha["body.0.weight"][1] == 50.0).all()
    assert (m.model.body[0].weight[1] == 0).all()
    assert all(torch.isfinite(a).all() for a in m.alpha.values())
    with pytest.raises(ParamError, match="alpha_max"):
        build(EMCL.Params, {"alpha_max": 0.0}, "methods.emcl")


def test_emcl_defaults_are_the_table_ii_mnist_presets_and_sgd_only():
    p = build(EMCL.Params, {}, "methods.emcl")
    assert (p.lr, p.inner_lr, p.lam, p.gamma) == (0.3, 0.15, 10.0, 0.3)
    with pytest.raises(ParamError, match="optimizer"):
        build(EMCL.Params, {"optimizer": "adam"}, "methods.emcl")


# -------------------------------------------------------------------------------------------- La-MAML --

def set_alpha(m, values: dict[str, torch.Tensor]):
    with torch.no_grad():
        for k, v in values.items():
            m.alpha[k].copy_(v)


def random_alpha(theta, low, high, seed=3):
    g = torch.Generator().manual_seed(seed)
    return {k: low + (high - low) * torch.rand(t.shape, generator=g) for k, t in theta.items()}


def test_lamaml_one_sample_update_by_hand(toy):
    """Memory empty, one sample: θ1 = θ0 − max(0,α) g0; G = ∇ℓ(θ1); ∇α = −g0 ⊙ G ⊙ 1[α>0];
    α ← α − η∇α; θ ← θ0 − max(0, α_new) ⊙ G. The sample then enters the memory."""
    eta = 0.15
    m = make(LaMAML, toy, alpha_lr=eta, memory_size=5)
    theta0 = params(m.model)
    alpha0 = random_alpha(theta0, 0.05, 0.3)
    set_alpha(m, alpha0)
    batch = toy_batch(toy, 1)
    g = replay_of(m.generator)
    out = m.update(batch)
    _, g0 = toy_grads(theta0, batch["x"], batch["y"], noise_like(g, 1))
    theta1 = {k: theta0[k] - alpha0[k].clamp_min(0) * g0[k] for k in theta0}
    losses, G = toy_grads(theta1, batch["x"], batch["y"], noise_like(g, 1))
    after = params(m.model)
    for k in theta0:
        alpha_new = alpha0[k] - eta * (-g0[k] * G[k])
        torch.testing.assert_close(m.alpha[k].detach(), alpha_new, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(after[k], theta0[k] - alpha_new.clamp_min(0) * G[k], rtol=1e-5, atol=1e-7)
    assert out["loss"] == pytest.approx(losses.mean().item(), rel=1e-5)
    assert len(m.memory) == 1 and torch.equal(m.memory.contents()["x"], batch["x"])


def test_lamaml_alpha_update_is_its_first_order_meta_gradient(toy):
    """k = 3 samples and memory replay: ∇α = −Σ_κ g_κ ⊙ ∇L_meta(θk) ⊙ 1[α > 0], the g_κ taken as constants,
    computed here with autograd at the hand-unrolled inner points."""
    eta, n_rep = 0.2, 4
    m = make(LaMAML, toy, alpha_lr=eta, memory_size=6, replay_batch=n_rep)
    m.memory.add(toy_batch(toy, 6, seed=9))
    theta0 = params(m.model)
    alpha0 = random_alpha(theta0, -0.05, 0.25)  # some entries non-positive
    set_alpha(m, alpha0)
    batch = toy_batch(toy, 3)
    memory = {k: v.clone() for k, v in m.memory.contents().items()}  # the update overwrites slots
    g = replay_of(m.generator)
    m.update(batch)

    model = ToyRegression().make_model()
    def loss_at(theta, b):
        return toy.loss(lambda x: functional_call(model, theta, (x,)), b, g)

    theta, inner = dict(theta0), []
    for i in range(3):
        leaf = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
        grads = torch.autograd.grad(loss_at(leaf, take(batch, slice(i, i + 1))).sum(), list(leaf.values()))
        inner.append(dict(zip(leaf, grads)))
        theta = {k: theta[k] - alpha0[k].clamp_min(0) * gk for k, gk in zip(leaf, grads)}
    idx = torch.randint(6, (n_rep,), generator=g)
    meta_batch = cat(batch, take(memory, idx))
    leaf = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
    G = dict(zip(leaf, torch.autograd.grad(loss_at(leaf, meta_batch).mean(), list(leaf.values()))))
    after = params(m.model)
    for k in theta0:
        d_alpha = -sum(step[k] for step in inner) * G[k] * (alpha0[k] > 0)
        alpha_new = alpha0[k] - eta * d_alpha
        torch.testing.assert_close(m.alpha[k].detach(), alpha_new, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(after[k], theta0[k] - alpha_new.clamp_min(0) * G[k], rtol=1e-5, atol=1e-7)
    assert (d_alpha != 0).any()


def test_lamaml_second_order_gradients_match_finite_differences():
    """second_order: the α and θ0 updates are the exact gradients of the unrolled meta-loss (float64,
    central differences along random directions)."""
    toy = ToyRegression()
    eta = 0.01
    m = make(LaMAML, toy, alpha_lr=eta, second_order=True)
    m.model.double()
    m.alpha = {k: a.detach().double().requires_grad_(True) for k, a in m.alpha.items()}
    theta0 = params(m.model)
    alpha0 = random_alpha(theta0, 0.1, 0.4)
    alpha0 = {k: v.double() for k, v in alpha0.items()}
    set_alpha(m, alpha0)
    batch = {k: v.double() for k, v in toy_batch(toy, 2).items()}
    state = m.generator.get_state()
    m.update(batch)
    after = params(m.model)
    assert all((m.alpha[k] > 0).all() for k in theta0)  # so that θ0 − θ = max(0, α)·∇θ can be divided
    grad_alpha = {k: (alpha0[k] - m.alpha[k].detach()) / eta for k in theta0}
    grad_theta = {k: (theta0[k] - after[k]) / m.alpha[k].detach() for k in theta0}

    model = ToyRegression().make_model().double()
    def meta_loss(theta, alpha):
        g = torch.Generator()
        g.set_state(state)
        def loss(th, b):
            return toy.loss(lambda x: functional_call(model, th, (x,)), b, g)
        fast = dict(theta)
        for i in range(2):
            leaf = {k: v.clone().requires_grad_(True) for k, v in fast.items()}
            grads = torch.autograd.grad(loss(leaf, take(batch, slice(i, i + 1))).sum(), list(leaf.values()))
            fast = {k: fast[k] - alpha[k].clamp_min(0) * gk for k, gk in zip(leaf, grads)}
        return loss(fast, batch).mean().item()

    gen = torch.Generator().manual_seed(5)
    eps = 1e-5
    for _ in range(2):
        v = {k: torch.randn(t.shape, generator=gen, dtype=torch.float64) for k, t in theta0.items()}
        fd_alpha = (meta_loss(theta0, {k: alpha0[k] + eps * v[k] for k in v})
                    - meta_loss(theta0, {k: alpha0[k] - eps * v[k] for k in v})) / (2 * eps)
        fd_theta = (meta_loss({k: theta0[k] + eps * v[k] for k in v}, alpha0)
                    - meta_loss({k: theta0[k] - eps * v[k] for k in v}, alpha0)) / (2 * eps)
        assert sum((grad_alpha[k] * v[k]).sum() for k in v).item() == pytest.approx(fd_alpha, rel=1e-5, abs=1e-9)
        assert sum((grad_theta[k] * v[k]).sum() for k in v).item() == pytest.approx(fd_theta, rel=1e-5, abs=1e-9)


def test_lamaml_nonpositive_alpha_does_not_move_theta(toy):
    m = make(LaMAML, toy, memory_size=10)
    frozen = ("body.0.weight", "body.2.bias")
    alpha0 = random_alpha(params(m.model), 0.05, 0.3)
    alpha0["body.0.weight"][:] = -0.2
    alpha0["body.2.bias"][:] = 0.0
    set_alpha(m, alpha0)
    before = params(m.model)
    for seed in range(3):  # the later updates replay the memory too
        m.update(toy_batch(toy, 4, seed=seed))
    after = params(m.model)
    for k in before:
        if k in frozen:
            assert torch.equal(after[k], before[k]) and torch.equal(m.alpha[k].detach(), alpha0[k])
        else:
            assert not torch.equal(after[k], before[k]) and not torch.equal(m.alpha[k].detach(), alpha0[k])


# ------------------------------------------------------------------------------------------ smoke tests --

@pytest.mark.parametrize("cls", [EMCL, LaMAML])
@pytest.mark.parametrize("bench_name", ["permuted_digits", "split_digits"])
def test_two_tasks_of_the_digit_streams(cls, bench_name):
    bench = make_benchmark(bench_name, {"preset": "tiny"})
    m = make(cls, bench, memory_size=20) if cls is LaMAML else make(cls, bench)
    for task in bench.tasks[:2]:
        m.begin_task(task)
        stream = bench.train_batches(task, m.generator)
        for _ in range(6):
            out = m.update(next(stream))
            assert "loss" in out and all(math.isfinite(v) for v in out.values()), out
        assert m.end_task(task) == {}
        for seen in m.seen:
            acc = bench.evaluate(m.eval_model(seen), seen, ["accuracy"])["accuracy"]
            assert 0.0 <= acc <= 1.0
    assert [t.index for t in m.seen] == [1, 2]


@pytest.mark.parametrize("cls,rates", [(EMCL, {"inner_lr": 0.01}), (LaMAML, {"lr": 0.01, "memory_size": 8})])
def test_two_tasks_of_the_diffusion_stream_with_small_rates(cls, rates):
    """The Table II rates are for 002's MLPs (per-sample SGD steps of 0.15 / 0.3 blow the UNet's loss up
    within one batch); with rates of 1e-2 the per-sample inner loop runs on the denoising loss too."""
    bench = make_benchmark("split_digits_diffusion", {"preset": "tiny"})
    m = make(cls, bench, **rates)
    for task in bench.tasks[:2]:
        m.begin_task(task)
        stream = bench.train_batches(task, m.generator)
        for _ in range(2):
            out = m.update(take(next(stream), slice(0, 4)))
            assert all(math.isfinite(v) for v in out.values()), out
        m.end_task(task)
