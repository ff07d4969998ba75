"""Search spaces: the YAML schema and its validation (before any work starts). Reading the file lives in
``space_file``, the Optuna side (define-by-run, key encoding) in ``search``.

A space names a benchmark (a preset and overrides), seeds, an objective, a budget and, per method, its
hyper-parameters: each a constant or a distribution (``loguniform: [a, b]``, ``uniform: [a, b]``,
``int: [a, b]``, ``choice: [...]``). Every error is one line naming the field and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import InputError
from core.stats import REDUCTIONS
from orchestrator.space_file import TOP_LEVEL, SpaceError, apply_override, builtin_spaces, read_document
from trainables.benchmarks import BENCHMARKS
from trainables.build import benchmark_config, method_params
from trainables.methods import METHODS
from trainables.params import ParamError, allowed_text, base_type, check_value, field_spec

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
BUDGET_KEYS = ("num_samples", "max_concurrent", "scheduler", "grace_period", "reduction_factor",
               "sampler_seed", "start_with_defaults")
SCHEDULERS = ("none", "asha")


@dataclass(frozen=True)
class Distribution:
    kind: str  # one of DISTRIBUTIONS
    args: tuple
    integer: bool = False  # an integer parameter: loguniform suggests integers on a log scale

    def suggest(self, trial, name: str):
        if self.kind == "loguniform" and self.integer:
            return trial.suggest_int(name, self.args[0], self.args[1], log=True)
        if self.kind == "loguniform":
            return trial.suggest_float(name, self.args[0], self.args[1], log=True)
        if self.kind == "uniform":
            return trial.suggest_float(name, self.args[0], self.args[1])
        if self.kind == "int":
            return trial.suggest_int(name, self.args[0], self.args[1])
        return trial.suggest_categorical(name, list(self.args))

    def start(self, default: Any) -> Any:
        """A starting value: the dataclass default when the distribution admits it, else its middle."""
        if self.kind == "choice":
            return default if default in self.args else self.args[0]
        low, high = self.args
        if default is not None and not isinstance(default, bool) and low <= default <= high:
            return default
        if self.kind == "loguniform":
            middle = math.sqrt(low * high)
            return round(middle) if self.integer else middle
        if self.kind == "int":
            return (low + high) // 2
        return (low + high) / 2

    def to_yaml(self) -> dict:
        return {self.kind: list(self.args)}


@dataclass(frozen=True)
class Objective:
    metric: str
    reduce: str
    mode: str


@dataclass(frozen=True)
class Budget:
    num_samples: int = 4
    max_concurrent: int = 2
    scheduler: str = "none"
    grace_period: int = 1
    reduction_factor: int = 2
    sampler_seed: int = 0
    start_with_defaults: bool = True


@dataclass(frozen=True)
class Space:
    name: str
    benchmark: str
    benchmark_params: dict[str, Any]
    seeds: tuple[int, ...]
    objective: Objective
    budget: Budget
    methods: dict[str, dict[str, Any]]  # method -> param -> constant | Distribution
    description: str = ""
    # derived from the benchmark while validating (not part of the YAML):
    num_tasks: int = field(default=0)
    bench_config: Any = None  # the benchmark's typed Config
    directions: dict[str, bool] = field(default_factory=dict)  # metric -> higher is better
    results_note: str = ""  # the benchmark's caveat under every results table

    def to_yaml(self) -> str:
        """The validated space as YAML (what the sweep folder keeps and resume reads)."""
        doc = {"name": self.name, "description": self.description,
               "benchmark": {"name": self.benchmark, **self.benchmark_params}, "seeds": list(self.seeds),
               "objective": vars(self.objective), "budget": vars(self.budget),
               "methods": {m: {k: (v.to_yaml() if isinstance(v, Distribution) else v) for k, v in p.items()}
                           for m, p in self.methods.items()}}
        return yaml.safe_dump(doc, sort_keys=False)

def load(space: str, overrides: list[str] = ()) -> Space:
    """Read, override (``key.path=value``, value parsed as YAML) and validate a space."""
    doc = read_document(space)
    for item in overrides:
        apply_override(doc, item)
    return validate(doc)


def validate(doc: dict) -> Space:
    unknown = [k for k in doc if k not in TOP_LEVEL]
    if unknown:
        raise SpaceError(f"{unknown[0]}: unknown key; allowed: {', '.join(TOP_LEVEL)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise SpaceError("name: required; a non-empty string without spaces or slashes")

    bench_doc = doc.get("benchmark")
    if isinstance(bench_doc, str):
        bench_doc = {"name": bench_doc}
    if not isinstance(bench_doc, dict) or bench_doc.get("name") not in BENCHMARKS:
        got = bench_doc.get("name") if isinstance(bench_doc, dict) else bench_doc
        raise SpaceError(f"benchmark.name: unknown benchmark {got!r}; allowed: {', '.join(sorted(BENCHMARKS))}")
    bench_name = bench_doc["name"]
    bench_params = {k: v for k, v in bench_doc.items() if k != "name"}
    try:
        config = benchmark_config(bench_name, bench_params)
    except InputError as e:
        raise SpaceError(str(e)) from None
    bench_cls = BENCHMARKS[bench_name]

    seeds = doc.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            for s in seeds) or len(set(seeds)) != len(seeds)):
        raise SpaceError(f"seeds: {seeds!r} is not allowed; allowed: a non-empty list of distinct integers")

    objective = _objective(doc.get("objective") or {}, bench_cls)
    budget = _budget(doc.get("budget") or {})

    methods_doc = doc.get("methods")
    if not isinstance(methods_doc, dict) or not methods_doc:
        raise SpaceError(f"methods: required; a mapping from method names ({', '.join(sorted(METHODS))}) "
                         "to their parameters")
    methods = {}
    for method, params in methods_doc.items():
        if method not in METHODS:
            raise SpaceError(f"methods.{method}: unknown method; allowed: {', '.join(sorted(METHODS))}")
        cls = METHODS[method]
        missing = cls.requires - bench_cls.capabilities
        if missing:
            raise SpaceError(f"methods.{method}: needs {', '.join(sorted(missing))}, which {bench_name} "
                             "does not offer")
        methods[method] = {name: _param(cls.Params, f"methods.{method}.{name}", name, value)
                           for name, value in (params or {}).items()}
        for corner in (0, -1):  # the constants with every distribution at its low, then its high end
            values = {k: v.args[corner] if isinstance(v, Distribution) else v for k, v in methods[method].items()}
            try:
                method_params(method, values, config)
            except InputError as e:
                raise SpaceError(str(e)) from None
    return Space(name=name, benchmark=bench_name, benchmark_params=bench_params, seeds=tuple(seeds),
                 objective=objective, budget=budget, methods=methods,
                 description=str(doc.get("description", "")), num_tasks=config.num_tasks, bench_config=config,
                 directions={m: spec.higher_is_better for m, spec in bench_cls.metrics.items()},
                 results_note=bench_cls.results_note)


def _objective(doc: dict, bench_cls) -> Objective:
    if not isinstance(doc, dict):
        raise SpaceError("objective: a mapping with metric, reduce and mode")
    for key in doc:
        if key not in ("metric", "reduce", "mode"):
            raise SpaceError(f"objective.{key}: unknown key; allowed: metric, reduce, mode")
    metric = doc.get("metric", next(iter(bench_cls.metrics)))
    if metric not in bench_cls.metrics:
        raise SpaceError(f"objective.metric: '{metric}' is not a metric of {bench_cls.name}; allowed: "
                         f"{', '.join(bench_cls.metrics)}")
    reduce = doc.get("reduce", "mean")
    if reduce not in REDUCTIONS:
        raise SpaceError(f"objective.reduce: '{reduce}' is not allowed; allowed: {', '.join(REDUCTIONS)}")
    direction = "max" if bench_cls.metrics[metric].higher_is_better else "min"
    mode = doc.get("mode", direction)
    if mode != direction:
        raise SpaceError(f"objective.mode: '{mode}' is not allowed for {metric}; allowed: {direction} (or leave "
                         "it out)")
    return Objective(metric, reduce, mode)


def _budget(doc: dict) -> Budget:
    if not isinstance(doc, dict):
        raise SpaceError(f"budget: a mapping with keys {', '.join(BUDGET_KEYS)}")
    for key, value in doc.items():
        if key not in BUDGET_KEYS:
            raise SpaceError(f"budget.{key}: unknown key; allowed: {', '.join(BUDGET_KEYS)}")
        if key == "scheduler":
            if value not in SCHEDULERS:
                raise SpaceError(f"budget.scheduler: {value!r} is not allowed; allowed: {', '.join(SCHEDULERS)}")
        elif key == "start_with_defaults":
            if not isinstance(value, bool):
                raise SpaceError(f"budget.{key}: {value!r} is not allowed; allowed: true, false")
        elif not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "sampler_seed" else 1):
            low = 0 if key == "sampler_seed" else 1
            raise SpaceError(f"budget.{key}: {value!r} is not allowed; allowed: an integer >= {low}")
    return Budget(**doc)


def _param(params_cls, where: str, name: str, value: Any) -> Any:
    try:
        f = field_spec(params_cls, name)
    except ParamError as e:
        raise SpaceError(f"{where}: {e}") from None
    try:
        if isinstance(value, dict):
            return _distribution(f, where, value)
        return check_value(f, value, where)
    except ParamError as e:
        raise SpaceError(str(e)) from None


def _distribution(f, where: str, value: dict) -> Distribution:
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise SpaceError(f"{where}: a distribution is one of {', '.join(f'{d}: [...]' for d in DISTRIBUTIONS)}; "
                         f"got {value!r}")
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or not args:
        raise SpaceError(f"{where}.{kind}: a non-empty list is required")
    if kind == "choice":
        return Distribution(kind, tuple(check_value(f, a, f"{where}.choice") for a in args))
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise SpaceError(f"{where}.{kind}: [low, high] with two numbers is required; got {args!r}")
    low, high = args
    if low > high:
        raise SpaceError(f"{where}.{kind}: low {low} is above high {high}")
    if kind == "loguniform" and low <= 0:
        raise SpaceError(f"{where}.loguniform: bounds must be > 0; got {args!r}")
    if kind == "int" and not all(float(a).is_integer() for a in args):
        raise SpaceError(f"{where}.int: bounds must be integers; got {args!r}")
    for a in args:
        try:
            check_value(f, a, where)
        except ParamError:
            raise SpaceError(f"{where}.{kind}: bound {a} is not allowed; allowed: {allowed_text(f)}") from None
    integer = base_type(f) is int
    if integer and kind == "uniform":
        raise SpaceError(f"{where}: an integer parameter takes int: [low, high] or loguniform: [low, high]")
    if kind == "int" or integer:
        return Distribution(kind, (int(low), int(high)), integer=True)
    return Distribution(kind, (float(low), float(high)))


__all__ = ["Budget", "Distribution", "Objective", "Space", "SpaceError", "builtin_spaces", "load", "validate"]
