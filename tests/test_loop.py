"""The continual loop: evaluation grid, records schema, seeding, divergence."""

from __future__ import annotations

import pandas as pd
import pytest

from toy import ToyConfig, ToyRegression
from core.records import COLUMNS, to_frame, validate
from trainables.build import make_run, method_params
from trainables.loop import Diverged, Schedule
from trainables.trainable import TrialConfig, run_trial


def test_schedule_dense_grid_and_coarse_grid():
    s = Schedule(steps_per_task=20, eval_every=8, dense_until=4, dense_metrics=("mse",), all_metrics=("mse", "score"))
    got = {i: s.metrics_at(i) for i in range(1, 21) if s.metrics_at(i)}
    assert got == {1: ("mse",), 2: ("mse",), 4: ("mse",), 8: ("mse", "score"), 16: ("mse", "score"),
                   20: ("mse", "score")}
    assert s.at(2).dense and s.at(2).tasks is None and not s.at(8).dense and s.at(3) is None


def run_all(bench, method="finetune", seed=0, **params):
    run = make_run(bench, method, method_params(method, params), seed)
    records = []
    for k in range(1, len(bench.tasks) + 1):
        records += run.run_task(k)
    return to_frame(records)


def test_records_schema_and_every_seen_task_evaluated():
    bench = ToyRegression(ToyConfig(steps_per_task=6, eval_every=3, dense_until=2, num_tasks=3))
    df = validate(run_all(bench))
    assert tuple(df.columns) == COLUMNS
    evals = df[df["metric"].isin(["mse", "score"])]
    # dense steps 1 and 2 (cheap metric only), then steps 3 and 6 with everything, per task
    for k in (1, 2, 3):
        phase = evals[evals["train_task"] == k]
        start = 6 * (k - 1)
        assert sorted(phase["step"].unique()) == [start + 1, start + 2, start + 3, start + 6]
        end = phase[phase["step"] == start + 6]
        assert sorted(end["eval_task"].unique()) == list(range(1, k + 1))
        assert set(phase[phase["step"] == start + 1]["metric"]) == {"mse"}
        assert set(end["metric"]) == {"mse", "score"}
    assert df["step"].max() == 18 and (df["eval_task"] <= df["train_task"]).all()
    assert set(df[df["metric"].str.startswith("train_")]["metric"]) == {"train_loss"}


def test_same_seed_identical_different_seed_different():
    a = run_all(ToyRegression(), seed=3)
    b = run_all(ToyRegression(), seed=3)
    c = run_all(ToyRegression(), seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["value"].equals(c["value"])


def test_seeds_interleaved_task_by_task_equal_seeds_run_alone():
    """run_trial trains seed 0 and seed 1 alternately; each must equal its solo run."""
    together = run_trial(TrialConfig(method="replay", benchmark="split_digits_diffusion",
                                     benchmark_params={"preset": "tiny"}, seeds=(0, 1), objective_metric="fd"))
    for seed in (0, 1):
        alone = run_trial(TrialConfig(method="replay", benchmark="split_digits_diffusion",
                                      benchmark_params={"preset": "tiny"}, seeds=(seed,), objective_metric="fd"))
        mine = together[together["seed"] == seed].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone.reset_index(drop=True))


def test_nan_loss_raises_diverged_naming_seed_task_and_step():
    bench = ToyRegression(ToyConfig(nan_after=7))  # 5 steps in task 1; the 8th loss call is NaN
    with pytest.raises(Diverged, match=r"diverged: seed 0, task 2, step 8: loss = nan"):
        run_all(bench)


def test_run_trial_reports_seed_mean_objective_after_each_task():
    reports = []
    df = run_trial(TrialConfig(method="finetune", benchmark="split_digits_diffusion",
                               benchmark_params={"preset": "tiny"}, seeds=(0, 1), objective_metric="gen_acc",
                               context={"config_id": "c1", "sweep": "s"}),
                   lambda metrics, records: reports.append((metrics, len(records))))
    assert [m["task"] for m, _ in reports] == [1, 2]
    last = reports[-1][0]
    end = df[(df["metric"] == "gen_acc") & (df["train_task"] == 2)]
    end = end[end["step"] == end.groupby("seed")["step"].transform("max")]
    per_seed = end.groupby("seed")["value"].mean()
    assert last["objective_seed0"] == pytest.approx(per_seed[0])
    assert last["objective"] == pytest.approx(per_seed.mean())
    assert last["objective_se"] == pytest.approx(per_seed.std(ddof=1) / 2 ** 0.5)
    assert reports[-1][1] == len(df) and set(df["config_id"]) == {"c1"} and set(df["sweep"]) == {"s"}


