"""A published table next to ours: per method and metric the paper's mean ± spread, ours over our seeds,
the difference, a verdict, and the rank agreement of the methods (`orchestrate reproduce`).

Verdict (issue 20): ``reproduced`` when |ours − paper| ≤ max(points, se_factor · sqrt(SD²_paper/n_paper +
SD²_ours/n_ours)) (``core.stats.reproduction_bound``), else ``not reproduced``; a method whose seeds are
incomplete (crashed, diverged, missing) gets ``incomplete`` and no numbers, never a mean over the seeds that
survived; a row the paper does not report gets ``no paper number``. Ours are scaled like the paper's (e.g.
accuracy in [0, 1] × 100 for %), and the ± of both is the paper's statistic (SD, or SE).
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.table import per_seed_scores
from core import stats

VERDICTS = ("reproduced", "not reproduced", "incomplete", "no paper number")


def _spread(values: list[float], statistic: str) -> float:
    """The ± of our values in the paper's statistic: SD (also for 'none'), or SE."""
    s = stats.sd(values)
    return s / math.sqrt(len(values)) if statistic == "se" else s


def compare_column(records: pd.DataFrame, methods: dict[str, dict[str, list]], metrics: dict[str, dict],
                   directions: dict[str, bool], seeds: list[int], num_tasks: int | None, paper_n: int | None,
                   statistic: str = "sd", points: float = 2.0, se_factor: float = 2.0) -> pd.DataFrame:
    """One row per (method, metric label): paper, paper_pm, ours, ours_pm, n, diff, bound, verdict, missing.

    ``methods``: method -> {label: [mean, ±] or absent}, in the table's order; ``metrics``: label ->
    {metric, score (final | forgetting | bwt | aaa), scale}; ``seeds``: the seeds every method must have.
    """
    scores = {}
    for metric in {m["metric"] for m in metrics.values()}:
        present = records["metric"].eq(metric).any() if len(records) else False
        scores[metric] = (per_seed_scores(records, metric, directions.get(metric, True), num_tasks, seeds)
                          if present else None)
    rows = []
    for method, paper in methods.items():
        for label, spec in metrics.items():
            table = scores[spec["metric"]]
            mine = table[table["method"] == method] if table is not None else pd.DataFrame()
            row = {"method": method, "metric": label, "paper": math.nan, "paper_pm": math.nan,
                   "ours": math.nan, "ours_pm": math.nan, "n": len(seeds), "diff": math.nan,
                   "bound": math.nan, "missing": ""}
            cell = paper.get(label)
            if cell is not None:
                row["paper"] = float(cell[0])
                row["paper_pm"] = math.nan if cell[1] is None else float(cell[1])
            if mine.empty or not mine["complete"].all() or len(mine) < len(seeds):
                why = "; ".join(f"seed {s}: {m}" for s, m in zip(mine.get("seed", []), mine.get("missing", [])) if m)
                row.update(verdict="incomplete", missing=why or "no records")
                rows.append(row)
                continue
            values = [float(v) * spec.get("scale", 1.0) for v in mine[spec["score"]]]
            row["ours"], row["ours_pm"] = float(sum(values) / len(values)), _spread(values, statistic)
            if cell is None:
                row["verdict"] = "no paper number"
            else:
                paper_sd = _as_sd(row["paper_pm"], statistic, paper_n)
                row["diff"] = row["ours"] - row["paper"]
                row["bound"] = stats.reproduction_bound(paper_sd, paper_n or 0, stats.sd(values), len(values),
                                                        points, se_factor)
                row["verdict"] = "reproduced" if abs(row["diff"]) <= row["bound"] else "not reproduced"
            rows.append(row)
    return pd.DataFrame(rows)


def _as_sd(pm: float, statistic: str, n: int | None) -> float:
    """The paper's ± as an SD: an SE times sqrt(n); unknown (NaN) when the paper gives none."""
    if statistic == "se":
        return pm * math.sqrt(n) if n else math.nan
    return pm if statistic == "sd" else math.nan


def kendall_tau(rows: pd.DataFrame, label: str) -> float:
    """Kendall's τ between the paper's and our means of ``label`` over the methods that have both."""
    both = rows[(rows["metric"] == label) & rows["paper"].notna() & rows["ours"].notna()]
    return stats.rank_agreement(both["paper"], both["ours"])


def _cell(mean: float, pm: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.2f}" if math.isnan(pm) else f"{mean:.2f} ± {pm:.2f}"


def to_markdown(rows: pd.DataFrame, labels: list[str]) -> str:
    """The side-by-side table: a row per method, per metric the paper, ours, the difference and the verdict."""
    head = ["method"] + [f"{label} {part}" for label in labels for part in ("paper", "ours", "Δ", "verdict")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, group in rows.groupby("method", sort=False):
        cells = [method]
        for label in labels:
            r = group[group["metric"] == label].iloc[0]
            verdict = r["verdict"] if r["verdict"] != "incomplete" else f"incomplete ({r['missing']})"
            diff = "–" if math.isnan(r["diff"]) else f"{r['diff']:+.2f} (≤ {r['bound']:.2f})"
            cells += [_cell(r["paper"], r["paper_pm"]), _cell(r["ours"], r["ours_pm"]), diff,
                      f"**{verdict}**" if verdict == "reproduced" else verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_line(rows: pd.DataFrame, labels: list[str]) -> str:
    """'k of n cells reproduced; Kendall τ ACC 0.87, BWT 0.60'."""
    judged = rows[rows["verdict"].isin(("reproduced", "not reproduced"))]
    taus = ", ".join(f"{label} {_tau_text(kendall_tau(rows, label))}" for label in labels)
    unjudged = int(rows["paper"].notna().sum() - len(judged))
    extra = f" ({unjudged} with a paper number not judged: incomplete)" if unjudged else ""
    return (f"{int((judged['verdict'] == 'reproduced').sum())} of {len(judged)} cells reproduced{extra}; "
            f"Kendall τ (paper vs ours, over the methods with both): {taus}")


def _tau_text(tau: float) -> str:
    return "n/a" if math.isnan(tau) else f"{tau:.2f}"
