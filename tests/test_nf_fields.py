"""003's pieces, checked by hand: SIREN fits, the FIM weight, routing, frozen modules, meta-gradients."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.build import make_benchmark, make_run, method_params
from trainables.fim_loss import FIMState, fim_loss
from trainables.meta_fields import adapt, expanded, functional, sequential_meta_loss
from trainables.siren import Siren, num_parameters


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_benchmark("nf_faces", {"preset": "tiny", "cache_dir": str(tmp_path_factory.mktemp("nf"))})


def test_parameter_matched_sizes_of_003():
    assert 4 * num_parameters(2, 3, 128, 5) == 201_228  # 003: 4 × 50.3K
    assert num_parameters(2, 3, 256, 5) == 198_915  # 003: 198.9K
    assert sum(p.numel() for p in Siren(1, 2, 3, 128).parameters()) == 50_307


def test_siren_initialisation_bounds():
    torch.manual_seed(0)
    model = Siren(2, 2, 1, 64, omega0=30.0, hidden_omega0=30.0)
    first, hidden = model.layers[0].weight, model.layers[1].weight
    assert first.abs().max() <= 1 / 2 and first.abs().max() > 0.45  # U(-1/n, 1/n), n = 2
    bound = math.sqrt(6 / 64) / 30
    assert hidden.abs().max() <= bound and hidden.abs().max() > 0.9 * bound
    assert torch.equal(first[0], first[1])  # every field starts from the same draw


def test_siren_fits_one_region_to_high_psnr(faces):
    torch.manual_seed(0)
    model = faces.make_field(64, fields=len(faces.test))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    region = faces.regions[0]
    batch = faces._batch(faces.test, region)
    for _ in range(300):
        loss = faces.loss(model, batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert faces.evaluate(model, faces.tasks[0], ["psnr"])["psnr"] > 40.0


def tiny_net():
    torch.manual_seed(1)
    return Siren(1, 2, 1, 3, layers=2, omega0=2.0, hidden_omega0=2.0)


def test_fim_weight_equals_hand_computed_quadratic_form():
    net = tiny_net()
    params = dict(net.named_parameters())
    x = torch.tensor([[0.1, -0.4], [0.7, 0.2], [-0.5, 0.9]])
    y = torch.tensor([[[0.3]], [[-0.2]], [[0.8]]])
    batch = {"x": x, "y": y}
    # per-sample scores g_j = -∇ ½ (f(x_j) - s_j)², by autograd one sample at a time
    scores = []
    for j in range(3):
        loss = 0.5 * ((net(x[j:j + 1]) - y[j:j + 1]) ** 2).sum()
        scores.append(-torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(params.values()))]))
    g = torch.stack(scores)
    fisher = (g ** 2).mean(0)  # the first step's F: this batch's mean g²
    damped = fisher + 1e-3 * fisher.mean()
    q = (g ** 2 / damped).sum(1)
    lam = 0.7
    expected_w = 1 + lam * q / q.mean()
    state = FIMState(decay=0.9, damping=1e-3)
    w = state.weights(net, params, batch, lam)
    assert torch.allclose(w[:, 0], expected_w, rtol=1e-4)
    # the running F after the step is the batch's estimate (first step), then ρ F + (1 − ρ) batch
    got = torch.cat([state.fisher[k][0].reshape(-1) for k in params])
    assert torch.allclose(got, fisher, rtol=1e-5)
    err = ((net(x) - y) ** 2).mean(-1).sum(-1)
    state2 = FIMState(decay=0.9, damping=1e-3)
    assert torch.allclose(fim_loss(net, params, batch, state2, lam), expected_w * err, rtol=1e-4)


def test_fim_with_lambda_zero_is_plain_mse(faces):
    net = faces.make_field(8)
    batch = faces._batch(faces.test, faces.regions[1])
    plain = faces.loss(net, batch)
    assert torch.equal(fim_loss(net, dict(net.named_parameters()), batch, FIMState(0.9, 1e-3), 0.0), plain)
    assert plain.shape == (len(faces.regions[1]),)


def mcl(faces, **values):
    return make_run(faces, "mcl_nf", method_params("mcl_nf", {"inner_steps": 1, **values}), seed=0)


def test_routing_sends_every_coordinate_to_its_regions_module(faces):
    run = mcl(faces)
    run.start()
    method = run.runs[1]
    with torch.no_grad():
        for i, part in enumerate(method.parts):
            part.layers[-1].bias.fill_(float(i + 1))  # module i answers i + 1 (+ its field)
        routed = method.routed()
        out = routed(faces.coords)
        for j, region in enumerate(faces.regions):
            assert torch.equal(faces.region_of(faces.coords[region]), torch.full((len(region),), j))
            assert torch.equal(out[region], method.parts[j](faces.coords[region]))
    # the whole-signal metric is the routed field's
    sse = ((out - faces.test.transpose(0, 1)) ** 2).mean(-1).mean(0)
    psnr = (10 * torch.log10(1 / sse)).mean().item()
    signal = faces.evaluate_signal({t.index: method.eval_model(t) for t in faces.tasks})
    assert signal["psnr_signal"] == pytest.approx(psnr, rel=1e-5)


def test_frozen_module_keeps_its_region_while_later_regions_train(faces):
    run = mcl(faces, lr=1e-2)
    run.run_task(1)
    method = run.runs[4]
    before = method.eval_model(faces.tasks[0])(faces.coords).clone()
    scores = faces.evaluate(method.eval_model(faces.tasks[0]), faces.tasks[0], ["psnr"])
    run.run_task(2)
    run.run_task(3)
    assert torch.equal(method.eval_model(faces.tasks[0])(faces.coords), before)
    assert faces.evaluate(method.eval_model(faces.tasks[0]), faces.tasks[0], ["psnr"]) == scores
    assert not torch.equal(method.eval_model(faces.tasks[1])(faces.coords), before)


def meta_setup(faces):
    torch.manual_seed(3)
    model = faces.make_field(6, fields=1).double()  # float64: the two routes agree to rounding
    episode = [tuple({k: v.double() for k, v in b.items()} for b in pair)
               for pair in faces.meta_episode(torch.Generator().manual_seed(0), 2)]
    return model, functional(faces, model), episode


def test_second_order_meta_gradient_equals_torch_func_through_the_inner_steps(faces):
    model, loss, episode = meta_setup(faces)
    params = dict(model.named_parameters())
    meta, _ = sequential_meta_loss(loss, expanded(model, 2), episode[:2], 2, 0.05, second_order=True)
    got = torch.autograd.grad(meta, list(params.values()))

    def reference(theta):  # the same Eq. 1 written with torch.func.grad, one signal at a time
        total = 0.0
        for m in range(2):
            p = {k: v.expand(1, *v.shape[1:]) for k, v in theta.items()}
            values = []
            for context, query in episode[:2]:
                one_c = {"x": context["x"], "y": context["y"][:, m:m + 1]}
                one_q = {"x": query["x"], "y": query["y"][:, m:m + 1]}
                for _ in range(2):
                    g = torch.func.grad(lambda q: loss(q, one_c).mean())(p)
                    p = {k: p[k] - 0.05 * g[k] for k in p}
                values.append(loss(p, one_q).mean())
            total = total + sum(values) / 2
        return total

    expected = torch.func.grad(reference)({k: v.detach() for k, v in params.items()})
    for g, k in zip(got, params):
        assert torch.allclose(g, expected[k], rtol=1e-8, atol=1e-10), k


def test_first_order_meta_gradient_is_the_query_gradient_at_the_adapted_parameters(faces):
    model, loss, episode = meta_setup(faces)
    params = dict(model.named_parameters())
    context, query = episode[0]
    adapted, _ = adapt(loss, expanded(model, 2), context, 3, 0.05, second_order=False)
    meta = loss(adapted, query).mean()
    got = torch.autograd.grad(meta, list(params.values()))
    fixed = {k: v.detach().requires_grad_(True) for k, v in adapted.items()}
    direct = torch.autograd.grad(loss(fixed, query).mean(), list(fixed.values()))
    for g, d in zip(got, direct):
        assert torch.allclose(g, d.sum(0, keepdim=True), rtol=1e-5, atol=1e-8)
    second = torch.autograd.grad(
        loss(adapt(loss, expanded(model, 2), context, 3, 0.05, second_order=True)[0], query).mean(),
        list(params.values()))
    assert not all(torch.allclose(a, b) for a, b in zip(got, second))
