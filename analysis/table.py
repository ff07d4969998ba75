"""From long records to per-seed scores, per-configuration summaries and one row per method.

A configuration is (method, config_id), with ``benchmark`` and ``sweep`` as extra keys when those
columns are present; without a ``config_id`` column (or where it is NaN) the method name is used.
An incomplete configuration gets NaN numbers and a ``missing`` message: it is never averaged over the
seeds that survived.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import completeness as C
from analysis import metrics as M
from core import stats
from core.errors import InputError

REQUIRED = ("method", "seed", "step", "train_task", "eval_task", "metric", "value")
SCORES = ("final", "forgetting", "bwt", "aaa")


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
    C.check_finite(records, metric)
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


def _seed_matrix(cfg: pd.DataFrame, metric: str, seed, n: int) -> tuple[np.ndarray, dict[int, int]]:
    """R of ``metric`` for one seed of one configuration (all metrics in ``cfg``), each R[k, j] taken at
    the last step of phase k over all of that seed's records, and those phase ends."""
    run = cfg[cfg["seed"] == seed]
    ends = C.phase_ends(run)
    return M.result_matrix(run[run["metric"] == metric], num_tasks=n, ends=ends), ends


def per_seed_scores(records: pd.DataFrame, metric: str, higher_is_better: bool,
                    num_tasks: int | None = None, seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per (method, config_id, seed): final, forgetting, bwt, aaa (METHODS.md §5), num_tasks,
    num_tasks_inferred, complete, missing.

    N (num_tasks) is the stream's length (analysis.completeness.stream_lengths): ``num_tasks`` (the
    sweep's), else the records' num_tasks column, else the largest train_task of the benchmark
    (num_tasks_inferred True). ``seeds`` names the seeds every configuration should have: one without
    records counts as missing. A seed is complete when R[k, j] of ``metric`` exists for every
    j <= k <= N at the last step of phase k of that seed (any metric's records); an incomplete seed has
    NaN scores and ``missing`` says what lacks (e.g. "tasks 4-5 missing"). A seed with records of other
    metrics only counts as a seed with everything missing.
    """
    df, keys = _prepare(records, metric)
    lengths = C.stream_lengths(df, keys, num_tasks)
    rows = []
    for key, cfg in df.groupby(keys, dropna=False, sort=True):
        n, inferred = lengths[key if isinstance(key, tuple) else (key,)]
        for seed in sorted(set(cfg["seed"].unique()) | set(seeds or [])):
            R, ends = _seed_matrix(cfg, metric, seed, n)
            missing = C.missing(R, ends)
            scores = dict.fromkeys(SCORES, float("nan"))
            if not missing:
                scores = {"final": M.final_average(R), "forgetting": M.forgetting(R, higher_is_better),
                          "bwt": M.bwt(R), "aaa": M.aaa(R)}
            rows.append({**dict(zip(keys, key)), "seed": int(seed), **scores, "num_tasks": n,
                         "num_tasks_inferred": inferred, "complete": not missing, "missing": missing})
    columns = keys + ["seed", *SCORES, "num_tasks", "num_tasks_inferred", "complete", "missing"]
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
               "num_tasks_inferred": bool(cfg["num_tasks_inferred"].iloc[0]), "complete": complete}
        for name in SCORES:
            mean, se, _ = stats.mean_se(cfg[name]) if complete else (float("nan"), float("nan"), 0)
            row[name], row[f"{name}_se"] = mean, se
        bad = cfg[~cfg["complete"]]
        row["missing"] = "; ".join(f"seed {s}: {m}" for s, m in zip(bad["seed"], bad["missing"]))
        rows.append(row)
    columns = keys + ["seeds", "num_tasks", "num_tasks_inferred", "complete"] + [f"{s}{x}" for s in SCORES for x in ("", "_se")]
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
        cfg = df[(df["method"] == method) & (df["config_id"] == config_id)]
        for seed in rows["seed"]:
            R, _ = _seed_matrix(cfg, metric, seed, n)
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


