"""`orchestrate reproduce NAME`: a reproduction spec run as ordinary sweeps of fixed configurations (per
column, through the same Ray / Optuna / MLflow path as every sweep), then the paper's table next to ours.

A column's methods run in sweeps ``<name>-<column>[-k]`` in ``--runs-dir``: a method an earlier invocation
ended is read, not rerun; an interrupted sweep is resumed (``reproduce_runs``). The side-by-side table
(``reproduce_report``) goes to stdout, to ``<runs-dir>/reproductions/<name>.md`` and ``.csv``, and to
``--out``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace

import pandas as pd
import yaml

from core.errors import InputError
from orchestrator.reproduction_spec import Column, Spec, column_space, needs_data
from orchestrator.space_file import SpaceError
from orchestrator.space_overrides import apply_override
from orchestrator.spaces import Space, validate


@dataclass(frozen=True)
class Planned:
    column: Column
    sweep_name: str
    space: Space | None  # None: the column needs data the user has not given (dry run only)
    data_missing: str = ""
    doc: dict | None = None  # the column's space document, overrides applied


def parse_seeds(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """'0-4' or '0,1,2' (or both: '0-2,7'); None: the spec's seeds."""
    if text is None:
        return default
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds += list(range(int(low), int(high) + 1)) if high else [int(low)]
    except ValueError:
        raise InputError(f"--seeds: {text!r} is not allowed; allowed: a range 0-4 or a list 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"--seeds: {text!r} is not allowed; allowed: distinct non-negative seeds, e.g. 0-4")
    return tuple(seeds)


def select(spec: Spec, columns: str | None, methods: str | None) -> Spec:
    """The spec cut to ``--columns`` and ``--methods`` (comma lists; None: all)."""
    def names(text: str, allowed: list[str], flag: str) -> list[str]:
        chosen = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in chosen if n not in allowed]
        if bad or not chosen:
            raise InputError(f"{flag}: {text!r} is not allowed; allowed: a comma list of {', '.join(allowed)}")
        return chosen

    cols = spec.columns
    if columns is not None:
        keep = names(columns, [c.name for c in cols], "--columns")
        cols = tuple(c for c in cols if c.name in keep)
    if methods is not None:
        keep = names(methods, sorted({m for c in cols for m in c.methods}), "--methods")
        cols = tuple(replace(c, methods={m: v for m, v in c.methods.items() if m in keep}) for c in cols)
        cols = tuple(c for c in cols if c.methods)
    return replace(spec, columns=cols)


def plan(spec: Spec, seeds: tuple[int, ...], overrides: list[str], prefix: str, dry_run: bool) -> list[Planned]:
    """Every column's validated space; in a dry run, a column whose only problem is a data path the spec
    leaves to the user is planned without one (and says so)."""
    out = []
    for column in spec.columns:
        name = f"{prefix}-{column.name}"
        doc = column_space(spec, column, seeds, name)
        for item in overrides:
            apply_override(doc, item)
        _check_metrics(spec, column, doc["benchmark"].get("name"))
        try:
            out.append(Planned(column, name, validate(doc), doc=doc))
        except SpaceError as e:
            if not (dry_run and needs_data(column, str(e))):
                raise SpaceError(f"columns.{column.name}: {e}") from None
            _methods_only(doc, column)
            out.append(Planned(column, name, None, str(e)))
    return out


def _methods_only(doc: dict, column: Column) -> None:
    """The methods and their params, validated without the benchmark (its data is not there)."""
    from trainables.build import method_params

    for method, params in doc["methods"].items():
        try:
            method_params(method, params)
        except InputError as e:
            raise SpaceError(f"columns.{column.name}: {e}") from None


def _check_metrics(spec: Spec, column: Column, benchmark) -> None:
    from trainables.benchmarks import BENCHMARKS

    if benchmark not in BENCHMARKS:
        return  # validate() names the unknown benchmark
    metrics = BENCHMARKS[benchmark].metrics
    for label, m in spec.metrics.items():
        if m["metric"] not in metrics:
            raise SpaceError(f"metrics.{label}.metric: {m['metric']!r} is not a metric of {benchmark} (column "
                             f"{column.name}); allowed: {', '.join(metrics)}")


