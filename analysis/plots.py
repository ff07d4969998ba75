"""Figures from long records: a task's curve over global steps (000 Figure 2), seed-mean result
matrices R[k, j] (METHODS.md §5) and rliable's performance profiles of per-seed scores.

Figures are matplotlib ``Figure`` objects on an Agg canvas: no pyplot, no global backend change.
Configurations are grouped as in analysis.table; a line or panel is labelled by its method, plus its
config_id where the method has several (and benchmark/sweep where those vary).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis import table
from analysis.metrics import result_matrix
from analysis.reconverge import phase_starts
from core import stats
from core.errors import InputError

FORMATS = (".png", ".svg")


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _configs(records: pd.DataFrame, metric: str) -> list[tuple[str, pd.DataFrame]]:
    """[(label, records of the configuration, all metrics)] in analysis.table's order."""
    df, keys = table._prepare(records, metric)
    groups = [(dict(zip(keys, key)), cfg) for key, cfg in df.groupby(keys, dropna=False, sort=True)]
    counts = pd.Series([ident["method"] for ident, _ in groups]).value_counts()
    varying = [key for key in ("benchmark", "sweep") if key in keys and df[key].nunique(dropna=False) > 1]
    out = []
    for ident, cfg in groups:
        label = str(ident["method"])
        if counts[ident["method"]] > 1:
            label += f" ({ident['config_id']})"
        if varying:
            label = ", ".join(str(ident[key]) for key in varying) + ": " + label
        out.append((label, cfg))
    return out


def _seed_stats(evals: pd.DataFrame, label: str) -> pd.DataFrame:
    """Per step (the index): core.stats.mean_se over the seeds evaluated there: ``mean``, ``se``
    (the sample SD over sqrt(n), NaN if n < 2) and ``n``. A NaN value makes that step's mean and SE NaN."""
    dup = evals.duplicated(["seed", "step"])
    if dup.any():
        seed, step = evals.loc[dup, "seed"].iloc[0], evals.loc[dup, "step"].iloc[0]
        raise InputError(f"task_curves: {label}: several values for seed {seed} at step {step}")
    values = evals["value"].astype(float)
    per_step = {step: stats.mean_se(group) for step, group in values.groupby(evals["step"], sort=True)}
    out = pd.DataFrame.from_dict(per_step, orient="index", columns=["mean", "se", "n"])
    out.index.name = "step"
    return out.astype({"mean": float, "se": float, "n": int})


