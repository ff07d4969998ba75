"""Steps to re-converge (000 Table 2 and Tables 8-23; METHODS.md §5).

For an old task j and a later task k > j: the number of steps s - s_k to the first evaluation s > s_k
(strictly after, so never 0) inside task k's phase at which task j is back within a threshold of its
reference P_j; None ("–" in the paper) if it never gets there in that phase. s_k, the step at which
training on task k began, is the step of the last record (any metric) with train_task == k-1; s_1 = 0.
Lower-is-better metrics use value <= (1 + x)·P_j, higher-is-better ones value >= x·P_j.

A curve is a table with columns step, train_task, value (and eval_task, metric when present) holding one
value per step: the records of one run, or a seed-mean curve.
"""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np
import pandas as pd

from analysis import table
from core.errors import InputError
from core.stats import mean_se

LOWER_THRESHOLDS = (0.1, 0.2, 0.3)      # value <= (1 + x)·P_j (000 Table 2: FID)
HIGHER_THRESHOLDS = (0.99, 0.9, 0.8)    # value >= x·P_j (000: success rate)
_RUN_KEYS = ("benchmark", "sweep", "method", "config_id", "seed")
_GRID = ["step", "train_task", "eval_task"]
SEED_COLUMNS = ["steps_se", "reconverged", "seeds", "steps_reconverged_mean"]


def phase_starts(records: pd.DataFrame) -> dict[int, int]:
    """{k: s_k} for k = 1..N from the records of ONE run (or a seed-mean curve with step, train_task):
    s_1 = 0 and s_k = the step of the last record of any metric with train_task == k-1 (its end-of-task
    evaluation). Raises ValueError if the records mix runs or a phase before the last one has no record.
    """
    for key in _RUN_KEYS:
        if key in records.columns and records[key].nunique(dropna=False) > 1:
            values = sorted(map(str, records[key].unique()))
            raise InputError(f"phase_starts: records must hold one run, got {key} {', '.join(values)}")
    if not len(records):
        return {}
    last = records.groupby("train_task")["step"].max()
    if int(last.index.min()) < 1:
        raise InputError("phase_starts: train_task must be >= 1 (tasks numbered from 1)")
    starts = {1: 0}
    for k in range(2, int(last.index.max()) + 1):
        if k - 1 not in last.index:
            raise InputError(f"phase_starts: no record with train_task {k - 1}, so the start of task "
                             f"{k}'s phase is unknown")
        starts[k] = int(last[k - 1])
    return starts


def _task_rows(curve: pd.DataFrame, j: int, name: str) -> pd.DataFrame:
    """Rows of task j's curve (eval_task == j when that column is present), for one metric."""
    if "metric" in curve.columns and curve["metric"].nunique() > 1:
        raise InputError(f"{name}: curve must hold one metric, got "
                         f"{', '.join(sorted(map(str, curve['metric'].unique())))}")
    return curve[curve["eval_task"] == j] if "eval_task" in curve.columns else curve


def _one_per_step(rows: pd.DataFrame, j: int, name: str) -> None:
    dup = rows["step"].duplicated()
    if dup.any():
        raise InputError(f"{name}: several values of task {j} at step {rows['step'][dup].iloc[0]}; "
                         "pass the curve of one run or a seed-mean curve")


def reference(curve: pd.DataFrame, j: int, reference: Literal["end", "best"],
              higher_is_better: bool) -> float:
    """P_j (METHODS.md §5) from task j's curve: "end" = its value at the last step with train_task == j
    (R[j, j], the paper's reference), "best" = its best value (max if higher_is_better, else min) over
    the rows with train_task == j. ValueError if task j has no evaluation during its own phase."""
    if reference not in ("end", "best"):
        raise InputError(f"reference: reference must be 'end' or 'best', got {reference!r}")
    own = _task_rows(curve, j, "reference")
    own = own[own["train_task"] == j]
    if own.empty:
        raise InputError(f"reference: task {j} has no evaluation during its own phase (train_task {j})")
    _one_per_step(own, j, "reference")
    values = own["value"].to_numpy(float)
    if reference == "end":
        return float(values[np.argmax(own["step"].to_numpy())])
    return float(np.max(values) if higher_is_better else np.min(values))


