"""The sweep's first table: each method's best configuration by the sweep's objective, final average,
forgetting, BWT and AAA of the objective metric as mean ± standard error over seeds (METHODS.md §5),
computed by analysis/ exactly as `orchestrate table --sweep NAME` computes it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.load import Source
from analysis.render import to_latex, to_markdown
from analysis.report import SCORES, method_table, score_directions
from orchestrator.spaces import Space
from orchestrator.storage import mlflow_uri
from orchestrator.sweep_dir import SweepDir


def sweep_source(records: pd.DataFrame, metas: list[dict], space: Space, name: str, state: dict) -> Source:
    """The sweep's records for analysis/; its tracking URI is the one MLflow is given in this process."""
    return Source(records=records, name=name, objective=vars(space.objective), seeds=list(space.seeds),
                  num_tasks=space.num_tasks, tracking_uri=mlflow_uri(state["tracking_uri"]),
                  parent_run_id=state["parent_run_id"],
                  directions=dict(space.directions),
                  configs={m["config_id"]: {"method": m["method"], "status": m["status"], "error": m["error"]}
                           for m in metas})


def results_table(source: Source, metas: list[dict], space: Space) -> pd.DataFrame:
    """``method_table`` of the objective metric plus each shown configuration's status, objective, params."""
    metric = space.objective.metric
    higher = space.directions[metric]
    table = method_table(source, metric, higher)
    by_id = {m["config_id"]: m for m in metas}
    table["status"] = [by_id[c]["status"] if c in by_id else _statuses(metas, method)
                       for c, method in zip(table["config_id"], table["method"])]
    table["objective"] = [by_id.get(c, {}).get("objective") for c in table["config_id"]]
    table["params"] = [json.dumps(by_id.get(c, {}).get("params", {}), sort_keys=True) for c in table["config_id"]]
    return table


def _statuses(metas: list[dict], method: str) -> str:
    """A row without a configuration (none of the method's left records): its configurations' statuses."""
    return "/".join(sorted({m["status"] for m in metas if m["method"] == method})) or "unknown"


def write_results(table: pd.DataFrame, sweep: SweepDir, space: Space) -> dict[str, Path]:
    """results.csv (numbers), results.md and results.tex ("mean±se" cells, best in bold)."""
    metric = space.objective.metric
    higher = space.directions[metric]
    title = (f"{space.name}: {metric} ({'higher' if higher else 'lower'} is better), mean ± standard error "
             f"over seeds {', '.join(map(str, space.seeds))}; forgetting > 0 is worse\n\n")
    title += f"{space.results_note}\n\n" if space.results_note else ""
    paths = {suffix: sweep.results(suffix) for suffix in ("csv", "md", "tex")}
    paths["csv"].write_text(table.to_csv(index=False, lineterminator="\n"))
    directions = score_directions(higher)
    paths["md"].write_text(title + to_markdown(table, list(SCORES), labels=("method", "config_id", "seeds"),
                                               higher_is_better=directions))
    paths["tex"].write_text(to_latex(table, list(SCORES), labels=("method", "seeds"), higher_is_better=directions))
    return paths
