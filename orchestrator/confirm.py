"""Confirmation on fresh seeds (``budget.confirm: {top: K, seeds: [...]}``): once the search has ended,
each method's K best configurations by the search objective (what Optuna was told: the seed rule included;
among finished ones) run again on the confirmation seeds, on the whole target stream, in a second Tuner
(``ray_confirm/``) with no sampler. A confirmation that ended is never run again: a resumed sweep restores
that Tuner, or starts one over the configurations whose confirmation has not ended.

With two objectives the K best are those of the best non-dominated ranks within the method (analysis.
pareto), then by the first objective; ties by config id.
"""

from __future__ import annotations

import math
import shutil

from analysis.pareto import pareto_ranks
from orchestrator.search import encode
from orchestrator.spaces import Space
from orchestrator.sweep_dir import SweepDir


def _values(meta: dict, n: int) -> list[float] | None:
    values = meta.get("objectives") if n > 1 else [meta.get("objective")]
    if not values or len(values) != n or any(v is None or not math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def select_top(metas: list[dict], top: int, modes: list[str]) -> list[dict]:
    """[{config_id, method, params, rank}]: per method (in name order), its ``top`` best finished
    configurations with a finite objective (``meta['objective']``, or ``meta['objectives']`` for several
    ``modes``), rank 1 the best; ties go to the first config id."""
    higher = [m == "max" for m in modes]
    out = []
    for method in sorted({m["method"] for m in metas}):
        done = sorted((m for m in metas if m["method"] == method and m["status"] == "finished"
                       and _values(m, len(modes)) is not None), key=lambda m: m["config_id"])
        if not done:
            continue
        values = [_values(m, len(modes)) for m in done]
        ranks = pareto_ranks(values, higher) if len(modes) > 1 else [1] * len(done)
        first = [v[0] * (-1.0 if higher[0] else 1.0) for v in values]
        order = sorted(range(len(done)), key=lambda i: (ranks[i], first[i], done[i]["config_id"]))
        out += [{"config_id": done[i]["config_id"], "method": method, "params": done[i]["params"], "rank": r + 1}
                for r, i in enumerate(order[:top])]
    return out


def points(selected: list[dict]) -> list[dict]:
    """The confirmation Tuner's configurations: the flat search configuration plus ``confirm_of`` (the
    configuration confirmed) and ``confirm_rank``."""
    return [{"method": s["method"], **{encode(s["method"], k): v for k, v in s["params"].items()},
             "confirm_of": s["config_id"], "confirm_rank": s["rank"]} for s in selected]


def selection(space: Space, sweep: SweepDir) -> list[dict]:
    """The configurations to confirm (``select_top`` of the search's metas); [] without budget.confirm."""
    if space.budget.confirm is None:
        return []
    modes = [o.mode for o in (space.objectives or (space.objective,))]
    return select_top(sweep.metas(), space.budget.confirm.top, modes)


def search_ended(space: Space, sweep: SweepDir) -> bool:
    return len(sweep.metas()) >= space.budget.num_samples


def pending(space: Space, sweep: SweepDir) -> list[dict]:
    """The selected configurations whose confirmation has not ended."""
    return [s for s in selection(space, sweep) if not sweep.config_ended(s["config_id"], "confirm")]


def run(space: Space, sweep: SweepDir, resources, tracker, state: dict) -> None:
    """The confirmation phase, when the space has one and the search has ended (else nothing)."""
    from ray import tune

    from orchestrator.recorder import make_recorder
    from orchestrator.tuner import run_tuner

    if space.budget.confirm is None or not search_ended(space, sweep):
        return
    todo = pending(space, sweep)
    if not todo:
        return
    folder = sweep.confirm_ray_dir
    restore = folder.exists() and tune.Tuner.can_restore(str(folder))
    if folder.exists() and not restore:  # a start killed before Ray saved anything: start afresh
        shutil.rmtree(folder)
    recorder = make_recorder(tracker, state["parent_run_id"], sweep, space.num_tasks, list(space.budget.confirm.seeds),
                             space.benchmark, space.directions, stage="confirm",
                             objectives=len(space.objectives or (space.objective,)))
    print(f"confirming {len(todo)} configuration(s) on seeds {', '.join(map(str, space.budget.confirm.seeds))}")
    run_tuner(space, sweep, resources, recorder, restore, stage="confirm", points=points(todo), shutdown=False)


def complete(space: Space, sweep: SweepDir) -> bool:
    """Whether every selected configuration's confirmation has ended (True without budget.confirm)."""
    return space.budget.confirm is None or (search_ended(space, sweep) and not pending(space, sweep))


def selection_params(space: Space) -> dict:
    """The sweep's parent-run params about selection: every objective (``objective_*``, ``objective2_*``;
    analysis.load reads them back), the protocol, the search's stream length and the confirmation."""
    from orchestrator.objectives import prefix

    out: dict = {"protocol": space.protocol.label, "search_num_tasks": space.search_num_tasks or space.num_tasks}
    for i, goal in enumerate(space.objectives or (space.objective,)):
        out.update({f"{prefix(i)}_{k}": getattr(goal, k) for k in ("metric", "reduce", "mode", "score", "seeds", "k")})
    out.update({f"search.benchmark.{k}": v for k, v in space.protocol.held_out_stream.items()})
    if space.budget.confirm is not None:
        out.update(confirm_top=space.budget.confirm.top,
                   confirm_seeds=",".join(map(str, space.budget.confirm.seeds)))
    return out


def pareto_tags(space: Space, metas: list[dict]) -> dict[str, dict[str, str]]:
    """With two objectives: {config_id: {pareto_rank, pareto}} of every finished configuration, ranked by
    non-dominated sorting of the objectives the search told Optuna (all methods together); rank 1 is
    tagged ``pareto=front``."""
    goals = space.objectives or (space.objective,)
    if len(goals) < 2:
        return {}
    done = [m for m in metas if m["status"] == "finished" and _values(m, len(goals)) is not None]
    ranks = pareto_ranks([_values(m, len(goals)) for m in done], [g.mode == "max" for g in goals]) if done else []
    return {m["config_id"]: {"pareto_rank": str(int(r)), "pareto": "front" if r == 1 else "dominated"}
            for m, r in zip(done, ranks)}
