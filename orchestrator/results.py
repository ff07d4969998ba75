"""The sweep's first table: each method's best configuration, final average and forgetting of the
objective metric as mean ± standard error over seeds (METHODS.md §5)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from analysis.render import to_csv, to_latex, to_markdown
from analysis.table import select, summarize
from orchestrator.spaces import Space
from trainables.benchmarks import get_benchmark

COLUMNS = ("method", "config_id", "status", "seeds", "complete", "final", "final_se", "forgetting",
           "forgetting_se", "bwt", "bwt_se", "aaa", "aaa_se", "objective", "params", "missing")


def results_table(records: pd.DataFrame, metas: list[dict], space: Space) -> pd.DataFrame:
    """One row per method: its configuration with the best seed-mean objective among finished ones."""
    metric = space.objective.metric
    higher = get_benchmark(space.benchmark).metrics[metric].higher_is_better
    summary = summarize(records, metric, higher, num_tasks=space.num_tasks, seeds=list(space.seeds))
    by_id = {m["config_id"]: m for m in metas}
    sign = 1.0 if space.objective.mode == "max" else -1.0
    best: dict[str, dict] = {}
    for meta in sorted(metas, key=lambda m: m["config_id"]):
        if meta["status"] != "finished" or meta.get("objective") is None or not math.isfinite(meta["objective"]):
            continue
        if meta["config_id"] not in set(summary["config_id"]):
            continue
        current = best.get(meta["method"])
        if current is None or sign * meta["objective"] > sign * current["objective"]:
            best[meta["method"]] = meta
    table = select(summary, {m: meta["config_id"] for m, meta in best.items()}, higher_is_better=higher)
    table["status"] = [by_id.get(c, {}).get("status", "") for c in table["config_id"]]
    table["objective"] = [by_id.get(c, {}).get("objective") for c in table["config_id"]]
    table["params"] = [json.dumps(by_id.get(c, {}).get("params", {}), sort_keys=True) for c in table["config_id"]]
    lost = sorted({m["method"] for m in metas} - set(table["method"]))
    extra = [{"method": method, "config_id": "", "status": "failed", "seeds": 0, "complete": False,
              "missing": "no configuration left records: " + "; ".join(
                  m["error"] or m["status"] for m in metas if m["method"] == method)} for method in lost]
    if extra:
        table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    table = table.sort_values("method", kind="stable").reset_index(drop=True)
    return table[[c for c in COLUMNS if c in table.columns]]


def write_results(table: pd.DataFrame, folder: Path, space: Space) -> dict[str, Path]:
    """results.csv (numbers), results.md and results.tex ("mean±se" cells, best in bold)."""
    metric = space.objective.metric
    higher = get_benchmark(space.benchmark).metrics[metric].higher_is_better
    directions = {"final": higher, "forgetting": False}
    title = (f"{space.name}: {metric} ({'higher' if higher else 'lower'} is better), mean ± standard error "
             f"over seeds {', '.join(map(str, space.seeds))}; forgetting > 0 is worse\n\n")
    paths = {"csv": folder / "results.csv", "md": folder / "results.md", "tex": folder / "results.tex"}
    paths["csv"].write_text(to_csv(table))
    paths["md"].write_text(title + to_markdown(table, ["final", "forgetting"], labels=("method", "config_id"),
                                               higher_is_better=directions))
    paths["tex"].write_text(to_latex(table, ["final", "forgetting"], labels=("method",),
                                     higher_is_better=directions))
    return paths
