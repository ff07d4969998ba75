"""Shared fixtures: every test writes only into temporary folders, CPU only, one thread."""

from __future__ import annotations

import os

import yaml
from click.testing import CliRunner

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """The evaluation-classifier cache lives in a session temp folder (Ray workers inherit the env)."""
    folder = tmp_path_factory.mktemp("clsweep-cache")
    old = os.environ.get("CLSWEEP_CACHE_DIR")
    os.environ["CLSWEEP_CACHE_DIR"] = str(folder)
    torch.set_num_threads(1)
    yield folder
    if old is None:
        os.environ.pop("CLSWEEP_CACHE_DIR", None)
    else:
        os.environ["CLSWEEP_CACHE_DIR"] = old


@pytest.fixture
def toy():
    from toy import ToyRegression

    return ToyRegression()


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory):
    """One tiny sweep through the real Ray + Optuna + MLflow path, shared by the end-to-end tests."""
    from orchestrator.cli import main
    from sweep_helpers import SPACE

    root = tmp_path_factory.mktemp("sweep")
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    result = CliRunner().invoke(main, ["sweep", "--space", str(root / "space.yaml"), "--runs-dir", str(root / "runs")])
    return result, root / "runs" / "e2e"