def test_trial_restored_after_a_task_continues_with_identical_records(tmp_path):
    """A trial saved after task 1 of 2 (records and every seed's full state) and loaded into a freshly
    built trial trains only task 2, and its records equal the uninterrupted trial's exactly."""
    from trainables.build import configure, make_runs
    from trainables.trainable import Trial

    config = configure("trust_region", {"lr": 1e-3, "fisher_samples": 8, "buffer_per_task": 6},
                       "split_digits_diffusion", {"preset": "tiny", "num_tasks": 2}, seeds=(0, 1))
    straight = Trial(config, make_runs(config))
    straight.next_task()
    straight.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv", "seed0.state", "seed1.state"]
    straight.next_task()

    restored = Trial(config, make_runs(config))
    restored.load(tmp_path)
    assert restored.done == 1
    report = restored.next_task()
    assert report["task"] == 2 and restored.done == restored.num_tasks
    pd.testing.assert_frame_equal(restored.frame(), straight.frame())


def grid(n: int, eval_every: int, dense_until: int) -> set[int]:
    """Local steps of a phase of n updates that evaluate something (the end of the phase included)."""
    return {i for i in range(1, n + 1)
            if i % eval_every == 0 or (i <= dense_until and i & (i - 1) == 0)} | {n}


@pytest.mark.parametrize("eval_every, dense_until", [(6, 16), (4, 8), (3, 0), (1, 0)])
def test_a_stream_ending_on_any_grid_point_gives_one_evaluation_per_step(eval_every, dense_until):
    """Single-pass streams of n = 1..20 batches (steps_per_task far larger): ends on dense-only points (1, 2,
    8, 16), coarse-only ones (6, 12, 18), points on both grids (4, 8 with eval_every 4) and off the grid;
    every (seed, step, train_task, eval_task, metric) appears once, and each phase ends with the end-of-task
    evaluation (every metric, every seen task) at its last step, after end_task."""
    for n in range(1, 21):
        bench = ToyRegression(ToyConfig(steps_per_task=1000, eval_every=eval_every, dense_until=dense_until,
                                        num_tasks=2, stream_length=n))
        df = run_all(bench, "ewc", lam=1.0, fisher_samples=4, fisher_batch=2)
        key = ["seed", "step", "train_task", "eval_task", "metric"]
        assert not df.duplicated(key).any(), (n, df[df.duplicated(key, keep=False)])
        for k in (1, 2):
            phase = df[df["train_task"] == k]
            last = k * n
            assert phase["step"].max() == last
            end = phase[phase["step"] == last]
            for metric in ("mse", "score"):
                assert sorted(end[end["metric"] == metric]["eval_task"]) == list(range(1, k + 1))
            assert set(end[end["eval_task"] == k]["metric"]) >= {"fisher_rho", "fisher_cosine"}  # end_task's
            evaluated = set(phase[phase["metric"] == "mse"]["step"] - (k - 1) * n)
            assert evaluated == grid(n, eval_every, dense_until), n
            stats = phase[phase["metric"] == "train_loss"]
            assert set(stats["step"] - (k - 1) * n) == evaluated  # averaged since the previous evaluation


def test_fixed_length_phases_do_not_depend_on_the_lookahead():
    """An endless stream and a single-pass stream longer than the phase give the same records: the batch
    fetched early at a scheduled step is the one the next update gets."""
    endless = run_all(ToyRegression(ToyConfig(steps_per_task=9, eval_every=3, dense_until=4)), "trust_region",
                      lam=1.0, fisher_samples=4, fisher_batch=2, buffer_per_task=4)
    longer = run_all(ToyRegression(ToyConfig(steps_per_task=9, eval_every=3, dense_until=4, stream_length=50)),
                     "trust_region", lam=1.0, fisher_samples=4, fisher_batch=2, buffer_per_task=4)
    pd.testing.assert_frame_equal(endless, longer)


def test_a_non_finite_evaluation_is_a_divergence():
    """A NaN metric (e.g. fd of NaN samples) ends the run as diverged instead of entering the records,
    where every table would refuse it."""

    class NaNMetric(ToyRegression):
        def evaluate(self, model, task, metrics):
            return {name: float("nan") for name in metrics}

    bench = NaNMetric(ToyConfig(steps_per_task=4, eval_every=2, num_tasks=1))
    with pytest.raises(Diverged, match=r"diverged: seed 0, task 1, step 1: \w+ of task 1 = nan"):
        run_all(bench)