def steps_to_reconverge(curve: pd.DataFrame, j: int, k: int, s_k: int, target_ref: float,
                        threshold: float, higher_is_better: bool) -> int | None:
    """Steps s - s_k to the first evaluation of task j at s > s_k with train_task == k whose value is
    <= (1 + threshold)·target_ref (lower is better) or >= threshold·target_ref (higher is better);
    None if no evaluation of phase k meets it (or phase k has none after s_k). 000 Table 2."""
    if k <= j:
        raise InputError(f"steps_to_reconverge: k must come after j, got j={j}, k={k}")
    rows = _task_rows(curve, j, "steps_to_reconverge")
    phase = rows[(rows["train_task"] == k) & (rows["step"] > s_k)].sort_values("step", kind="stable")
    _one_per_step(phase, j, "steps_to_reconverge")
    values = phase["value"].to_numpy(float)
    met = values >= threshold * target_ref if higher_is_better else values <= (1 + threshold) * target_ref
    if not met.any():
        return None
    return int(phase["step"].to_numpy()[np.argmax(met)] - s_k)


def _name(ident: dict) -> str:
    """'method A (config a1)', with benchmark/sweep when present."""
    extra = "".join(f", {key} {ident[key]}" for key in ("benchmark", "sweep") if key in ident)
    config = f" (config {ident['config_id']}{extra})" if ident["config_id"] != ident["method"] or extra else ""
    return f"method {ident['method']}{config}"


def _entries(curve: pd.DataFrame, j: int, n: int, starts: dict[int, int], thresholds: tuple[float, ...],
             kind: str, higher_is_better: bool) -> dict[tuple[float, int], int | None]:
    """{(threshold, k): steps} for k = j+1..N on one curve; None where phase k has no start."""
    p_j = reference(curve, j, kind, higher_is_better)
    return {(x, k): steps_to_reconverge(curve, j, k, starts[k], p_j, x, higher_is_better)
            if k in starts else None
            for x in thresholds for k in range(j + 1, n + 1)}


def _seed_mean(evals: dict[int, pd.DataFrame], starts: dict[int, dict[int, int]], name: str,
               metric: str) -> tuple[pd.DataFrame, dict[int, int]]:
    """The seed-mean curve (core.stats.mean_se per evaluation; a NaN in any seed gives NaN) and the
    phase starts of all seeds; ValueError unless every seed has the same evaluations and the same start
    for each phase it reached."""
    seeds = sorted(evals)
    grids = {s: set(e[_GRID].astype(int).itertuples(index=False, name=None)) for s, e in evals.items()}
    first = seeds[0]
    for other in seeds[1:]:
        if grids[other] != grids[first]:
            a, b = (first, other) if grids[first] - grids[other] else (other, first)
            step, k, j = min(grids[a] - grids[b])
            raise InputError(
                f"reconvergence: unequal evaluation steps across seeds for {name}, metric {metric!r} "
                f"(seeds {', '.join(map(str, seeds))}): seed {a} has step {step} (train_task {k}, "
                f"eval_task {j}) and seed {b} does not, so there is no seed-mean curve; "
                "use --aggregate seeds (aggregate='seeds')")
        differ = [k for k in starts[first].keys() & starts[other].keys()
                  if starts[first][k] != starts[other][k]]
        if differ:
            k = min(differ)
            raise InputError(
                f"reconvergence: phase starts differ across seeds for {name}: task {k} starts at step "
                f"{starts[first][k]} in seed {first} and {starts[other][k]} in seed {other}; "
                "use --aggregate seeds (aggregate='seeds')")
    stacked = pd.concat(evals.values(), ignore_index=True)
    values = stacked["value"].astype(float)
    by_point = values.groupby([stacked[c] for c in _GRID], sort=True)
    means = {point: mean_se(group)[0] for point, group in by_point}
    curve = pd.DataFrame([(*point, mean) for point, mean in means.items()], columns=[*_GRID, "value"])
    common = {k: s_k for seed in seeds for k, s_k in starts[seed].items()}   # equal where shared
    return curve.astype({c: stacked[c].dtype for c in _GRID} | {"value": float}), common


