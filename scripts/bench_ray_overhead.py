"""One trial called directly against the same trial run through a whole `orchestrate sweep`
(Ray start, Optuna, checkpoints, MLflow), side by side in one process; prints a Markdown table.
``direct_vs_sweep`` is what ``scripts/bench.py`` (section overhead) calls.

    .venv/bin/python scripts/bench_ray_overhead.py [--method finetune] [--set benchmark.steps_per_task=100]
"""

from __future__ import annotations

import time

import click


def direct_vs_sweep(method: str, seeds: list[int], bench: dict, params: dict | None = None) -> dict[str, float]:
    """Seconds of ``run_trial`` called directly (one thread, as a one-CPU Ray trial), before and after the
    sweep (``direct``: the faster, so a warm-up of the process does not flatter Ray), of the same trial inside
    Ray (its ``time_total_s``: from the trial function's start, benchmark built inside, to its last report)
    and of the whole one-trial ``orchestrate sweep``."""
    import torch

    from bench.common import run_sweep
    from trainables.build import make_benchmark
    from trainables.trainable import TrialConfig, run_trial

    torch.set_num_threads(1)  # as a Ray trial with one CPU
    params = params or {"lr": 1e-3}
    make_benchmark("split_digits_diffusion", bench).classifier()  # train and cache it before timing anything

    def direct() -> float:
        start = time.perf_counter()
        run_trial(TrialConfig(method=method, benchmark="split_digits_diffusion", params=params,
                              benchmark_params=bench, seeds=tuple(seeds), objective_metric="fd"))
        return time.perf_counter() - start

    before = direct()
    space = {"name": "overhead", "benchmark": {"name": "split_digits_diffusion", **bench}, "seeds": list(seeds),
             "objective": {"metric": "fd"}, "budget": {"num_samples": 1, "max_concurrent": 1},
             "methods": {method: params}}
    swept = run_sweep(space)
    (trial,) = swept.trials
    after = direct()  # the direct run before and after the sweep: the faster is the one compared
    return {"direct": min(before, after), "direct_before": before, "direct_after": after,
            "in_ray": trial["last"]["time_total_s"], "sweep": swept.wall}


@click.command()
@click.option("--method", default="finetune")
@click.option("--seeds", default="0,1")
@click.option("--set", "overrides", multiple=True, help="benchmark.KEY=VALUE settings of split_digits_diffusion")
def main(method: str, seeds: str, overrides: tuple[str, ...]) -> None:
    from orchestrator.spaces import parse_yaml

    bench = {k.split(".", 1)[1]: parse_yaml(v) for k, v in (o.split("=", 1) for o in overrides)}
    t = direct_vs_sweep(method, [int(s) for s in seeds.split(",")], bench)
    print(f"| {method}, seeds {seeds}, {bench or 'laptop defaults'} | seconds | ratio to direct |")
    print("| --- | ---: | ---: |")
    print(f"| run_trial called directly | {t['direct']:.1f} | 1.00 |")
    print(f"| the trial inside Ray (its time_total_s) | {t['in_ray']:.1f} | {t['in_ray'] / t['direct']:.2f} |")
    print(f"| the whole `orchestrate sweep` (Ray start, Optuna, MLflow, table) | {t['sweep']:.1f} | "
          f"{t['sweep'] / t['direct']:.2f} |")


if __name__ == "__main__":
    main()
