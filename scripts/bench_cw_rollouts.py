"""Continual-World throughput: expert demonstrations per second (1 worker against N), and policy steps per
second in evaluation with the K rollouts of a task stepped together (one batched policy call per action
chunk) against the same K rollouts one at a time; prints a Markdown table.

A policy step is one environment step taken by the diffusion policy, its share of the network calls
included. The policy is untrained, so every episode runs the full ``max_episode_steps``, the same work in
both modes. Both modes run in this one process, side by side, so their ratio is what to read.

    .venv/bin/python scripts/bench_cw_rollouts.py [--preset cw_mini] [--rollouts 10] [--demos 20] [--workers 2]

``throughput`` is what ``scripts/bench.py`` (section evaluation, full mode) calls.
"""

from __future__ import annotations

import tempfile
import time

import click


def throughput(preset: str, rollouts: int, demos: int, workers: int, device: str) -> list[tuple[str, float, str]]:
    """(measurement, value, unit) rows: demos/s per worker count, policy steps/s batched and one at a time,
    their ratio, and the environment alone."""
    import numpy as np
    import torch

    from trainables import metaworld_tasks as mw
    from trainables.build import make_benchmark

    rows = []
    for n in sorted({1, workers}):
        start = time.perf_counter()
        mw.collect("hammer-v3", demos, seed=99, workers=n)
        rows.append((f"hammer demos, {n} worker(s)", demos / (time.perf_counter() - start), "demos/s"))

    with tempfile.TemporaryDirectory() as cache:
        bench = make_benchmark("continual_world", {"preset": preset, "eval_rollouts": rollouts, "cache_dir": cache},
                               device)
        torch.manual_seed(0)
        model = bench.make_model()
        task = bench.tasks[0]
        bench.envs(task, rollouts)  # environments built before timing
        c = bench.config

        def policy_steps_per_second(batched: bool) -> float:
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            if batched:
                bench.rollouts(model, task, c.eval_seed, list(range(rollouts)), c.ddim_steps, generator)
            else:
                for e in range(rollouts):
                    bench.rollouts(model, task, c.eval_seed, [e], c.ddim_steps, generator)
            return rollouts * c.max_episode_steps / (time.perf_counter() - start)

        batched, single = policy_steps_per_second(True), policy_steps_per_second(False)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        rows.append((f"{preset} policy ({params:.2f}M), K={rollouts} stepped together", batched, "policy steps/s"))
        rows.append((f"{preset} policy, the same K one at a time", single, "policy steps/s"))
        rows.append(("ratio, together / one at a time", batched / single, "×"))
        env = mw.EpisodeBatch(bench.envs(task, rollouts), task.name, 0, list(range(rollouts)))
        start = time.perf_counter()
        while env.active.any():
            env.step(np.zeros((rollouts, 4)))
        rows.append(("environment alone (zero actions)", rollouts * mw.MAX_STEPS / (time.perf_counter() - start),
                     "env steps/s"))
    return rows


@click.command()
@click.option("--preset", default="cw_mini", show_default=True)
@click.option("--rollouts", default=10, show_default=True, help="K, evaluation episodes of the task")
@click.option("--demos", default=20, show_default=True, help="expert episodes per demo measurement")
@click.option("--workers", default=2, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def main(preset: str, rollouts: int, demos: int, workers: int, device: str) -> None:
    import torch

    rows = throughput(preset, rollouts, demos, workers, device)
    print(f"device {device}, torch threads {torch.get_num_threads()}\n")
    print("| measurement | value | unit |\n|---|---|---|")
    for name, value, unit in rows:
        print(f"| {name} | {value:.3g} | {unit} |")


if __name__ == "__main__":
    main()
