"""Registered methods, discovered from the files of this folder: ``methods/<name>.py`` defines one Method
subclass that sets ``name = "<name>"``, and that name is the one spaces use. Adding a method is adding its
file; nothing else is edited. ``base.py`` (the interface) and ``knobs.py`` (knobs several methods share)
are not methods."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from core.errors import UnknownName
from trainables.methods.base import Method, TrainParams

NOT_METHODS = frozenset({"base", "knobs"})


def _discover() -> dict[str, type[Method]]:
    found: dict[str, type[Method]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in NOT_METHODS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        own = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, Method) and c.__module__ == module.__name__ and "name" in vars(c)]
        if [c.name for c in own] != [info.name]:
            raise TypeError(f"trainables/methods/{info.name}.py must define exactly one Method subclass with "
                            f"name = '{info.name}'; found {[(c.__name__, c.name) for c in own]}")
        found[info.name] = own[0]
    return found


METHODS: dict[str, type[Method]] = _discover()


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise UnknownName(f"methods: unknown method '{name}'; allowed: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "TrainParams", "get_method"]
