"""How a space selects configurations, validated with the rest of the space (``spaces``): the objective
(one, or two for a Pareto front; each with its seed rule), the confirmation on fresh seeds
(``budget.confirm``) and the tuning protocol (``protocol``).

Choices the issue leaves open, stated here:
- ``score: forgetting`` is the forgetting of ``metric`` over the seen tasks (METHODS.md §5; mode min); after
  the first task, with nothing to forget yet, it is 0. Its ``reduce`` is the mean over tasks only.
- ``seeds: lower_bound`` (default k = 1) needs two or more seeds (the SE of one seed is undefined), also
  among the confirmation seeds, whose objective is reported next to the search's.
- ``first_tasks: k`` truncates the target stream (the same tasks, the loop stops after task k), so the
  search objective is comparable with the confirmation runs' after task k; k < the stream's length.
- ``held_out_stream`` takes benchmark settings (not ``name`` or ``preset``) that must change the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError
from core.stats import REDUCTIONS, SEED_RULES
from orchestrator.space_file import SEED_MAX, SpaceError, short

SCORES = ("final", "forgetting")
OBJECTIVE_KEYS = ("metric", "reduce", "mode", "score", "seeds", "k")
CONFIRM_KEYS = ("top", "seeds")
PROTOCOLS = ("full_stream", "first_tasks", "held_out_stream")
K_MAX = 100.0


@dataclass(frozen=True)
class Objective:
    metric: str
    reduce: str
    mode: str
    score: str = "final"  # final: metric reduced over the seen tasks; forgetting: its forgetting (min)
    seeds: str = "mean"  # mean | lower_bound (mean − k·SE for max, mean + k·SE for min)
    k: float = 0.0

    @property
    def label(self) -> str:
        """A short name: ``mean_fd``, ``worst_accuracy``, ``forgetting_fd``, with ``_lb1`` for a lower bound."""
        name = f"forgetting_{self.metric}" if self.score == "forgetting" else f"{self.reduce}_{self.metric}"
        return name + (f"_lb{self.k:g}" if self.seeds == "lower_bound" else "")

    def to_yaml(self) -> dict:
        doc = {"metric": self.metric, "reduce": self.reduce, "mode": self.mode}
        if self.score != "final":
            doc["score"] = self.score
        if self.seeds != "mean":
            doc.update(seeds=self.seeds, k=self.k)
        return doc


@dataclass(frozen=True)
class Confirm:
    top: int  # each method's K best configurations by the search objective
    seeds: tuple[int, ...]  # never a search seed


@dataclass(frozen=True)
class Protocol:
    kind: str = "full_stream"  # one of PROTOCOLS
    first_tasks: int = 0
    held_out_stream: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.kind == "first_tasks":
            return f"first_tasks: {self.first_tasks}"
        if self.kind == "held_out_stream":
            return "held_out_stream: {" + ", ".join(f"{k}: {v}" for k, v in self.held_out_stream.items()) + "}"
        return "full_stream"

    def to_yaml(self):
        if self.kind == "first_tasks":
            return {"first_tasks": self.first_tasks}
        if self.kind == "held_out_stream":
            return {"held_out_stream": dict(self.held_out_stream)}
        return "full_stream"


def objectives(doc, bench_cls, seeds: int) -> tuple[Objective, ...]:
    """One objective (a mapping) or two (a list of two mappings: a Pareto front)."""
    if doc is None or isinstance(doc, dict):
        return (_objective(doc or {}, bench_cls, seeds, "objective"),)
    if not isinstance(doc, list) or not 1 <= len(doc) <= 2:
        raise SpaceError(f"objective: {short(doc)} is not allowed; allowed: a mapping (one objective) or a list "
                         "of two mappings (a Pareto front)")
    out = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise SpaceError(f"objective[{i}]: {short(item)} is not allowed; allowed: a mapping with keys "
                             f"{', '.join(OBJECTIVE_KEYS)}")
        out.append(_objective(item, bench_cls, seeds, f"objective[{i}]"))
    if len(out) == 2 and (out[0].metric, out[0].score, out[0].reduce) == (out[1].metric, out[1].score, out[1].reduce):
        raise SpaceError(f"objective[1]: {out[1].label} repeats objective[0]; allowed: two different objectives "
                         "(e.g. reduce mean of a metric and score forgetting)")
    return tuple(out)


def _objective(doc: dict, bench_cls, seeds: int, where: str) -> Objective:
    for key in doc:
        if key not in OBJECTIVE_KEYS:
            raise SpaceError(f"{where}.{key}: unknown key; allowed: {', '.join(OBJECTIVE_KEYS)}")
    metric = doc.get("metric", next(iter(bench_cls.metrics)))
    if not isinstance(metric, str) or metric not in bench_cls.metrics:
        raise SpaceError(f"{where}.metric: {short(metric)} is not a metric of {bench_cls.name}; allowed: "
                         f"{', '.join(bench_cls.metrics)}")
    score = doc.get("score", "final")
    if not isinstance(score, str) or score not in SCORES:
        raise SpaceError(f"{where}.score: {short(score)} is not allowed; allowed: {', '.join(SCORES)}")
    reduce = doc.get("reduce", "mean")
    allowed = REDUCTIONS if score == "final" else ("mean",)
    if not isinstance(reduce, str) or reduce not in allowed:
        raise SpaceError(f"{where}.reduce: {short(reduce)} is not allowed{' with score forgetting' * (score != 'final')}"
                         f"; allowed: {', '.join(allowed)}")
    direction = "max" if bench_cls.metrics[metric].higher_is_better and score == "final" else "min"
    mode = doc.get("mode", direction)
    if mode != direction:
        what = f"{metric}" if score == "final" else f"the forgetting of {metric}"
        raise SpaceError(f"{where}.mode: {short(mode)} is not allowed for {what}; allowed: {direction} (or "
                         "leave it out)")
    rule = doc.get("seeds", "mean")
    if not isinstance(rule, str) or rule not in SEED_RULES:
        raise SpaceError(f"{where}.seeds: {short(rule)} is not allowed; allowed: {', '.join(SEED_RULES)}")
    if rule == "mean":
        if "k" in doc:
            raise SpaceError(f"{where}.k: {short(doc['k'])} is not allowed with seeds: mean; allowed: leave it out, "
                             "or seeds: lower_bound")
        return Objective(metric, reduce, mode, score)
    k = doc.get("k", 1.0)
    if not isinstance(k, (int, float)) or isinstance(k, bool) or not 0 <= k <= K_MAX:  # NaN and inf fail too
        raise SpaceError(f"{where}.k: {short(k)} is not allowed; allowed: a finite number >= 0 and <= {K_MAX:g}")
    if k > 0 and seeds < 2:
        raise SpaceError(f"{where}.seeds: lower_bound is not allowed with one seed (its standard error is "
                         "undefined); allowed: mean, or two or more seeds")
    return Objective(metric, reduce, mode, score, rule, float(k))


def confirm(doc, seeds: tuple[int, ...], goals: tuple[Objective, ...]) -> Confirm | None:
    """``budget.confirm: {top: K, seeds: [...]}``: the K best configurations per method rerun on these seeds."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise SpaceError(f"budget.confirm: {short(doc)} is not allowed; allowed: a mapping {{top: K, seeds: [...]}}")
    for key in doc:
        if key not in CONFIRM_KEYS:
            raise SpaceError(f"budget.confirm.{key}: unknown key; allowed: {', '.join(CONFIRM_KEYS)}")
    top, fresh = doc.get("top"), doc.get("seeds")
    if type(top) is not int or not 1 <= top <= 1000:
        got = f"{short(top)} is not allowed" if "top" in doc else "required"
        raise SpaceError(f"budget.confirm.top: {got}; allowed: an integer >= 1 and <= 1000")
    if (not isinstance(fresh, list) or not fresh or not all(type(s) is int and 0 <= s <= SEED_MAX for s in fresh)
            or len(set(fresh)) != len(fresh)):
        got = f"{short(fresh)} is not allowed" if "seeds" in doc else "required"
        raise SpaceError(f"budget.confirm.seeds: {got}; allowed: a non-empty list of distinct integers in "
                         f"[0, {SEED_MAX}]")
    reused = [s for s in fresh if s in seeds]
    if reused:
        raise SpaceError(f"budget.confirm.seeds: {short(fresh)} is not allowed; allowed: seeds never used for "
                         f"selection (not {', '.join(map(str, seeds))}; {reused[0]} is a search seed)")
    if len(fresh) < 2 and any(g.seeds == "lower_bound" and g.k > 0 for g in goals):
        raise SpaceError(f"budget.confirm.seeds: {short(fresh)} is not allowed with objective seeds lower_bound; "
                         "allowed: two or more seeds (the standard error of one seed is undefined)")
    return Confirm(top, tuple(fresh))


