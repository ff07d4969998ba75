"""Which runs a table reports. A sweep with a confirmation stage (``budget.confirm``) has two kinds of
records (column ``stage``): ``search``, the runs its selection saw, and ``confirm``, its best configurations
rerun on fresh seeds. Reporting the seeds a configuration was selected on overstates it (the winner's
curse), so by default a table shows the confirmation seeds: each method's configuration is chosen on the
search records, by the sweep's objective (among the confirmed ones), and its numbers come from its
confirmation runs. ``stage="search"`` shows the search seeds instead. Records without the column are
search records. The returned Source's ``note`` says which seeds selected and which report.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from analysis.load import Source
from core.errors import InputError
from core.records import STAGES


def seeds_text(seeds) -> str:
    """[0, 1, 2] -> '0-2'; [0, 2, 5] -> '0, 2, 5'."""
    seeds = sorted(int(s) for s in seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def present(records: pd.DataFrame) -> list[str]:
    """The stages of the records, in STAGES order (records without a ``stage`` column: search)."""
    if "stage" not in records.columns:
        return ["search"]
    found = set(_stage(records))
    return [s for s in STAGES if s in found]


def _stage(records: pd.DataFrame) -> pd.Series:
    """Each record's stage; a missing one (records written before stages) is search."""
    return records["stage"].fillna("search").astype(str).replace("", "search")


def _of(records: pd.DataFrame, stage: str) -> pd.DataFrame:
    if "stage" not in records.columns:
        return records
    return records[_stage(records) == stage].reset_index(drop=True)


def _protocol(source: Source) -> str:
    return f"; protocol {source.protocol}" if source.protocol else ""


def staged(source: Source, stage: str | None = None, metric: str | None = None, higher: bool | None = None,
           configs: tuple[str, ...] = (), one_per_method: bool = True) -> Source:
    """``source`` reduced to one stage: ``stage`` (search | confirm), by default confirm when the records
    have confirmation runs. Confirm keeps, per method, the configuration the search selected (by the
    objective, or else by the best final ``metric``; ``configs`` names others) unless ``one_per_method``
    is False (every confirmed configuration, e.g. for a Pareto front). The note (a title) names the data
    source where the records carry one (their ``data`` column)."""
    shown = _staged(source, stage, metric, higher, configs, one_per_method)
    data = sorted(set(shown.records["data"].dropna().astype(str))) if "data" in shown.records else []
    if not data:
        return shown
    return replace(shown, note="; ".join([n for n in (shown.note,) if n] + [f"data: {', '.join(data)}"]))


def _staged(source: Source, stage: str | None, metric: str | None, higher: bool | None,
            configs: tuple[str, ...], one_per_method: bool) -> Source:
    stages = present(source.records)
    stage = stage or ("confirm" if "confirm" in stages else "search")
    if stage not in stages:
        raise InputError(f"--stage: '{stage}' is not in the records; allowed: {', '.join(stages)}")
    search = replace(source, records=_of(source.records, "search"),
                     num_tasks=source.search_num_tasks or source.num_tasks)
    if "confirm" in stages and not source.confirm_seeds:  # a records file: each stage's seeds are its own
        search = replace(search, seeds=sorted(int(s) for s in search.records["seed"].unique()))
    seeds = search.seeds or sorted(int(s) for s in search.records["seed"].unique())
    if stage == "search":
        if "confirm" not in stages and not source.protocol:
            return search
        return replace(search, note=f"selected and reported on the search seeds {seeds_text(seeds)}"
                                    f"{_protocol(source)}")
    runs = _of(source.records, "confirm")
    confirmed = sorted(set(runs["config_id"].astype(str)))
    unknown = [c for c in configs if c not in confirmed]
    if unknown:
        raise InputError(f"--config: '{unknown[0]}' has no confirmation runs; allowed: {', '.join(confirmed)} "
                         "(or --stage search)")
    if one_per_method:
        chosen = set(configs) | set(_selected(search, confirmed, metric, higher, configs).values())
        runs = runs[runs["config_id"].astype(str).isin(chosen)].reset_index(drop=True)
    fresh = source.confirm_seeds or sorted(int(s) for s in runs["seed"].unique())
    note = f"selected on seeds {seeds_text(seeds)}, reported on seeds {seeds_text(fresh)}{_protocol(source)}"
    return replace(source, records=runs, seeds=list(fresh), note=note)


def _selected(search: Source, confirmed: list[str], metric: str | None, higher: bool | None,
              configs: tuple[str, ...]) -> dict[str, str]:
    """{method: config_id} chosen on the search records among the confirmed configurations."""
    from analysis.directions import higher_is_better
    from analysis.objective import best_by_objective
    from analysis.table import select, summarize

    records = search.records[search.records["config_id"].astype(str).isin(confirmed)]
    given = {m for m in records.loc[records["config_id"].astype(str).isin(configs), "method"]}
    objective = search.objective
    if objective.get("metric") and objective["metric"] in set(records["metric"]):
        try:
            metric_higher = higher_is_better(objective["metric"], search.directions)
        except ValueError:
            metric_higher = objective.get("mode") == "max"
        best = best_by_objective(records, objective, metric_higher, search.num_tasks, search.seeds or None)
    elif metric is not None and higher is not None and metric in set(records["metric"]):
        summary = summarize(records, metric, higher, num_tasks=search.num_tasks, seeds=search.seeds or None)
        table = select(summary, higher_is_better=higher)
        best = dict(zip(table["method"], table["config_id"].astype(str)))
    else:
        best = {}
    return {m: c for m, c in best.items() if m not in given}


def title_line(note: str, fmt: str) -> str:
    """The note as a title above a table in ``fmt`` ('' for csv or no note)."""
    if not note or fmt == "csv":
        return ""
    if fmt == "html":
        from html import escape

        return f"<p class='note'>{escape(note)}</p>\n"
    if fmt == "latex":
        from analysis.render import _latex_escape

        return f"\\noindent {_latex_escape(note)}\\par\n"
    return f"{note}\n\n"
