"""The report a person reads in two screens: the results tables first, then per metric task 1's curve
(000 Figure 2) and a re-convergence pivot (methods × thresholds, one column group per transition). The
long tables (re-convergence of every task, stats) are CSV files linked from it, never inline."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import pandas as pd

from analysis.directions import higher_is_better as direction
from analysis.load import Source
from analysis.step_grid_table import is_step_grid
from analysis.render import _plain, plain_table
from analysis.report import (eval_metrics, method_table, reconvergence_cells, reconvergence_table,
                             render_table, selected_records)
from core.errors import InputError

_STYLE = ("<style>body{font-family:sans-serif;max-width:1100px;margin:auto}h2{margin-top:1.2em}"
          "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
          ".wide{overflow-x:auto}.note,.links{font-size:90%;color:#444}</style>")


def pivot(rec: pd.DataFrame) -> pd.DataFrame:
    """Task 1's re-convergence as rows = methods, columns = (after task k, threshold) in that order;
    cells are steps ('–' where never), or per-seed cells (reconvergence_cells) as they are."""
    table = rec.copy()
    table["cell"] = [_plain(v) if not isinstance(v, str) else v for v in table["steps"]]
    wide = table.pivot_table(index="method", columns=["after_task", "threshold"], values="cell",
                             aggfunc="first", sort=False)
    order = sorted(wide.columns, key=lambda c: (c[0], list(table["threshold"].unique()).index(c[1])))
    return wide[order].reindex(sorted(table["method"].unique())).fillna("–")


def pivot_html(wide: pd.DataFrame) -> str:
    """A two-row header: 'after task k' over its thresholds."""
    groups = list(dict.fromkeys(k for k, _ in wide.columns))
    per = len(wide.columns) // max(len(groups), 1)
    top = "".join(f"<th colspan='{per}'>after task {k}</th>" for k in groups)
    sub = "".join(f"<th>{escape(_plain(x))}</th>" for _, x in wide.columns)
    body = "".join("<tr><td>" + escape(str(m)) + "</td>" + "".join(f"<td>{escape(c)}</td>" for c in row)
                   + "</tr>" for m, row in zip(wide.index, wide.to_numpy()))
    return (f"<div class='wide'><table class='pivot'><thead><tr><th rowspan='2'>method</th>{top}</tr>"
            f"<tr>{sub}</tr></thead><tbody>{body}</tbody></table></div>")


def pivot_md(wide: pd.DataFrame) -> str:
    flat = wide.copy()
    flat.columns = [f"after {k}: {_plain(x)}" for k, x in wide.columns]
    return plain_table(flat.reset_index(), "md")


def _reconvergence(source: Source, metric: str, higher: bool, task) -> tuple[pd.DataFrame, str]:
    """On the seed-mean curve, else (evaluation steps differ across seeds) per seed."""
    try:
        return reconvergence_table(source, metric, higher, task), "on the seed-mean curve"
    except InputError:
        return (reconvergence_table(source, metric, higher, task, aggregate="seeds"),
                "per seed (evaluation steps differ across seeds): mean±SE when every seed re-converged, "
                "else k/n seeds did")


def build(source: Source, folder: Path) -> list[Path]:
    """report.md and a self-contained report.html in ``folder``, with the CSV/LaTeX tables and figures
    they link; returns the files written."""
    from analysis.plots import result_heatmaps, save, task_curves

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(name: str, text: str) -> None:
        (folder / name).write_text(text)
        written.append(folder / name)

    title = f"Sweep {source.name}"
    md = [f"# {title}\n"]
    html = [f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title>", _STYLE,
            f"<h1>{escape(title)}</h1>"]
    line = "Cells are mean±standard error over seeds."
    if source.objective:
        line = (f"Objective: {source.objective.get('reduce', 'mean')} of {source.objective.get('metric')} over "
                f"tasks ({source.objective.get('mode')}); each method's best configuration by it. Seeds: "
                f"{', '.join(map(str, source.seeds))}. " + line)
    if source.note:  # a confirmation stage, or the tuning protocol (analysis.stages)
        line = f"{source.note[0].upper()}{source.note[1:]}. {line}"
    md.append(line + "\n")
    html.append(f"<p>{escape(line)}</p>")
    metrics = [(m, direction(m, source.directions)) for m in eval_metrics(source)]
    md.append("## Results\n")
    html.append("<h2>Results</h2>")
    for metric, higher in metrics:
        table = method_table(source, metric, higher, stats=("sd", "ci"))
        write(f"table_{metric}.csv", render_table(table, "csv", higher))
        write(f"table_{metric}.tex", render_table(table, "latex", higher))
        heading = f"{metric} ({'higher' if higher else 'lower'} is better)"
        md += [f"### {heading}\n", render_table(table, "md", higher),
               f"Files: [table_{metric}.csv](table_{metric}.csv), [table_{metric}.tex](table_{metric}.tex)\n"]
        html += [f"<h3>{escape(heading)}</h3>", render_table(table, "html", higher),
                 f"<p class='links'>Files: <a href='table_{metric}.csv'>table_{metric}.csv</a> (with SD and 95% t-intervals), "
                 f"<a href='table_{metric}.tex'>table_{metric}.tex</a></p>"]
    for metric, higher in metrics:
        records = selected_records(source, metric, higher)
        if is_step_grid(source.records, metric):  # 003's protocol: step is S, so no stream to plot or re-converge on
            md_part, html_part = _step_grid_figure(records, metric, higher, source.num_tasks, folder)
            md, html, written = md + md_part, html + html_part, written + [folder / f"steps_{metric}.png"]
            continue
        curve, heat = f"task1_{metric}.png", f"heatmap_{metric}.png"
        save(task_curves(records, metric, task=1), folder / curve)
        save(result_heatmaps(records, metric), folder / heat)
        written += [folder / curve, folder / heat]
        full, _ = _reconvergence(source, metric, higher, "all")
        write(f"reconvergence_{metric}.csv", plain_table(full, "csv"))
        first, note = _reconvergence(source, metric, higher, 1)
        wide = pivot(reconvergence_cells(first))
        caption = f"Steps to re-converge to task 1's end-of-task {metric}, {note}; – where never"
        data = base64.b64encode((folder / curve).read_bytes()).decode()
        heading = f"{metric} ({'higher' if higher else 'lower'} is better)"
        md += [f"## {heading}\n", "Task 1 over the stream, seed mean ± SE; dashed: task transitions\n",
               f"![{curve}]({curve})\n", f"### {caption}\n",
               pivot_md(wide), f"Files: [reconvergence_{metric}.csv](reconvergence_{metric}.csv) (every task), "
               f"[{heat}]({heat}) (R[k, j] per method)\n"]
        html += [f"<h2>{escape(heading)}</h2>",
                 f"<p><img alt='{curve}' src='data:image/png;base64,{data}' style='max-width:640px;width:100%'></p>",
                 f"<h3>{escape(caption)}</h3>", pivot_html(wide),
                 f"<p class='links'>Files: <a href='reconvergence_{metric}.csv'>reconvergence_{metric}.csv</a> "
                 f"(every task j), <a href='{heat}'>{heat}</a> (R[k, j] per method)</p>"]
    write("report.md", "\n".join(md))
    write("report.html", "\n".join(html))
    return written


def _step_grid_figure(records: pd.DataFrame, metric: str, higher: bool, num_tasks: int | None,
                      folder: Path) -> tuple[list[str], list[str]]:
    """(markdown, html) of an S-grid metric (003 Figure 2): the whole signal's ``metric`` after all tasks
    against S per method; the table above has S = 1, best and S_max."""
    from analysis.plots import save
    from analysis.step_grid_plot import step_grid_plot

    curve = f"steps_{metric}.png"
    save(step_grid_plot(records, metric, num_tasks), folder / curve)
    data = base64.b64encode((folder / curve).read_bytes()).decode()
    heading = f"{metric} ({'higher' if higher else 'lower'} is better)"
    caption = (f"The whole signal's {metric} after all tasks against S, the test-time steps per task, seed "
               "mean ± SE (003 Figure 2)")
    return ([f"## {heading}\n", f"{caption}\n", f"![{curve}]({curve})\n"],
            [f"<h2>{escape(heading)}</h2>", f"<p>{escape(caption)}</p>",
             f"<p><img alt='{curve}' src='data:image/png;base64,{data}' style='max-width:640px;width:100%'></p>"])
