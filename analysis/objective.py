"""A sweep's objective recomputed from records, as the sweep computed it (orchestrator.objectives):
per seed, ``score: final`` is the metric at the end of the stream reduced over tasks (core.stats.
reduce_tasks) and ``score: forgetting`` its forgetting (analysis.metrics, METHODS.md §5); over seeds, the
objective's rule (core.stats.seed_objective: the mean, or mean ∓ k·SE). Only complete configurations get
numbers (analysis.table's completeness).

An objective is a dict as a Source holds it: ``metric``, ``reduce``, ``mode`` and optionally ``score``
(final), ``seeds`` (mean) and ``k`` (0); values may be the strings MLflow params are.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis import table as T
from core import stats


def goal(objective: dict) -> dict:
    """``objective`` with every key present and typed."""
    k = objective.get("k", 0.0)
    return {"metric": str(objective["metric"]), "reduce": str(objective.get("reduce") or "mean"),
            "mode": str(objective.get("mode") or ""), "score": str(objective.get("score") or "final"),
            "seeds": str(objective.get("seeds") or "mean"), "k": float(k) if k not in (None, "") else 0.0}


def label(objective: dict) -> str:
    """``mean_fd``, ``worst_accuracy``, ``forgetting_fd``; ``_lb1`` appended for a lower bound with k = 1."""
    g = goal(objective)
    name = f"forgetting_{g['metric']}" if g["score"] == "forgetting" else f"{g['reduce']}_{g['metric']}"
    return name + (f"_lb{g['k']:g}" if g["seeds"] == "lower_bound" else "")


def optimised_higher(objective: dict, metric_higher: bool) -> bool:
    """Whether a larger objective is better: the metric's direction for ``final``, never for ``forgetting``."""
    return metric_higher and goal(objective)["score"] == "final"


def per_seed_values(records: pd.DataFrame, objective: dict, metric_higher: bool, num_tasks: int | None = None,
                    seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per (method, config_id, seed): ``value`` of the objective for that seed (NaN when the seed
    is incomplete) and ``complete``."""
    g = goal(objective)
    scores = T.per_seed_scores(records, g["metric"], metric_higher, num_tasks, seeds)
    if g["score"] == "forgetting":
        values = scores["forgetting"].to_numpy(float)
    elif g["reduce"] == "mean":
        values = scores["final"].to_numpy(float)
    else:
        df, _ = T._prepare(records, g["metric"])
        values = []
        for row in scores.itertuples():
            if not row.complete:
                values.append(math.nan)
                continue
            cfg = df[(df["method"] == row.method) & (df["config_id"] == row.config_id)]
            n = int(row.num_tasks)
            R, _ = T._seed_matrix(cfg, g["metric"], row.seed, n)
            values.append(stats.reduce_tasks({j: R[n - 1, j - 1] for j in range(1, n + 1)}, g["reduce"],
                                             metric_higher))
    return scores[["method", "config_id", "seed", "complete"]].assign(value=np.asarray(values, dtype=float))


def summary(records: pd.DataFrame, objective: dict, metric_higher: bool, num_tasks: int | None = None,
            seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per (method, config_id): ``seeds``, ``complete``, ``mean`` and ``se`` over seeds
    (core.stats.mean_se) and ``value``, the objective by its seed rule (NaN unless complete)."""
    g = goal(objective)
    higher = optimised_higher(g, metric_higher)
    rows = []
    for (method, config_id), cfg in per_seed_values(records, g, metric_higher, num_tasks, seeds).groupby(
            ["method", "config_id"], sort=True):
        complete = bool(cfg["complete"].all())
        mean, se, n = stats.mean_se(cfg["value"]) if complete else (math.nan, math.nan, len(cfg))
        value = stats.seed_objective(cfg["value"], g["seeds"], g["k"], higher) if complete else math.nan
        rows.append({"method": method, "config_id": config_id, "seeds": n, "complete": complete, "mean": mean,
                     "se": se, "value": value})
    return pd.DataFrame(rows, columns=["method", "config_id", "seeds", "complete", "mean", "se", "value"])


def best_by_objective(records: pd.DataFrame, objective: dict, metric_higher: bool, num_tasks: int | None = None,
                      seeds: list[int] | None = None) -> dict[str, str]:
    """{method: config_id} of each method's best complete configuration by the objective (its seed rule
    included); ties go to the first config_id in sort order."""
    higher = optimised_higher(objective, metric_higher)
    best: dict[str, tuple[float, str]] = {}
    table = summary(records, objective, metric_higher, num_tasks, seeds)
    for row in table.itertuples():
        if not np.isfinite(row.value):
            continue
        if row.method not in best or (row.value > best[row.method][0] if higher else row.value < best[row.method][0]):
            best[row.method] = (row.value, row.config_id)
    return {method: config_id for method, (_, config_id) in best.items()}
