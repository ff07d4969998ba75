"""A sweep's records for analysis, and its report: analysis/ builds the files, this logs them to the
sweep's parent run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.load import Source, from_sweep
from core.errors import InputError
from orchestrator.sweep_dir import SweepDir


def load_sweep(name: str, runs_dir: str = "runs", tracking_uri: str | None = None) -> Source:
    """Sweep ``name``'s records from its MLflow store: ``tracking_uri``, else the one its folder in
    ``runs_dir`` names; the folder's per-configuration records stand in until the sweep has finished."""
    folder = SweepDir(runs_dir, name)
    uri = tracking_uri or folder.tracking_uri()
    if uri is None:
        raise InputError(f"--sweep: no sweep named {name} in {folder.runs_dir.resolve()} (give --runs-dir, or "
                         "--tracking-uri of the MLflow server that holds it)")
    return from_sweep(name, uri, folder.record_files() + folder.record_files("confirm") if folder.exists() else [])


def log_report(source: Source, folder: Path) -> list[Path]:
    """Build the report into ``folder`` and log every file under ``report/`` of the parent run."""
    from mlflow.tracking import MlflowClient

    from analysis.report import build_report

    files = build_report(source, folder)
    client = MlflowClient(tracking_uri=source.tracking_uri)
    for path in files:
        client.log_artifact(source.parent_run_id, str(path), artifact_path="report")
    return files


def report_sweep(name: str, runs_dir: str = "runs", tracking_uri: str | None = None, stage: str | None = None) -> Path:
    """The report of sweep ``name`` into its folder's report/ (a temporary folder when the sweep's folder is
    not on this machine), logged to its parent run; on ``stage``'s seeds (default: the confirmation seeds
    when the sweep has some, analysis.stages)."""
    from analysis.stages import staged

    source = staged(load_sweep(name, runs_dir, tracking_uri), stage)
    local = SweepDir(runs_dir, name)
    folder = local.report_dir if local.exists() else Path(tempfile.mkdtemp(prefix=f"report-{name}-"))
    log_report(source, folder)
    return folder.resolve()
