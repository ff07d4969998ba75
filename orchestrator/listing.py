"""`orchestrate list`: the registered methods and benchmarks with their knobs, the built-in spaces and the
reproduction specs."""

from __future__ import annotations

import sys


def describe(what: str) -> list[str]:
    """Lines for ``what`` (methods, benchmarks, spaces or reproductions); spaces and reproductions are listed
    without importing torch."""
    from orchestrator.space_file import builtin_spaces, parse_yaml

    if what == "spaces":
        return [f"{name}: {(parse_yaml(path.read_text()) or {}).get('description', '')}"
                for name, path in sorted(builtin_spaces().items())]
    if what == "reproductions":
        from orchestrator.reproduction_spec import builtin_specs

        docs = {name: parse_yaml(path.read_text()) or {} for name, path in builtin_specs().items()}
        return [f"{name}: {doc.get('table', '')} ({str(doc.get('paper', '')).split(':')[0]}; columns "
                f"{', '.join(c.get('name', '?') for c in doc.get('columns') or [])})" for name, doc in sorted(docs.items())]
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
