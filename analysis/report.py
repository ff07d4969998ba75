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
from analysis.render import to_csv, to_html, to_latex, to_markdown
from analysis.table import best_configs, per_seed_scores, select, summarize
from core import stats as S
from core.errors import InputError

SCORES = ("final", "forgetting", "bwt", "aaa")
TABLE_COLUMNS = ("method", "seeds", "final", "final_se", "forgetting", "forgetting_se", "bwt", "bwt_se",
                 "aaa", "aaa_se")
STATS = ("sd", "ci", "bootstrap", "iqm")


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
        return best_configs(records, objective["metric"], objective.get("reduce", "mean"), obj_higher,
                            source.num_tasks, source.seeds or None)
    return {}


def method_table(source: Source, metric: str, higher: bool, configs: tuple[str, ...] = (),
                 stats: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per method: ``TABLE_COLUMNS`` (mean and SE over seeds), the requested ``stats`` columns,
    then config_id, complete and missing. Incomplete configurations have no numbers."""
    summary = summarize(source.records, metric, higher, num_tasks=source.num_tasks, seeds=source.seeds or None)
    table = select(summary, chosen_configs(source, higher, configs), higher_is_better=higher)
    if stats:
        scores = per_seed_scores(source.records, metric, higher, source.num_tasks, source.seeds or None)
        for stat in stats:
            for score in SCORES:
                table = _add_stat(table, scores, score, stat)
    lost = sorted({c["method"] for c in source.configs.values()} - set(table["method"]))
    if lost:  # methods whose every configuration failed before leaving records: shown, never dropped
        rows = [{"method": m, "seeds": 0, "config_id": "", "complete": False,
                 "missing": "no configuration left records: " + "; ".join(
                     c.get("error") or c.get("status", "") for c in source.configs.values() if c["method"] == m)}
                for m in lost]
        table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True).sort_values("method", kind="stable")
    extra = [c for c in table.columns if any(c.startswith(f"{s}_") for s in SCORES) and c not in TABLE_COLUMNS]
    return table[[*TABLE_COLUMNS, *extra, "config_id", "complete", "missing"]].reset_index(drop=True)


def _add_stat(table: pd.DataFrame, scores: pd.DataFrame, score: str, stat: str) -> pd.DataFrame:
    values = []
    for row in table.itertuples():
        v = scores[(scores["config_id"] == row.config_id) & (scores["method"] == row.method)][score].to_numpy(float)
        ok = bool(row.complete) and len(v) > 0 and not np.isnan(v).any()
        if stat == "sd":
            values.append({f"{score}_sd": S.sd(v) if ok else math.nan})
        elif stat == "iqm":
            values.append({f"{score}_iqm": S.iqm(v) if ok else math.nan})
        else:
            low, high = ((S.t_interval(v) if stat == "ci" else S.bootstrap_interval(v))
                         if ok else (math.nan, math.nan))
            values.append({f"{score}_{stat}_low": low, f"{score}_{stat}_high": high})
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(values)], axis=1)


def score_directions(higher: bool) -> dict[str, bool]:
    """Which way is better per column: final and AAA follow the metric; forgetting > 0 is worse; BWT
    (R[N, j] − R[j, j]) follows the metric."""
    return {"final": higher, "aaa": higher, "bwt": higher, "forgetting": False}


def render_table(table: pd.DataFrame, fmt: str, higher: bool) -> str:
    if fmt == "csv":
        shown = table.drop(columns=["complete"] + ([] if (~table["complete"].astype(bool)).any() else ["missing"]))
        return to_csv(shown)
    writer = {"md": to_markdown, "latex": to_latex, "html": to_html}[fmt]
    return writer(table, list(SCORES), labels=("method", "seeds"), higher_is_better=score_directions(higher))


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
        columns += ["steps_se", "reconverged", "seeds"]
    return df[columns].reset_index(drop=True)


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
    """Every table and figure of the sweep, for each evaluated metric, written into ``folder``, with
    report.md and a self-contained report.html; returns the files written."""
    import base64

    from analysis.plots import result_heatmaps, save, task_curves

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    md = [f"# Sweep {source.name}\n"]
    html = [f"<!doctype html><meta charset='utf-8'><title>Sweep {source.name}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}</style>",
            f"<h1>Sweep {source.name}</h1>"]
    if source.objective:
        line = (f"Objective: {source.objective.get('reduce', 'mean')} of {source.objective.get('metric')} over "
                f"tasks ({source.objective.get('mode')}); each method's best configuration by it. Seeds: "
                f"{', '.join(map(str, source.seeds))}. Cells are mean±standard error over seeds.")
        md.append(line + "\n")
        html.append(f"<p>{line}</p>")

    def write(name: str, text: str) -> None:
        (folder / name).write_text(text)
        written.append(folder / name)

    for metric in eval_metrics(source):
        higher = direction(metric, source.directions)
        table = method_table(source, metric, higher)
        write(f"table_{metric}.csv", render_table(table, "csv", higher))
        write(f"table_{metric}.tex", render_table(table, "latex", higher))
        heading = f"{metric} ({'higher' if higher else 'lower'} is better)"
        md += [f"## {heading}\n", render_table(table, "md", higher)]
        html += [f"<h2>{heading}</h2>", render_table(table, "html", higher)]
        from analysis.render import plain_table

        try:
            rec = reconvergence_table(source, metric, higher, "all")
            note = "on the seed-mean curve"
        except ValueError:
            rec = reconvergence_table(source, metric, higher, "all", aggregate="seeds")
            note = "per seed (evaluation steps differ across seeds), mean over the seeds that re-converged"
        write(f"reconvergence_{metric}.csv", plain_table(rec, "csv"))
        title = f"Steps to re-converge to task j's end-of-task {metric}, {note}"
        md += [f"### {title}\n", plain_table(rec, "md")]
        html += [f"<h3>{title}</h3>", plain_table(rec, "html")]
        records = selected_records(source, metric, higher)
        for name, fig in ((f"task1_{metric}.png", task_curves(records, metric, task=1)),
                          (f"heatmap_{metric}.png", result_heatmaps(records, metric))):
            save(fig, folder / name)
            written.append(folder / name)
            md.append(f"![{name}]({name})\n")
            data = base64.b64encode((folder / name).read_bytes()).decode()
            html.append(f"<p><img alt='{name}' src='data:image/png;base64,{data}' style='max-width:100%'></p>")
    write("report.md", "\n".join(md))
    write("report.html", "\n".join(html))
    return written
