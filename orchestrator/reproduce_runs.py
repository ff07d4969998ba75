"""Which sweeps hold a reproduction's rows: a column's methods may have run over several invocations
(``--methods`` one at a time, an interrupted run resumed), each a sweep ``<prefix>-<column>`` or
``<prefix>-<column>-<k>``. A method counts as done where a sweep on the same benchmark settings, seeds and
objective ended it at the same params (whatever its status: a diverged row is a result, never silently
rerun); only the others run, in one new sweep, or in the interrupted sweep that was running exactly them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from orchestrator.sweep_dir import SweepDir

SAME = ("benchmark", "seeds", "objective")  # what a sweep must share with the wanted one to count


def column_sweeps(runs_dir: str, prefix: str, column: str) -> list[SweepDir]:
    """The started sweeps of ``<prefix>-<column>`` and ``<prefix>-<column>-<k>``, in the order they were named."""
    base = f"{prefix}-{column}"
    pattern = re.compile(re.escape(base) + r"(-(\d+))?")
    found = []
    for path in Path(runs_dir).glob(f"{base}*"):
        match = pattern.fullmatch(path.name)
        if match and SweepDir(runs_dir, path.name).started():
            found.append((int(match.group(2) or 1), SweepDir(runs_dir, path.name)))
    return [s for _, s in sorted(found, key=lambda pair: pair[0])]


def _doc(sweep: SweepDir) -> dict:
    return yaml.safe_load(sweep.space_yaml.read_text())


def done(sweeps: list[SweepDir], wanted: dict) -> dict[str, SweepDir]:
    """method -> the first sweep that ended it on ``wanted``'s benchmark, seeds and objective at its params."""
    out: dict[str, SweepDir] = {}
    for sweep in sweeps:
        doc = _doc(sweep)
        if any(doc.get(k) != wanted.get(k) for k in SAME):
            continue
        for meta in sweep.metas():
            method = meta["method"]
            if method in wanted["methods"] and method not in out and doc["methods"].get(method) == wanted["methods"][method]:
                out[method] = sweep
    return out


def next_sweep(runs_dir: str, prefix: str, column: str, sweeps: list[SweepDir], wanted: dict) -> tuple[str, bool]:
    """(name, resume): the interrupted sweep that was running exactly ``wanted``'s methods, else a new name."""
    for sweep in sweeps:
        doc = _doc(sweep)
        if all(doc.get(k) == wanted.get(k) for k in (*SAME, "methods")) and not _ended(sweep, doc):
            return sweep.name, True
    base = f"{prefix}-{column}"
    taken = {s.name for s in sweeps} | {p.name for p in Path(runs_dir).glob(f"{base}*")}
    if base not in taken:
        return base, False
    k = 2
    while f"{base}-{k}" in taken:
        k += 1
    return f"{base}-{k}", False


def _ended(sweep: SweepDir, doc: dict) -> bool:
    return len(sweep.metas()) >= doc["budget"]["num_samples"]
