"""The sweep's first table: each method's best configuration by the sweep's objective, final average,
forgetting, BWT and AAA of the objective metric as mean ± standard error over seeds (METHODS.md §5),
computed by analysis/ exactly as `orchestrate table --sweep NAME` computes it: on the confirmation seeds
when the sweep has them (analysis.stages), with the search's objective (``objective``, on the search seeds)
next to the same objective on the confirmation seeds (``confirm_objective``: same tasks, reduction and
seed rule; the gap is the winner's curse)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.load import Source
from analysis.render import to_latex, to_markdown
from analysis.report import SCORES, method_table, score_directions
from analysis.stages import staged
from analysis.step_grid_table import GRID_SCORES
from orchestrator.spaces import Space
from orchestrator.storage import mlflow_uri
from orchestrator.sweep_dir import SweepDir


def sweep_source(records: pd.DataFrame, metas: list[dict], space: Space, name: str, state: dict) -> Source:
    """The sweep's records for analysis/; its tracking URI is the one MLflow is given in this process."""
    goals = [vars(o) for o in (space.objectives or (space.objective,))]
    confirm = space.budget.confirm
    return Source(records=records, name=name, objective=goals[0], objectives=goals, seeds=list(space.seeds),
                  confirm_seeds=list(confirm.seeds) if confirm else [], protocol=space.protocol.label,
                  search_num_tasks=space.search_num_tasks or None,
                  num_tasks=space.num_tasks, tracking_uri=mlflow_uri(state["tracking_uri"]),
                  parent_run_id=state["parent_run_id"],
                  directions=dict(space.directions),
                  configs={m["config_id"]: {"method": m["method"], "status": m["status"], "error": m["error"]}
                           for m in metas})


def results_table(source: Source, metas: list[dict], space: Space, confirm_metas: list[dict] = ()) -> pd.DataFrame:
    """``method_table`` of the objective metric (on the confirmation seeds when there are some) plus each
    shown configuration's status, objective (the search's), params, and with ``confirm_metas`` (the
    confirmation runs' metas) ``confirm_objective`` and ``confirm_status``. ``table.attrs``: the seeds
    shown and ``stage_note`` (which seeds selected, which report)."""
    metric = space.objective.metric
    higher = space.directions[metric]
    shown = staged(source, None, metric, higher)
    table = method_table(shown, metric, higher)
    by_id = {m["config_id"]: m for m in metas}
    table["status"] = [by_id[c]["status"] if c in by_id else _statuses(metas, method)
                       for c, method in zip(table["config_id"], table["method"])]
    table["objective"] = [by_id.get(c, {}).get("objective") for c in table["config_id"]]
    table["params"] = [json.dumps(by_id.get(c, {}).get("params", {}), sort_keys=True) for c in table["config_id"]]
    if confirm_metas:
        confirmed = {m["config_id"]: m for m in confirm_metas}
        table["confirm_objective"] = [confirmed.get(c, {}).get("selection_objective") for c in table["config_id"]]
        if space.objective.seeds != "mean":  # the seed means too, next to the rule's numbers
            table["objective_mean"] = [by_id.get(c, {}).get("last_result", {}).get("objective_mean")
                                       for c in table["config_id"]]
            table["confirm_objective_mean"] = [confirmed.get(c, {}).get("selection_objective_mean")
                                               for c in table["config_id"]]
        table["confirm_status"] = [confirmed.get(c, {}).get("status", "") for c in table["config_id"]]
    table.attrs.update(seeds=list(shown.seeds), note=table.attrs.get("note", ""), stage_note=shown.note)
    return table



def _statuses(metas: list[dict], method: str) -> str:
    """A row without a configuration (none of the method's left records): its configurations' statuses."""
    return "/".join(sorted({m["status"] for m in metas if m["method"] == method})) or "unknown"


def write_results(table: pd.DataFrame, sweep: SweepDir, space: Space) -> dict[str, Path]:
    """results.csv (numbers), results.md and results.tex ("mean±se" cells, best in bold)."""
    metric = space.objective.metric
    higher = space.directions[metric]
    seeds = table.attrs.get("seeds") or list(space.seeds)
    title = (f"{space.name}: {metric} ({'higher' if higher else 'lower'} is better), mean ± standard error "
             f"over seeds {', '.join(map(str, seeds))}; forgetting > 0 is worse\n\n")
    if table.attrs.get("stage_note"):
        title += f"{table.attrs['stage_note']}; objective: the search's on its seeds"
        title += ", confirm_objective: the same on the confirmation seeds\n\n" if "confirm_objective" in table else "\n\n"
    title += f"{space.results_note}\n\n" if space.results_note else ""
    paths = {suffix: sweep.results(suffix) for suffix in ("csv", "md", "tex")}
    paths["csv"].write_text(table.to_csv(index=False, lineterminator="\n"))
    grid = [c for c in GRID_SCORES if c in table.columns]  # 003's S grid: S = 1, best (best_S), S = S_max
    directions = {**score_directions(higher), **dict.fromkeys(grid, higher)}
    best_s = ("best_S",) if grid else ()
    paths["md"].write_text(title + to_markdown(table, [*grid, *SCORES], labels=("method", "config_id", "seeds", *best_s),
                                               higher_is_better=directions) + _curse(table))
    paths["tex"].write_text(to_latex(table, [*grid, *SCORES], labels=("method", "seeds", *best_s),
                                     higher_is_better=directions))
    return paths


def _curse(table: pd.DataFrame) -> str:
    """Under a confirmed table: each method's objective on the seeds that selected it, then on the
    confirmation seeds (the winner's curse, measured)."""
    if "confirm_objective" not in table:
        return ""
    cells = [f"{m} {_num(a)} → {_num(b)}" for m, a, b in zip(table["method"], table["objective"],
                                                          table["confirm_objective"]) if a is not None]
    text = "\nobjective on the search seeds → on the confirmation seeds: " + "; ".join(cells) + "\n" if cells else ""
    if "confirm_objective_mean" in table:
        means = [f"{m} {_num(a)} → {_num(b)}" for m, a, b in zip(table["method"], table["objective_mean"],
                                                              table["confirm_objective_mean"]) if a is not None]
        text += "its seed mean: " + "; ".join(means) + "\n" if means else ""
    return text


def _num(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.4g}"
