"""The sweep folder ``runs/<name>/``: the only code that knows its layout.

``space.yaml`` the validated space; ``sweep.json`` how it was started (tracking URI, parent run,
resources); ``versions.json`` provenance; ``manifest.json`` what an exact re-run needs
(``orchestrator.manifest``); ``ray/`` Ray Tune's experiment (resumable, with each trial's
latest full-state checkpoint); ``optuna.journal`` Optuna's storage; ``ray_session.json`` the local Ray
session of the last driver (reaped on resume); ``mlflow.db`` and ``mlartifacts/`` the default MLflow
store; ``records/<config_id>.csv`` and ``.json`` each ended configuration's records and status (written by
the driver as the trial ends), ``records/confirm/`` those of the confirmation runs; at the end ``records.csv``, ``results.csv|md|tex`` and ``report/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.records import read_csv


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class SweepDir:
    """One sweep's folder under ``runs_dir``."""

    def __init__(self, runs_dir: str | Path, name: str) -> None:
        self.runs_dir = Path(runs_dir)
        self.name = name
        self.path = (self.runs_dir / name).resolve()

    @classmethod
    def all(cls, runs_dir: str | Path) -> list["SweepDir"]:
        """The started sweeps in ``runs_dir``, oldest first."""
        states = sorted(Path(runs_dir).glob("*/sweep.json"), key=lambda p: p.stat().st_mtime)
        return [cls(runs_dir, p.parent.name) for p in states]

    space_yaml = property(lambda self: self.path / "space.yaml")
    state_json = property(lambda self: self.path / "sweep.json")
    versions_json = property(lambda self: self.path / "versions.json")
    manifest_json = property(lambda self: self.path / "manifest.json")
    ray_dir = property(lambda self: self.path / "ray")
    optuna_journal = property(lambda self: self.path / "optuna.journal")
    artifacts = property(lambda self: self.path / "mlartifacts")
    records_dir = property(lambda self: self.path / "records")
    records_csv = property(lambda self: self.path / "records.csv")
    report_dir = property(lambda self: self.path / "report")
    ray_session = property(lambda self: self.path / "ray_session.json")  # the local Ray of the last driver
    confirm_ray_dir = property(lambda self: self.path / "ray_confirm")  # the confirmation phase's Tuner

    def stage_dir(self, stage: str = "search") -> Path:
        """``records/`` for the search; ``records/confirm/`` for the confirmation runs (budget.confirm), whose
        files carry the id of the configuration they confirm."""
        return self.records_dir if stage == "search" else self.records_dir / stage

    def results(self, suffix: str) -> Path:
        """results.csv, results.md or results.tex."""
        return self.path / f"results.{suffix}"

    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.path / 'mlflow.db'}"

    def exists(self) -> bool:
        return self.path.exists()

    def started(self) -> bool:
        return self.state_json.exists()

    def create(self) -> None:
        self.path.mkdir(parents=True)
        self.records_dir.mkdir()

    def read_state(self) -> dict:
        return json.loads(self.state_json.read_text())

    def write_state(self, state: dict) -> None:
        write_atomic(self.state_json, json.dumps(state, indent=1))

    def write_manifest(self, text: str) -> None:
        write_atomic(self.manifest_json, text)

    def read_manifest(self) -> dict | None:
        """The manifest (``orchestrator.manifest``), or None for a sweep started before manifests."""
        return json.loads(self.manifest_json.read_text()) if self.manifest_json.exists() else None

    def tracking_uri(self) -> str | None:
        """The MLflow store the sweep logs to, or None when it never started."""
        return self.read_state()["tracking_uri"] if self.started() else None

    # one file pair per ended configuration
    def config_ended(self, config_id: str, stage: str = "search") -> bool:
        return (self.stage_dir(stage) / f"{config_id}.json").exists()

    def read_config(self, config_id: str, stage: str = "search") -> tuple[dict, pd.DataFrame]:
        """(meta, records) of an ended configuration; records empty when it ended without any."""
        folder = self.stage_dir(stage)
        meta = json.loads((folder / f"{config_id}.json").read_text())
        path = folder / f"{config_id}.csv"
        return meta, (read_csv(path) if path.exists() else pd.DataFrame())

    def write_config(self, config_id: str, meta: dict, records: pd.DataFrame, stage: str = "search") -> None:
        """Records first, then the meta that says the configuration ended (each written atomically)."""
        folder = self.stage_dir(stage)
        folder.mkdir(exist_ok=True)
        if len(records):
            write_atomic(folder / f"{config_id}.csv", records.to_csv(index=False))
        write_atomic(folder / f"{config_id}.json", json.dumps(meta, indent=1))

    def metas(self, stage: str = "search") -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.stage_dir(stage).glob("*.json"))]

    def finished_twin(self, method: str, params: dict) -> dict | None:
        """The meta of a finished configuration with exactly this method and these parameters, if any."""
        for meta in self.metas():
            if meta["status"] == "finished" and meta["method"] == method and meta["params"] == params:
                return meta
        return None

    def record_files(self, stage: str = "search") -> list[Path]:
        return sorted(self.stage_dir(stage).glob("*.csv"))

    def ended_records(self) -> pd.DataFrame:
        """The records of every ended configuration, search then confirmation runs (empty when none)."""
        frames = [read_csv(p) for p in self.record_files() + self.record_files("confirm")]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
