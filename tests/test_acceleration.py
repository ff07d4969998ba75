"""The GPU path's options (trainables.acceleration), checked on the CPU: off by default and then without
effect; bf16 puts the training steps (not evaluation) under autocast; tf32 is on inside a step and
restored after; channels_last stores the UNet's convolutions channels-last; bad values exit 2."""

from __future__ import annotations

import pytest
import torch

from core.errors import InputError
from trainables.benchmarks import BENCHMARKS
from trainables.build import make_benchmark, make_run, method_params


def test_every_benchmark_carries_the_options_off_by_default():
    for name, cls in BENCHMARKS.items():
        config = cls.Config()
        assert (config.precision, config.tf32, config.channels_last) == ("fp32", False, False), name


def _probe(run, seen):
    """Record the autocast and TF32 state inside every training step and every evaluation."""
    method, evaluate = run.method, run.bench.evaluate
    update = method.update

    def probed_update(batch):
        seen.append(("update", torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                     torch.backends.cuda.matmul.allow_tf32))
        return update(batch)

    def probed_evaluate(*args, **kwargs):
        seen.append(("evaluate", torch.is_autocast_enabled("cpu"), None, torch.backends.cuda.matmul.allow_tf32))
        return evaluate(*args, **kwargs)

    method.update = probed_update
    run.bench.evaluate = probed_evaluate


def _run(settings, seen=None):
    bench = make_benchmark("split_digits_diffusion", {"preset": "tiny", "steps_per_task": 4, "eval_every": 4,
                                                      "dense_until": 0, **settings}, device="cpu")
    run = make_run(bench, "finetune", method_params("finetune", {}), seed=0)
    if seen is not None:
        _probe(run, seen)
    return run, [(r.step, r.eval_task, r.metric, r.value) for r in run.run_task(1)]


def test_bf16_and_tf32_apply_to_the_training_steps_only():
    off, fp32 = [], _run({})
    _, plain = _run({}, off)
    assert plain == fp32[1]  # the probes change nothing
    assert {s[0] for s in off} == {"update", "evaluate"}
    assert all(not s[1] and not s[3] for s in off)
    seen = []
    before = torch.backends.cuda.matmul.allow_tf32
    _, bf16 = _run({"precision": "bf16", "tf32": True}, seen)
    updates = [s for s in seen if s[0] == "update"]
    assert len(updates) == 4 and all(s[1] and s[2] == torch.bfloat16 and s[3] for s in updates)
    assert all(not s[1] and not s[3] for s in seen if s[0] == "evaluate")
    assert torch.backends.cuda.matmul.allow_tf32 is before  # restored after the steps
    loss = {r[3] for r in bf16 if r[2] == "train_loss"} | {r[3] for r in plain if r[2] == "train_loss"}
    assert len(loss) == 2 and all(torch.isfinite(torch.tensor(v)) for v in loss)  # bf16 steps differ, finite


def test_channels_last_stores_the_unets_convolutions_channels_last():
    run, _ = _run({"channels_last": True})
    convs = [p for p in run.method.model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    default, _ = _run({})
    assert not all(p.is_contiguous(memory_format=torch.channels_last)
                   for p in default.method.model.parameters() if p.dim() == 4)


@pytest.mark.parametrize("key,value", [("precision", "fp16"), ("tf32", "yes"), ("channels_last", 1)])
def test_bad_values_name_the_setting(key, value):
    with pytest.raises(InputError, match=f"benchmark.{key}"):
        make_benchmark("split_digits_diffusion", {"preset": "tiny", key: value})
