"""The online digit streams (002's protocol) and the replay-memory methods ER and A-GEM."""

from __future__ import annotations

import collections

import pytest
import torch

from trainables.batch import cat
from trainables.memory import Reservoir
from trainables.methods import get_method
from trainables.tensors import flat
from trainables.build import make_benchmark, method_params


def test_the_online_stream_shows_every_training_sample_exactly_once():
    b = make_benchmark("permuted_digits", {"num_tasks": 2})
    for task in b.tasks:
        x, y = b.task_data(task, train=True)
        batches = list(b.train_batches(task, torch.Generator().manual_seed(0)))
        seen = torch.cat([bt["x"] for bt in batches])
        assert all(len(bt["y"]) <= 10 for bt in batches) and len(seen) == len(x)
        assert collections.Counter(map(tuple, seen.tolist())) == collections.Counter(map(tuple, x.tolist()))
        assert all((bt["task"] == task.index).all() for bt in batches)


def test_permutations_are_fixed_per_seed_and_differ_across_tasks():
    bench = make_benchmark("permuted_digits", {"num_tasks": 3})
    a, b, c = bench.for_seed(0), make_benchmark("permuted_digits", {"num_tasks": 3}).for_seed(0), bench.for_seed(1)
    assert all(torch.equal(p, q) for p, q in zip(a.permutations, b.permutations))  # fixed for a seed
    assert not torch.equal(a.permutations[0], a.permutations[1])  # differ across tasks
    assert not torch.equal(a.permutations[0], c.permutations[0])  # and across seeds
    x1, _ = c.task_data(c.tasks[1], train=False)
    assert torch.equal(x1, c.x_test[:, c.permutations[1]])
    fixed = make_benchmark("permuted_digits", {"num_tasks": 3, "permutation_seed": 5})
    assert fixed.for_seed(0) is fixed and fixed.for_seed(1) is fixed  # one stream for every seed


def test_split_digits_heads_task_and_class_incremental():
    task_il = make_benchmark("split_digits", {"scenario": "task"})
    class_il = make_benchmark("split_digits", {"scenario": "class"})
    batch = next(task_il.train_batches(task_il.tasks[2], torch.Generator().manual_seed(0)))
    assert set(batch["y"].tolist()) <= {4, 5}
    torch.manual_seed(0)
    model = task_il.make_model()
    logits = task_il.logits(model, batch)
    assert torch.isinf(logits[:, [0, 1, 2, 3, 6, 7, 8, 9]]).all() and torch.isfinite(logits[:, [4, 5]]).all()
    assert torch.isfinite(class_il.logits(model, batch)).all()
    with pytest.raises(ValueError, match="classes_per_task \\* num_tasks <= 10"):
        make_benchmark("split_digits", {"num_tasks": 6})


def test_reservoir_keeps_each_sample_with_probability_capacity_over_n():
    counts = torch.zeros(20)
    trials = 3000
    g = torch.Generator().manual_seed(0)
    for _ in range(trials):
        r = Reservoir(5, g)
        r.add({"i": torch.arange(20)})
        assert len(r) == 5 and r.seen == 20
        counts[r.contents()["i"]] += 1
    freq = counts / trials
    assert freq.sum().item() == pytest.approx(5.0)
    assert (freq - 0.25).abs().max() < 0.04  # 5 / 20, within ~4 standard errors


def _method(name, bench, **params):
    torch.manual_seed(0)
    return get_method(name)(method_params(name, params), bench.make_model(), bench, torch.Generator().manual_seed(0))


def test_er_trains_on_the_batch_mixed_with_memory_samples():
    b = make_benchmark("permuted_digits", {"num_tasks": 2})
    m = _method("er", b, lr=0.1, memory_size=30, replay_ratio=0.5)
    m.begin_task(b.tasks[0])
    stream = b.train_batches(b.tasks[0], m.generator)
    m.update(next(stream))
    assert len(m.memory) == 10  # the first batch entered the memory, nothing replayed yet
    batch = next(stream)
    state = m.generator.get_state()
    memory = m.memory.contents()
    before = [p.detach().clone() for p in m.model.parameters()]
    m.update(batch)
    m.generator.set_state(state)
    idx = torch.randint(10, (5,), generator=m.generator)  # the draw the update made: round(0.5 * 10) of 10
    replayed = {k: v[idx] for k, v in memory.items()}
    model = get_method("er")(method_params("er", {}), b.make_model(), b, torch.Generator())
    with torch.no_grad():
        for p, q in zip(model.model.parameters(), before):
            p.copy_(q)
    loss = b.loss(model.model, cat(batch, replayed), None).mean()
    grads = torch.autograd.grad(loss, list(model.model.parameters()))
    for p, q, g in zip(m.model.parameters(), before, grads):
        torch.testing.assert_close(p.detach(), q - 0.1 * g)


def test_agem_projects_only_a_conflicting_gradient():
    b = make_benchmark("permuted_digits", {"num_tasks": 2})
    m = _method("agem", b, lr=0.1, memory_size=40, reference_batch=1000)
    m.begin_task(b.tasks[0])
    stream = b.train_batches(b.tasks[0], m.generator)
    for _ in range(3):
        m.update(next(stream))
    m.end_task(b.tasks[0])
    assert next(iter(m.memory.values())).shape[0] == 20  # 40 / 2 tasks
    m.begin_task(b.tasks[1])
    outcomes = set()
    for batch in b.train_batches(b.tasks[1], m.generator):
        before = flat(p.detach() for p in m.model.parameters()).clone()
        g, _ = m.gradient(batch)
        g_ref, _ = m.gradient(m.memory)  # reference_batch >= memory: the whole memory, order aside
        out = m.update(batch)
        step = (before - flat(p.detach() for p in m.model.parameters())) / 0.1
        if g @ g_ref < 0:
            expected = g - (g @ g_ref) / (g_ref @ g_ref) * g_ref
            assert out["projected"] == 1.0 and abs((step @ g_ref).item()) < 1e-4 * g_ref.norm().item()
        else:
            expected = g
            assert out["projected"] == 0.0
        torch.testing.assert_close(step, expected, rtol=1e-3, atol=1e-5)
        outcomes.add(out["projected"])
        if len(outcomes) == 2:
            break
    assert outcomes == {0.0, 1.0}


@pytest.mark.parametrize("name, settings", [
    ("split_digits", {"num_tasks": 2, "batch_size": 36}),  # 8 batches a task: ends on a dense point (8 <= 16)
    ("permuted_digits", {"num_tasks": 2, "eval_every": 144, "dense_until": 0}),  # 144 batches: ends on a coarse one
])
def test_a_single_pass_stream_ending_on_a_scheduled_step_is_evaluated_once(name, settings):
    from trainables.build import make_run
    from trainables.records import to_frame

    bench = make_benchmark(name, settings)
    run = make_run(bench, "finetune", method_params("finetune", {}), seed=0)
    df = to_frame(run.run_task(1) + run.run_task(2))
    n = len(list(bench.train_batches(bench.tasks[0], torch.Generator().manual_seed(0))))
    assert n in (8, 144)
    assert not df.duplicated(["seed", "step", "train_task", "eval_task", "metric"]).any()
    end = df[(df["metric"] == "accuracy") & (df["step"] == 2 * n)]
    assert sorted(end["eval_task"]) == [1, 2] and (end["train_task"] == 2).all()
