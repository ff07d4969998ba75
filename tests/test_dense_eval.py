"""The dense grid's settings (``dense_metrics``, ``dense_tasks``, ``dense_eval_samples_per_class``): what is
evaluated 1, 2, 4, ... steps into each task, on which tasks, with how many samples, and their validation."""

from __future__ import annotations

import pytest

from toy import ToyConfig, ToyRegression
from core.errors import InputError
from trainables.build import benchmark_config, make_benchmark, make_run, method_params
from trainables.loop import Schedule
from trainables.records import to_frame


def run_all(bench, method="finetune", **params):
    run = make_run(bench, method, method_params(method, params), seed=0)
    return to_frame([r for k in range(1, len(bench.tasks) + 1) for r in run.run_task(k)])


def test_defaults_are_the_cheap_metrics_on_every_seen_task():
    s = Schedule.of(ToyRegression())
    assert s.dense_metrics == ("mse",) and s.dense_tasks is None
    diffusion = make_benchmark("split_digits_diffusion", {"preset": "tiny"})
    assert Schedule.of(diffusion).dense_metrics == ("denoise_loss",)


def test_an_expensive_metric_densely_on_task_1_only():
    """6 steps per task, coarse every 3, dense 1, 2 (4 > dense_until): `score` (not cheap) on task 1 only at
    steps 1 and 2 of every phase; steps 3 and 6 of each phase evaluate everything on every seen task."""
    bench = ToyRegression(ToyConfig(steps_per_task=6, eval_every=3, dense_until=2, num_tasks=3,
                                    dense_metrics=["score"], dense_tasks=[1]))
    df = run_all(bench)
    evals = df[df["metric"].isin(["mse", "score"])]
    for k in (1, 2, 3):
        start = 6 * (k - 1)
        phase = evals[evals["train_task"] == k]
        for i in (1, 2):
            at = phase[phase["step"] == start + i]
            assert list(zip(at["eval_task"], at["metric"])) == [(1, "score")]
        for i in (3, 6):
            at = phase[phase["step"] == start + i]
            assert sorted(zip(at["eval_task"], at["metric"])) == sorted(
                (j, m) for j in range(1, k + 1) for m in ("mse", "score"))
        assert sorted(phase["step"].unique()) == [start + 1, start + 2, start + 3, start + 6]


def test_dense_tasks_not_yet_seen_evaluate_nothing():
    bench = ToyRegression(ToyConfig(steps_per_task=4, eval_every=4, dense_until=2, num_tasks=2, dense_tasks=[2]))
    df = run_all(bench)
    phase1 = df[df["train_task"] == 1]
    assert sorted(phase1["step"].unique()) == [4]  # no dense step in task 1: task 2 is not seen yet
    assert set(phase1[phase1["metric"] == "train_loss"]["step"]) == {4}
    phase2 = df[(df["train_task"] == 2) & (df["metric"] == "mse")]
    assert sorted(zip(phase2["step"], phase2["eval_task"])) == [(5, 2), (6, 2), (8, 1), (8, 2)]


def test_dense_fd_uses_its_own_sample_count_only_on_dense_only_steps():
    bench = make_benchmark("split_digits_diffusion", {"preset": "tiny", "eval_every": 4, "dense_until": 4,
                                                      "steps_per_task": 5, "dense_metrics": ["fd"],
                                                      "dense_tasks": [1], "dense_eval_samples_per_class": 3})
    counts = []
    sample = bench.sample
    bench.sample = lambda model, labels, steps, g: (counts.append(len(labels)), sample(model, labels, steps, g))[1]
    df = run_all(bench)
    # per phase: dense steps 1, 2 (fd of task 1, 3 per class), coarse 4 and end 5 (every metric, 12 per class)
    assert counts == [2 * 3, 2 * 3, 2 * 12, 2 * 12] + [2 * 3, 2 * 3] + [2 * 12] * 4
    fd = df[df["metric"] == "fd"]
    assert sorted(zip(fd["step"], fd["eval_task"])) == [(1, 1), (2, 1), (4, 1), (5, 1), (6, 1), (7, 1), (9, 1),
                                                        (9, 2), (10, 1), (10, 2)]
    model = bench.make_model()
    assert bench.evaluate_dense(model, bench.tasks[0], ["fd"]) != bench.evaluate(model, bench.tasks[0], ["fd"])
    default = make_benchmark("split_digits_diffusion", {"preset": "tiny"})
    assert default.evaluate_dense(model, default.tasks[0], ["fd"]) == default.evaluate(model, default.tasks[0], ["fd"])


@pytest.mark.parametrize("settings, message", [
    ({"dense_metrics": ["fid"]}, r"^benchmark.dense_metrics: \['fid'\] is not allowed; allowed: a list of metrics "
                                 r"of split_digits_diffusion \(fd, gen_acc, denoise_loss\)$"),
    ({"dense_tasks": [0]}, r"^benchmark.dense_tasks: \[0\] is not allowed; allowed: a list of task numbers from 1 "
                           r"to 2 \(num_tasks\)$"),
    ({"dense_tasks": [1, 3]}, r"^benchmark.dense_tasks: \[1, 3\] is not allowed"),
    ({"dense_tasks": ["1"]}, r"^benchmark.dense_tasks: \['1'\] is not allowed"),
    ({"dense_eval_samples_per_class": 1}, r"^benchmark.dense_eval_samples_per_class: 1 is not allowed"),
])
def test_bad_dense_settings_stop_with_one_line_naming_the_setting(settings, message):
    with pytest.raises(InputError, match=message) as info:
        benchmark_config("split_digits_diffusion", {"preset": "tiny", **settings})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["permuted_digits", "split_digits", "continual_world"])
def test_every_benchmark_checks_its_dense_settings(name):
    with pytest.raises(InputError, match=r"^benchmark.dense_metrics: \['nope'\] is not allowed"):
        benchmark_config(name, {"preset": "tiny", "dense_metrics": ["nope"]})
    with pytest.raises(InputError, match=r"^benchmark.dense_tasks: \[99\] is not allowed"):
        benchmark_config(name, {"preset": "tiny", "dense_tasks": [99]})
    assert benchmark_config(name, {"preset": "tiny", "dense_tasks": [1]}).dense_tasks == [1]
