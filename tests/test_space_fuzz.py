"""Property-based fuzzing of space files: whatever the text, ``load`` returns a Space or raises an InputError
(SpaceError) whose message is one printable line; never another exception. A few examples also go through
`orchestrate sweep`: exit code 2, that one line, nothing under the runs folder."""

from __future__ import annotations

import atexit
import copy
import json
import math
import shutil
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from core.errors import InputError
from orchestrator.cli import main
from orchestrator.space_file import TOP_LEVEL, read_document
from orchestrator.spaces import BUDGET_KEYS, DISTRIBUTIONS, Space, load
from trainables.benchmarks import BENCHMARKS
from trainables.methods import METHODS

FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])
FOLDER = Path(tempfile.mkdtemp(prefix="space-fuzz-"))
set_hypothesis_home_dir(str(FOLDER / "hypothesis"))  # its caches, out of the working tree
atexit.register(shutil.rmtree, FOLDER, True)
BASES = [read_document(n) for n in ("quickstart", "permuted_digits", "meta_permuted_digits", "trust_region_digits")]
NAMES = sorted({*TOP_LEVEL, *BUDGET_KEYS, *DISTRIBUTIONS, *BENCHMARKS, *METHODS, "name", "preset", "metric",
                "reduce", "mode", *(f for c in METHODS.values() for f in c.Params.__dataclass_fields__),
                *(f for c in BENCHMARKS.values() for f in c.Config.__dataclass_fields__)})
WORDS = sorted({*NAMES, "", " ", "tiny", "paper", "diag", "rank1", "fd", "accuracy", "max", "min", "mean", "asha",
                "none", "sgd", "a\nb", "\x00", "\ud83d", "é", "1e3", "*a", "&a", "<<", "~", "-", "---", "..."})

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400]),
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300, 1.5]),
    st.sampled_from(WORDS), st.text(max_size=12))
KEYS = st.one_of(st.sampled_from(NAMES), st.text(max_size=10), st.integers(-3, 3), st.none(), st.booleans())
# a mapping is a list of (key, value) pairs, so that its text can repeat a key
TREES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.lists(st.tuples(KEYS, inner), max_size=5).map(tuple)),
                     max_leaves=25)


def render(node) -> str:
    """``node`` as flow-style YAML text; a tuple of (key, value) pairs is a mapping, keys may repeat."""
    if isinstance(node, tuple):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in node) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(render(v) for v in node) + "]"
    if node is None or isinstance(node, bool):
        return {None: "null", True: "true", False: "false"}[node]
    if isinstance(node, float):
        return ".nan" if math.isnan(node) else (".inf" if node > 0 else "-.inf") if math.isinf(node) else repr(node)
    if isinstance(node, int):
        return str(node)
    return json.dumps(node)  # a double-quoted YAML string


def check(text: str | bytes) -> Space | None:
    """Load ``text`` from a file: a Space, or None after an InputError of one printable line."""
    path = FOLDER / "space.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return load(str(path))
    except InputError as e:
        message = str(e)
        assert message and message.isprintable() and len(message) < 2000, message
        return None


def top_level(draw) -> str:
    """A mapping of mostly real top-level keys to random trees, in flow or block style."""
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(TOP_LEVEL), KEYS), TREES), min_size=1, max_size=8))
    if draw(st.booleans()):
        return render(tuple(pairs))
    return "".join(f"{render(k)}: {render(v)}\n" for k, v in pairs)


@settings(FUZZ, max_examples=600)
@given(st.data())
def test_random_documents_load_or_fail_in_one_line(data):
    kind = data.draw(st.sampled_from(["tree", "top", "text", "bytes"]))
    if kind == "tree":
        check(render(data.draw(TREES)))
    elif kind == "top":
        check(top_level(data.draw))
    elif kind == "text":
        check(data.draw(st.text(alphabet=st.sampled_from(list("{}[],:&*!|>'\"#-?.~ \n\t\r0aZ9e+%@`")) | st.characters(),
                                max_size=200)))
    else:
        check(data.draw(st.binary(max_size=200)))


def paths(node, prefix=()):
    """Every (path to a container, key or index) in a document."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield prefix, key
        yield from paths(value, prefix + (key,))


@st.composite
def mutated(draw) -> str:
    """A built-in space with a few keys dropped, values replaced, unknown keys added, or a key repeated."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        where, key = draw(st.sampled_from(list(paths(doc))))
        node = doc
        for part in where:
            node = node[part]
        op = draw(st.sampled_from(["tweak", "drop", "replace", "add"]))
        if op == "drop" and isinstance(node, dict):
            del node[key]
        elif op == "add" and isinstance(node, dict):
            node[draw(KEYS)] = draw(SCALARS)
        elif op == "tweak":  # a value of the same kind, often a valid one
            old = node[key]
            node[key] = draw(st.integers(0, 2 * abs(old) + 1) if type(old) is int
                             else st.floats(0, 2 * abs(old) + 1) if isinstance(old, float) and math.isfinite(old)
                             else st.sampled_from(WORDS) if isinstance(old, str)
                             else st.booleans() if isinstance(old, bool) else SCALARS)
        else:
            node[key] = yaml.safe_load(render(draw(TREES)))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10**6)
    if draw(st.integers(0, 9)) == 9:  # a top-level key written twice
        text += f"{draw(st.sampled_from(TOP_LEVEL))}: {render(draw(TREES))}\n"
    return text


@settings(FUZZ, max_examples=900)
@given(mutated())
def test_mutated_builtin_spaces_load_or_fail_in_one_line(text):
    space = check(text)
    if space is not None:  # a valid space survives its own YAML
        assert check(space.to_yaml()) == space


@settings(FUZZ, max_examples=50)
@given(st.one_of(mutated(), TREES.map(render)))
def test_the_cli_refuses_invalid_documents_in_one_line(text):
    path = FOLDER / "cli.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load(str(path))
    except InputError as e:
        expected = str(e)
    else:
        assume(False)  # a valid space would start a sweep
    runs = Path(tempfile.mkdtemp(dir=FOLDER)) / "runs"
    result = CliRunner().invoke(main, ["sweep", "--space", str(path), "--runs-dir", str(runs)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {expected.strip(chr(39))}"]
    assert not runs.exists()
