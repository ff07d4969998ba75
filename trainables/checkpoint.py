"""Full-state checkpoints of a run at a task boundary, as bytes.

What a run keeps between tasks (its method's state: model, optimizer, teacher, Fisher anchors, memories,
meta-rates, ...; its generator; step and task counters) is pickled with the benchmark, its tasks and the
run's generator written as references: they are rebuilt from the configuration, not saved, and a restored
run gets the live ones back (so identity checks such as ``task in seen`` and shared generators keep
working). Every RNG is saved too (python, numpy, torch CPU and CUDA), although the loop reseeds the global
ones from (seed, task) at every task start, so a restored run's records equal an uninterrupted run's.
"""

from __future__ import annotations

import io
import pickle
import random
from typing import Any

import numpy as np
import torch


class _Pickler(pickle.Pickler):
    def __init__(self, file, live: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.live = live

    def persistent_id(self, obj: Any) -> str | None:
        return self.live.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, live: dict[str, Any]) -> None:
        super().__init__(file)
        self.live = live

    def persistent_load(self, pid: str) -> Any:
        return self.live[pid]


def live_objects(bench, generator: torch.Generator) -> dict[str, Any]:
    """The objects a checkpoint refers to instead of saving: the benchmark, its tasks, the generator."""
    return {"bench": bench, "generator": generator, **{f"task{t.index}": t for t in bench.tasks}}


def dumps(state: dict[str, Any], live: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, {id(obj): name for name, obj in live.items()}).dump(state)
    return buffer.getvalue()


def loads(data: bytes, live: dict[str, Any]) -> dict[str, Any]:
    return _Unpickler(io.BytesIO(data), live).load()


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