def describe(spec: Spec, planned: list[Planned], seeds: tuple[int, ...]) -> list[str]:
    """The plan of a dry run: per column its benchmark, data, methods and settings, and the estimated cost."""
    from trainables.benchmarks import get_benchmark

    lines = [f"{spec.name}: {spec.table}", f"paper: {spec.paper}",
             f"seeds: {', '.join(map(str, seeds))} (paper: {spec.paper_seeds or 'not stated'}, ± is "
             f"{spec.statistic.upper() if spec.statistic != 'none' else 'not given'})",
             "metrics: " + ", ".join(f"{k} = {m['score']} {m['metric']} × {m['scale']:g}" for k, m in spec.metrics.items()),
             f"verdict: reproduced when |ours − paper| <= max({spec.points:g}, {spec.se_factor:g}·sqrt(SD²_paper/n "
             "+ SD²_ours/n))"]
    if spec.requires:
        lines.append(f"requires: {spec.requires.get('data', '')}{'; a GPU' if spec.requires.get('gpu') else ''}")
    totals: dict[str, float] = {}
    for p in planned:
        bench = p.column.benchmark["name"]
        if p.space is not None:
            data = get_benchmark(bench).data_source(p.space.bench_config) or "built in"
        else:
            data = f"not given ({p.data_missing}); give it with --set"
        lines += ["", f"column {p.column.name} ({p.column.title}): sweeps {p.sweep_name}[-k], benchmark {bench}, "
                  f"data: {data}"]
        unit = p.column.estimate_unit
        for method, m in p.column.methods.items():
            cost = p.column.cost(method) * len(seeds)
            totals[unit] = totals.get(unit, 0.0) + cost
            params = ", ".join(f"{k}={v}" for k, v in m["params"].items()) or "defaults"
            lines.append(f"  {method}: {params}; est. {cost:.3g} {_unit(unit)}"
                         f"{'' if m['paper'] else ' (no paper number: an extra row)'}")
    lines.append("")
    for unit, total in totals.items():
        slots = max(p.column.max_concurrent for p in planned)
        extra = f", about {total / slots:.0f} minutes of wall time on {slots} CPU slots" if unit.startswith("cpu") else ""
        lines.append(f"estimated cost: {total:.3g} {_unit(unit)}{extra}")
    return lines


def _unit(unit: str) -> str:
    return "core-minutes" if unit == "cpu_minutes_per_seed" else "GPU-hours"


def run(spec: Spec, planned: list[Planned], options, seeds: tuple[int, ...], prefix: str,
        command: str, left_out: str = "", execute: bool = True) -> tuple[str, pd.DataFrame, list[str]]:
    """Run every column's methods that no earlier sweep ended (``reproduce_runs``), resuming the interrupted
    sweep that was running exactly them, then compare with the paper. Returns (markdown, rows, the sweeps
    interrupted: a Ctrl+C stops at the first, whose rows show as incomplete). ``execute`` False: the table
    of the rows that have ended, nothing run."""
    from orchestrator import sweep as sw
    from orchestrator.reproduce_runs import column_sweeps, done, next_sweep

    started, interrupted = time.monotonic(), []
    for p in planned if execute else ():
        sweeps = column_sweeps(options.runs_dir, prefix, p.column.name)
        have = done(sweeps, yaml.safe_load(p.space.to_yaml()))
        missing = [m for m in p.column.methods if m not in have]
        if have:
            print(f"{p.column.name}: {', '.join(have)} ended earlier (in {', '.join(sorted({s.name for s in have.values()}))}): "
                  "read, not rerun", file=sys.stderr)
        if not missing:
            continue
        doc = {**p.doc, "methods": {m: p.doc["methods"][m] for m in missing},
               "budget": {**p.doc["budget"], "num_samples": len(missing)}}
        name, resume = next_sweep(options.runs_dir, prefix, p.column.name, sweeps,
                                  yaml.safe_load(validate(doc).to_yaml()))
        space = validate({**doc, "name": name})
        if resume:
            space, folder, state = sw.resume(name, replace(options, name=None))
            summary = sw.continue_sweep(space, folder, state)
        else:
            space, folder = sw.prepare_space(space, replace(options, name=name))
            summary = sw.start(space, folder, replace(options, name=name))
        if not summary["complete"]:  # Ctrl+C: the sweep saved its state; the same command continues it
            interrupted.append(name)
            break
    from orchestrator.reproduce_report import report

    markdown, rows = report(spec, planned, options.runs_dir, prefix, seeds, command, time.monotonic() - started,
                            left_out)
    return markdown, rows, interrupted


def left_out(full: Spec, chosen: Spec) -> str:
    """'mer in mnist_perm; column many_perm': what --columns / --methods cut from the spec."""
    kept = {c.name: c for c in chosen.columns}
    parts = []
    for column in full.columns:
        if column.name not in kept:
            parts.append(f"column {column.name}")
        elif set(column.methods) - set(kept[column.name].methods):
            gone = [m for m in column.methods if m not in kept[column.name].methods]
            parts.append(f"{', '.join(gone)} in {column.name}")
    return "; ".join(parts)