def task_curves(records: pd.DataFrame, metric: str, task: int = 1, ax: Axes | None = None,
                path: str | Path | None = None) -> Figure:
    """Task ``task``'s ``metric`` over global steps (000 Figure 2): one line per configuration, the
    seed mean at each step, with a ± standard-error band (core.stats.mean_se; none where one seed) and
    the task transitions s_k (k >= 2, from the records of each run) as dashed vertical lines.

    Draws into ``ax`` when given (returning its figure), else a new figure; saves it to ``path`` when
    given (see ``save``). The line of a configuration has that label, its band gid "band:<label>", the
    transitions are one LineCollection with gid "transitions". ValueError if ``metric`` is absent
    (naming the metrics present) or task ``task`` has no evaluation of it.
    """
    groups = _configs(records, metric)
    if ax is None:
        fig = _figure((6.4, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    starts, drawn = set(), 0
    for label, cfg in groups:
        for _, run in cfg.groupby("seed", sort=True):
            starts |= {s_k for k, s_k in phase_starts(run).items() if k >= 2}
        evals = cfg[(cfg["metric"] == metric) & (cfg["eval_task"] == task)]
        if evals.empty:
            continue
        curve = _seed_stats(evals, label)
        steps = curve.index.to_numpy(float)
        mean, se = curve["mean"].to_numpy(), curve["se"].to_numpy()
        (line,) = ax.plot(steps, mean, label=label)
        if (curve["n"] > 1).any():
            band = ax.fill_between(steps, mean - se, mean + se, color=line.get_color(), alpha=0.25,
                                   linewidth=0)
            band.set_gid(f"band:{label}")
        drawn += 1
    if not drawn:
        raise InputError(f"task_curves: task {task} has no {metric!r} evaluation in the records")
    if starts:
        ax.vlines(sorted(starts), 0, 1, transform=ax.get_xaxis_transform(), colors="0.5",
                  linestyles="--", linewidth=0.8, gid="transitions")
    ax.set_xlabel("global step")
    ax.set_ylabel(f"{metric} of task {task}")
    ax.set_title(f"Task {task}: seed mean ± SE; dashed: task transitions")
    ax.legend()
    if path is not None:
        save(fig, path)
    return fig


def result_heatmaps(records: pd.DataFrame, metric: str, path: str | Path | None = None) -> Figure:
    """One heat map per configuration of the seed-mean result matrix R[k, j] (METHODS.md §5): R per
    seed (analysis.metrics.result_matrix, N = the configuration's largest train_task), then the mean
    over the seeds that have the entry (core.stats.mean_se; NaN where none has it); lower triangle only
    (j <= k), annotated with the values, one shared color scale. Rows: "after training task k", columns:
    "evaluated task j". Saves to ``path`` when given."""
    groups = _configs(records, metric)
    means = []
    for label, cfg in groups:
        n = int(cfg["train_task"].max())
        evals = cfg[cfg["metric"] == metric]
        stack = np.stack([result_matrix(evals[evals["seed"] == seed], num_tasks=n)
                          for seed in sorted(cfg["seed"].unique())])
        mean = np.full((n, n), np.nan)       # per entry, the seeds that have it; none: NaN
        for k, j in zip(*np.tril_indices(n)):
            seeds = stack[:, k, j]
            mean[k, j] = stats.mean_se(seeds[~np.isnan(seeds)])[0]
        means.append((label, mean))
    finite = np.concatenate([m[np.isfinite(m)] for _, m in means])
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (None, None)
    fig = _figure((3.4 * len(means) + 1.2, 3.4))
    axes = fig.subplots(1, len(means), squeeze=False)[0]
    image = None
    for ax, (label, mean) in zip(axes, means):
        n = mean.shape[0]
        image = ax.imshow(np.ma.masked_invalid(mean), cmap="viridis", vmin=vmin, vmax=vmax)
        for k, j in zip(*np.nonzero(np.isfinite(mean))):
            shade = 0.0 if vmax is None or vmax == vmin else (mean[k, j] - vmin) / (vmax - vmin)
            ax.text(j, k, f"{mean[k, j]:.3g}", ha="center", va="center", fontsize=8,
                    color="black" if shade > 0.5 else "white")
        ticks = np.arange(n)
        ax.set_xticks(ticks, labels=[str(t + 1) for t in ticks])
        ax.set_yticks(ticks, labels=[str(t + 1) for t in ticks])
        ax.set_xlabel("evaluated task j")
        ax.set_ylabel("after training task k")
        ax.set_title(label)
    fig.colorbar(image, ax=list(axes), label=f"{metric} (seed mean)")
    if path is not None:
        save(fig, path)
    return fig


def performance_profiles(scores: dict[str, np.ndarray], label: str, higher_is_better: bool,
                         path: str | Path | None = None) -> Figure:
    """Performance profiles (Agarwal et al. 2021, §4: score distributions): per method, the fraction of
    its runs (seeds) whose score exceeds τ, over 101 τ spanning every score (5% margin each side), with
    95% stratified-bootstrap bands (core.stats.performance_profile), drawn by rliable's
    plot_utils.plot_performance_profiles. ``scores``: {method: per-seed values of ``label``}.
    Lower-is-better scores (fd, forgetting): the profile of −score, i.e. the fraction of runs with
    score < τ; the axis shows τ itself, decreasing to the right, so right is better in both cases."""
    from matplotlib.ticker import FuncFormatter
    from rliable import plot_utils

    if not scores or not any(len(v) for v in scores.values()):
        raise InputError("performance_profiles: no method has a complete configuration to profile")
    sign = 1.0 if higher_is_better else -1.0
    signed = {method: sign * np.asarray(v, dtype=float) for method, v in scores.items()}
    every = np.concatenate(list(signed.values()))
    lo, hi = float(every.min()), float(every.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(lo), 1.0)
    taus = np.linspace(lo - pad, hi + pad, 101)
    profiles, bands = stats.performance_profile(signed, taus)
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    relation = ">" if higher_is_better else "<"
    xlabel = f"{label} τ" + ("" if higher_is_better else " (lower is better: decreasing →)")
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=bands, ax=ax, xlabel=xlabel,
                                         ylabel=f"fraction of seeds with score {relation} τ",
                                         labelsize="medium", ticklabelsize="medium")
    if not higher_is_better:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{-x + 0.0:g}"))
    ax.set_title(f"Performance profiles: {label} (95% stratified-bootstrap bands)", fontsize="medium")
    ax.legend()
    if path is not None:
        save(fig, path)
    return fig


def save(fig: Figure, path: str | Path) -> None:
    """Write ``fig`` to ``path`` as PNG or SVG, chosen by its suffix; ValueError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"save: {str(path)!r} must end in .png or .svg, got {suffix or 'no suffix'!r}")
    fig.savefig(path, format=suffix[1:])


def pareto_front(table: pd.DataFrame, title: str = "", path: str | Path | None = None) -> Figure:
    # ``title``: a second title line (e.g. which seeds selected and which report, analysis.stages)
    """The Pareto front (analysis.pareto.pareto_table): every complete configuration at (objective 1,
    objective 2) seed means with ± SE error bars in both directions, one colour per method; the front's
    members filled and joined by a dashed line in the order of the first objective, the others hollow.
    Axis labels say which way is better. Saves to ``path`` when given."""
    labels, higher = table.attrs["labels"], table.attrs["higher"]
    done = table[table["rank"] > 0]
    if done.empty or len(labels) != 2:
        raise InputError("pareto_front: no complete configuration with two objectives to draw")
    x, y = labels
    fig = _figure((6.4, 4.6))
    ax = fig.add_subplot()
    colours = {m: f"C{i}" for i, m in enumerate(sorted(done["method"].unique()))}
    for method, rows in done.groupby("method", sort=True):
        for front, part in rows.groupby("front"):
            ax.errorbar(part[x], part[y], xerr=part[f"{x}_se"].fillna(0), yerr=part[f"{y}_se"].fillna(0),
                        fmt="o", color=colours[method], mfc=colours[method] if front else "white", capsize=3,
                        label=f"{method}{'' if front else ' (dominated)'}", gid=f"{'front' if front else 'other'}:{method}")
    front = done[done["front"]].sort_values(x)
    ax.plot(front[x], front[y], "--", color="0.4", linewidth=1, gid="front")
    ax.set_xlabel(f"{x} ({'higher' if higher[0] else 'lower'} is better)")
    ax.set_ylabel(f"{y} ({'higher' if higher[1] else 'lower'} is better)")
    ax.set_title("Pareto front: seed mean ± SE; filled: non-dominated" + (f"\n{title}" if title else ""),
                 fontsize="medium")
    ax.legend(fontsize=8)
    if path is not None:
        save(fig, path)
    return fig
