"""From long records to per-seed scores, per-configuration summaries and one row per method.

A configuration is (method, config_id), with ``benchmark`` and ``sweep`` as extra keys when those
columns are present; without a ``config_id`` column (or where it is NaN) the method name is used.
An incomplete configuration gets NaN numbers and a ``missing`` message: it is never averaged over the
seeds that survived.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import metrics as M
from core import stats
from core.errors import InputError

REQUIRED = ("method", "seed", "step", "train_task", "eval_task", "metric", "value")
SCORES = ("final", "forgetting", "bwt", "aaa")
_MAX_ENTRIES = 4  # partial (k, j) entries named per seed before "and n more"


class IncompleteRecords(InputError):
    """The records cannot give the requested table (metric or columns absent)."""


def _prepare(records: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, list[str]]:
    absent = [c for c in REQUIRED if c not in records.columns]
    if absent:
        raise IncompleteRecords(f"records lack column(s) {', '.join(absent)}")
    present = sorted(map(str, records["metric"].dropna().unique()))
    if metric not in present:
        raise IncompleteRecords(f"metric {metric!r} not in records; metrics present: "
                                f"{', '.join(present) if present else 'none'}")
    method = records["method"].to_numpy(dtype=object)
    config = records["config_id"].to_numpy(dtype=object) if "config_id" in records else method
    df = records.assign(config_id=[_config_name(c, m) for c, m in zip(config, method)])
    keys = [c for c in ("benchmark", "sweep") if c in df.columns] + ["method", "config_id"]
    return df, keys


def _config_name(config, method) -> str:
    """config_id as text: the method where NaN; 7.0 (an int column upcast by NaN) -> '7'."""
    if pd.isna(config):
        return str(method)
    if isinstance(config, float) and config.is_integer():
        return str(int(config))
    return str(config)


def _ranges(tasks: list[int]) -> str:
    """[1, 2, 3, 5] -> 'tasks 1-3, 5'; [4] -> 'task 4'."""
    spans, start = [], tasks[0]
    for prev, cur in zip(tasks, tasks[1:] + [None]):
        if cur != prev + 1:
            spans.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = cur
    return ("task " if len(tasks) == 1 else "tasks ") + ", ".join(spans)


def _missing(R: np.ndarray) -> str:
    """Words for the missing lower-triangle entries of R ('' when none)."""
    n = R.shape[0]
    holes = [(k, j) for k in range(1, n + 1) for j in range(1, k + 1) if np.isnan(R[k - 1, j - 1])]
    phases = [k for k in range(1, n + 1) if all((k, j) in holes for j in range(1, k + 1))]
    entries = [f"task {j} after task {k}" for k, j in holes if k not in phases]
    parts = [_ranges(phases) + " missing"] if phases else []
    if entries:
        more = f" and {len(entries) - _MAX_ENTRIES} more" if len(entries) > _MAX_ENTRIES else ""
        parts.append(", ".join(entries[:_MAX_ENTRIES]) + more + " missing")
    return "; ".join(parts)


def per_seed_scores(records: pd.DataFrame, metric: str, higher_is_better: bool,
                    num_tasks: int | None = None, seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per (method, config_id, seed): final, forgetting, bwt, aaa (METHODS.md §5), num_tasks,
    complete, missing.

    num_tasks is N: the given ``num_tasks`` (the stream's length, so a run stopped early is incomplete),
    else the largest train_task over all seeds (and all metrics) of the configuration. ``seeds`` names
    the seeds every configuration should have: one without records counts as missing. A seed is complete when R[k, j] of ``metric`` exists for every j <= k <= N; an incomplete seed has NaN
    scores and ``missing`` says what lacks (e.g. "tasks 4-5 missing"). A seed with records of other
    metrics only counts as a seed with everything missing.
    """
    df, keys = _prepare(records, metric)
    rows = []
    for key, cfg in df.groupby(keys, dropna=False, sort=True):
        n = num_tasks or int(cfg["train_task"].max())
        evals = cfg[cfg["metric"] == metric]
        for seed in sorted(set(cfg["seed"].unique()) | set(seeds or [])):
            R = M.result_matrix(evals[evals["seed"] == seed], num_tasks=n)
            missing = _missing(R)
            scores = dict.fromkeys(SCORES, float("nan"))
            if not missing:
                scores = {"final": M.final_average(R), "forgetting": M.forgetting(R, higher_is_better),
                          "bwt": M.bwt(R), "aaa": M.aaa(R)}
            rows.append({**dict(zip(keys, key)), "seed": int(seed), **scores, "num_tasks": n,
                         "complete": not missing, "missing": missing})
    columns = keys + ["seed", *SCORES, "num_tasks", "complete", "missing"]
    return pd.DataFrame(rows, columns=columns)


