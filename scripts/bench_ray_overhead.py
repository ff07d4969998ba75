"""One trial called directly against the same trial run through a whole `orchestrate sweep`
(Ray start, Optuna, checkpoints, MLflow), side by side in one process; prints a Markdown table.

    .venv/bin/python scripts/bench_ray_overhead.py [--method finetune] [--set benchmark.steps_per_task=100]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click
import yaml


@click.command()
@click.option("--method", default="finetune")
@click.option("--seeds", default="0,1")
@click.option("--set", "overrides", multiple=True, help="benchmark.KEY=VALUE settings of split_digits_diffusion")
def main(method: str, seeds: str, overrides: tuple[str, ...]) -> None:
    import torch

    from orchestrator.spaces import parse_yaml
    from trainables.trainable import TrialConfig, run_trial

    torch.set_num_threads(1)  # as a Ray trial with one CPU
    bench = {k.split(".", 1)[1]: parse_yaml(v) for k, v in (o.split("=", 1) for o in overrides)}
    seed_list = [int(s) for s in seeds.split(",")]
    from trainables.build import make_benchmark

    make_benchmark("split_digits_diffusion", bench).classifier()  # train and cache it before timing anything
    start = time.perf_counter()
    run_trial(TrialConfig(method=method, benchmark="split_digits_diffusion", params={"lr": 1e-3},
                          benchmark_params=bench, seeds=tuple(seed_list), objective_metric="fd"))
    direct = time.perf_counter() - start

    from click.testing import CliRunner

    from orchestrator.cli import main as orchestrate

    with tempfile.TemporaryDirectory() as tmp:
        space = {"name": "overhead", "benchmark": {"name": "split_digits_diffusion", **bench}, "seeds": seed_list,
                 "objective": {"metric": "fd"}, "budget": {"num_samples": 1, "max_concurrent": 1},
                 "methods": {method: {"lr": 1e-3}}}
        path = Path(tmp) / "space.yaml"
        path.write_text(yaml.safe_dump(space))
        start = time.perf_counter()
        result = CliRunner().invoke(orchestrate, ["sweep", "--space", str(path), "--runs-dir", f"{tmp}/runs"])
        swept = time.perf_counter() - start
        assert result.exit_code == 0, result.output
        (trial_dir,) = [p for p in Path(tmp, "runs", "overhead", "ray").iterdir() if p.is_dir()]
        last = json.loads((trial_dir / "result.json").read_text().strip().splitlines()[-1])
        in_ray = last["time_total_s"]
    print(f"| {method}, seeds {seeds}, {bench or 'laptop defaults'} | seconds | ratio to direct |")
    print("| --- | ---: | ---: |")
    print(f"| run_trial called directly | {direct:.1f} | 1.00 |")
    print(f"| the trial inside Ray (its time_total_s) | {in_ray:.1f} | {in_ray / direct:.2f} |")
    print(f"| the whole `orchestrate sweep` (Ray start, Optuna, MLflow, table) | {swept:.1f} | {swept / direct:.2f} |")


if __name__ == "__main__":
    main()
