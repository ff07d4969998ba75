"""Each method against each baseline, on the configuration ``table`` shows per method: the difference
(method − baseline) of final, forgetting and AAA over seeds, a t-test and a rank test, P(method beats
baseline; rliable's) and a one-line verdict. Statistics come from core.stats; nothing is computed here."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from analysis.load import Source
from analysis.render import format_mean_se, plain_table, to_csv
from analysis.report import method_table, score_directions
from analysis.table import per_seed_scores
from core import stats as S
from core.errors import InputError

SCORES = ("final", "forgetting", "aaa")
COLUMNS = ("method", "baseline", "score", "seeds", "diff", "diff_se", "t_test", "t_p", "rank_test", "rank_p",
           "p_improvement", "verdict")


def _scores(source: Source, metric: str, higher: bool, configs: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """{method: per-seed scores of the configuration the table shows}. Seeds are not required here
    (a configuration is complete on the seeds it has): whether method and baseline share their seeds is
    the pairing's check, which names the seeds that differ."""
    source = replace(source, seeds=[])
    table = method_table(source, metric, higher, configs)
    scores = per_seed_scores(source.records, metric, higher, source.num_tasks)
    out = {}
    for row in table.itertuples():
        chosen = scores[(scores["method"] == row.method) & (scores["config_id"] == row.config_id)]
        out[row.method] = chosen.set_index("seed").sort_index().assign(missing_all=row.missing,
                                                                       complete_all=bool(row.complete))
    return out


def _seeds(values) -> str:
    return ", ".join(map(str, values))


def _p_text(p: float, why: str) -> str:
    return f"n/a ({why})" if math.isnan(p) else f"{p:.2g}" if p < 0.001 else f"{p:.3f}".rstrip("0").rstrip(".")


def _verdict(method, baseline, score, metric, res, test, seeds, higher) -> str:
    p = res["t_p"]
    if math.isnan(p):
        return f"no test ({test}: {res['t_why']}, {seeds} seeds)"
    where = f"({test} p = {_p_text(p, '')}, {seeds} seeds)"
    if p >= S.ALPHA:
        return f"no significant difference {where}"
    better = (res["diff"] > 0) == higher
    return f"{method} {'better' if better else 'worse'} than {baseline} on {score} {metric} {where}"


def compare(source: Source, metric: str, higher: bool, baselines: tuple[str, ...], unpaired: bool = False,
            configs: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per (method, baseline, score) for every method other than the baseline: ``COLUMNS``.

    Paired (default): on the seeds both share, which must be the same set (InputError naming the missing
    seeds otherwise); core.stats.paired_comparison (paired t-test, Wilcoxon signed-rank). ``unpaired``:
    core.stats.unpaired_comparison (Welch's t-test, Mann-Whitney U). ``p_improvement`` is rliable's
    probability of improvement (core.stats.probability_of_improvement) in the score's direction
    (forgetting: lower is better). The verdict follows the t-test at core.stats.ALPHA. A method without a complete configuration gets one
    row per score with no numbers and its ``missing`` as verdict; a baseline without one is an InputError.
    """
    per_method = _scores(source, metric, higher, configs)
    unknown = [b for b in baselines if b not in per_method]
    if unknown:
        raise InputError(f"--baseline: '{unknown[0]}' is not a method of the records; allowed: "
                         f"{', '.join(sorted(per_method))}")
    directions = score_directions(higher)
    t_test, rank_test = (("Welch's t-test", "Mann-Whitney U") if unpaired
                         else ("paired t-test", "Wilcoxon signed-rank"))
    rows = []
    for baseline in baselines:
        base = per_method[baseline]
        if not base["complete_all"].iloc[0]:
            raise InputError(f"--baseline: {baseline} has no complete configuration "
                             f"({base['missing_all'].iloc[0]}); nothing can be compared with it")
        for method, ours in per_method.items():
            if method == baseline:
                continue
            if not ours["complete_all"].iloc[0]:
                rows += [{"method": method, "baseline": baseline, "score": score, "seeds": len(ours),
                          "verdict": f"incomplete ({ours['missing_all'].iloc[0]})"} for score in SCORES]
                continue
            if not unpaired and set(ours.index) != set(base.index):
                raise InputError(
                    f"compare: {method} (seeds {_seeds(ours.index)}) and {baseline} (seeds {_seeds(base.index)}) "
                    f"do not share their seeds: {method} lacks {_seeds(sorted(set(base.index) - set(ours.index))) or 'none'}, "
                    f"{baseline} lacks {_seeds(sorted(set(ours.index) - set(base.index))) or 'none'}; "
                    "pass --unpaired for Welch's t-test and Mann-Whitney U")
            for score in SCORES:
                x, y = ours[score], base[score]
                res = S.unpaired_comparison(x, y) if unpaired else S.paired_comparison(x, y.loc[x.index])
                seeds = f"{len(x)}+{len(y)}" if unpaired else str(len(x))
                rows.append({"method": method, "baseline": baseline, "score": score, "seeds": seeds,
                             "diff": res["diff"], "diff_se": res["diff_se"], "t_test": t_test,
                             "t_p": res["t_p"], "rank_test": rank_test, "rank_p": res["rank_p"],
                             "p_improvement": S.probability_of_improvement(x, y, directions[score]),
                             "t_why": res["t_why"], "rank_why": res["rank_why"],
                             "verdict": _verdict(method, baseline, score, metric, res, t_test, seeds,
                                                 directions[score])})
    out = pd.DataFrame(rows, columns=[*COLUMNS, "t_why", "rank_why"])
    return out


def render(table: pd.DataFrame, fmt: str) -> str:
    """CSV with full-precision numbers (and the reasons a p-value is missing); md, latex or html with
    'mean±SE' differences, p-values to 3 decimals or 'n/a (why)', and the verdict."""
    if fmt == "csv":
        return to_csv(table)
    tests = [table[c].dropna() for c in ("t_test", "rank_test")]
    t_name, rank_name = (t.iloc[0] if len(t) else default for t, default in zip(tests, ("t-test", "rank test")))
    shown = pd.DataFrame({
        "method": table["method"], "baseline": table["baseline"], "score": table["score"],
        "seeds": table["seeds"],
        "method − baseline": [format_mean_se(m, s) for m, s in zip(table["diff"], table["diff_se"])],
        f"{t_name} p": [_p_text(p, w) if isinstance(t, str) else "" for p, w, t in
                     zip(table["t_p"], table["t_why"], table["t_test"])],
        f"{rank_name} p": [_p_text(p, w) if isinstance(t, str) else "" for p, w, t in
                        zip(table["rank_p"], table["rank_why"], table["rank_test"])],
        "P(method beats baseline)": [f"{p:.2f}" if p == p else "" for p in table["p_improvement"]],
        "verdict": table["verdict"]})
    return plain_table(shown, fmt)
