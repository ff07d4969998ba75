"""Formatting of summary tables (CSV, Markdown, LaTeX); no statistics here.

A table row carries, for each shown column ``c``, the mean in ``c`` and the standard error in
``c_se``; rows with ``complete`` False are shown as "incomplete (<missing>)".
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _fixed(x: float, decimals: int) -> str:
    """x rounded to ``decimals`` places (negative: to tens, hundreds...), never '-0'."""
    if decimals < 0:
        x, decimals = round(x, decimals), 0
    text = f"{x:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _exponent(x: float, digits: int) -> int:
    """Decimal exponent of x once rounded to ``digits`` significant digits (9.96 -> 1 for 2 digits)."""
    return int(f"{abs(x):.{digits - 1}e}".split("e")[1])


def format_mean_se(mean: float, se: float, sep: str = "±") -> str:
    """'mean±se' with the SE rounded to 2 significant digits and the mean to the same decimal place.

    44.53, 2.31 -> '44.5±2.3'; 0.4567, 0.0123 -> '0.457±0.012'; 1445.3, 234 -> '1450±230'.
    SE 0: the mean to 3 significant digits, the SE at the same place (12.34, 0 -> '12.3±0.0').
    SE NaN (a single seed): the mean to 3 significant digits and '(n=1)' (44.53 -> '44.5 (n=1)').
    Mean NaN: 'n/a'.
    """
    if mean is None or math.isnan(mean):
        return "n/a"
    if se is None or math.isnan(se):
        return f"{_fixed(mean, 2 - _exponent(mean, 3))} (n=1)"
    decimals = 1 - _exponent(se, 2) if se > 0 else 2 - _exponent(mean, 3)
    return f"{_fixed(mean, decimals)}{sep}{_fixed(se, decimals)}"


def to_csv(df: pd.DataFrame) -> str:
    """The table as CSV with full-precision numbers and no index."""
    return df.to_csv(index=False, lineterminator="\n")


def _best(df: pd.DataFrame, columns: Sequence[str], higher_is_better: Mapping[str, bool] | None) -> dict:
    """{column: set of row positions holding the best mean among complete rows}."""
    best = {}
    for c in columns:
        if not higher_is_better or c not in higher_is_better:
            continue
        complete = df["complete"].astype(bool) if "complete" in df else pd.Series(True, index=df.index)
        values = df[c].where(complete).to_numpy(float)
        ok = [i for i, v in enumerate(values) if not math.isnan(v)]
        if ok:
            target = (max if higher_is_better[c] else min)(values[i] for i in ok)
            best[c] = {i for i in ok if values[i] == target}
    return best


def _rows(df, columns, labels, higher_is_better, bold, cell, incomplete):
    """Rows of cell strings shared by the Markdown and LaTeX writers."""
    best = _best(df, columns, higher_is_better)
    out = []
    for i, row in enumerate(df.to_dict("records")):
        label = [str(row[c]) for c in labels]
        if not row.get("complete", True):
            out.append((label, incomplete(row.get("missing", ""))))
            continue
        cells = []
        for c in columns:
            text = cell(row[c], row.get(f"{c}_se", float("nan")))
            cells.append(bold(text) if i in best.get(c, ()) else text)
        out.append((label, cells))
    return out


def to_markdown(df: pd.DataFrame, columns: Sequence[str], *, labels: Sequence[str] = ("method",),
                higher_is_better: Mapping[str, bool] | None = None) -> str:
    """A Markdown table: ``labels`` columns as text, then one 'mean±se' cell per column of ``columns``
    (see :func:`format_mean_se`). The best mean per column among complete rows is bold where
    ``higher_is_better`` gives the column's direction (ties: all bold). An incomplete row reads
    'incomplete (<missing>)' in its first column and leaves the others empty."""
    def escape(text):
        return str(text).replace("|", r"\|")

    def incomplete(missing):
        return [f"incomplete ({missing})"] + [""] * (len(columns) - 1)

    lines = ["| " + " | ".join(escape(c) for c in [*labels, *columns]) + " |",
             "|" + "|".join([" --- "] * len(labels) + [" ---: "] * len(columns)) + "|"]
    for label, cells in _rows(df, columns, labels, higher_is_better, lambda t: f"**{t}**",
                              format_mean_se, incomplete):
        lines.append("| " + " | ".join(escape(x) for x in [*label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(df: pd.DataFrame, columns: Sequence[str], *, labels: Sequence[str] = ("method",),
             higher_is_better: Mapping[str, bool] | None = None) -> str:
    """A booktabs ``tabular``: '$44.5 \\pm 2.3$' cells, best in ``\\mathbf``, an incomplete row as one
    cell 'incomplete (<missing>)' spanning the value columns. Needs ``\\usepackage{booktabs}``."""
    def cell(mean, se):
        text = format_mean_se(mean, se, sep=r" \pm ")
        if text == "n/a":
            return text
        if text.endswith(" (n=1)"):
            return f"${text[:-6]}$ (n=1)"
        return f"${text}$"

    def bold(text):
        if not text.startswith("$"):
            return text
        end = text.index("$", 1)
        return rf"$\mathbf{{{text[1:end]}}}${text[end + 1:]}"

    def incomplete(missing):
        return [rf"\multicolumn{{{len(columns)}}}{{l}}{{incomplete ({_latex_escape(missing)})}}"]

    lines = [r"\begin{tabular}{" + "l" * len(labels) + "r" * len(columns) + "}", r"\toprule",
             " & ".join(_latex_escape(c) for c in [*labels, *columns]) + r" \\", r"\midrule"]
    for label, cells in _rows(df, columns, labels, higher_is_better, bold, cell, incomplete):
        lines.append(" & ".join([*map(_latex_escape, label), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(df: pd.DataFrame, columns: Sequence[str], *, labels: Sequence[str] = ("method",),
            higher_is_better: Mapping[str, bool] | None = None) -> str:
    """An HTML ``<table>`` with the same cells as :func:`to_markdown` (best in ``<b>``)."""
    from html import escape

    def incomplete(missing):
        return [f'<td colspan="{len(columns)}">incomplete ({escape(str(missing))})</td>']

    head = "".join(f"<th>{escape(str(c))}</th>" for c in [*labels, *columns])
    lines = ['<table class="results">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for label, cells in _rows(df, columns, labels, higher_is_better, lambda t: f"<b>{t}</b>",
                              lambda m, s: escape(format_mean_se(m, s)), incomplete):
        tds = [c if c.startswith("<td") else f"<td>{c}</td>" for c in cells]
        lines.append("<tr>" + "".join(f"<td>{escape(x)}</td>" for x in label) + "".join(tds) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def _plain(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plain_table(df: pd.DataFrame, fmt: str) -> str:
    """Any small table (no mean±se cells) as csv, md, latex or html; a missing value is '–' (as the
    paper writes a task that never re-converges), or empty in CSV."""
    if fmt == "csv":
        return to_csv(df)
    cells = [[_plain(v) for v in row] for row in df.itertuples(index=False)]
    if fmt == "md":
        lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "|".join([" --- "] * len(df.columns)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]) + "\n"
    if fmt == "latex":
        lines = [r"\begin{tabular}{" + "l" * len(df.columns) + "}", r"\toprule",
                 " & ".join(_latex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_escape(c) for c in r) + r" \\" for r in cells]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
    from html import escape

    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in cells)
    return f'<table class="results">\n<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n'
