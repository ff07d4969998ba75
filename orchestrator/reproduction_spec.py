"""Reproduction specs: a published table as data (``reproductions/<paper>_<table>.yaml``), validated before
any work, and each of its columns as a space of fixed configurations (no search) for the ordinary sweep.

A spec names the paper and table, what the paper's ± is (``statistic``: sd | se | none) over how many seeds
(``paper_seeds``), our default ``seeds``, the table's ``metrics`` (label -> one of our scores of one of our
metrics, with a ``scale``), the ``tolerance`` of the verdict, what it ``requires`` (data, a GPU), and per
column (one protocol: a benchmark with settings) the methods with their fixed ``params``, the ``source`` of
those settings and the ``paper`` numbers ([mean, ±] per metric label; absent: a row the paper lacks), and
an ``estimate`` of the cost per seed. Every error is one line naming the field and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from core.errors import InputError
import yaml

from orchestrator.space_file import SpaceError, parse_yaml, short, yaml_problem

STATISTICS = ("sd", "se", "none")
SCORES = ("final", "forgetting", "bwt", "aaa")
TOP_KEYS = ("name", "paper", "table", "statistic", "paper_seeds", "seeds", "metrics", "tolerance", "requires",
            "columns", "notes")
COLUMN_KEYS = ("name", "title", "benchmark", "estimate", "methods", "max_concurrent")
METHOD_KEYS = ("params", "source", "paper")
ESTIMATE_UNITS = ("cpu_minutes_per_seed", "gpu_hours_per_seed")
PATH_SETTINGS = ("data_dir", "data_root", "checkpoint")  # left "" in a spec: the user brings the data


@dataclass(frozen=True)
class Column:
    name: str
    title: str
    benchmark: dict[str, Any]  # name and settings, as a space's benchmark
    methods: dict[str, dict[str, Any]]  # method -> {params, source, paper}
    estimate_unit: str
    estimate: dict[str, float]  # method (or "default") -> cost per seed in estimate_unit
    max_concurrent: int = 2

    def cost(self, method: str) -> float:
        return self.estimate.get(method, self.estimate.get("default", math.nan))


@dataclass(frozen=True)
class Spec:
    name: str
    paper: str
    table: str
    statistic: str
    paper_seeds: int | None
    seeds: tuple[int, ...]
    metrics: dict[str, dict[str, Any]]
    points: float
    se_factor: float
    columns: tuple[Column, ...]
    requires: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def builtin_specs() -> dict[str, Path]:
    """Built-in spec name -> file, from the ``reproductions`` package."""
    folder = resources.files("reproductions")
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def _bad(where: str, value: Any, allowed: str) -> SpaceError:
    return SpaceError(f"{where}: {short(value)} is not allowed; allowed: {allowed}")


def _number(where: str, value: Any, low: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise _bad(where, value, f"a finite number >= {low}" if low > -math.inf else "a finite number")
    return float(value)


def _keys(where: str, doc: Any, allowed: tuple[str, ...]) -> dict:
    if not isinstance(doc, dict):
        raise _bad(where, doc, "a mapping")
    unknown = [k for k in doc if k not in allowed]
    if unknown:
        raise SpaceError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    return doc


def read_spec(name_or_path: str) -> Spec:
    """The validated spec of a built-in name or a YAML file."""
    specs = builtin_specs()
    path = specs.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise InputError(f"NAME: unknown reproduction {name_or_path!r}; allowed: {', '.join(sorted(specs))} "
                         "or a spec file")
    try:
        doc = parse_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise SpaceError(f"{path}: not valid YAML{yaml_problem(e)}") from None
    return validate_spec(doc, path.stem)


def validate_spec(doc: Any, stem: str | None = None) -> Spec:
    doc = _keys("spec", doc, TOP_KEYS)
    for key in ("name", "paper", "table", "metrics", "columns"):
        if key not in doc:
            raise SpaceError(f"{key}: required; a spec names {', '.join(('name', 'paper', 'table', 'metrics', 'columns'))}")
    name = doc["name"]
    if not isinstance(name, str) or (stem is not None and name != stem):
        raise _bad("name", name, f"the file's name without .yaml ({stem})" if stem else "a string")
    statistic = doc.get("statistic", "sd")
    if statistic not in STATISTICS:
        raise _bad("statistic", statistic, ", ".join(STATISTICS))
    paper_seeds = doc.get("paper_seeds")
    if paper_seeds is not None and (type(paper_seeds) is not int or paper_seeds < 1):
        raise _bad("paper_seeds", paper_seeds, "a positive integer, or null when the paper does not say")
    seeds = doc.get("seeds", [0, 1, 2])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(type(s) is int and s >= 0 for s in seeds)):
        raise _bad("seeds", seeds, "a non-empty list of distinct non-negative integers")
    metrics = _keys("metrics", doc["metrics"], tuple(doc["metrics"]) if isinstance(doc["metrics"], dict) else ())
    if not metrics:
        raise _bad("metrics", metrics, "a mapping from labels to {metric, score, scale}")
    for label, m in metrics.items():
        _keys(f"metrics.{label}", m, ("metric", "score", "scale"))
        if not isinstance(m.get("metric"), str):
            raise _bad(f"metrics.{label}.metric", m.get("metric"), "the name of a metric of the columns' benchmarks")
        if m.get("score", "final") not in SCORES:
            raise _bad(f"metrics.{label}.score", m.get("score"), ", ".join(SCORES))
        _number(f"metrics.{label}.scale", m.get("scale", 1.0))
    metrics = {label: {"metric": m["metric"], "score": m.get("score", "final"), "scale": float(m.get("scale", 1.0))}
               for label, m in metrics.items()}
    tolerance = _keys("tolerance", doc.get("tolerance") or {}, ("points", "se_factor"))
    points = _number("tolerance.points", tolerance.get("points", 2.0), 0)
    se_factor = _number("tolerance.se_factor", tolerance.get("se_factor", 2.0), 0)
    requires = _keys("requires", doc.get("requires") or {}, ("data", "gpu"))
    notes = doc.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise _bad("notes", notes, "a list of strings")
    columns = doc["columns"]
    if not isinstance(columns, list) or not columns:
        raise _bad("columns", columns, "a non-empty list of columns (name, title, benchmark, estimate, methods)")
    parsed = tuple(_column(f"columns[{i}]", c, metrics) for i, c in enumerate(columns))
    names = [c.name for c in parsed]
    if len(set(names)) != len(names):
        raise _bad("columns", names, "columns with distinct names")
    return Spec(name, str(doc["paper"]), str(doc["table"]), statistic, paper_seeds, tuple(seeds), metrics,
                points, se_factor, parsed, dict(requires), tuple(notes))


def _column(where: str, doc: Any, metrics: dict) -> Column:
    doc = _keys(where, doc, COLUMN_KEYS)
    name = doc.get("name")
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise _bad(f"{where}.name", name, "letters, digits and _")
    bench = doc.get("benchmark")
    if isinstance(bench, str):
        bench = {"name": bench}
    if not isinstance(bench, dict) or "name" not in bench:
        raise _bad(f"{where}.benchmark", bench, "a mapping with name and settings, as in a space")
    estimate = _keys(f"{where}.estimate", doc.get("estimate") or {}, ESTIMATE_UNITS)
    if len(estimate) != 1:
        raise _bad(f"{where}.estimate", estimate, f"one of {', '.join(ESTIMATE_UNITS)}: {{default: x, <method>: y}}")
    unit, costs = next(iter(estimate.items()))
    costs = _keys(f"{where}.estimate.{unit}", costs, tuple(costs) if isinstance(costs, dict) else ())
    costs = {k: _number(f"{where}.estimate.{unit}.{k}", v, 0) for k, v in costs.items()}
    methods = doc.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise _bad(f"{where}.methods", methods, "a mapping from method names to {params, source, paper}")
    out = {}
    for method, m in methods.items():
        m = _keys(f"{where}.methods.{method}", m or {}, METHOD_KEYS)
        params = m.get("params") or {}
        if not isinstance(params, dict):
            raise _bad(f"{where}.methods.{method}.params", params, "a mapping of constants")
        paper = _keys(f"{where}.methods.{method}.paper", m.get("paper") or {}, tuple(metrics))
        for label, cell in paper.items():
            if not isinstance(cell, list) or len(cell) != 2:
                raise _bad(f"{where}.methods.{method}.paper.{label}", cell, "[mean, ±] (± null when not given)")
            _number(f"{where}.methods.{method}.paper.{label}[0]", cell[0])
            if cell[1] is not None:
                _number(f"{where}.methods.{method}.paper.{label}[1]", cell[1], 0)
        missing = [k for k in costs if k != "default" and k not in methods]
        if missing:
            raise _bad(f"{where}.estimate.{unit}.{missing[0]}", missing[0], "default or a method of the column")
        out[method] = {"params": params, "source": str(m.get("source") or ""), "paper": paper}
    if "default" not in costs and set(out) - set(costs):
        raise _bad(f"{where}.estimate.{unit}", costs, "a cost for every method, or a default")
    concurrent = doc.get("max_concurrent", 2)
    if type(concurrent) is not int or concurrent < 1:
        raise _bad(f"{where}.max_concurrent", concurrent, "a positive integer")
    return Column(name, str(doc.get("title") or name), dict(bench), out, unit, costs, concurrent)


def column_space(spec: Spec, column: Column, seeds: tuple[int, ...], sweep_name: str) -> dict:
    """The space document of one column: every method once, at its fixed params (no distributions), on
    ``seeds``; the objective is the first metric label's metric, reduced by the mean over seen tasks."""
    first = next(iter(spec.metrics.values()))
    return {"name": sweep_name,
            "description": f"{spec.name}, {column.title}: {spec.table} of {spec.paper}, fixed configurations",
            "benchmark": dict(column.benchmark), "seeds": list(seeds),
            "objective": {"metric": first["metric"], "reduce": "mean"},
            "budget": {"num_samples": len(column.methods), "max_concurrent": column.max_concurrent,
                       "sampler_seed": 0, "start_with_defaults": True},
            "methods": {m: dict(v["params"]) for m, v in column.methods.items()}}


def needs_data(column: Column, error: str) -> bool:
    """Whether a validation error is only a path setting the spec leaves to the user ("")."""
    return any(error.startswith(f"benchmark.{key}") and column.benchmark.get(key, "") == ""
               for key in PATH_SETTINGS)