def protocol(doc, bench_name: str, bench_params: dict, config) -> tuple[Protocol, Any]:
    """(the protocol, the benchmark Config the search runs on)."""
    from trainables.build import benchmark_config

    if doc is None or doc == "full_stream":
        return Protocol(), config
    allowed = "full_stream, {first_tasks: k} or {held_out_stream: {benchmark settings}}"
    if not isinstance(doc, dict) or len(doc) != 1 or next(iter(doc)) not in PROTOCOLS[1:]:
        raise SpaceError(f"protocol: {short(doc)} is not allowed; allowed: {allowed}")
    kind, value = next(iter(doc.items()))
    if kind == "first_tasks":
        n = config.num_tasks
        if type(value) is not int or not 1 <= value < n:
            raise SpaceError(f"protocol.first_tasks: {short(value)} is not allowed; allowed: an integer >= 1 and < "
                             f"the stream's {n} tasks")
        return Protocol(kind, first_tasks=value), config
    if not isinstance(value, dict) or not value:
        raise SpaceError(f"protocol.held_out_stream: {short(value)} is not allowed; allowed: a non-empty mapping "
                         "of benchmark settings (e.g. {split_seed: 1})")
    for key in value:
        if key in ("name", "preset"):
            raise SpaceError(f"protocol.held_out_stream.{key}: not allowed; allowed: the benchmark's settings "
                             "(the search runs the same benchmark)")
    try:
        held_out = benchmark_config(bench_name, {**bench_params, **value})
    except InputError as e:
        text = str(e)
        raise SpaceError("protocol.held_out_stream." + text[len("benchmark."):] if text.startswith("benchmark.")
                         else f"protocol.held_out_stream: {text}") from None
    if held_out == config:
        raise SpaceError(f"protocol.held_out_stream: {short(value)} is the target stream itself; allowed: settings "
                         "that change the stream (e.g. split_seed, permutation_seed)")
    return Protocol(kind, held_out_stream=dict(value)), held_out
