"""A sweep's manifest: ``runs/NAME/manifest.json``, also an artifact of the sweep's parent run in MLflow.

Everything ``orchestrate rerun`` needs to run a seed again and to say why it might not repeat: the
space's hash (SHA-256 of the validated ``space.yaml``), the git commit with the diff of a dirty
checkout, ``pip freeze``, torch/CUDA and the determinism flags (``provenance``), how a trial ran (its
device and torch threads: Ray sets OMP_NUM_THREADS to the CPUs a trial asks for, floored, at least 1,
unless the environment sets it; a trial that asks for no GPU sees none), and for every seed the derived
seeds, class order, permutations and benchmark seeds its stream is built from
(``trainables.build.seed_manifest``): ``seeds`` for the search seeds on the stream the search trains on
(``protocol: held_out_stream`` names another), ``confirm_seeds`` for the confirmation seeds
(``budget.confirm``) on the target stream.
Written atomically by the driver when the sweep starts; every ``--resume`` appends to ``resumes`` the code
and environment it continued with (time, git commit and diff, versions, trial runtime), since the seeds
that run after a resume ran on that code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

VERSION = 1


def space_hash(space_yaml: str) -> str:
    """SHA-256 (hex) of the validated space's YAML text, as written to ``space.yaml``."""
    return hashlib.sha256(space_yaml.encode()).hexdigest()


def trial_runtime(options) -> dict[str, Any]:
    """How a trial's seeds ran: ``device`` (``cpu`` unless a trial or seed actor asked for a GPU and the
    ``--device`` setting allows one) and torch's ``threads`` (see the module docstring)."""
    parallel = bool(getattr(options, "seeds_parallel", False))
    cpus = options.cpus_per_seed if parallel else options.cpus_per_trial
    gpus = options.gpus_per_seed if parallel else options.gpus_per_trial
    env = os.environ.get("OMP_NUM_THREADS")
    threads = int(env) if env and env.isdigit() and int(env) > 0 else max(math.floor(cpus), 1)
    device = "cpu" if options.device == "cpu" or gpus <= 0 else "cuda"
    return {"device": device, "device_setting": options.device, "threads": threads,
            "seeds_parallel": parallel}


def build(space, options) -> dict[str, Any]:
    """The manifest of a sweep of ``space`` started with ``options`` (``sweep.SweepOptions``)."""
    from orchestrator.provenance import git_changes, git_commit, pip_freeze, torch_environment, versions
    from trainables.benchmarks import get_benchmark
    from trainables.build import seeds_manifest

    commit = git_commit()
    search_config = getattr(space, "search_config", None) or space.bench_config
    confirm = getattr(space.budget, "confirm", None)
    return {"version": VERSION, "space_hash": space_hash(space.to_yaml()), "git_commit": commit,
            **({"git": git_changes()} if commit.endswith("-dirty") else {}),
            "versions": versions(), "pip_freeze": pip_freeze(), "torch": torch_environment(),
            "trial": trial_runtime(options), "benchmark": space.benchmark,
            **({"data": data} if (data := get_benchmark(space.benchmark).data_source(space.bench_config)) else {}),
            "seeds": seeds_manifest(space.benchmark, search_config, space.seeds),
            **({"confirm_seeds": seeds_manifest(space.benchmark, space.bench_config, confirm.seeds)}
               if confirm is not None else {})}


def write(space, sweep, options) -> None:
    """Build the manifest and write it into the sweep's folder (atomically)."""
    sweep.write_manifest(json.dumps(build(space, options), indent=1, default=str))


def record_resume(sweep, options) -> None:
    """Append this resume's provenance to the manifest's ``resumes`` (no-op for a sweep without one)."""
    from datetime import datetime, timezone

    from orchestrator.provenance import git_changes, git_commit, versions

    current = sweep.read_manifest()
    if current is None:
        return
    commit = git_commit()
    entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": commit,
             **({"git": git_changes()} if commit.endswith("-dirty") else {}),
             "versions": versions(), "trial": trial_runtime(options)}
    current["resumes"] = [*current.get("resumes", []), entry]
    sweep.write_manifest(json.dumps(current, indent=1, default=str))
