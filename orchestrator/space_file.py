"""Reading a space's YAML: built-in names or paths, YAML 1.2 floats, ``--set`` overrides.

Nothing here imports torch or the registries, so listing spaces and failing on a bad file are instant.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from core.errors import InputError

TOP_LEVEL = ("name", "description", "benchmark", "seeds", "objective", "budget", "methods")


class SpaceError(InputError):
    """A search space is malformed; the message is one line naming the field and the allowed values."""


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats: `1e-3` is a number (PyYAML's YAML 1.1 reads it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def builtin_spaces() -> dict[str, Path]:
    folder = resources.files("search_spaces")
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def resolve_path(space: str) -> Path:
    """A path, or a built-in space's name."""
    path = Path(space)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SpaceError(f"--space: no such file {space}")
        return path
    builtins = builtin_spaces()
    if space not in builtins:
        raise SpaceError(f"--space: '{space}' is neither a file nor a built-in space; built-ins: "
                         f"{', '.join(sorted(builtins))}")
    return builtins[space]


def read_document(space: str) -> dict:
    """The YAML mapping of a space file or built-in space (not yet validated)."""
    path = resolve_path(space)
    try:
        doc = parse_yaml(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpaceError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict):
        raise SpaceError(f"{path}: a space is a YAML mapping with keys {', '.join(TOP_LEVEL)}")
    return doc


def assignment(item: str) -> tuple[str, object]:
    """(key, value) of a ``--set KEY=VALUE`` item, the value parsed as YAML."""
    if "=" not in item:
        raise SpaceError(f"--set: '{item}' is not key=value (e.g. benchmark.steps_per_task=50)")
    key, text = item.split("=", 1)
    try:
        return key, parse_yaml(text)
    except yaml.YAMLError:
        raise SpaceError(f"--set {key}: value '{text}' is not valid YAML") from None


def apply_override(doc: dict, item: str) -> None:
    """Set ``key.path=value`` in a space's YAML mapping."""
    key, value = assignment(item)
    node = doc
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part, {}), dict):
            raise SpaceError(f"--set {key}: '{part}' is not a mapping")
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def split_run_overrides(overrides) -> tuple[dict, dict]:
    """`orchestrate run --set` items: (method parameters, benchmark settings given as benchmark.KEY=VALUE)."""
    params, bench_params = {}, {}
    for key, value in map(assignment, overrides):
        if key.startswith("benchmark."):
            bench_params[key[len("benchmark."):]] = value
        else:
            params[key] = value
    return params, bench_params
