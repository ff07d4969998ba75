"""Reading a space's YAML (built-in names or paths, YAML 1.2 floats, ``--set`` overrides) and the checks
that need no registry.

Reading is hardened: only regular UTF-8 text files up to ``MAX_BYTES``; no duplicate keys, anchors,
aliases or merge keys; nesting at most ``MAX_DEPTH`` deep. Nothing here imports torch or the registries,
so listing spaces and failing on a bad file are instant.
"""

from __future__ import annotations

import os
import re
import stat
from importlib import resources
from pathlib import Path

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from core.errors import InputError

TOP_LEVEL = ("name", "description", "benchmark", "seeds", "objective", "budget", "methods", "protocol")
MAX_BYTES = 256 * 1024  # a space is a few KiB; YAML parses at ~100 KiB/s, so this takes < 3 s
MAX_DEPTH = 20  # a space nests 6 deep (methods.ewc.lam.choice.[...])
MAX_KEY = 100  # characters of a mapping key
SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit (np.random.seed); torch's take up to 2**64 - 1
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")  # a folder, Ray experiment and MLflow experiment name


class SpaceError(InputError):
    """A search space is malformed; the message is one line naming the field and the allowed values."""


def short(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(message: str, limit: int = 1000) -> str:
    """``message`` with line breaks and other unprintable characters escaped, cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats (`1e-3` is a number; PyYAML's YAML 1.1 reads it as a string), and refusals of
    duplicate keys, anchors, aliases (no alias bombs), merge keys, deep nesting and enormous integers."""

    depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            raise ComposerError(None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels is not allowed",
                                event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                mark = key_node.start_mark
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConstructorError(None, None, "merge keys (<<) are not allowed", mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise ConstructorError(None, None, "a mapping key must be a scalar", mark) from None
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {short(key)} (first at line {first + 1})",
                                           mark)
                seen[key] = mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        if len(node.value) > 1000:  # int() of a huge literal is slow, or over Python's digit limit
            raise ConstructorError(None, None, "an integer of more than 1000 characters", node.start_mark)
        return super().construct_yaml_int(node)


class Dumper(yaml.SafeDumper):
    """Writes what ``_Loader`` reads back the same: quotes strings such as "1e3" that it reads as floats."""


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
for _cls in (_Loader, Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."))


def parse_yaml(text: str):
    """The YAML value of ``text``; any problem is a ``yaml.YAMLError``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except (RecursionError, ValueError, OverflowError) as e:  # backstops: the loader refuses these first
        raise yaml.YAMLError(f"{type(e).__name__}: {e}") from None


def yaml_problem(e: yaml.YAMLError) -> str:
    """One line for a YAML error: where (line) and what."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    what = getattr(e, "problem", None) or getattr(e, "reason", None) or str(e)
    if isinstance(getattr(e, "character", None), int):  # a ReaderError: a character YAML does not allow
        what = f"{what}: #x{e.character:04x} at position {e.position}"
    return one_line(f"{where}: {what}")


def builtin_spaces() -> dict[str, Path]:
    folder = resources.files("search_spaces")
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def resolve_path(space: str) -> Path:
    """A path, or a built-in space's name."""
    path = Path(space)
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        exists = False
    if path.suffix in (".yaml", ".yml") or exists:
        if not exists:
            raise SpaceError(one_line(f"--space: no such file {space}"))
        return path
    builtins = builtin_spaces()
    if space not in builtins:
        raise SpaceError(one_line(f"--space: {short(space)} is neither a file nor a built-in space; built-ins: "
                                  f"{', '.join(sorted(builtins))}"))
    return builtins[space]


def read_text(path: Path) -> str:
    """The text of a regular UTF-8 file of at most MAX_BYTES; never opens (or blocks on) anything else."""
    bad = f"--space: {one_line(str(path))} is not allowed; allowed: a regular UTF-8 text file"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SpaceError(f"{bad} (this is not a regular file)")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # swapped for a FIFO: still no hang
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpaceError(f"{bad} (this is not a regular file)")
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpaceError(f"{bad} ({e.strerror or e})") from None
    if len(data) > MAX_BYTES:
        raise SpaceError(f"{bad} of at most {MAX_BYTES} bytes (this one is larger)")
    if b"\0" in data:
        raise SpaceError(f"{bad} (this one is binary: it holds NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpaceError(f"{bad} (byte {e.start} is not UTF-8)") from None


def read_document(space: str) -> dict:
    """The YAML mapping of a space file or built-in space (not yet validated)."""
    path = resolve_path(space)
    try:
        doc = parse_yaml(read_text(path))
    except yaml.YAMLError as e:
        raise SpaceError(f"{one_line(str(path))}: malformed YAML{yaml_problem(e)}") from None
    if not isinstance(doc, dict):
        raise SpaceError(f"{one_line(str(path))}: a space is a YAML mapping with keys {', '.join(TOP_LEVEL)}")
    return doc


def check_document(doc) -> None:
    """The checks that need no registry: every mapping key is a printable one-line name of at most MAX_KEY
    characters, nesting is at most MAX_DEPTH deep (also for documents built in code), the top-level keys,
    the name, the description and the seeds."""
    stack = [(doc, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpaceError(f"{path or 'space'}: nesting deeper than {MAX_DEPTH} levels is not allowed")
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and not (0 < len(key) <= MAX_KEY and key.isprintable()):
                    raise SpaceError(f"{path or 'space'}: key {short(key)} is not allowed; allowed: a printable "
                                     f"name of at most {MAX_KEY} characters")
                stack.append((value, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(node, (list, tuple)):
            stack.extend((item, path, depth + 1) for item in node)
    if not isinstance(doc, dict):
        raise SpaceError(f"space: a YAML mapping with keys {', '.join(TOP_LEVEL)}")
    for key in doc:
        if key not in TOP_LEVEL:
            raise SpaceError(f"{key}: unknown key; allowed: {', '.join(TOP_LEVEL)}")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SpaceError(f"name: {f'{short(name)} is not allowed' if name else 'required'}; allowed: up to 100 "
                         "ASCII letters, digits, '_', '-' and '.', not starting with '.'")
    if doc.get("description") is not None and not isinstance(doc["description"], str):
        raise SpaceError(f"description: {short(doc['description'])} is not allowed; allowed: a string")
    seeds = doc.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or not all(type(s) is int and 0 <= s <= SEED_MAX for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise SpaceError(f"seeds: {short(seeds)} is not allowed; allowed: a non-empty list of distinct integers "
                         f"in [0, {SEED_MAX}] (numpy's 32-bit seeds)")
