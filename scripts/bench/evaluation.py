"""Section 5, evaluation cost: the share of a split_digits_diffusion trial (finetune, one seed, one thread)
spent in the benchmark's ``evaluate`` (coarse grid: fd, gen_acc, denoise_loss of every seen task) and
``evaluate_dense`` (the dense grid), timed by wrapping those two methods of the trial's benchmark; with the
default dense grid (denoise_loss only) and with reconvergence_digits' dense fd (task 1, 1..128 steps,
full samples). The batched-generation speed-up: one DDIM call for n labels against n calls of one label.
Continual-World rollouts (scripts/bench_cw_rollouts.py) in full mode only."""

from __future__ import annotations

import time

from bench.common import Section, table

TARGET = "evaluation does not dominate training (share < 50 %), with the dense re-convergence grid too"


def eval_share(bench_values: dict) -> dict:
    """Seconds of the whole trial, of coarse and of dense evaluation."""
    import torch

    from trainables.build import configure, make_runs
    from trainables.trainable import Trial

    torch.set_num_threads(1)
    config = configure("finetune", {"lr": 1e-3}, "split_digits_diffusion", bench_values, seeds=(0,))
    runs = make_runs(config)
    bench = runs[0].bench
    bench.classifier()  # trained or loaded before timing
    spent = {"evaluate": 0.0, "evaluate_dense": 0.0}

    def timed(name):
        original = getattr(bench, name)

        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        setattr(bench, name, call)

    timed("evaluate")
    timed("evaluate_dense")
    trial = Trial(config, runs)
    start = time.perf_counter()
    while trial.done < trial.num_tasks:
        trial.next_task()
    return {"total": time.perf_counter() - start, **spent}


def batched_generation(n: int) -> dict:
    """Seconds to sample n images of the laptop model in one call and one at a time (same DDIM steps)."""
    import torch

    from trainables.build import make_benchmark

    torch.set_num_threads(1)
    bench = make_benchmark("split_digits_diffusion", {}, "cpu")
    torch.manual_seed(0)
    model = bench.make_model().eval()
    labels = torch.arange(n) % 2
    steps = bench.config.ddim_steps
    with torch.no_grad():
        bench.sample(model, labels[:2], steps, torch.Generator().manual_seed(0))  # warm-up
        start = time.perf_counter()
        bench.sample(model, labels, steps, torch.Generator().manual_seed(0))
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(n):
            bench.sample(model, labels[i:i + 1], steps, torch.Generator().manual_seed(i))
        single = time.perf_counter() - start
    return {"batched": batched, "single": single, "steps": steps}


def measure(quick: bool) -> Section:
    s = Section("evaluation", "5. Evaluation cost", TARGET)
    steps, tasks = (100, 2) if quick else (300, 5)
    base = {"steps_per_task": steps, "num_tasks": tasks}
    dense = {**base, "dense_until": 128, "dense_metrics": ["fd", "denoise_loss"], "dense_tasks": [1]}
    shares = {"default grid (dense: denoise_loss)": eval_share(base),
              "reconvergence_digits grid (dense fd of task 1 up to step 128)": eval_share(dense)}
    n = 20 if quick else 100
    gen = batched_generation(n)
    share = {k: (v["evaluate"] + v["evaluate_dense"]) / v["total"] for k, v in shares.items()}
    worst = max(share.values())
    s.judge(worst, " / ".join(f"{v:.0%}" for v in share.values()) + f" of the trial evaluating; batched "
            f"generation {gen['single'] / gen['batched']:.1f}× faster", worst < 0.5,
            f"evaluation takes {worst:.0%} of the trial at {steps} steps a task (the coarse grid evaluates "
            "every seen task with fd sampling after every eval_every steps and at each task's end)",
            "fewer fd samples at dense steps (`dense_eval_samples_per_class`) or a larger `eval_every`; "
            "the full mode (300 steps a task, the laptop preset) measures the share at the quickstart size")
    rows = [[k, f"{share[k]:.2f}", f"{v['evaluate_dense'] / v['total']:.2f}"] for k, v in shares.items()]
    rows.append([f"batched generation speed-up ({n} images, one call / {n} calls)",
                 f"{gen['single'] / gen['batched']:.1f}×", ""])
    s.tables.append(table(["finetune, 1 seed, 1 thread", "share evaluating", "of which dense"], rows))
    s.tables.append(table([f"split_digits_diffusion laptop, {tasks} tasks × {steps} steps", "trial s",
                           "coarse evaluation s", "dense evaluation s"],
                          [[k, f"{v['total']:.1f}", f"{v['evaluate']:.1f}", f"{v['evaluate_dense']:.1f}"]
                           for k, v in shares.items()]))
    s.tables.append(table([f"DDIM sampling, {gen['steps']} steps, laptop UNet", "seconds", "images/s"],
                          [[f"{n} images in one call", f"{gen['batched']:.2f}", f"{n / gen['batched']:.1f}"],
                           [f"{n} images one at a time", f"{gen['single']:.2f}", f"{n / gen['single']:.1f}"]]))
    if quick:
        s.notes.append("Continual-World rollouts: not measured in --quick (building Meta-World and 200-step "
                       "episodes take minutes on 2 cores); the full mode runs scripts/bench_cw_rollouts.py.")
    else:
        from bench_cw_rollouts import throughput

        rows = throughput("cw_mini", 10, 20, 2, "cpu")
        s.tables.append(table(["Continual-World cw_mini, K = 10 rollouts", "value", "unit"],
                              [[name, f"{v:.3g}", unit] for name, v, unit in rows]))
    return s
