"""What every benchmark section shares: its result (``Section``), Markdown tables, the machine header, and
one sweep run through ``orchestrate sweep`` in this process (the code of scripts/bench_ray_overhead.py)."""

from __future__ import annotations

import json
import os
import platform
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class Section:
    """One section's outcome. ``ratio`` is the figure the target is judged on (None: not measured);
    ``met`` None means no verdict (nothing measured, or a figure with no target)."""

    key: str
    title: str
    target: str
    ratio: float | None = None
    ratio_text: str = "not measured"
    met: bool | None = None
    reason: str = ""
    next_step: str = ""
    tables: list[str] = field(default_factory=list)  # ratios first, absolute figures second
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def verdict(self) -> str:
        if self.met is None:
            return "not measured" if self.ratio is None else "measured (no verdict)"
        return "met" if self.met else "missed"

    def judge(self, ratio: float, text: str, met: bool, reason: str = "", next_step: str = "") -> None:
        self.ratio, self.ratio_text, self.met = ratio, text, met
        if not met:
            self.reason, self.next_step = reason, next_step


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned."""
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "| --- |" + " ---: |" * (len(headers) - 1)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Machine, versions and load, for the header."""
    import importlib.metadata as md

    import torch

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "absent"

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": f"{os.cpu_count()} cores ({cpu})", "memory": f"{mem:.0f} GiB", "gpu": gpu,
            "python": platform.python_version(), "os": platform.platform(),
            "versions": ", ".join(f"{n} {version(n)}" for n in ("torch", "ray", "optuna", "mlflow", "diffusers",
                                                                  "pandas")),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def rss_mib() -> float:
    """This process's resident memory now (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mib() -> float:
    """This process's peak resident memory since start or the last ``reset_peak_rss`` (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class SweepRun:
    """One ``orchestrate sweep`` run: its wall seconds and each trial's params and last Ray result."""

    wall: float
    trials: list[dict]  # {"config": ..., "last": last result, "results": every result}


def run_sweep(space: dict, args: list[str] = (), folder: Path | None = None) -> SweepRun:
    """``orchestrate sweep --space <space>`` in this process (click's runner), timed from the call to
    the table; the trials' results read back from Ray's ``result.json`` files."""
    from click.testing import CliRunner

    from orchestrator.cli import main as orchestrate

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "space.yaml"
        path.write_text(yaml.safe_dump(space))
        start = time.perf_counter()
        out = CliRunner().invoke(orchestrate, ["sweep", "--space", str(path), "--runs-dir", f"{tmp}/runs", *args])
        wall = time.perf_counter() - start
        if out.exit_code != 0:
            raise RuntimeError(f"orchestrate sweep failed ({out.exit_code}): {out.output[-2000:]}")
        trials = []
        for result in sorted(Path(tmp, "runs", space["name"], "ray").glob("*/result.json")):
            lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
            trials.append({"config": lines[-1].get("config", {}), "last": lines[-1], "results": lines})
    return SweepRun(wall, trials)
