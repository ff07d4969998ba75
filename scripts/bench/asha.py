"""Section 4, ASHA at task boundaries: the same reduced ``trust_region_digits`` sweep (the same Optuna
proposals: its sampler is seeded and within TPE's random start-up trials, so both sweeps try the same
configurations) run with ``scheduler: asha`` and with ``none``; compute = the tasks the trials trained
(every task the same steps and seeds), and their seconds. The best configuration is the finished one with
the best final objective (fd, lower is better)."""

from __future__ import annotations

import math

import yaml

from bench.common import Section, run_sweep, table

TARGET = "compute with ASHA ≤ 40 % of without, same best configuration"


def space(quick: bool, scheduler: str) -> dict:
    """trust_region_digits, reduced: one seed, a small UNet stream and few configurations."""
    from search_spaces import __file__ as spaces_init
    from pathlib import Path

    base = yaml.safe_load((Path(spaces_init).parent / "trust_region_digits.yaml").read_text())
    methods = base["methods"]
    methods["trust_region"].update({"fisher_samples": 32, "buffer_per_task": 32})
    if quick:
        bench = {"name": "split_digits_diffusion", "preset": "tiny", "num_tasks": 4, "steps_per_task": 20,
                 "eval_every": 20}
        budget = {"num_samples": 6, "grace_period": 1, "reduction_factor": 2}
    else:
        bench = {"name": "split_digits_diffusion", "steps_per_task": 100}
        budget = {"num_samples": 10, "grace_period": base["budget"]["grace_period"],
                  "reduction_factor": base["budget"]["reduction_factor"]}
    return {**base, "name": "asha", "benchmark": bench, "seeds": [0], "methods": methods,
            "budget": {**base["budget"], **budget, "scheduler": scheduler, "max_concurrent": 2}}


def _key(config: dict, keys: list[str]) -> str:
    """The sampled values of a configuration (the keys that differ between trials)."""
    return ", ".join(f"{k.split('.')[-1]} {config[k]:.3g}" if isinstance(config[k], float)
                     else f"{k.split('.')[-1]} {config[k]}" for k in keys)


def summary(run, num_tasks: int) -> dict:
    tasks = sum(int(t["last"].get("task", 0)) for t in run.trials)
    seconds = sum(t["last"].get("time_total_s", 0.0) for t in run.trials)
    finished = [t for t in run.trials if int(t["last"].get("task", 0)) == num_tasks
                and math.isfinite(t["last"].get("objective_final", math.nan))]
    best = min(finished, key=lambda t: t["last"]["objective_final"]) if finished else None
    keys = sorted(k for k in run.trials[0]["config"] if len({str(t["config"].get(k)) for t in run.trials}) > 1)
    return {"tasks": tasks, "seconds": seconds, "wall": run.wall, "trials": len(run.trials),
            "finished": len(finished), "best": _key(best["config"], keys) if best else "none",
            "best_value": best["last"]["objective_final"] if best else math.nan}


def measure(quick: bool) -> Section:
    s = Section("asha", "4. ASHA at task boundaries", TARGET)
    spaces = {name: space(quick, name) for name in ("none", "asha")}
    num_tasks = spaces["none"]["benchmark"].get("num_tasks", 5)
    runs = {name: summary(run_sweep(sp), num_tasks) for name, sp in spaces.items()}
    fifo, asha = runs["none"], runs["asha"]
    ratio = asha["tasks"] / fifo["tasks"]
    same = asha["best"] == fifo["best"]
    b = spaces["asha"]["budget"]
    s.judge(ratio, f"{ratio:.0%} of the tasks ({asha['seconds'] / fifo['seconds']:.0%} of the trial seconds), "
            f"same best: {'yes' if same else 'no'}", ratio <= 0.4 and same,
            (f"with {b['num_samples']} configurations, grace {b['grace_period']} and reduction factor "
             f"{b['reduction_factor']} over {num_tasks} tasks, asynchronous ASHA lets the first trials of each "
             "rung through (nothing to compare with yet), so few are stopped" if ratio > 0.4 else "")
            + ("" if same else "; ASHA stopped the configuration the full sweep found best"),
            "measure with the real space's 16 configurations (full mode or `orchestrate sweep --space "
            "trust_region_digits` with and without `--set budget.scheduler=none`); more configurations per "
            "rung make ASHA's share approach its 1/η bound")
    s.tables.append(table(["ASHA against none", "ratio"],
                          [["tasks trained", f"{ratio:.2f}"],
                           ["trial seconds", f"{asha['seconds'] / fifo['seconds']:.2f}"],
                           ["sweep wall seconds", f"{asha['wall'] / fifo['wall']:.2f}"],
                           ["same best configuration", "yes" if same else "no"]]))
    size = (f"trust_region_digits reduced: {b['num_samples']} configurations × seed 0, "
            f"{'tiny preset, 4 tasks × 20 steps' if quick else 'laptop, 5 tasks × 100 steps'}, "
            f"grace {b['grace_period']}, η {b['reduction_factor']}")
    s.tables.append(table([size, "trials finished", "tasks trained", "trial seconds", "sweep seconds",
                           "best configuration", "its fd"],
                          [[name, f"{r['finished']}/{r['trials']}", r["tasks"], f"{r['seconds']:.1f}",
                            f"{r['wall']:.1f}", r["best"], f"{r['best_value']:.2f}"] for name, r in runs.items()]))
    return s
