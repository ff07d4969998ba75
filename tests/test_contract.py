"""One contract for every registered method, with no per-method branches (timm-style): on each tiny
benchmark whose capabilities it needs, two tasks run, every seen task is evaluated on every metric at
each task's end, and all values are finite."""

from __future__ import annotations

import math

import pytest

from toy import ToyConfig, ToyRegression
from core.records import to_frame, validate
from trainables.build import make_benchmark, make_run, method_params
from trainables.methods import METHODS
from trainables.params import smoke_values


def benchmarks():
    return {"toy": lambda: ToyRegression(ToyConfig(steps_per_task=4, eval_every=2)),
            "split_digits_diffusion": lambda: make_benchmark("split_digits_diffusion", {"preset": "tiny"}),
            "continual_world": lambda: make_benchmark("continual_world", {"preset": "tiny"}),
            "permuted_digits": lambda: make_benchmark("permuted_digits", {"preset": "tiny", "steps_per_task": 6,
                                                                          "eval_every": 3}),
            "mnist_permutations": lambda: make_benchmark("mnist_permutations", {"preset": "tiny", "steps_per_task": 6}),
            # 003's S-grid protocol (trainables.step_grid): the last step of a phase is S_max, not a global count
            "nf_faces": lambda: make_benchmark("nf_faces", {"preset": "tiny", "steps_per_task": 2}),
            "vit_cil": lambda: make_benchmark("vit_cil", {"preset": "tiny"})}


@pytest.mark.parametrize("bench_name", sorted(benchmarks()))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_contract(method, bench_name):
    bench = benchmarks()[bench_name]()
    if not METHODS[method].requires <= bench.capabilities:
        pytest.skip(f"{bench_name} lacks {METHODS[method].requires - bench.capabilities}")
    # each knob's smoke value: small sizes, and rates every method survives on every benchmark (002's
    # per-sample MNIST rates of 0.15-0.3 blow up a diffusion UNet at once)
    params = method_params(method, smoke_values(METHODS[method].Params))
    run = make_run(bench, method, params, seed=0)
    df = validate(to_frame(run.run_task(1) + run.run_task(2)))
    steps = bench.config.steps_per_task * (1 if bench.protocol == "step_grid" else 2)
    assert set(df["method"]) == {method} and df["step"].max() == steps
    for k in (1, 2):
        phase = df[df["train_task"] == k]
        end = phase[phase["step"] == phase["step"].max()]
        for metric in bench.metrics:
            assert sorted(end[end["metric"] == metric]["eval_task"]) == list(range(1, k + 1))
    assert all(math.isfinite(v) for v in df["value"])
    assert (df["metric"] == "train_loss").any()


@pytest.mark.parametrize("bench_name", sorted(benchmarks()))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_state_round_trips_mid_stream(method, bench_name):
    """A run checkpointed after task 1 and restored into a freshly built run (another benchmark object,
    as in another process) gives task 2's records exactly as the uninterrupted run does."""
    make = benchmarks()[bench_name]
    bench = make()
    if not METHODS[method].requires <= bench.capabilities:
        pytest.skip(f"{bench_name} lacks {METHODS[method].requires - bench.capabilities}")
    params = method_params(method, smoke_values(METHODS[method].Params))
    straight = make_run(bench, method, params, seed=0)
    straight.run_task(1)
    saved = straight.state()
    expected = to_frame(straight.run_task(2))
    restored = make_run(make(), method, params, seed=0)
    restored.load_state(saved)
    got = to_frame(restored.run_task(2))
    assert len(got) and got.equals(expected)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_somewhere(method):
    """A method whose ``requires`` no benchmark offers would be skipped everywhere: that is a failure."""
    from trainables.benchmarks import BENCHMARKS

    offered = [name for name, cls in BENCHMARKS.items() if METHODS[method].requires <= cls.capabilities]
    assert offered, f"{method} requires {set(METHODS[method].requires)}, which no benchmark offers"


def test_registry_is_the_files():
    """File name = registry name = name in spaces; every file of trainables/methods is a method or a helper."""
    from pathlib import Path

    import trainables.methods as registry

    files = {p.stem for p in Path(registry.__file__).parent.glob("*.py")} - {"__init__"} - registry.NOT_METHODS
    assert files == set(METHODS)
    assert all(cls.name == name and cls.__module__ == f"trainables.methods.{name}" for name, cls in METHODS.items())


def test_unknown_capability_fails_at_definition():
    from trainables.methods.base import Method

    with pytest.raises(TypeError, match="generative_replays"):
        type("Typo", (Method,), {"name": "typo", "requires": frozenset({"generative_replays"})})
