"""`orchestrate list`: the registered methods and benchmarks with their knobs, and the built-in spaces."""

from __future__ import annotations

import sys


def describe(what: str) -> list[str]:
    """Lines for ``what`` (methods, benchmarks or spaces); spaces are listed without importing torch."""
    from orchestrator.space_file import builtin_spaces, parse_yaml

    if what == "spaces":
        return [f"{name}: {(parse_yaml(path.read_text()) or {}).get('description', '')}"
                for name, path in sorted(builtin_spaces().items())]
    from trainables.benchmarks import BENCHMARKS
    from trainables.methods import METHODS
    from trainables.params import describe as knobs

    registry = METHODS if what == "methods" else BENCHMARKS
    lines = []
    for name, cls in sorted(registry.items()):
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        extra = f"  presets: {', '.join(cls.presets)}" if what == "benchmarks" and cls.presets else ""
        lines.append(f"{name}: {doc}{extra}")
        for field, default, allowed, help_text in knobs(cls.Params if what == "methods" else cls.Config):
            lines.append(f"    {field} = {default!r}  ({allowed}) {help_text}")
    return lines
