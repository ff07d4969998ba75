"""Stored records against a rerun's: the tolerance (bitwise-or-ulps on the CPU, relative on a GPU) and the
first record that differs, every column shown stored | rerun; wall-clock columns are never compared."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WALL_CLOCK_COLUMNS = frozenset({"wall_time", "timestamp", "time", "seconds", "duration"})
GPU_RTOL, GPU_ATOL = 1e-3, 1e-6
CPU_ULPS = 4  # a CPU rerun in another process: float64 values may differ in their last bits (see Tolerance)


def ulp_distance(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Element-wise number of float64 values between ``old`` and ``new`` (0: equal; a huge number across a
    sign change or for a NaN or infinity that is not on both sides)."""
    a, b = np.asarray(old, np.float64), np.asarray(new, np.float64)
    lowest = np.iinfo(np.int64).min
    ia, ib = a.view(np.int64), b.view(np.int64)
    oa, ob = np.where(ia < 0, lowest - ia, ia), np.where(ib < 0, lowest - ib, ib)  # ordered like the floats
    with np.errstate(over="ignore"):
        far = (np.sign(a) != np.sign(b)) | ~np.isfinite(a) | ~np.isfinite(b)
        return np.where(a == b, 0, np.where(far, np.iinfo(np.int64).max, np.abs(oa - ob)))


@dataclass(frozen=True)
class Tolerance:
    """How a rerun's values are compared. On the CPU (``exact``): equal, or floats within ``ulps`` units in
    the last place. A seed rerun alone in a fresh process need not be bitwise the trial's: the same
    operations in the same order, but vectorised and BLAS reductions may round differently with the memory
    alignment of their buffers, and a trial that interleaved several seeds allocated differently. Measured
    on trust_region_digits_confirmed: a Fréchet distance (1 of 94 records) and a training statistic (1 of
    340) off by 1 ulp, every other record bitwise equal. ``ulps=0`` asks for bitwise.
    Off the CPU: within ``atol + rtol·|stored|``."""

    exact: bool
    rtol: float = GPU_RTOL
    atol: float = GPU_ATOL
    ulps: int = CPU_ULPS

    def same(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Element-wise: equal (NaN equals NaN), or for floats within the tolerance."""
        if old.dtype.kind != "f" or new.dtype.kind != "f":
            return np.array([a == b for a, b in zip(old, new)], dtype=bool)
        both_nan = np.isnan(old) & np.isnan(new)
        if self.exact:
            return (old == new) | both_nan | (ulp_distance(old, new) <= self.ulps)
        return (np.abs(new - old) <= self.atol + self.rtol * np.abs(old)) | both_nan

    def __str__(self) -> str:
        if not self.exact:
            return f"value within {self.atol:g} + {self.rtol:g}·|stored|"
        return "identical records" if self.ulps == 0 else f"identical records up to {self.ulps} ulp in a value"


def inexact(stored: pd.DataFrame, new: pd.DataFrame) -> str:
    """For records that matched: how many values are not bitwise equal, and by how many ulp at most."""
    old, now = stored["value"].to_numpy(np.float64), new["value"].to_numpy(np.float64)
    off = (old != now) & ~(np.isnan(old) & np.isnan(now))
    if not off.any():
        return "all bitwise equal"
    return f"{int(off.sum())} value(s) not bitwise equal, at most {int(ulp_distance(old, now)[off].max())} ulp off"


def first_difference(stored: pd.DataFrame, new: pd.DataFrame, tolerance: Tolerance) -> str | None:
    """The first record (stored order) that differs, all its columns stored vs rerun; None when all match.
    A column only one side has makes every record differ; a record only one side has differs."""
    columns = [c for c in stored.columns if c not in WALL_CLOCK_COLUMNS]
    columns += [c for c in new.columns if c not in columns and c not in WALL_CLOCK_COLUMNS]
    n = min(len(stored), len(new))
    bad = np.zeros((n, len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        bad[:, j] = (~tolerance.same(stored[c].to_numpy()[:n], new[c].to_numpy()[:n])
                     if c in stored and c in new else True)
    rows = np.flatnonzero(bad.any(axis=1))
    if len(rows) == 0 and len(stored) == len(new):
        return None
    i = int(rows[0]) if len(rows) else n
    old = stored.iloc[i].to_dict() if i < len(stored) else {}
    now = new.iloc[i].to_dict() if i < len(new) else {}
    marked = [c for j, c in enumerate(columns) if i >= n or bad[i, j]]
    width = max(len(c) for c in columns)
    lines = [f"record {i + 1} of {len(stored)} stored ({len(new)} rerun) differs in {', '.join(marked)}:",
             f"  {'column':<{width}}  stored | rerun"]
    lines += [f"  {c:<{width}}  {_shown(old, c)} | {_shown(now, c)}{'   <- differs' if c in marked else ''}"
              for c in columns]
    return "\n".join(lines)


def _shown(row: dict, column: str) -> str:
    """A value as Python writes it, "(none)" when the record lacks it."""
    return repr(_python(row[column])) if column in row else "(none)"


def _python(value):
    """A numpy scalar as the Python number it holds."""
    return value.item() if hasattr(value, "item") else value
