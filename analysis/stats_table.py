"""The ``--stats`` columns of a method table (analysis.report.method_table) as text under the table in
Markdown, LaTeX or HTML: one table of SD, intervals and IQM per method, one P(row beats column) matrix
per score for ``poi``, and a line saying how the intervals were made. The numbers come from core.stats;
nothing is computed here."""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

import pandas as pd

from analysis.render import _latex_escape, plain_table
from core import stats as S

POI = "poi"


def _num(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.4g}"


def _interval(low: float, high: float) -> str:
    return "–" if math.isnan(low) or math.isnan(high) else f"[{low:.4g}, {high:.4g}]"


def _columns(table: pd.DataFrame, scores: Sequence[str]) -> dict[str, list[str]]:
    """{header: cells} for sd, ci, bootstrap and iqm, in that order, each over ``scores``."""
    cols, out = set(table.columns), {}
    for score in scores:
        if f"{score}_sd" in cols:
            out[f"{score} SD"] = [_num(x) for x in table[f"{score}_sd"]]
    for stat, label in (("ci", "mean 95% t-CI"), ("bootstrap", "mean 95% bootstrap CI")):
        for score in scores:
            if f"{score}_{stat}_low" in cols:
                out[f"{score} {label}"] = [_interval(lo, hi) for lo, hi in
                                           zip(table[f"{score}_{stat}_low"], table[f"{score}_{stat}_high"])]
    for score in scores:
        if f"{score}_iqm" in cols:
            out[f"{score} IQM [95% CI]"] = [
                "–" if math.isnan(m) else f"{m:.4g} {_interval(lo, hi)}"
                for m, lo, hi in zip(table[f"{score}_iqm"], table[f"{score}_iqm_low"], table[f"{score}_iqm_high"])]
    return out


def _poi_matrix(table: pd.DataFrame, score: str) -> pd.DataFrame | None:
    """Rows: methods; columns: the other methods; cell: P(row beats column) on ``score``."""
    methods = list(table["method"])
    if not any(f"{score}_{POI}_{m}" in table.columns for m in methods):
        return None
    rows = [[row["method"], *("–" if other == row["method"] else _num(row.get(f"{score}_{POI}_{other}", math.nan))
                              for other in methods)]
            for _, row in table.iterrows()]
    return pd.DataFrame(rows, columns=[f"{score}: P(row beats column)", *methods])


def _caption(table: pd.DataFrame) -> str:
    parts = []
    if any(c.endswith("_ci_low") for c in table.columns):
        parts.append("t-CI: Student-t interval of the mean over seeds")
    if any(c.endswith(("_bootstrap_low", "_iqm_low")) for c in table.columns):
        parts.append("bootstrap CI and IQM: rliable's stratified bootstrap over seeds (percentile, "
                     f"{S.BOOTSTRAP_REPS} resamples, seed {S.BOOTSTRAP_SEED})")
    if any(f"_{POI}_" in c for c in table.columns):
        parts.append("P(row beats column): rliable's probability of improvement over seeds, ties 1/2")
    return "; ".join(parts) + "." if parts else ""


def render_stats(table: pd.DataFrame, fmt: str, scores: Sequence[str]) -> str:
    """'' when the table has no stats columns; else the stats table, the P(improvement) matrices and a
    caption, each preceded by a blank line, in ``fmt`` (md, latex or html)."""
    blocks = []
    columns = _columns(table, scores)
    if columns:
        blocks.append(plain_table(pd.DataFrame({"method": table["method"], **columns}), fmt))
    blocks += [plain_table(m, fmt) for m in (_poi_matrix(table, s) for s in scores) if m is not None]
    caption = _caption(table)
    if caption:
        blocks.append({"md": f"{caption}\n", "latex": f"\\par\\noindent {_latex_escape(caption)}\n",
                       "html": f"<p class='note'>{escape(caption)}</p>\n"}[fmt])
    return "".join("\n" + b for b in blocks)
