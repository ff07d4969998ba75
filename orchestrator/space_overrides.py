"""``--set KEY=VALUE`` items: parsed (the value as YAML), applied to a space's YAML mapping, or split into
``orchestrate run``'s method parameters and benchmark settings."""

from __future__ import annotations

import re

import yaml

from orchestrator.space_file import MAX_KEY, TOP_LEVEL, SpaceError, parse_yaml, short, yaml_problem

KEY_PATH = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*")  # --set keys: methods.ewc.lam


def assignment(item: str) -> tuple[str, object]:
    """(key, value) of a ``--set KEY=VALUE`` item, the value parsed as YAML."""
    if "=" not in item:
        raise SpaceError(f"--set: {short(item)} is not key=value (e.g. benchmark.steps_per_task=50)")
    key, text = item.split("=", 1)
    if not KEY_PATH.fullmatch(key) or len(key) > 4 * MAX_KEY:
        raise SpaceError(f"--set: key {short(key)} is not allowed; allowed: dot-separated names (e.g. "
                         "methods.ewc.lam)")
    try:
        return key, parse_yaml(text)
    except yaml.YAMLError as e:
        raise SpaceError(f"--set {key}: value {short(text)} is not valid YAML{yaml_problem(e)}") from None


def apply_override(doc: dict, item: str) -> None:
    """Set ``key.path=value`` in a space's YAML mapping (``benchmark: NAME`` becomes ``{name: NAME}``)."""
    key, value = assignment(item)
    parts = key.split(".")
    if parts[0] not in TOP_LEVEL:
        raise SpaceError(f"--set {key}: unknown key {parts[0]!r}; allowed: {', '.join(TOP_LEVEL)}")
    if len(parts) > 1 and parts[0] == "benchmark" and isinstance(doc.get("benchmark"), str):
        doc["benchmark"] = {"name": doc["benchmark"]}
    node = doc
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
