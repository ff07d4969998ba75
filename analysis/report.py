"""What the `table`, `reconvergence`, `plot` and `report` commands compute from a Source: one
configuration per method (the sweep's best by its objective, or the one named), then metrics, then
rendering. Files only: orchestrator/ logs them to MLflow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.directions import higher_is_better as direction
from analysis.load import Source
from analysis.reconverge import SEED_COLUMNS
from analysis.render import format_mean_se, to_csv, to_html, to_latex, to_markdown
from analysis.step_grid_table import GRID_SCORES, add_step_grid
from analysis.table import best_configs, per_seed_scores, select, summarize
from core import stats as S
from core.errors import InputError

SCORES = ("final", "forgetting", "bwt", "aaa")
TABLE_COLUMNS = ("method", "seeds", "final", "final_se", "forgetting", "forgetting_se", "bwt", "bwt_se",
                 "aaa", "aaa_se")
STATS = ("sd", "ci", "bootstrap", "iqm", "poi")


def metric_direction(source: Source, metric: str, mode: str | None) -> bool:
    """Whether higher ``metric`` is better: ``mode`` (min|max), else the sweep's metadata
    (``source.directions``), else the metric's well-known name; ValueError naming --mode otherwise."""
    return direction(metric, source.directions, mode)


def chosen_configs(source: Source, higher: bool, configs: tuple[str, ...] = ()) -> dict[str, str]:
    """{method: config_id}: the named configurations, else each method's best by the sweep's objective;
    methods left out pick their best ``final`` in ``select``."""
    records = source.records
    ids = records["config_id"].astype(str) if "config_id" in records else records["method"].astype(str)
    by_id = dict(zip(ids, records["method"]))
    if configs:
        unknown = [c for c in configs if c not in by_id]
        if unknown:
            raise InputError(f"--config: '{unknown[0]}' is not in the records; allowed: "
                             f"{', '.join(sorted(set(by_id)))}")
        return {by_id[c]: c for c in configs}
    objective = source.objective
    if objective.get("metric") and objective["metric"] in set(records["metric"]):
        obj_higher = objective.get("mode", "max" if higher else "min") == "max"
        if objective.get("score", "final") != "final" or objective.get("seeds", "mean") != "mean":
            from analysis.objective import best_by_objective  # forgetting, or a seed rule (lower_bound)

            metric_higher = source.directions.get(objective["metric"], obj_higher)
            return best_by_objective(records, objective, metric_higher, source.num_tasks, source.seeds or None)
        return best_configs(records, objective["metric"], objective.get("reduce", "mean"), obj_higher,
                            source.num_tasks, source.seeds or None)
    return {}


