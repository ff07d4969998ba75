"""The tiny sweep the end-to-end tests share, and a reader of its MLflow store."""

from __future__ import annotations

from pathlib import Path

SPACE = {
    "name": "e2e",
    "benchmark": {"name": "split_digits_diffusion", "preset": "tiny"},
    "seeds": [0, 1],
    "objective": {"metric": "fd", "reduce": "mean", "mode": "min"},
    "budget": {"num_samples": 3, "max_concurrent": 2, "sampler_seed": 7},
    "methods": {
        "finetune": {"lr": {"loguniform": [1e-4, 1e-3]}},
        "trust_region": {"lam": {"loguniform": [10, 1000]}, "buffer_per_task": 8},
        "ewc": {"lr": 1e30, "optimizer": "sgd"},  # diverges at once: the sweep must record it and go on
    },
}


def mlflow_runs(folder: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(folder.name)
    return client, exp, client.search_runs([exp.experiment_id], max_results=1000)