def summarize(records: pd.DataFrame, metric: str, higher_is_better: bool, num_tasks: int | None = None,
              seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per (method, config_id): seeds, num_tasks, complete, mean and SE over seeds of each
    score (``final``, ``final_se``, ...; SE from core.stats.mean_se) and ``missing``.

    An incomplete configuration (any seed incomplete) has NaN numbers, never an average over the seeds
    that survived; ``missing`` then reads e.g. "seed 1: tasks 4-5 missing". Raises IncompleteRecords if
    ``metric`` is not in the records. ``num_tasks`` and ``seeds``: as in ``per_seed_scores``.
    """
    scores = per_seed_scores(records, metric, higher_is_better, num_tasks, seeds)
    keys = [c for c in scores.columns if c in ("benchmark", "sweep", "method", "config_id")]
    rows = []
    for key, cfg in scores.groupby(keys, dropna=False, sort=True):
        complete = bool(len(cfg) > 0 and cfg["complete"].all())
        row = {**dict(zip(keys, key)), "seeds": len(cfg), "num_tasks": int(cfg["num_tasks"].iloc[0]),
               "complete": complete}
        for name in SCORES:
            mean, se, _ = stats.mean_se(cfg[name]) if complete else (float("nan"), float("nan"), 0)
            row[name], row[f"{name}_se"] = mean, se
        bad = cfg[~cfg["complete"]]
        row["missing"] = "; ".join(f"seed {s}: {m}" for s, m in zip(bad["seed"], bad["missing"]))
        rows.append(row)
    columns = keys + ["seeds", "num_tasks", "complete"] + [f"{s}{x}" for s in SCORES for x in ("", "_se")]
    return pd.DataFrame(rows, columns=columns + ["missing"])


def select(summary: pd.DataFrame, config_ids: dict[str, str] | None = None, *,
           higher_is_better: bool) -> pd.DataFrame:
    """One row per method (per benchmark/sweep when present) from a ``summarize`` table.

    A method named in ``config_ids`` gets that configuration, complete or not (ValueError if it is not
    in the summary). Any other method gets its complete configuration with the best ``final`` (highest,
    or lowest when ``higher_is_better`` is False; ties go to the first config_id in sort order). A method
    with no complete configuration keeps one row with complete=False (its only configuration, or else
    the one with most seeds, with ``missing`` naming all). Column ``selected_by`` says which rule applied.
    """
    config_ids = dict(config_ids or {})
    unknown = sorted(set(config_ids) - set(summary["method"]))
    if unknown:
        raise InputError(f"select: method(s) {', '.join(unknown)} not in the summary")
    keys = [c for c in ("benchmark", "sweep") if c in summary.columns] + ["method"]
    rows = []
    for _, group in summary.groupby(keys, dropna=False, sort=True):
        method = group["method"].iloc[0]
        if method in config_ids:
            chosen = group[group["config_id"] == str(config_ids[method])]
            if chosen.empty:
                raise InputError(f"select: configuration {config_ids[method]!r} of {method} not in the "
                                 f"summary; present: {', '.join(sorted(group['config_id']))}")
            rows.append(chosen.iloc[0].to_dict() | {"selected_by": "given"})
            continue
        done = group[group["complete"]].sort_values(
            ["final", "config_id"], ascending=[not higher_is_better, True], kind="stable")
        if len(done):
            rows.append(done.iloc[0].to_dict() | {"selected_by": "best final"})
            continue
        fallback = group.sort_values(["seeds", "config_id"], ascending=[False, True], kind="stable")
        row = fallback.iloc[0].to_dict() | {"selected_by": "no complete configuration"}
        if len(group) > 1:
            detail = "; ".join(f"{c}: {m}" for c, m in zip(group["config_id"], group["missing"]))
            row["missing"] = f"no complete configuration among {len(group)} ({detail})"
        rows.append(row)
    return pd.DataFrame(rows, columns=list(summary.columns) + ["selected_by"])


def objective_scores(records: pd.DataFrame, metric: str, reduce: str, higher_is_better: bool,
                     num_tasks: int | None = None, seeds: list[int] | None = None) -> dict[tuple[str, str], float]:
    """{(method, config_id): seed-mean objective} of the complete configurations: ``metric`` at the end of
    the last task reduced over tasks as the sweep did (core.stats.reduce_tasks: mean, the final average;
    worst; last, task N), then the mean over seeds (core.stats.mean_se)."""
    scores = per_seed_scores(records, metric, higher_is_better, num_tasks, seeds)
    df, keys = _prepare(records, metric)
    out = {}
    for (method, config_id), rows in scores.groupby(["method", "config_id"], sort=True):
        if not rows["complete"].all():
            continue
        n = int(rows["num_tasks"].iloc[0])
        values = []
        for seed in rows["seed"]:
            evals = df[(df["config_id"] == config_id) & (df["metric"] == metric) & (df["seed"] == seed)]
            R = M.result_matrix(evals, num_tasks=n)
            values.append(stats.reduce_tasks({j: R[n - 1, j - 1] for j in range(1, n + 1)}, reduce,
                                             higher_is_better))
        out[(method, config_id)] = stats.mean_se(values)[0]
    return out


def best_configs(records: pd.DataFrame, metric: str, reduce: str, higher_is_better: bool,
                 num_tasks: int | None = None, seeds: list[int] | None = None) -> dict[str, str]:
    """{method: config_id} of the best complete configuration by the objective (ties: first config_id)."""
    best: dict[str, tuple[float, str]] = {}
    sign = 1.0 if higher_is_better else -1.0
    for (method, config_id), value in sorted(objective_scores(records, metric, reduce, higher_is_better,
                                                              num_tasks, seeds).items()):
        if not np.isfinite(value):
            continue
        if method not in best or sign * value > sign * best[method][0]:
            best[method] = (value, config_id)
    return {method: config_id for method, (_, config_id) in best.items()}
