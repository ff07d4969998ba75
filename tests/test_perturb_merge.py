"""Perturb-and-Merge (004) and its LoRA baselines on the tiny class-incremental ViT: Eq. 8's α, the ε̃ draws,
the peft adapter, the fold, the Fisher, and the merge rules; values checked against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.records import to_frame
from trainables import merging
from trainables.build import make_benchmark, make_run, method_params
from trainables.methods import METHODS
from trainables.params import smoke_values


@pytest.fixture(scope="module")
def bench():
    return make_benchmark("vit_cil", {"preset": "tiny", "steps_per_task": 6}, device="cpu")


def run_of(bench, method, **values):
    params = method_params(method, {**smoke_values(METHODS[method].Params), "lr": 1e-2, **values})
    return make_run(bench, method, params, seed=3)


def test_alpha_running_sums_equal_explicit_sum_and_line_search():
    g = torch.Generator().manual_seed(0)
    shapes = {"a": (3, 4), "b": (5,)}
    fishers = [{k: torch.rand(s, generator=g) for k, s in shapes.items()} for _ in range(3)]
    stars = [{k: torch.randn(s, generator=g) for k, s in shapes.items()} for _ in range(3)]
    prev = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    delta = {k: stars[2][k] - prev[k] for k in shapes}
    sums = merging.MergeSums()
    for f, s in zip(fishers, stars):
        sums.add(f, s)
    alpha = sums.alpha(prev, delta)
    assert alpha == pytest.approx(merging.alpha_explicit(fishers, stars, prev, delta), rel=1e-12)
    grid = np.linspace(-2, 3, 50_001)  # the quadratic surrogate Σ_i (θ − θ*_i)ᵀ F_i (θ − θ*_i) along θ̂ + αΔ

    a = torch.tensor(grid).unsqueeze(1)
    values = sum(((f[k].flatten().double() * (prev[k].flatten() + a * delta[k].flatten() - s[k].flatten()) ** 2)
                  .sum(1)) for f, s in zip(fishers, stars) for k in shapes)  # the surrogate at every grid point
    best = grid[int(values.argmin())]
    assert alpha == pytest.approx(best, abs=1e-4)
    one = merging.MergeSums()
    one.add(fishers[0], stars[0])
    first = {k: stars[0][k] - prev[k] for k in shapes}
    assert one.alpha(prev, first) == pytest.approx(1.0, abs=1e-6)  # Eq. 8 at t = 1 (up to float32 rounding of Δ)


def test_alpha_of_a_run_is_eq8_of_its_fishers_and_alpha1_is_one(bench, monkeypatch):
    run = run_of(bench, "perturb_merge", clip_alpha=False, fisher_samples=0)
    method, seen = run.method, []
    original = method.fisher

    def spy(task):
        f = original(task)
        seen.append(({k: v.clone() for k, v in f.items()}, {k: v.clone() for k, v in method.start.items()},
                     merging.task_vector(method.peft)))
        return f
    monkeypatch.setattr(method, "fisher", spy)
    records = to_frame(run.run_task(1) + run.run_task(2))
    raw = records[records["metric"] == "alpha_raw"].sort_values("train_task")["value"].tolist()
    assert raw[0] == 1.0
    (f1, start1, d1), (f2, start2, d2) = seen
    stars = [{k: start1[k] + d1[k] for k in d1}, {k: start2[k] + d2[k] for k in d2}]
    assert raw[1] == pytest.approx(merging.alpha_explicit([f1, f2], stars, start2, d2), rel=1e-6)
    assert f1 and all(v.shape == start1[k].shape and (v >= 0).all() for k, v in f1.items())


def test_epsilon_frequencies_match_probabilities():
    rng = np.random.default_rng(0)
    n, p0, eps = 30_000, 0.2, 0.5
    draws = np.array([merging.draw_epsilon(rng, eps, p0) for _ in range(n)])
    assert set(np.unique(draws)) == {-eps, 0.0, eps}
    for value, p in ((-eps, 0.4), (0.0, 0.2), (eps, 0.4)):
        assert abs((draws == value).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_p0_one_trains_exactly_as_plain_lora(bench):
    a, b = run_of(bench, "perturb_merge", p0=1.0), run_of(bench, "lora_merge")
    ra, rb = to_frame(a.run_task(1) + a.run_task(2)), to_frame(b.run_task(1) + b.run_task(2))
    assert len(ra) and ra.drop(columns="method").equals(rb.drop(columns="method"))
    sa, sb = a.method.model.state_dict(), b.method.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_peft_adapter_is_trained_and_base_weights_stay(bench):
    from peft.tuners.lora import Linear as LoraLinear

    run = run_of(bench, "perturb_merge")
    method = run.method
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    task = bench.tasks[0]
    method.begin_task(task)
    layers = merging.lora_layers(method.peft)
    assert sorted(k.rsplit(".", 1)[1] for k in layers) == ["k_proj", "v_proj"]  # the tiny ViT has one layer
    assert all(isinstance(m, LoraLinear) for m in layers.values())
    trained = {id(p) for group in method.optimizer.param_groups for p in group["params"]}
    head = method.model.get_submodule("classifier")
    assert trained == {id(p) for p in merging.lora_parameters(method.peft)} | {id(p) for p in head.parameters()}
    batches = bench.train_batches(task, run.generator)
    for _ in range(3):
        method.update(next(batches))
    assert all(m.lora_B["default"].weight.abs().sum() > 0 for m in layers.values())  # B starts at zero
    for name, w in method.peft.named_parameters():
        plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
        if "lora_" in name or plain.startswith("classifier."):
            continue
        assert torch.equal(w, before[plain]), name  # θ̂_{t−1} untouched by LoRA training
    rows = [c for c in range(bench.num_classes) if c not in task.classes]
    assert torch.equal(head.weight[rows], before["classifier.weight"][rows])  # other head blocks frozen


def test_fold_with_alpha_one_is_theta_star_and_fisher_matches_brute_force(bench):
    run = run_of(bench, "perturb_merge")
    method, task = run.method, bench.tasks[0]
    method.begin_task(task)
    batches = bench.train_batches(task, run.generator)
    for _ in range(3):
        method.update(next(batches))
    sample = bench.train_sample(task, 5, torch.Generator().manual_seed(1))
    names = {k: f"base_model.model.{k}.base_layer.weight" for k in merging.lora_layers(method.peft)}
    loss = lambda model, b: bench.loss(model, b, None)  # noqa: E731
    fisher = merging.diagonal_fisher(method.peft, names, loss, sample, chunk=2)
    star = {k: method.start[k] + d for k, d in merging.task_vector(method.peft).items()}
    with torch.no_grad():
        live = method.model(sample["x"]).logits
    model = merging.fold(method.peft, 1.0).requires_grad_(True)
    folded = dict(model.named_parameters())
    assert all(torch.allclose(folded[f"{k}.weight"], star[k], atol=1e-6) for k in star)
    with torch.no_grad():
        assert torch.allclose(model(sample["x"]).logits, live, atol=1e-5)
    brute = {k: torch.zeros_like(v) for k, v in star.items()}  # per-sample gradients one at a time, at θ*_t
    for i in range(5):
        one = {key: v[i:i + 1] for key, v in sample.items()}
        grads = torch.autograd.grad(bench.loss(model, one, None).sum(), [folded[f"{k}.weight"] for k in star])
        for k, g in zip(star, grads):
            brute[k] += g ** 2 / 5
    assert all(torch.allclose(fisher[k], brute[k], rtol=1e-4, atol=1e-10) for k in star)
    assert any(brute[k].sum() > 0 for k in star)


def test_merge_rules_record_their_alpha(bench):
    for method, expected in (("lora_seq", [1.0, 1.0]), ("model_avg", [1.0, 0.5])):
        run = run_of(bench, method)
        df = to_frame(run.run_task(1) + run.run_task(2))
        assert df[df["metric"] == "alpha"].sort_values("train_task")["value"].tolist() == expected


def test_gaussian_noise_has_the_task_vectors_norm(bench):
    run = run_of(bench, "perturb_merge", perturbation="gaussian")
    method, task = run.method, bench.tasks[0]
    method.begin_task(task)
    method.update(next(bench.train_batches(task, run.generator)))
    deltas = merging.task_vector(method.peft)
    captured = []
    handles = merging.gaussian_noise(method.peft, 0.5, torch.Generator().manual_seed(0))
    layers = merging.lora_layers(method.peft)
    x = torch.randn(64, 16)
    for (k, layer), h in zip(layers.items(), handles):
        with torch.no_grad():
            noisy = layer(x)
            h.remove()
            captured.append((k, torch.linalg.lstsq(x, noisy - layer(x)).solution.T))
    for k, g in captured:
        assert g.norm().item() == pytest.approx(0.5 * deltas[k].norm().item(), rel=1e-3)


def test_class_incremental_view_answers_over_seen_classes_only(bench):
    model = bench.make_model()
    batch = bench.train_sample(bench.tasks[2], 8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = bench.eval_view(model, 2)(batch["x"])
    assert torch.isinf(logits[:, 4:]).all() and torch.isfinite(logits[:, :4]).all()
    assert bench.evaluate(bench.eval_view(model, 2), bench.tasks[2], ["accuracy"]) == {"accuracy": 0.0}
