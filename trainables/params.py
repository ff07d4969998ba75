"""Typed, documented hyper-parameters: one frozen dataclass per method and per benchmark.

A field is declared with :func:`knob`, which records its help text and allowed range. The same metadata
validates values given in code, in a search space (constants and distribution bounds) and on the
command line, so every error names the field and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import MISSING, field, fields
from typing import Any

from core.errors import InputError


class ParamError(InputError):
    """A hyper-parameter value is not allowed; the message names the field and the allowed values."""


_NO_SMOKE = object()


def knob(default: Any, help: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, choices: tuple | None = None, smoke: Any = _NO_SMOKE) -> Any:
    """A dataclass field with help text and its allowed range.

    low/high bound numbers (inclusive; ``low_open`` makes the lower bound strict), ``choices`` lists the
    allowed values of a categorical knob. ``smoke`` is the value a tiny smoke run (the contract test) uses
    instead of the default: small sample counts, and rates every benchmark survives.
    """
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "choices": choices}
    if smoke is not _NO_SMOKE:
        meta["smoke"] = smoke
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def field_spec(cls: type, name: str) -> dataclasses.Field:
    """The dataclass field ``name`` of ``cls``, or ParamError listing the known fields."""
    by_name = {f.name: f for f in fields(cls)}
    if name not in by_name:
        raise ParamError(f"unknown parameter '{name}'; allowed: {', '.join(sorted(by_name))}")
    return by_name[name]


def allowed_text(f: dataclasses.Field) -> str:
    """Words for the allowed values of a field, as error messages print them."""
    m = f.metadata
    if m.get("choices") is not None:
        return "one of " + ", ".join(str(c) for c in m["choices"])
    parts = []
    if m.get("low") is not None:
        parts.append(f"{'>' if m.get('low_open') else '>='} {m['low']}")
    if m.get("high") is not None:
        parts.append(f"<= {m['high']}")
    kind = base_type(f)
    name = {bool: "a boolean", int: "an integer", float: "a finite number", str: "a string"}.get(kind, str(kind))
    return name + (" " + " and ".join(parts) if parts else "")


def base_type(f: dataclasses.Field) -> Any:
    """The plain type a field holds: bool, int, float, str, list or tuple (Optional[X] gives X)."""
    tp = _eval_type(f.type) if isinstance(f.type, str) else f.type
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return origin
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else object
    return tp


def _eval_type(text: str) -> Any:
    names = {"list": list, "tuple": tuple, "float": float, "int": int, "str": str, "bool": bool,
             "None": None}
    try:
        return eval(text, names)  # annotations of our own dataclasses, e.g. "int | None"
    except Exception:
        return object


def check_value(f: dataclasses.Field, value: Any, where: str) -> Any:
    """Coerce ``value`` to the field's type and check its range; ParamError names ``where``.

    Integers must fit in 64 bits, and a field named ``seed`` or ``*_seed`` in [0, 2**32 - 1] (numpy's
    seeds). A list holds scalars: of its annotated item type (``list[int]``), else of its default's."""
    kind = base_type(f)
    m = f.metadata
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    bad = f"{where}: {text} is not allowed; allowed: {allowed_text(f)}"
    if value is None and f.default is None:
        return None

    def number(v: Any, integer: bool) -> Any:  # v as an int or a float, or None when it is not one
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        if isinstance(v, int):
            return (v if integer else float(v)) if -2**63 <= v < 2**63 else None
        if not math.isfinite(v) or (integer and not (v.is_integer() and -2**63 <= v < 2**63)):
            return None
        return int(v) if integer else v

    if kind is bool:
        if not isinstance(value, bool):
            raise ParamError(bad)
    elif kind in (int, float):
        seed = kind is int and (f.name == "seed" or f.name.endswith("_seed"))
        value = number(value, kind is int)
        if seed and (value is None or not 0 <= value < 2**32):
            raise ParamError(f"{where}: {text} is not allowed; allowed: a seed, an integer in [0, {2**32 - 1}]")
        if value is None:
            raise ParamError(bad + (" (64-bit)" if kind is int else ""))
    elif kind is str:
        if not isinstance(value, str):
            raise ParamError(bad)
    elif kind in (list, tuple):
        tp = _eval_type(f.type) if isinstance(f.type, str) else f.type
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        item = ([a for a in typing.get_args(tp) if a is not Ellipsis] or [None])[0]
        if item is None and isinstance(default, (list, tuple)) and len({type(d) for d in default}) == 1:
            item = type(default[0])
        item = item if item in (bool, int, float, str) else None

        def scalar(v: Any) -> Any:  # an item, checked; None when not allowed
            if item in (int, float):
                return number(v, item is int)
            if isinstance(v, item or (bool, str)):
                return v
            return v if item is None and number(v, isinstance(v, int)) is not None else None

        items = [scalar(v) for v in value] if isinstance(value, (list, tuple)) else [None]
        if any(v is None for v in items):
            name = {bool: "booleans", int: "integers", float: "finite numbers", str: "strings"}.get(item, "scalars")
            raise ParamError(f"{where}: {text} is not allowed; allowed: a list of {name}")
        value = kind(items)
    if m.get("choices") is not None and value not in m["choices"]:
        raise ParamError(bad)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = m.get("low"), m.get("high")
        if low is not None and (value < low or (m.get("low_open") and value == low)):
            raise ParamError(bad)
        if high is not None and value > high:
            raise ParamError(bad)
    return value


def build(cls: type, values: dict[str, Any], where: str) -> Any:
    """An instance of the dataclass ``cls`` from ``values``, every value checked; ``where`` prefixes errors."""
    out = {}
    for name, value in values.items():
        try:
            f = field_spec(cls, name)
        except ParamError as e:
            raise ParamError(f"{where}.{name}: {e}") from None
        out[name] = check_value(f, value, f"{where}.{name}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
               and f.name not in out]
    if missing:
        raise ParamError(f"{where}: missing required parameter(s) {', '.join(missing)}")
    return cls(**out)


def smoke_values(cls: type) -> dict[str, Any]:
    """{field: smoke value} of the fields of dataclass ``cls`` that name one (see ``knob``)."""
    return {f.name: f.metadata["smoke"] for f in fields(cls) if "smoke" in f.metadata}


def describe(cls: type) -> list[tuple[str, Any, str, str]]:
    """(name, default, allowed, help) of every field, for `orchestrate list`."""
    rows = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        rows.append((f.name, default, allowed_text(f), f.metadata.get("help", "")))
    return rows
