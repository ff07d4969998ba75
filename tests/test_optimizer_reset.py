"""``reset_optimizer``: a fresh optimizer at every task boundary after the first (000's authors' code for
the trust-region family), or one optimizer for the whole stream (every other method's default)."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from toy import ToyConfig, ToyRegression
from trainables.build import make_benchmark, make_run, method_params
from trainables.methods import METHODS
from trainables.params import ParamError, smoke_values

FAMILY = {"finetune", "ewc", "replay", "trust_region"}
# 004's LoRA family and full fine-tuning: a new adapter and head block per task, so always a fresh AdamW
FRESH_PER_TASK = {"perturb_merge", "lora_merge", "lora_seq", "model_avg", "full_ft"}


def allowed(method: str, name: str) -> tuple | None:
    return next(f.metadata.get("choices") for f in fields(METHODS[method].Params) if f.name == name)


def test_defaults_true_for_the_trust_region_family_only():
    defaults = {name: cls.Params().reset_optimizer for name, cls in METHODS.items()}
    assert {name for name, on in defaults.items() if on} == FAMILY | FRESH_PER_TASK
    assert all(allowed(name, "reset_optimizer") == (True,) for name in FRESH_PER_TASK)


def test_reset_optimizer_is_listed_for_every_method():
    from orchestrator.listing import describe

    lines = describe("methods")
    methods = [i for i, line in enumerate(lines) if not line.startswith(" ")] + [len(lines)]
    for start, end in zip(methods, methods[1:]):
        assert any(line.strip().startswith("reset_optimizer = ") for line in lines[start:end]), lines[start]


class Trained:
    """A method instance after three updates on task 1, outside any loop (003's step-grid protocol builds
    one instance per S)."""

    def __init__(self, bench, method: str, params) -> None:
        generator = torch.Generator().manual_seed(0)
        self.method = METHODS[method](params, bench.make_model(), bench, generator)
        self.method.begin_task(bench.tasks[0])
        for _, batch in zip(range(3), bench.train_batches(bench.tasks[0], generator)):
            self.method.update(batch)


def trained_on_task_1(method: str, **extra):
    toy = ToyRegression(ToyConfig(steps_per_task=3, eval_every=3, num_tasks=2))
    values = {**smoke_values(METHODS[method].Params), **extra}
    if "adam" in (allowed(method, "optimizer") or ()):
        values["optimizer"] = "adam"
    params = method_params(method, values)
    if METHODS[method].requires <= toy.capabilities:
        run = make_run(toy, method, params, seed=0)
        run.run_task(1)
        return run, toy
    bench = make_benchmark("nf_faces", {"preset": "tiny", "steps_per_task": 3})  # neural-field methods (003)
    return Trained(bench, method, params), bench


RESETTABLE = sorted(m for m in METHODS if allowed(m, "reset_optimizer") is None)


@pytest.mark.parametrize("method", RESETTABLE)
def test_begin_task_gives_a_fresh_adam_with_reset(method):
    run, bench = trained_on_task_1(method, reset_optimizer=True)
    m = run.method
    old = m.optimizer
    params = [p for group in old.param_groups for p in group["params"]]
    assert isinstance(old, torch.optim.Adam) and len(old.state) == len(params)  # moments after task 1
    m.begin_task(bench.tasks[1])
    new = m.optimizer
    assert new is not old and isinstance(new, torch.optim.Adam) and len(new.state) == 0
    assert [p for group in new.param_groups for p in group["params"]] == params  # the same tensors
    assert all(p is q for p, q in zip(params, m.model.parameters()))
    assert new.param_groups[0]["lr"] == m.params.lr == old.param_groups[0]["lr"]


@pytest.mark.parametrize("method", RESETTABLE)
def test_begin_task_keeps_the_optimizer_without_reset(method):
    run, bench = trained_on_task_1(method, reset_optimizer=False)
    m = run.method
    old = m.optimizer
    before = {id(p): {k: v.clone() for k, v in s.items()} for p, s in old.state.items()}
    m.begin_task(bench.tasks[1])
    assert m.optimizer is old and len(old.state) == len(before) > 0
    for p, s in old.state.items():
        for k, v in s.items():
            torch.testing.assert_close(v, before[id(p)][k])


def test_the_first_task_never_resets():
    bench = ToyRegression(ToyConfig(num_tasks=2))
    run = make_run(bench, "finetune", method_params("finetune", {}), seed=0)
    first = run.method.optimizer
    run.method.begin_task(bench.tasks[0])
    assert run.method.optimizer is first


def test_reset_changes_training_after_the_first_task_only():
    def records(reset):
        bench = ToyRegression(ToyConfig(steps_per_task=4, eval_every=2, num_tasks=2))
        run = make_run(bench, "finetune", method_params("finetune", {"reset_optimizer": reset}), seed=0)
        return run.run_task(1), run.run_task(2)

    (a1, a2), (b1, b2) = records(True), records(False)
    assert a1 == b1 and a2 != b2


@pytest.mark.parametrize("method", ["emcl", "lamaml", "mer"])
def test_methods_without_optimizer_state_refuse_a_reset(method):
    with pytest.raises(ParamError, match=f"methods.{method}.reset_optimizer: True is not allowed; allowed: one of False"):
        method_params(method, {"reset_optimizer": True})
