"""The Pareto front of configurations under two (or more) objectives: non-dominated sorting (pure
functions) and the table of ``orchestrate table --pareto``.

A point dominates another when it is at least as good on every objective and strictly better on one
(better: larger where ``higher`` is True, smaller otherwise). Rank 1 is the non-dominated set (the front);
rank 2 the front once rank 1 is removed, and so on. A point with a NaN (an incomplete configuration) has
rank 0 and is never on a front. Points are compared on each objective's number by its seed rule (the mean,
or mean ∓ k·SE); the table shows mean ± SE.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from analysis import objective as O


def dominates(a: Sequence[float], b: Sequence[float], higher: Sequence[bool]) -> bool:
    """Whether ``a`` dominates ``b``."""
    sign = np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    x, y = sign * np.asarray(a, dtype=float), sign * np.asarray(b, dtype=float)
    return bool(np.all(x >= y) and np.any(x > y))


def pareto_ranks(points, higher: Sequence[bool]) -> np.ndarray:
    """The non-dominated sorting rank of each row of ``points`` (n × m); 0 for rows holding a NaN."""
    pts = np.asarray(points, dtype=float).reshape(len(points), len(higher))
    ranks = np.zeros(len(pts), dtype=int)
    left = [i for i in range(len(pts)) if not np.isnan(pts[i]).any()]
    rank = 0
    while left:
        rank += 1
        front = [i for i in left if not any(dominates(pts[j], pts[i], higher) for j in left if j != i)]
        ranks[front] = rank
        left = [i for i in left if i not in front]
    return ranks


def non_dominated(points, higher: Sequence[bool]) -> np.ndarray:
    """A boolean mask of the rows of ``points`` on the Pareto front (rank 1)."""
    return pareto_ranks(points, higher) == 1


def default_objectives(metric: str, reduce: str = "mean") -> list[dict]:
    """Without two objectives from the sweep: the final average of ``metric`` and its forgetting."""
    return [{"metric": metric, "reduce": reduce, "score": "final"}, {"metric": metric, "score": "forgetting"}]


def pareto_table(records: pd.DataFrame, objectives: list[dict], directions: dict[str, bool],
                 num_tasks: int | None = None, seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per configuration: method, config_id, seeds, per objective ``<label>`` (mean) and
    ``<label>_se`` (analysis.objective.summary), ``rank`` (non-dominated sorting on the objectives by their
    seed rules) and ``front`` (rank 1); complete configurations first, best ranks first, then by the first
    objective. ``directions``: metric -> higher is better. ``table.attrs``: labels and higher (per objective)."""
    labels = [O.label(o) for o in objectives]
    higher = [O.optimised_higher(o, directions[O.goal(o)["metric"]]) for o in objectives]
    merged = None
    for o, name in zip(objectives, labels):
        s = O.summary(records, o, directions[O.goal(o)["metric"]], num_tasks, seeds)
        s = s.rename(columns={"mean": name, "se": f"{name}_se", "value": f"{name}_value"})
        merged = s if merged is None else merged.merge(
            s.drop(columns=["seeds", "complete"]), on=["method", "config_id"], how="outer")
    values = merged[[f"{n}_value" for n in labels]].to_numpy(float)
    merged["rank"] = pareto_ranks(values, higher)
    merged["front"] = merged["rank"] == 1
    first = merged[f"{labels[0]}_value"] * (-1.0 if higher[0] else 1.0)
    merged = (merged.assign(_unranked=merged["rank"] == 0, _first=first)
              .sort_values(["_unranked", "rank", "_first", "config_id"], kind="stable"))
    columns = ["method", "config_id", "seeds", *[c for n in labels for c in (n, f"{n}_se")], "rank", "front",
               "complete"]
    out = merged[columns].reset_index(drop=True)
    out.attrs.update(labels=labels, higher=higher)
    return out


def render_pareto(table: pd.DataFrame, fmt: str, note: str = "") -> str:
    """CSV with full-precision numbers; md, latex or html with 'mean±SE' cells, the front marked."""
    from analysis.render import format_mean_se, plain_table, to_csv

    if fmt == "csv":
        return to_csv(table)
    labels, higher = table.attrs["labels"], table.attrs["higher"]
    shown = pd.DataFrame({"method": table["method"], "config_id": table["config_id"], "seeds": table["seeds"]})
    for name, up in zip(labels, higher):
        shown[f"{name} ({'max' if up else 'min'})"] = [format_mean_se(m, s) for m, s in zip(table[name],
                                                                                            table[f"{name}_se"])]
    shown["rank"] = [str(r) if r else "incomplete" for r in table["rank"]]
    shown["front"] = ["yes" if f else "" for f in table["front"]]
    title = f"Pareto front of {' and '.join(labels)}: rank 1 is non-dominated (mean±SE over seeds)"
    title += f"; {note}" if note else ""
    from analysis.stages import title_line

    return title_line(title, fmt) + plain_table(shown, fmt)