def reconvergence(records: pd.DataFrame, metric: str, higher_is_better: bool, task: int | str = 1,
                  thresholds: Iterable[float] | None = None, reference: Literal["end", "best"] = "end",
                  aggregate: Literal["curve", "seeds"] = "curve") -> pd.DataFrame:
    """Steps to re-converge (000 Table 2, Tables 8-23; METHODS.md §5) per configuration (method,
    config_id; benchmark, sweep when present, grouped as in analysis.table), old task j (``task``=1: j=1;
    an int j: that task; "all": every j < N), threshold and later task k = j+1..N.

    Thresholds default to (0.1, 0.2, 0.3) (lower is better) or (0.99, 0.9, 0.8) (higher is better).
    P_j is ``reference`` ("end" = R[j, j], or "best"). N is the largest train_task of the configuration.
    Phase starts come from all records (any metric) of each seed.

    aggregate="curve" (the paper's way): P_j and steps on the seed-mean curve; every seed must have the
    same (step, train_task, eval_task) evaluations of ``metric`` and the same phase starts, else
    ValueError. Columns: [benchmark, sweep,] method, config_id, task, threshold, after_task, steps
    (Int64, <NA> when never met).
    aggregate="seeds": steps per seed; ``steps`` (float) and ``steps_se`` (core.stats.mean_se; SE NaN
    with one seed) over all seeds, only when every seed re-converged (else NaN: never a mean of the
    survivors); ``reconverged`` = how many did, ``seeds`` = how many there are, and
    ``steps_reconverged_mean`` = the mean over the ``reconverged`` survivors (for the CSV only).
    An entry whose phase k has no evaluation of task j after s_k is None/<NA> (counts as not met).
    Raises ValueError if ``metric`` is absent (naming the metrics present).
    """
    if aggregate not in ("curve", "seeds"):
        raise InputError(f"reconvergence: aggregate must be 'curve' or 'seeds', got {aggregate!r}")
    if reference not in ("end", "best"):
        raise InputError(f"reconvergence: reference must be 'end' or 'best', got {reference!r}")
    if task != "all" and (isinstance(task, bool) or not isinstance(task, (int, np.integer)) or task < 1):
        raise InputError(f"reconvergence: task must be a task number >= 1 or 'all', got {task!r}")
    default = HIGHER_THRESHOLDS if higher_is_better else LOWER_THRESHOLDS
    thresholds = tuple(float(x) for x in (default if thresholds is None else thresholds))
    if not thresholds:
        raise InputError("reconvergence: thresholds must not be empty")
    df, keys = table._prepare(records, metric)
    rows = []
    for key, cfg in df.groupby(keys, dropna=False, sort=True):
        ident = dict(zip(keys, key))
        name = _name(ident)
        n = int(cfg["train_task"].max())
        js = range(1, n) if task == "all" else [int(task)]
        starts, evals = {}, {}
        for seed, run in cfg.groupby("seed", sort=True):
            try:
                starts[seed] = phase_starts(run)
            except ValueError as err:
                raise InputError(f"reconvergence: {name}, seed {seed}: {err}") from None
            evals[seed] = run[run["metric"] == metric]
            dup = evals[seed].duplicated(_GRID)
            if dup.any():
                step, k, j = evals[seed].loc[dup, _GRID].iloc[0]
                raise InputError(f"reconvergence: {name}, seed {seed}: duplicate {metric!r} records at "
                                 f"step {step} (train_task {k}, eval_task {j})")
        if aggregate == "curve":
            curve, common = _seed_mean(evals, starts, name, metric)
            for j in js:
                try:
                    entries = _entries(curve, j, n, common, thresholds, reference, higher_is_better)
                except ValueError as err:
                    raise InputError(f"reconvergence: {name}, seed-mean curve: {err}") from None
                for (x, k), steps in entries.items():
                    rows.append({**ident, "task": j, "threshold": x, "after_task": k, "steps": steps})
            continue
        for j in js:
            per_seed = {}
            for seed in evals:
                try:
                    per_seed[seed] = _entries(evals[seed], j, n, starts[seed], thresholds, reference,
                                              higher_is_better)
                except ValueError as err:
                    raise InputError(f"reconvergence: {name}, seed {seed}: {err}") from None
            for x in thresholds:
                for k in range(j + 1, n + 1):
                    hit = [e[(x, k)] for e in per_seed.values() if e[(x, k)] is not None]
                    mean, se, _ = mean_se(hit)
                    every = len(hit) == len(per_seed)
                    rows.append({**ident, "task": j, "threshold": x, "after_task": k,
                                 "steps": mean if every else np.nan, "steps_se": se if every else np.nan,
                                 "reconverged": len(hit), "seeds": len(per_seed),
                                 "steps_reconverged_mean": mean})
    columns = keys + ["task", "threshold", "after_task", "steps"]
    if aggregate == "seeds":
        columns += SEED_COLUMNS
    out = pd.DataFrame(rows, columns=columns)
    if aggregate == "curve":
        out["steps"] = out["steps"].astype("Int64")
    else:
        out = out.astype({"steps": float, "steps_se": float, "reconverged": int, "seeds": int,
                          "steps_reconverged_mean": float})
    return out.astype({"task": int, "after_task": int, "threshold": float})
