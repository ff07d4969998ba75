"""The one records format: a long table that flows from the loop to MLflow and to analysis.

Each record is one value of one metric of one evaluated task at one global step:
``method, seed, step, train_task, eval_task, metric, value``; tasks are numbered from 1, ``step`` counts
optimizer updates from the start of the stream. Context columns (config_id, benchmark, sweep,
num_tasks, the length of the stream the run was meant to train on, stage: ``search`` for the runs a
sweep selects on, ``confirm`` for the reruns of its best configurations on fresh seeds (records without
the column are search records), and data: which data source the run read, where a benchmark has several)
are added by whoever knows them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import pandas as pd

COLUMNS = ("method", "seed", "step", "train_task", "eval_task", "metric", "value")
# num_tasks: the stream's length; stage: "search" (selection) or "confirm" (a rerun on fresh seeds); data: the
# data source where a benchmark reads one of several (Benchmark.data_source, e.g. MNIST's embedded 5,000)
CONTEXT_COLUMNS = ("config_id", "benchmark", "sweep", "num_tasks", "stage", "data")
STAGES = ("search", "confirm")
DTYPES = {"method": "string", "seed": "int64", "step": "int64", "train_task": "int64",
          "eval_task": "int64", "metric": "string", "value": "float64"}


@dataclass(frozen=True)
class Record:
    method: str
    seed: int
    step: int
    train_task: int
    eval_task: int
    metric: str
    value: float


def to_frame(records: Iterable[Record], **context: str) -> pd.DataFrame:
    """Records as a DataFrame with the schema's columns, then constant context columns (config_id,
    benchmark, sweep first, in that order)."""
    df = pd.DataFrame([asdict(r) for r in records], columns=list(COLUMNS))
    df = df.astype(DTYPES)
    ordered = [k for k in CONTEXT_COLUMNS if k in context] + [k for k in context if k not in CONTEXT_COLUMNS]
    for key in ordered:  # context columns in one order, whoever adds them
        df[key] = context[key]
    return df


def validate(df: pd.DataFrame) -> pd.DataFrame:
    """Check the schema: required columns present, tasks from 1, eval_task <= train_task."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"records: missing column(s) {', '.join(missing)}; required: {', '.join(COLUMNS)}")
    df = df.astype({c: DTYPES[c] for c in COLUMNS})
    if len(df) and (df["eval_task"].min() < 1 or df["train_task"].min() < 1):
        raise ValueError("records: tasks are numbered from 1")
    if (df["eval_task"] > df["train_task"]).any():
        raise ValueError("records: eval_task must not exceed train_task (only seen tasks are evaluated)")
    return df


TEXT_COLUMNS = ("method", "metric", "config_id", "benchmark", "sweep", "stage", "data")


def read_csv(path) -> pd.DataFrame:
    """A records CSV with its text columns read as text (a config_id like 12e45678 or 00123456 must not
    become a number)."""
    numeric = [c for c in COLUMNS if c not in TEXT_COLUMNS]
    return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                       na_values={c: ["", "nan", "NaN", "NA"] for c in numeric})


def read(path: str) -> pd.DataFrame:
    """Records from a CSV or Parquet file, validated."""
    df = pd.read_parquet(path) if str(path).endswith(".parquet") else read_csv(path)
    return validate(df)
