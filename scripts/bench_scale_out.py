"""Figures of the scale-out issue, side by side in one run; prints Markdown tables for BENCHMARKS.md.

    .venv/bin/python scripts/bench_scale_out.py [--steps 300] [--part all|checkpoints|seeds]

1. Full-state checkpoint size after each task (trust_region and finetune, split_digits_diffusion laptop,
   one seed), and the bytes of model + Adam state of the paper networks (000 Table 6: the 37.45M image
   UNet of imagenet32's paper preset, the 83.27M policy of cw10_paper), measured by pickling them.
2. Resuming a 5-task trial after task 4 from its checkpoint against rerunning it (what a restored trial
   did before checkpoints held the state).
3. A 4-seed configuration on 2 CPU slots: seeds one after another in one trial (2 threads) against
   seeds as 4 parallel actors of 0.5 CPU each, through `orchestrate sweep`.
"""

from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path

import click
import numpy as np


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def checkpoint_sizes(steps: int) -> None:
    import torch

    from trainables.build import configure, make_runs

    print("\n| method (laptop, 1 seed) | params P | after task 1 | 2 | 3 | 4 | 5 | per task |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for method in ("finetune", "trust_region"):
        config = configure(method, {"lr": 1e-3}, "split_digits_diffusion",
                           {"preset": "laptop", "steps_per_task": steps}, seeds=(0,))
        (run,) = make_runs(config)
        sizes = []
        for k in range(1, 6):
            run.run_task(k)
            sizes.append(len(run.state()))
        p = sum(t.numel() for t in run.method.model.parameters())
        growth = (sizes[-1] - sizes[0]) / 4
        print(f"| {method} | {p / 1e6:.2f}M | " + " | ".join(_mib(s) for s in sizes) + f" | {_mib(int(growth))} |")
    print("\n| paper network | params P | model + Adam state, pickled | bytes / (4 P) |")
    print("| --- | ---: | ---: | ---: |")
    for name, model in paper_models():
        p = sum(t.numel() for t in model.parameters())
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        for t in model.parameters():
            t.grad = torch.zeros_like(t)
        optimizer.step()
        size = len(pickle.dumps({"model": model, "optimizer": optimizer.state_dict()}, protocol=5))
        print(f"| {name} | {p / 1e6:.2f}M | {_mib(size)} | {size / (4 * p):.2f} |")
        del model, optimizer


def paper_models():
    from trainables.benchmarks.continual_world import ContinualWorld
    from trainables.benchmarks.imagenet32 import ImageNet32
    from trainables.build import benchmark_config

    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        for name, n in (("train_data_batch_1", 500), ("val_data", 500)):
            labels = np.arange(1, n + 1)
            data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            np.savez(Path(folder) / f"{name}.npz", data=data, labels=labels, mean=data.mean(0))
        config = benchmark_config("imagenet32", {"preset": "paper", "data_dir": folder})
        yield "imagenet32 paper UNet", ImageNet32(config).make_model()
    yield "cw10_paper policy", ContinualWorld(benchmark_config("continual_world", {"preset": "cw10_paper"})).make_model()


def resume_against_rerun(steps: int) -> None:
    from trainables.build import configure, make_runs
    from trainables.trainable import Trial

    config = configure("trust_region", {"lr": 1e-3}, "split_digits_diffusion",
                       {"preset": "laptop", "steps_per_task": steps}, seeds=(0,))
    with tempfile.TemporaryDirectory() as folder:
        trial = Trial(config, make_runs(config))
        start = time.perf_counter()
        for _ in range(4):
            trial.next_task()
        first_four = time.perf_counter() - start
        trial.save(Path(folder))
        start = time.perf_counter()
        trial.next_task()
        fifth = time.perf_counter() - start
        start = time.perf_counter()
        restored = Trial(config, make_runs(config))
        restored.load(Path(folder))
        restored.next_task()
        resumed = time.perf_counter() - start
    rerun = first_four + fifth
    print("\n| trust_region, laptop, 5 tasks, 1 seed: after task 4 | seconds | ratio to rerunning |")
    print("| --- | ---: | ---: |")
    print(f"| rerun tasks 1-5 (before: a restored trial reran its finished tasks) | {rerun:.1f} | 1.00 |")
    print(f"| load the checkpoint, train task 5 | {resumed:.1f} | {resumed / rerun:.2f} |")


def seed_space(steps: int, num_tasks: int, seeds: list[int], lrs: int = 1) -> dict:
    """A finetune space on split_digits_diffusion (laptop) of ``lrs`` configurations (1: lr 1e-3; more: lr
    drawn from a range, so no two are twins) over ``seeds``."""
    lr = 1e-3 if lrs == 1 else {"loguniform": [5e-4, 2e-3]}
    return {"name": "bench", "benchmark": {"name": "split_digits_diffusion", "steps_per_task": steps,
                                           "num_tasks": num_tasks},
            "seeds": list(seeds), "objective": {"metric": "fd"},
            "budget": {"num_samples": lrs, "max_concurrent": lrs}, "methods": {"finetune": {"lr": lr}}}


def timed_sweep(space: dict, args: list[str]) -> tuple[list[float], float]:
    """(each trial's time_total_s, the sweep's wall seconds) of one ``orchestrate sweep``."""
    from bench.common import run_sweep

    run = run_sweep(space, args)
    return [t["last"]["time_total_s"] for t in run.trials], run.wall


def seeds_parallel_against_sequential(steps: int) -> None:
    space = seed_space(steps, 3, [0, 1, 2, 3])
    rows = {}
    for label, args in (("in sequence, one trial of 2 CPUs", ["--cpus-per-trial", "2"]),
                        ("in parallel, 4 actors of 0.5 CPU", ["--seeds-parallel", "--cpus-per-seed", "0.5"])):
        (trial_s,), wall = timed_sweep(space, args)
        rows[label] = (trial_s, wall)
    base = next(iter(rows.values()))[0]
    print("\n| finetune, 4 seeds x 3 tasks, 2 CPU slots | trial seconds | sweep seconds | trial ratio |")
    print("| --- | ---: | ---: | ---: |")
    for label, (trial_s, wall) in rows.items():
        print(f"| {label} | {trial_s:.1f} | {wall:.1f} | {trial_s / base:.2f} |")


@click.command()
@click.option("--steps", default=300, show_default=True, help="steps per task of the laptop runs")
@click.option("--part", type=click.Choice(["all", "checkpoints", "seeds"]), default="all", show_default=True)
def main(steps: int, part: str) -> None:
    import torch

    torch.set_num_threads(1)  # as a Ray trial with one CPU
    if part in ("all", "checkpoints"):
        checkpoint_sizes(steps)
        resume_against_rerun(steps)
    if part in ("all", "seeds"):
        seeds_parallel_against_sequential(steps)


if __name__ == "__main__":
    main()
