"""003's protocol in tables: records whose ``step`` is S (test-time steps per task) summarised as PSNR at
S = 1, at the best S and at S_max (003 Table 1), mean and SE over seeds; configurations grouped as in
analysis.table."""

from __future__ import annotations

import pandas as pd

from analysis import completeness as C
from analysis.table import _prepare
from core import stats

GRID_SCORES = ("S=1", "best", "S=max")


def is_step_grid(records: pd.DataFrame, metric: str) -> bool:
    """Whether the records are of the S-grid protocol for ``metric``: they hold its whole-signal metric
    ``<metric>_signal`` (recorded only by that protocol; ``step`` is then S, test-time steps per task)."""
    return f"{metric}_signal" in set(records["metric"].astype(str))


def step_grid_curves(records: pd.DataFrame, metric: str, num_tasks: int | None = None) -> pd.DataFrame:
    """Rows (keys..., seed, step, value): ``<metric>_signal`` after the last task (train_task = N), per S."""
    df, keys = _prepare(records, f"{metric}_signal")
    lengths = C.stream_lengths(df, keys, num_tasks)
    out = []
    for key, cfg in df.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        n = lengths[key][0]
        rows = cfg[(cfg["metric"] == f"{metric}_signal") & (cfg["train_task"] == n) & (cfg["step"] >= 1)]
        out.append(rows[keys + ["seed", "step", "value"]])
    columns = keys + ["seed", "step", "value"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)


def step_grid_summary(records: pd.DataFrame, metric: str, higher_is_better: bool,
                      num_tasks: int | None = None, seeds: list[int] | None = None) -> pd.DataFrame:
    """003 Table 1 per (method, config_id): the whole signal's ``metric`` after all tasks at S = 1, at the
    best S of the seed-mean curve (``best_S``; ties: the smallest S) and at the largest S, each mean and SE
    over seeds (core.stats.mean_se). A configuration where some seed lacks any grid point of the others,
    or a seed of ``seeds``, has NaN numbers (never averaged over the seeds that survived)."""
    curves = step_grid_curves(records, metric, num_tasks)
    keys = [c for c in curves.columns if c in ("benchmark", "sweep", "method", "config_id")]
    rows = []
    for key, cfg in curves.groupby(keys, dropna=False, sort=True):
        table = cfg.pivot_table(index="step", columns="seed", values="value", aggfunc="first")
        wanted = sorted(set(table.columns) | set(seeds or []))
        table = table.reindex(columns=wanted)
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        if table.isna().any().any() or table.empty:
            rows.append({**row, **{c: float("nan") for c in GRID_SCORES}, "best_S": pd.NA})
            continue
        stat = {s: stats.mean_se(table.loc[s].to_numpy(float)) for s in table.index}
        means = pd.Series({s: v[0] for s, v in stat.items()})
        best = means.idxmax() if higher_is_better else means.idxmin()
        first, last = table.index.min(), table.index.max()
        for name, s in (("S=1", first), ("best", best), ("S=max", last)):
            row[name], row[f"{name}_se"] = stat[s][0], stat[s][1]
        rows.append({**row, "best_S": int(best), "S_max": int(last)})
    return pd.DataFrame(rows)


def add_step_grid(table: pd.DataFrame, records: pd.DataFrame, metric: str, higher_is_better: bool,
                  num_tasks: int | None = None, seeds: list[int] | None = None) -> pd.DataFrame:
    """``table`` (one row per method and config_id) with the S-grid columns (``GRID_SCORES`` and their
    ``_se``, ``best_S``) when the records are of that protocol; unchanged otherwise."""
    if not is_step_grid(records, metric):
        return table
    grid = step_grid_summary(records, metric, higher_is_better, num_tasks, seeds)
    grid = grid.assign(config_id=grid["config_id"].astype(str))
    columns = ["method", "config_id", "best_S", *[f"{c}{x}" for c in GRID_SCORES for x in ("", "_se")]]
    merged = table.assign(config_id=table["config_id"].astype(str)).merge(
        grid.reindex(columns=columns), on=["method", "config_id"], how="left")
    merged.attrs.update(table.attrs)
    return merged
