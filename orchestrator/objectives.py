"""A trial's objectives after each task, from its records (what Ray, ASHA and Optuna are told).

Per objective (``space_selection.Objective``) and seed: ``score: final`` is the metric of the seen tasks at
task k's last evaluation reduced over tasks (core.stats.reduce_tasks: the running final average, the worst,
or task k's own; as trainables' ``objective_value``); ``score: forgetting`` is the forgetting after task k
(METHODS.md §5): the mean over j < k of R[j, j] − R[k, j] when higher is better, R[k, j] − R[j, j] when
lower is, R[k, j] at the last evaluation of phase k; 0 after the first task (nothing to forget yet). The
seeds then become one number by the objective's rule (core.stats.seed_objective: mean, or mean ∓ k·SE).

Keys: the first objective reports ``objective`` (the rule's value), ``objective_mean``, ``objective_se`` and
``objective_seed<s>``; a second one the same with ``objective2``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from core.stats import mean_se, reduce_tasks, seed_objective


def prefix(index: int) -> str:
    """``objective`` for the first objective, ``objective2`` for the second."""
    return "objective" if index == 0 else f"objective{index + 1}"


def _phase_values(records, seed: int, metric: str, task: int) -> dict[int, float]:
    """{eval_task: value} of ``metric`` at the last step of phase ``task`` of ``seed``."""
    rows = [r for r in records if r.train_task == task and r.seed == seed and r.metric == metric]
    if not rows:
        return {}
    end = max(r.step for r in rows)
    return {r.eval_task: float(r.value) for r in rows if r.step == end}


def seed_value(records, seed: int, task: int, goal, higher: bool) -> float:
    """One seed's value of ``goal`` after ``task``; NaN when an evaluation it needs is missing."""
    now = _phase_values(records, seed, goal.metric, task)
    if goal.score == "final":
        return reduce_tasks(now, goal.reduce, higher) if now else float("nan")
    if task == 1:
        return 0.0
    drops = []
    for j in range(1, task):
        then = _phase_values(records, seed, goal.metric, j).get(j, float("nan"))
        drop = then - now.get(j, float("nan"))
        drops.append(drop if higher else -drop)
    return float(np.mean(drops))


def report(records: Iterable, seeds: Iterable[int], task: int, goals, directions: dict[str, bool]) -> dict:
    """The report keys of every objective after ``task`` (see the module docstring)."""
    wanted = {goal.metric for goal in goals}
    by_seed: dict[int, list] = {s: [] for s in seeds}
    for r in records:  # one pass: the goals' metrics per seed, up to this task
        if r.metric in wanted and r.train_task <= task and r.seed in by_seed:
            by_seed[r.seed].append(r)
    out: dict[str, float] = {}
    for i, goal in enumerate(goals):
        higher = directions[goal.metric]
        values = {s: seed_value(by_seed[s], s, task, goal, higher) for s in seeds}
        mean, se, _ = mean_se(values.values())
        optimised_higher = higher and goal.score == "final"
        key = prefix(i)
        out[key] = seed_objective(values.values(), goal.seeds, goal.k, optimised_higher)
        out[f"{key}_mean"], out[f"{key}_se"] = mean, se
        out.update({f"{key}_seed{s}": v for s, v in values.items()})
    return out
