"""Section 7, memory: resident memory of a 20-task permuted_digits trial (finetune, SGD; 002's online
protocol) run task by task as a sweep's trial runs it (``Trial.next_task`` then the report's
``records_csv``), with 1 and with 3 seeds: RSS after each task, and the peak above the RSS before the trial."""

from __future__ import annotations

from bench.common import Section, peak_rss_mib, reset_peak_rss, rss_mib, table

TARGET = "a 20-task, 3-seed trial stays flat in memory: RSS after task 20 ≤ 1.05 × after task 1"


def rss_by_task(seeds: tuple[int, ...], num_tasks: int = 20) -> dict:
    """RSS (MiB) after each task, the records count, and the peak above the start."""
    import torch

    from trainables.build import configure, make_runs
    from trainables.trainable import Trial

    torch.set_num_threads(1)
    config = configure("finetune", {"optimizer": "sgd", "lr": 0.03}, "permuted_digits", {"num_tasks": num_tasks},
                       seeds=seeds, objective_metric="accuracy")
    reset_peak_rss()
    base = rss_mib()
    trial = Trial(config, make_runs(config), {"config_id": "bench", "sweep": "bench", "stage": "search"})
    after, records = [], []
    while trial.done < num_tasks:
        trial.next_task()
        trial.records_csv()  # what each report serialises
        after.append(rss_mib())
        records.append(len(trial.records))
    return {"base": base, "after": after, "records": records, "peak": peak_rss_mib() - base}


def measure(quick: bool) -> Section:
    s = Section("memory", "7. Memory", TARGET)
    runs = {n: rss_by_task(tuple(range(n))) for n in (1, 3)}
    three = runs[3]
    ratio = three["after"][-1] / three["after"][0]
    s.judge(ratio, f"{ratio:.3f}× (task 20 / task 1, 3 seeds)", ratio <= 1.05,
            "RSS grows as tasks go by", "find what each task keeps (tracemalloc snapshots between tasks)")
    s.tables.append(table(["permuted_digits, 20 tasks", "RSS after task 20 / after task 1",
                           "RSS after task 20 / after task 5"],
                          [[f"{n} seed{'s' * (n > 1)}", f"{r['after'][-1] / r['after'][0]:.3f}",
                            f"{r['after'][-1] / r['after'][4]:.3f}"] for n, r in runs.items()]))
    marks = (1, 2, 5, 10, 15, 20)
    s.tables.append(table(["RSS (MiB) after task", *map(str, marks), "records at 20", "peak above start"],
                          [[f"{n} seed{'s' * (n > 1)}", *(f"{r['after'][k - 1]:.0f}" for k in marks),
                            r["records"][-1], f"{r['peak']:.0f}"] for n, r in runs.items()]))
    s.notes.append("Both trials run in the one bench process (torch, the benchmark's data and the imports "
                   "are already resident, so the figures are the process's RSS, not the trial's alone); the "
                   "1-seed trial runs first. The records themselves are small (under 1 MiB at task 20 with "
                   "3 seeds), so the RSS curve shows whether anything else accumulates per task.")
    return s
