"""Start-up time of the command line: `orchestrate --help`, `orchestrate list spaces` and `orchestrate table
--records` on a 20-task records file, each the median of several runs in fresh processes.

    .venv/bin/python scripts/bench_cli_startup.py [--baseline PATH] [--repeats 5]

``--baseline`` times a second checkout of the project (e.g. `git worktree add /tmp/old <commit>`) in the
same run, interleaved with this one, so both sides see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def records_file(folder: Path, tasks: int = 20, seeds: int = 3, methods: int = 4) -> Path:
    """A synthetic records file: every seen task evaluated at the end of each task, plus a mid-task point."""
    rng = np.random.default_rng(0)
    rows = []
    for m in range(methods):
        for s in range(seeds):
            for k in range(1, tasks + 1):
                for step in (100 * k - 50, 100 * k):
                    rows += [(f"method{m}", s, step, k, j, "accuracy", float(rng.uniform())) for j in range(1, k + 1)]
    path = folder / "records.csv"
    pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value"]).to_csv(
        path, index=False)
    return path


def timed(cmd: list[str], root: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=root, check=True, capture_output=True,
                   env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout of the project")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory() as tmp:
        path = records_file(Path(tmp))
        commands = {"orchestrate --help": ["--help"], "orchestrate list spaces": ["list", "spaces"],
                    "orchestrate table --records (20 tasks)": ["table", "--records", str(path), "--metric",
                                                               "accuracy"]}
        times = {(c, t): [] for c in commands for t in trees}
        for _ in range(args.repeats):
            for name, argv in commands.items():
                for tree, root in trees.items():
                    times[(name, tree)].append(timed([sys.executable, "-m", "orchestrator", *argv], root))
    print(f"| command | {' | '.join(trees)} |")
    print(f"| --- |{' ---: |' * len(trees)}")
    for name in commands:
        cells = " | ".join(f"{statistics.median(times[(name, t)]):.2f} s" for t in trees)
        print(f"| `{name}` | {cells} |")


if __name__ == "__main__":
    main()
