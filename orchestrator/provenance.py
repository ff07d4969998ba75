"""Where a sweep's numbers come from: the code's git commit (and its diff when dirty), the installed
packages, and the torch/CUDA build with its determinism flags."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

PACKAGES = ("torch", "ray", "optuna", "mlflow", "diffusers", "numpy", "pandas", "scikit-learn", "clsweep")
ROOT = Path(__file__).resolve().parents[1]


def versions() -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def git_commit() -> str:
    """HEAD of the project's checkout, with ``-dirty`` when tracked files differ; ``unknown`` outside git."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        dirty = _git("status", "--porcelain", "--untracked-files=no").strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_changes() -> dict[str, object]:
    """What a dirty checkout adds to its commit: ``diff`` (``git diff HEAD``, tracked files, staged or not)
    and ``untracked`` (the names of files git does not ignore but does not track; their contents are not
    kept). Empty outside git."""
    try:
        return {"diff": _git("diff", "HEAD", "--no-color", "--no-ext-diff"),
                "untracked": _git("ls-files", "--others", "--exclude-standard").split("\n")[:-1]}
    except (OSError, subprocess.CalledProcessError):
        return {"diff": "", "untracked": []}


def pip_freeze() -> list[str]:
    """Every installed distribution as ``name==version``, sorted (``pip freeze``'s content, read from the
    environment's metadata, without running pip)."""
    seen = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return [seen[k] for k in sorted(seen)]


def torch_environment() -> dict[str, object]:
    """torch and its CUDA/cuDNN build, the GPUs this process sees, and every flag that decides whether
    a run repeats bit for bit (as this process has them; a trial's worker inherits the environment)."""
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cuda_available": cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "env": {k: os.environ.get(k) for k in ("CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED", "OMP_NUM_THREADS",
                                                   "CUDA_VISIBLE_DEVICES")}}
