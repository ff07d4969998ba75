"""Search spaces: the YAML schema and its validation (before any work starts). Reading the file lives in
``space_file``, the Optuna side (define-by-run, key encoding) in ``search``.

A space names a benchmark (a preset and overrides), seeds, an objective, a budget and, per method, its
hyper-parameters: each a constant or a distribution (``loguniform: [a, b]``, ``uniform: [a, b]``,
``int: [a, b]``, ``choice: [...]``); how configurations are selected (two objectives, the seed rule,
``budget.confirm``, ``protocol``) is validated in ``space_selection``. Every error is one line naming the
field and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import InputError
from orchestrator.space_file import (SEED_MAX, Dumper, SpaceError, builtin_spaces, check_document, one_line, parse_yaml,
                                     read_document, short)
from orchestrator.space_overrides import apply_override
from orchestrator.space_selection import Confirm, Objective, Protocol, confirm, objectives, protocol
from trainables.benchmarks import BENCHMARKS
from trainables.build import benchmark_config, method_params
from trainables.methods import METHODS
from trainables.params import ParamError, allowed_text, base_type, check_value, field_spec

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
BUDGET_KEYS = ("num_samples", "max_concurrent", "scheduler", "grace_period", "reduction_factor",
               "sampler_seed", "start_with_defaults", "confirm")
SCHEDULERS = ("none", "asha")
BUDGET_LIMITS = {"num_samples": (1, 10**6), "max_concurrent": (1, 10**4), "grace_period": (1, 10**6),
                 "reduction_factor": (2, 10**3), "sampler_seed": (0, SEED_MAX)}


@dataclass(frozen=True)
class Distribution:
    kind: str  # one of DISTRIBUTIONS
    args: tuple
    integer: bool = False  # an integer parameter: loguniform suggests integers on a log scale

    def suggest(self, trial, name: str):
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.args))
        suggest = trial.suggest_int if self.integer or self.kind == "int" else trial.suggest_float
        return suggest(name, self.args[0], self.args[1], log=self.kind == "loguniform")

    def start(self, default: Any) -> Any:
        """A starting value: the dataclass default when the distribution admits it, else its middle."""
        if self.kind == "choice":
            return default if default in self.args else self.args[0]
        low, high = self.args
        if default is not None and not isinstance(default, bool) and low <= default <= high:
            return default
        if self.kind == "loguniform":
            middle = math.sqrt(low * high)
            if not low <= middle <= high:  # low * high over- or underflowed
                middle = math.sqrt(low) * math.sqrt(high)
            return min(max(round(middle), low), high) if self.integer else middle
        if self.kind == "int":
            return (low + high) // 2
        return (low + high) / 2 if math.isfinite(low + high) else low / 2 + high / 2

    def to_yaml(self) -> dict:
        return {self.kind: list(self.args)}


@dataclass(frozen=True)
class Budget:
    num_samples: int = 4
    max_concurrent: int = 2
    scheduler: str = "none"
    grace_period: int = 1
    reduction_factor: int = 2
    sampler_seed: int = 0
    start_with_defaults: bool = True
    confirm: Confirm | None = None  # rerun each method's best configurations on fresh seeds

    def to_yaml(self) -> dict:
        doc = {k: v for k, v in vars(self).items() if k != "confirm"}
        if self.confirm is not None:
            doc["confirm"] = {"top": self.confirm.top, "seeds": list(self.confirm.seeds)}
        return doc


@dataclass(frozen=True)
class Space:
    name: str
    benchmark: str
    benchmark_params: dict[str, Any]
    seeds: tuple[int, ...]
    objective: Objective  # the first (or only) objective
    budget: Budget
    methods: dict[str, dict[str, Any]]  # method -> param -> constant | Distribution
    description: str = ""
    objectives: tuple[Objective, ...] = ()  # every objective: one, or two for a Pareto front
    protocol: Protocol = field(default_factory=Protocol)
    # derived from the benchmark while validating (not part of the YAML):
    num_tasks: int = field(default=0)
    bench_config: Any = None  # the benchmark's typed Config
    directions: dict[str, bool] = field(default_factory=dict)  # metric -> higher is better
    results_note: str = ""  # the data source and the benchmark's caveat, under every results title
    search_config: Any = None  # the Config the search runs on (held_out_stream; else bench_config)
    search_num_tasks: int = 0  # the tasks a search trial trains (first_tasks k; else the stream's)

    def to_yaml(self) -> str:
        """The validated space as YAML (what the sweep folder keeps and resume reads)."""
        doc = {"name": self.name, "description": self.description,
               "benchmark": {"name": self.benchmark, **self.benchmark_params}, "seeds": list(self.seeds),
               "objective": ([o.to_yaml() for o in self.objectives] if len(self.objectives) > 1
                             else self.objective.to_yaml()),
               **({} if self.protocol.kind == "full_stream" else {"protocol": self.protocol.to_yaml()}),
               "budget": self.budget.to_yaml(),
               "methods": {m: {k: (v.to_yaml() if isinstance(v, Distribution) else v) for k, v in p.items()}
                           for m, p in self.methods.items()}}
        return yaml.dump(doc, Dumper=Dumper, sort_keys=False)

def load(space: str, overrides: list[str] = ()) -> Space:
    """Read, override (``key.path=value``, value parsed as YAML) and validate a space."""
    doc = read_document(space)
    for item in overrides:
        apply_override(doc, item)
    return validate(doc)


def validate(doc: dict) -> Space:
    """The typed Space of a YAML mapping; any problem is a one-line SpaceError."""
    try:
        return _validate(doc)
    except InputError as e:  # also those of the benchmarks' and methods' checks
        raise SpaceError(one_line(str(e))) from None


def _validate(doc: dict) -> Space:
    check_document(doc)
    bench_doc = doc.get("benchmark")
    if isinstance(bench_doc, str):
        bench_doc = {"name": bench_doc}
    got = bench_doc.get("name") if isinstance(bench_doc, dict) else bench_doc
    if not isinstance(got, str) or got not in BENCHMARKS:
        raise SpaceError(f"benchmark.name: unknown benchmark {short(got)}; allowed: {', '.join(sorted(BENCHMARKS))}")
    bench_name, bench_cls = got, BENCHMARKS[got]
    bench_params = {k: v for k, v in bench_doc.items() if k != "name"}
    if "preset" in bench_params and not isinstance(bench_params["preset"], str):
        raise SpaceError(f"benchmark.preset: {short(bench_params['preset'])} is not allowed; allowed: "
                         f"{', '.join(sorted(bench_cls.presets)) or 'none'}")
    config = benchmark_config(bench_name, bench_params)

    seeds = tuple(doc.get("seeds", [0]))
    goals = objectives(doc.get("objective"), bench_cls, len(seeds))
    chosen, search_config = protocol(doc.get("protocol"), bench_name, bench_params, config)
    search_tasks = chosen.first_tasks or search_config.num_tasks
    budget = _budget(_mapping(doc, "budget"), search_tasks, seeds, goals)

    methods_doc = doc.get("methods")
    if not isinstance(methods_doc, dict) or not methods_doc:
        raise SpaceError(f"methods: required; a mapping from method names ({', '.join(sorted(METHODS))}) "
                         "to their parameters")
    methods = {}
    for method, params in methods_doc.items():
        if not isinstance(method, str) or method not in METHODS:
            raise SpaceError(f"methods.{method}: unknown method; allowed: {', '.join(sorted(METHODS))}")
        cls = METHODS[method]
        missing = cls.requires - bench_cls.capabilities
        if missing:
            raise SpaceError(f"methods.{method}: needs {', '.join(sorted(missing))}, which {bench_name} "
                             "does not offer")
        params = _mapping(methods_doc, method, f"methods.{method}")
        methods[method] = {name: _param(cls.Params, f"methods.{method}.{name}", name, value)
                           for name, value in params.items()}
        for corner in (0, -1):  # the constants with every distribution at its low, then its high end
            values = {k: v.args[corner] if isinstance(v, Distribution) else v for k, v in methods[method].items()}
            for stream in (config,) if search_config is config else (config, search_config):
                method_params(method, values, stream)
    return Space(name=doc["name"], benchmark=bench_name, benchmark_params=bench_params,
                 seeds=seeds, objective=goals[0], budget=budget, methods=methods,
                 description=doc.get("description") or "", objectives=goals, protocol=chosen,
                 search_config=search_config, search_num_tasks=search_tasks,
                 num_tasks=config.num_tasks, bench_config=config,
                 directions={m: spec.higher_is_better for m, spec in bench_cls.metrics.items()},
                 results_note=" ".join(n for n in (bench_cls.data_source(config), bench_cls.results_note) if n))


def _mapping(doc: dict, key: str, where: str = "") -> dict:  # doc[key]: a mapping, or {} when absent or null
    value = doc.get(key)
    if value is not None and not isinstance(value, dict):
        raise SpaceError(f"{where or key}: {short(value)} is not allowed; allowed: a mapping")
    return value or {}


def _budget(doc: dict, num_tasks: int, seeds: tuple[int, ...], goals: tuple[Objective, ...]) -> Budget:
    for key, value in doc.items():
        if key not in BUDGET_KEYS:
            raise SpaceError(f"budget.{key}: unknown key; allowed: {', '.join(BUDGET_KEYS)}")
        if key == "confirm":
            continue
        if key == "scheduler":
            if not isinstance(value, str) or value not in SCHEDULERS:
                raise SpaceError(f"budget.scheduler: {short(value)} is not allowed; allowed: {', '.join(SCHEDULERS)}")
        elif key == "start_with_defaults":
            if not isinstance(value, bool):
                raise SpaceError(f"budget.{key}: {short(value)} is not allowed; allowed: true, false")
        elif type(value) is not int or not BUDGET_LIMITS[key][0] <= value <= BUDGET_LIMITS[key][1]:
            low, high = BUDGET_LIMITS[key]
            raise SpaceError(f"budget.{key}: {short(value)} is not allowed; allowed: an integer >= {low} and <= {high}")
    budget = Budget(**{**doc, "confirm": confirm(doc.get("confirm"), seeds, goals)})
    if budget.scheduler == "asha" and len(goals) > 1:
        raise SpaceError("budget.scheduler: 'asha' is not allowed with two objectives (ASHA and Optuna's pruners "
                         "are single-objective); allowed: none")
    if budget.scheduler == "asha" and budget.grace_period > num_tasks:
        raise SpaceError(f"budget.grace_period: {budget.grace_period} is not allowed with scheduler asha; allowed: "
                         f"an integer <= the {num_tasks} tasks a search trial trains")
    return budget


def _param(params_cls, where: str, name: str, value: Any) -> Any:
    try:
        f = field_spec(params_cls, name)
    except ParamError as e:
        raise SpaceError(f"{where}: {e}") from None
    if isinstance(value, dict):
        return _distribution(f, where, value)
    return check_value(f, value, where)


def _distribution(f, where: str, value: dict) -> Distribution:
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise SpaceError(f"{where}: a distribution is one of {', '.join(f'{d}: [...]' for d in DISTRIBUTIONS)}; "
                         f"got {short(value)}")
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or not args:
        raise SpaceError(f"{where}.{kind}: a non-empty list is required")
    if kind == "choice":
        return Distribution(kind, tuple(check_value(f, a, f"{where}.choice") for a in args))
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise SpaceError(f"{where}.{kind}: [low, high] with two numbers is required; got {short(args)}")
    low, high = args
    if low > high:
        raise SpaceError(f"{where}.{kind}: low {short(low)} is above high {short(high)}")
    if kind == "loguniform" and low <= 0:
        raise SpaceError(f"{where}.loguniform: bounds must be > 0; got {short(args)}")
    if kind == "int" and not all(isinstance(a, int) or a.is_integer() for a in args):
        raise SpaceError(f"{where}.int: bounds must be integers; got {short(args)}")
    for a in args:
        try:
            check_value(f, a, where)
        except ParamError:
            raise SpaceError(f"{where}.{kind}: bound {short(a)} is not allowed; allowed: {allowed_text(f)}") from None
    integer = base_type(f) is int
    if integer and kind == "uniform":
        raise SpaceError(f"{where}: an integer parameter takes int: [low, high] or loguniform: [low, high]")
    if kind == "int" or integer:
        return Distribution(kind, (int(low), int(high)), integer=True)
    return Distribution(kind, (float(low), float(high)))


__all__ = ["Budget", "Confirm", "Distribution", "Objective", "Protocol", "Space", "SpaceError", "builtin_spaces",
           "load", "parse_yaml", "validate"]
