"""003 Figure 2: the whole signal's metric after all tasks against the test-time steps S per task."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis import step_grid_table
from analysis.plots import _configs, _figure, _seed_stats, save
from core.errors import InputError


def step_grid_plot(records: pd.DataFrame, metric: str, num_tasks: int | None = None,
                   path: str | Path | None = None) -> Figure:
    """003 Figure 2: the whole signal's ``metric`` after all tasks against the test-time steps S per task
    (log2 axis), one line per configuration (seed mean, ± SE band; core.stats.mean_se), for records of
    the S-grid protocol (analysis.table.is_step_grid). Saves to ``path`` when given."""
    curves = step_grid_table.step_grid_curves(records, metric, num_tasks)
    if curves.empty:
        raise InputError(f"step_grid_plot: no {metric}_signal after the last task in the records")
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    labels = dict(_configs(records, metric))
    by_config = {str(cfg["config_id"].iloc[0]) + "\0" + str(cfg["method"].iloc[0]): label
                 for label, cfg in labels.items()}
    for (method, config_id), cfg in curves.groupby(["method", "config_id"], sort=True):
        label = by_config.get(f"{config_id}\0{method}", str(method))
        curve = _seed_stats(cfg, label)
        steps = curve.index.to_numpy(float)
        mean, se = curve["mean"].to_numpy(), curve["se"].to_numpy()
        (line,) = ax.plot(steps, mean, marker="o", markersize=3, label=label)
        if (curve["n"] > 1).any():
            band = ax.fill_between(steps, mean - se, mean + se, color=line.get_color(), alpha=0.25, linewidth=0)
            band.set_gid(f"band:{label}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("test-time steps S per task")
    ax.set_ylabel(f"{metric} of the whole signal after all tasks")
    ax.set_title("Seed mean ± SE over the S grid (003 Figure 2)")
    ax.legend(fontsize=8)
    if path is not None:
        save(fig, path)
    return fig
