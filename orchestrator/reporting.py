"""The sweep report: analysis/ builds the files, this logs them to the sweep's parent run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.load import Source, from_sweep
from analysis.report import build_report


def log_report(source: Source, folder: Path) -> list[Path]:
    """Build the report into ``folder`` and log every file under ``report/`` of the parent run."""
    from mlflow.tracking import MlflowClient

    files = build_report(source, folder)
    client = MlflowClient(tracking_uri=source.tracking_uri)
    for path in files:
        client.log_artifact(source.parent_run_id, str(path), artifact_path="report")
    return files


def report_sweep(name: str, runs_dir: str = "runs", tracking_uri: str | None = None) -> Path:
    source = from_sweep(name, runs_dir, tracking_uri)
    local = Path(runs_dir) / name
    if local.exists():
        folder = local / "report"
        log_report(source, folder)
        return folder.resolve()
    folder = Path(tempfile.mkdtemp(prefix=f"report-{name}-"))
    log_report(source, folder)
    return folder
