"""Continual-learning metrics on a result matrix (METHODS.md §5).

``R`` is an N x N array with ``R[k-1, j-1]`` = the metric of task j evaluated right after training
task k (tasks numbered from 1, k >= j); entries above the diagonal are NaN. Every function raises
``ValueError`` naming the (k, j) entry (1-based) it needs when that entry is missing (NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError

_KEYS = ("method", "config_id", "benchmark", "sweep", "seed", "metric")


def result_matrix(records: pd.DataFrame, num_tasks: int | None = None,
                  ends: dict[int, int] | None = None) -> np.ndarray:
    """R from the records of ONE seed and ONE metric (and one configuration).

    R[k, j] is the value of eval_task j at the last step among the records with train_task == k: the
    loop always evaluates every seen task at the end of task k's phase (METHODS.md §5). An entry is NaN
    where task j was not evaluated at that step, where phase k has no record, or where j > k.
    ``num_tasks`` (N) defaults to the largest train_task present; pass it to size R for a seed that
    stopped early. ``ends`` ({k: last step of phase k over all of the seed's records, any metric;
    analysis.completeness.phase_ends}) makes R[k, j] the value at exactly that step: an evaluation at an
    earlier step of the phase never stands in for a missing end-of-task one. Raises ValueError if the records mix seeds/metrics/configurations, hold duplicate
    (train_task, step, eval_task) rows, or hold tasks outside 1..N or eval_task > train_task.
    """
    for key in _KEYS:
        if key in records.columns and records[key].nunique(dropna=False) > 1:
            values = sorted(map(str, records[key].unique()))
            raise InputError(f"result_matrix: records must hold one {key}, got {', '.join(values)}")
    n = int(records["train_task"].max()) if num_tasks is None and len(records) else (num_tasks or 0)
    R = np.full((n, n), np.nan)
    if not len(records):
        return R
    k, j = records["train_task"].to_numpy(), records["eval_task"].to_numpy()
    if k.min() < 1 or j.min() < 1 or k.max() > n:
        raise InputError(f"result_matrix: tasks must lie in 1..{n} (numbered from 1)")
    if (j > k).any():
        raise InputError("result_matrix: eval_task exceeds train_task (only seen tasks are evaluated)")
    dup = records.duplicated(["train_task", "step", "eval_task"])
    if dup.any():
        row = records[dup].iloc[0]
        raise InputError(f"result_matrix: duplicate records for train_task {row['train_task']}, "
                         f"step {row['step']}, eval_task {row['eval_task']}")
    last_step = (records["train_task"].map(ends) if ends is not None
                 else records.groupby("train_task")["step"].transform("max"))
    final = records[records["step"] == last_step]
    R[final["train_task"].to_numpy() - 1, final["eval_task"].to_numpy() - 1] = final["value"].to_numpy(float)
    return R


def _check(R: np.ndarray, entries: list[tuple[int, int]], name: str) -> None:
    """Raise ValueError naming the first missing (k, j) entry (1-based) among ``entries``."""
    for k, j in entries:
        if np.isnan(R[k - 1, j - 1]):
            raise InputError(f"{name}: R[k={k}, j={j}] is missing (task {j} after training task {k})")


def _size(R: np.ndarray, name: str) -> int:
    R = np.asarray(R)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise InputError(f"{name}: R must be a non-empty square matrix, got shape {R.shape}")
    return R.shape[0]


def final_average(R: np.ndarray) -> float:
    """Final average A = mean_j R[N, j] (METHODS.md §5; ACC of 002/004, average FID/success of 000)."""
    R = np.asarray(R, dtype=float)
    n = _size(R, "final_average")
    _check(R, [(n, j) for j in range(1, n + 1)], "final_average")
    return float(np.mean(R[n - 1, :]))


def forgetting(R: np.ndarray, higher_is_better: bool) -> float:
    """Forgetting (000; METHODS.md §5): mean over j < N of R[j, j] - R[N, j] if higher is better, else
    R[N, j] - R[j, j]; positive means worse. NaN if N < 2."""
    R = np.asarray(R, dtype=float)
    n = _size(R, "forgetting")
    if n < 2:
        return float("nan")
    _check(R, [e for j in range(1, n) for e in ((j, j), (n, j))], "forgetting")
    drop = np.diag(R)[: n - 1] - R[n - 1, : n - 1]
    return float(np.mean(drop if higher_is_better else -drop))


def bwt(R: np.ndarray) -> float:
    """Backward transfer (002, Eq. 23; METHODS.md §5): mean_{j<N} (R[N, j] - R[j, j]), as written
    whatever the direction of the metric. NaN if N < 2."""
    R = np.asarray(R, dtype=float)
    n = _size(R, "bwt")
    if n < 2:
        return float("nan")
    _check(R, [e for j in range(1, n) for e in ((j, j), (n, j))], "bwt")
    return float(np.mean(R[n - 1, : n - 1] - np.diag(R)[: n - 1]))


def aaa(R: np.ndarray) -> float:
    """Average anytime accuracy (004; METHODS.md §5): mean over k of (mean_{j<=k} R[k, j])."""
    R = np.asarray(R, dtype=float)
    n = _size(R, "aaa")
    _check(R, [(k, j) for k in range(1, n + 1) for j in range(1, k + 1)], "aaa")
    return float(np.mean([np.mean(R[k - 1, :k]) for k in range(1, n + 1)]))
