"""The Optuna search space of a validated Space: define-by-run, start points, and the one key encoding.

A trial's configuration is a flat dict Optuna and Ray can store: ``{"method": m, "m.param": value, ...}``.
``encode`` writes that key and ``decode`` reads it back, here only. The method is a categorical choice;
only the chosen method's parameters are suggested, and its constants come back with them.
"""

from __future__ import annotations

from typing import Any

from orchestrator.spaces import Distribution, Space
from trainables.params import field_spec


def encode(method: str, name: str) -> str:
    """The flat key of ``method``'s parameter ``name``."""
    return f"{method}.{name}"


def decode(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method, its parameters) from a trial's flat config."""
    method = config["method"]
    prefix = encode(method, "")
    return method, {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}


class DefineByRun:
    """Optuna define-by-run: the method is a categorical choice, then only that method's parameters
    are suggested; constants come back as a dict."""

    def __init__(self, methods: dict[str, dict[str, Any]]) -> None:
        self.methods = methods

    def __call__(self, trial) -> dict[str, Any] | None:
        method = trial.suggest_categorical("method", list(self.methods))
        constants = {}
        for name, spec in self.methods[method].items():
            if isinstance(spec, Distribution):
                spec.suggest(trial, encode(method, name))
            else:
                constants[encode(method, name)] = spec
        return constants or None


def start_points(space: Space) -> list[dict[str, Any]]:
    """One configuration per method (its defaults inside the ranges), evaluated first."""
    from trainables.methods import METHODS

    points = []
    for method, params in space.methods.items():
        cls = METHODS[method].Params
        point: dict[str, Any] = {"method": method}
        for name, spec in params.items():
            if isinstance(spec, Distribution):
                point[encode(method, name)] = spec.start(field_spec(cls, name).default)
        points.append(point)
    return points
