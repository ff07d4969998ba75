"""One contract for every registered method, with no per-method branches (timm-style): on each tiny
benchmark whose capabilities it needs, two tasks run, every seen task is evaluated on every metric at
each task's end, and all values are finite."""

from __future__ import annotations

import math

import pytest

from toy import ToyConfig, ToyRegression
from trainables.loop import ContinualRun
from trainables.methods import METHODS
from trainables.records import to_frame, validate
from trainables.trainable import make_benchmark, method_params

# small sizes, and rates every method survives on every benchmark (002's per-sample MNIST rates of 0.15-0.3
# blow up a diffusion UNet at once)
SMALL = {"fisher_samples": 8, "fisher_batch": 4, "buffer_per_task": 6, "memory_size": 12, "reference_batch": 4,
         "lr": 1e-3, "inner_lr": 1e-3, "batches_per_example": 1, "replay_batch": 2}


def benchmarks():
    return {"toy": lambda: ToyRegression(ToyConfig(steps_per_task=4, eval_every=2)),
            "split_digits_diffusion": lambda: make_benchmark("split_digits_diffusion", {"preset": "tiny"}),
            "continual_world": lambda: make_benchmark("continual_world", {"preset": "tiny"}),
            "permuted_digits": lambda: make_benchmark("permuted_digits", {"preset": "tiny", "steps_per_task": 6,
                                                                          "eval_every": 3})}


@pytest.mark.parametrize("bench_name", sorted(benchmarks()))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_contract(method, bench_name):
    bench = benchmarks()[bench_name]()
    if not METHODS[method].requires <= bench.capabilities:
        pytest.skip(f"{bench_name} lacks {METHODS[method].requires - bench.capabilities}")
    fields = {f for f in METHODS[method].Params.__dataclass_fields__}
    params = method_params(method, {k: v for k, v in SMALL.items() if k in fields})
    run = ContinualRun(bench, method, params, seed=0)
    df = validate(to_frame(run.run_task(1) + run.run_task(2)))
    assert set(df["method"]) == {method} and df["step"].max() == 2 * bench.config.steps_per_task
    for k in (1, 2):
        phase = df[df["train_task"] == k]
        end = phase[phase["step"] == phase["step"].max()]
        for metric in bench.metrics:
            assert sorted(end[end["metric"] == metric]["eval_task"]) == list(range(1, k + 1))
    assert all(math.isfinite(v) for v in df["value"])
    assert (df["metric"] == "train_loss").any()
