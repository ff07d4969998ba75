"""Whether a configuration's records cover the whole stream: its length N, the end of each phase per
seed, finite values, and words for what is missing.

Completeness is a property of the stream, not of the configuration: N is the sweep's ``num_tasks``, else
the records' ``num_tasks`` column (core.records.CONTEXT_COLUMNS), else, for old records without it, the
largest train_task over all records of the same benchmark (then ``inferred`` is True and tables say so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError

_MAX_ENTRIES = 4  # partial (k, j) entries named per seed before "and n more"


def check_finite(records: pd.DataFrame, metric: str) -> None:
    """InputError naming the first row (index, method, seed, step, metric) of ``metric`` whose value is
    inf, -inf or NaN: such a value would average into, or win, a table."""
    rows = records[records["metric"] == metric]
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        row = rows.iloc[i]
        raise InputError(f"records: row {rows.index[i]} (method {row['method']}, seed {row['seed']}, step "
                         f"{row['step']}, metric {metric}) has value {row['value']}; allowed: finite numbers")


def stream_lengths(df: pd.DataFrame, keys: list[str], num_tasks: int | None) -> dict[tuple, tuple[int, bool]]:
    """{configuration key (values of ``keys``): (N, inferred)} for every configuration of ``df``.

    N is ``num_tasks`` when given; else the configuration's ``num_tasks`` column (InputError naming the
    configuration when it holds several values); else (no column, or NaN throughout the configuration)
    the largest train_task over all records of the same benchmark, with inferred=True."""
    has_bench = "benchmark" in df.columns
    bench_max = (df.groupby("benchmark", dropna=False)["train_task"].max().to_dict() if has_bench
                 else {None: df["train_task"].max()})
    out = {}
    for key, cfg in df.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        if num_tasks:
            out[key] = (int(num_tasks), False)
            continue
        given = pd.to_numeric(cfg["num_tasks"], errors="coerce").dropna().unique() if "num_tasks" in cfg else []
        if len(given) > 1:
            ident = ", ".join(f"{k} {v}" for k, v in zip(keys, key))
            raise InputError(f"records: num_tasks of configuration ({ident}) has several values "
                             f"{', '.join(str(int(v)) for v in sorted(given))}; allowed: one stream length")
        if len(given) == 1:
            out[key] = (int(given[0]), False)
            continue
        bench = cfg["benchmark"].iloc[0] if has_bench else None
        out[key] = (int(bench_max.get(bench, cfg["train_task"].max())), True)
    return out


def phase_ends(run: pd.DataFrame) -> dict[int, int]:
    """{k: the largest step of any record (any metric) with train_task == k} for one seed's records:
    where phase k's end-of-task evaluation must be."""
    return {int(k): int(s) for k, s in run.groupby("train_task")["step"].max().items()}


def ranges(tasks: list[int]) -> str:
    """[1, 2, 3, 5] -> 'tasks 1-3, 5'; [4] -> 'task 4'."""
    spans, start = [], tasks[0]
    for prev, cur in zip(tasks, tasks[1:] + [None]):
        if cur != prev + 1:
            spans.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = cur
    return ("task " if len(tasks) == 1 else "tasks ") + ", ".join(spans)


def missing(R: np.ndarray, ends: dict[int, int] | None = None) -> str:
    """Words for the missing lower-triangle entries of R ('' when none). A phase whose records exist
    (in ``ends``) but lack every end-of-task entry is named with its last step."""
    n = R.shape[0]
    ends = ends or {}
    holes = [(k, j) for k in range(1, n + 1) for j in range(1, k + 1) if np.isnan(R[k - 1, j - 1])]
    phases = [k for k in range(1, n + 1) if all((k, j) in holes for j in range(1, k + 1))]
    absent = [k for k in phases if k not in ends]
    unevaluated = [k for k in phases if k in ends]
    entries = [f"task {j} after task {k}" for k, j in holes if k not in phases]
    parts = [ranges(absent) + " missing"] if absent else []
    if len(unevaluated) == 1:
        parts.append(f"end-of-task evaluation of task {unevaluated[0]} (step {ends[unevaluated[0]]}) missing")
    elif unevaluated:
        parts.append(f"end-of-task evaluations of {ranges(unevaluated)} missing")
    if entries:
        more = f" and {len(entries) - _MAX_ENTRIES} more" if len(entries) > _MAX_ENTRIES else ""
        parts.append(", ".join(entries[:_MAX_ENTRIES]) + more + " missing")
    return "; ".join(parts)