def method_table(source: Source, metric: str, higher: bool, configs: tuple[str, ...] = (),
                 stats: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per method: ``TABLE_COLUMNS`` (mean and SE over seeds), the requested ``stats`` columns
    per score (``STATS``: sd ``<score>_sd``; ci, the 95% t-interval, ``<score>_ci_low/_high``; bootstrap,
    rliable's 95% bootstrap interval of the mean, ``<score>_bootstrap_low/_high``; iqm, rliable's IQM and
    its 95% stratified-bootstrap interval, ``<score>_iqm`` and ``<score>_iqm_low/_high``; poi, rliable's
    P(this method beats the other) per other method, ``<score>_poi_<other>``), then config_id, complete
    and missing. Incomplete configurations have no numbers. Every statistic is over the seeds of the
    configuration shown (core.stats.score_matrix: seeds × 1)."""
    summary = summarize(source.records, metric, higher, num_tasks=source.num_tasks, seeds=source.seeds or None)
    table = select(summary, chosen_configs(source, higher, configs), higher_is_better=higher)
    if stats:
        scores = per_seed_scores(source.records, metric, higher, source.num_tasks, source.seeds or None)
        for stat in stats:
            for score in SCORES:
                table = _add_stat(table, scores, score, stat, score_directions(higher)[score])
    lost = sorted({c["method"] for c in source.configs.values()} - set(table["method"]))
    if lost:  # methods whose every configuration failed before leaving records: shown, never dropped
        rows = [{"method": m, "seeds": 0, "config_id": "", "complete": False,
                 "missing": "no configuration left records: " + "; ".join(
                     c.get("error") or c.get("status", "") for c in source.configs.values() if c["method"] == m)}
                for m in lost]
        table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True).sort_values("method", kind="stable")
    extra = [c for c in table.columns if any(c.startswith(f"{s}_") for s in SCORES) and c not in TABLE_COLUMNS]
    note = inferred_note(summary)
    table = table[[*TABLE_COLUMNS, *extra, "config_id", "complete", "missing"]].reset_index(drop=True)
    table = add_step_grid(table, source.records, metric, higher, source.num_tasks, source.seeds or None)  # 003
    table.attrs["note"] = note
    return table


def profile_scores(source: Source, metric: str, higher: bool, score: str = "final",
                   configs: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], list[str]]:
    """({method: per-seed ``score`` of the configuration ``method_table`` shows}, [methods left out
    because that configuration is incomplete]) for performance profiles."""
    if score not in SCORES:
        raise InputError(f"--score: '{score}' is not allowed; allowed: {', '.join(SCORES)}")
    table = method_table(source, metric, higher, configs)
    scores = per_seed_scores(source.records, metric, higher, source.num_tasks, source.seeds or None)
    out, left_out = {}, []
    for row in table.itertuples():
        if not bool(row.complete):
            left_out.append(row.method)
            continue
        chosen = scores[(scores["method"] == row.method) & (scores["config_id"] == row.config_id)]
        out[row.method] = chosen[score].to_numpy(float)
    return out, left_out


def inferred_note(summary: pd.DataFrame) -> str:
    """'' unless N was inferred for some configuration (records without a num_tasks column); then one
    sentence saying so, with N per benchmark."""
    inferred = summary[summary["num_tasks_inferred"].astype(bool)]
    if inferred.empty:
        return ""
    if "benchmark" in inferred.columns:
        per = inferred.groupby("benchmark", dropna=False)["num_tasks"].first()
        n = ", ".join(f"{v} tasks ({b})" for b, v in per.items())
    else:
        n = f"{int(inferred['num_tasks'].iloc[0])} tasks"
    return (f"note: the records carry no num_tasks column, so the stream's length N = {n} is inferred "
            "as the largest train_task of the benchmark's records; a run of a longer stream that stopped "
            "at N would look complete")


def _add_stat(table: pd.DataFrame, scores: pd.DataFrame, score: str, stat: str, higher: bool) -> pd.DataFrame:
    per_row = []
    for row in table.itertuples():
        v = scores[(scores["config_id"] == row.config_id) & (scores["method"] == row.method)][score].to_numpy(float)
        per_row.append(v if bool(row.complete) and len(v) > 0 and not np.isnan(v).any() else None)
    values = []
    for row, v in zip(table.itertuples(), per_row):
        ok = v is not None
        if stat == "sd":
            values.append({f"{score}_sd": S.sd(v) if ok else math.nan})
        elif stat == "iqm":
            low, high = S.iqm_interval(v) if ok else (math.nan, math.nan)
            values.append({f"{score}_iqm": S.iqm(v) if ok else math.nan, f"{score}_iqm_low": low,
                           f"{score}_iqm_high": high})
        elif stat == "poi":
            values.append({f"{score}_poi_{other}": S.probability_of_improvement(v, w, higher)
                           if ok and w is not None else math.nan
                           for other, w in zip(table["method"], per_row) if other != row.method})
        else:
            low, high = ((S.t_interval(v) if stat == "ci" else S.bootstrap_interval(v))
                         if ok else (math.nan, math.nan))
            values.append({f"{score}_{stat}_low": low, f"{score}_{stat}_high": high})
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(values)], axis=1)


def score_directions(higher: bool) -> dict[str, bool]:
    """Which way is better per column: final and AAA follow the metric; forgetting > 0 is worse; BWT
    (R[N, j] − R[j, j]) follows the metric."""
    return {"final": higher, "aaa": higher, "bwt": higher, "forgetting": False}


def render_table(table: pd.DataFrame, fmt: str, higher: bool, stats_table: bool = False) -> str:
    """The table in ``fmt``; its note (``table.attrs['note']``, N inferred) as a ``note`` column in CSV,
    a line under the table otherwise. ``stats_table``: md, latex and html add the ``--stats`` columns
    below it (analysis.stats_table); CSV always has them."""
    note = table.attrs.get("note", "")
    if fmt == "csv":
        shown = table.drop(columns=["complete"] + ([] if (~table["complete"].astype(bool)).any() else ["missing"]))
        return to_csv(shown.assign(note=note) if note else shown)
    writer = {"md": to_markdown, "latex": to_latex, "html": to_html}[fmt]
    grid = [c for c in GRID_SCORES if c in table.columns]  # 003's S grid: S = 1, best (best_S), S = S_max
    text = writer(table, [*grid, *SCORES], labels=("method", "seeds", *(["best_S"] if grid else [])),
                  higher_is_better={**score_directions(higher), **dict.fromkeys(grid, higher)})
    if stats_table:
        from analysis.stats_table import render_stats

        text += render_stats(table, fmt, SCORES)
    if not note:
        return text
    from html import escape

    from analysis.render import _latex_escape

    return text + {"md": f"\n{note}\n", "latex": f"\\par\\noindent {_latex_escape(note)}\n",
                   "html": f"<p class='note'>{escape(note)}</p>\n"}[fmt]


def selected_records(source: Source, metric: str, higher: bool, configs: tuple[str, ...] = ()) -> pd.DataFrame:
    """The records of the configuration shown for each method (the one ``method_table`` shows)."""
    records = source.records
    if "config_id" not in records.columns or records.groupby("method")["config_id"].nunique().max() <= 1:
        return records
    summary = summarize(records, metric, higher, num_tasks=source.num_tasks, seeds=source.seeds or None)
    table = select(summary, chosen_configs(source, higher, configs), higher_is_better=higher)
    return records[records["config_id"].astype(str).isin(set(table["config_id"]))]


def reconvergence_table(source: Source, metric: str, higher: bool, task, thresholds=None, reference: str = "end",
                        aggregate: str = "curve", configs: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows method, threshold, after_task, steps (and task when several; steps_se, reconverged, seeds
    when aggregated per seed) for the configuration shown per method."""
    from analysis.reconverge import reconvergence

    records = selected_records(source, metric, higher, configs)
    df = reconvergence(records, metric, higher, task=task, thresholds=thresholds, reference=reference,
                       aggregate=aggregate)
    columns = ["method"] + (["task"] if task == "all" else []) + ["threshold", "after_task", "steps"]
    if aggregate == "seeds":
        columns += SEED_COLUMNS
    return df[columns].reset_index(drop=True)


def reconvergence_cells(table: pd.DataFrame) -> pd.DataFrame:
    """A per-seed re-convergence table for reading: ``steps`` becomes 'mean±SE' when every seed
    re-converged, else 'k/n' (k of n seeds did; e.g. '1/3'); the survivors' mean stays in the CSV."""
    if "reconverged" not in table.columns:
        return table
    cells = [format_mean_se(m, s) if k == n else f"{k}/{n}"
             for m, s, k, n in zip(table["steps"], table["steps_se"], table["reconverged"], table["seeds"])]
    return table.drop(columns=SEED_COLUMNS).assign(steps=cells)


def eval_metrics(source: Source) -> list[str]:
    """Metrics evaluated on old tasks (not training statistics or diagnostics) whose direction is known,
    the sweep's objective first."""
    r = source.records
    names = sorted(set(r.loc[r["eval_task"] < r["train_task"], "metric"]))
    objective = source.objective.get("metric")
    ordered = ([objective] if objective in names else []) + [m for m in names if m != objective]
    known = []
    for m in ordered:
        try:
            direction(m, source.directions)
            known.append(m)
        except ValueError:
            continue
    return known


def build_report(source: Source, folder: Path) -> list[Path]:
    """report.md and report.html with every table and figure of the sweep (analysis.report_page)."""
    from analysis.report_page import build

    return build(source, folder)
