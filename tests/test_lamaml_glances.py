"""La-MAML as the authors' code runs it on MNIST: the meta-loss averaged over every inner step
(``meta_loss: every_step``) and several meta-updates per batch (``glances``), against derivations by hand
on the toy network (gradients written out, generator draws replayed)."""

from __future__ import annotations

import pytest
import torch

from test_method_emcl_lamaml import make, noise_like, params, random_alpha, replay_of, set_alpha, toy_batch, toy_grads
from trainables.methods.lamaml import LaMAML


def test_every_step_meta_loss_by_hand(toy):
    """Two samples, memory empty (the query is the batch): θ1 = θ0 − α⁺g0, θ2 = θ1 − α⁺g1 (g_κ on sample κ);
    L = ½[L(θ1; b) + L(θ2; b)]; first order: ∇θ0 L = ½(G1 + G2), ∇α L = −½[g0 ⊙ G1 + (g0 + g1) ⊙ G2] ⊙ 1[α>0];
    α ← α − η∇α, θ ← θ0 − max(0, α_new) ⊙ ∇θ0 L. Noise: sample 0, query, sample 1, query."""
    eta = 0.1
    m = make(LaMAML, toy, alpha_lr=eta, memory_size=5, meta_loss="every_step")
    theta0 = params(m.model)
    alpha0 = random_alpha(theta0, 0.05, 0.3)
    set_alpha(m, alpha0)
    batch = toy_batch(toy, 2)
    g = replay_of(m.generator)
    out = m.update(batch)
    a = {k: v.clamp_min(0) for k, v in alpha0.items()}
    x, y = batch["x"], batch["y"]
    _, g0 = toy_grads(theta0, x[:1], y[:1], noise_like(g, 1))
    theta1 = {k: theta0[k] - a[k] * g0[k] for k in theta0}
    l1, G1 = toy_grads(theta1, x, y, noise_like(g, 2))
    _, g1 = toy_grads(theta1, x[1:], y[1:], noise_like(g, 1))
    theta2 = {k: theta1[k] - a[k] * g1[k] for k in theta0}
    l2, G2 = toy_grads(theta2, x, y, noise_like(g, 2))
    after = params(m.model)
    for k in theta0:
        grad_alpha = -0.5 * (g0[k] * G1[k] + (g0[k] + g1[k]) * G2[k])
        alpha_new = alpha0[k] - eta * grad_alpha
        torch.testing.assert_close(m.alpha[k].detach(), alpha_new, rtol=1e-5, atol=1e-7)
        step = 0.5 * (G1[k] + G2[k])
        torch.testing.assert_close(after[k], theta0[k] - alpha_new.clamp_min(0) * step, rtol=1e-5, atol=1e-7)
    assert out["loss"] == pytest.approx(0.5 * (l1.mean() + l2.mean()).item(), rel=1e-5)


def test_glances_repeat_the_meta_update_and_fill_the_memory_once(toy):
    """Three glances equal three meta-updates on the batch, the later two reshuffled (one randperm each from
    the generator) and able to replay the batch, which entered the memory once, after the first."""
    batch = toy_batch(toy, 4)
    three = make(LaMAML, toy, glances=3, memory_size=20, replay_batch=2)
    by_hand = make(LaMAML, toy, memory_size=20, replay_batch=2)
    three.update(batch)
    by_hand.glance(batch)
    by_hand.memory.add(batch)
    for _ in range(2):
        order = torch.randperm(4, generator=by_hand.generator)
        by_hand.glance({k: v[order] for k, v in batch.items()})
    assert len(three.memory) == 4  # the batch, once
    for k, p in params(three.model).items():
        torch.testing.assert_close(p, params(by_hand.model)[k], rtol=0, atol=0)
        torch.testing.assert_close(three.alpha[k], by_hand.alpha[k], rtol=0, atol=0)


def test_one_glance_last_step_is_the_papers_update(toy):
    """The defaults (one glance, meta-loss at θk) are unchanged: one meta-update, then the memory."""
    batch = toy_batch(toy, 3)
    m, ref = make(LaMAML, toy, memory_size=10), make(LaMAML, toy, memory_size=10)
    m.update(batch)
    ref.glance(batch)
    ref.memory.add(batch)
    for k, p in params(m.model).items():
        assert torch.equal(p, params(ref.model)[k])
