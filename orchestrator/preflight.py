"""Checks before any work: a sweep's name, the resources it asks for against the machine, and the services
it needs (a Ray cluster, an MLflow server) answering. Each failure is one line naming the option."""

from __future__ import annotations

import os
import re

from orchestrator import storage
from orchestrator.space_file import SpaceError
from orchestrator.tuner import Resources


def check_name(name: str, field: str) -> None:
    """A sweep's name is a folder, an MLflow experiment and an Optuna study: no path tricks."""
    if not re.fullmatch(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*", name or ""):
        raise SpaceError(f"{field}: {name!r} is not allowed; allowed: letters, digits, _ - . (not starting "
                         "with a dot)")


def check_services(address: str | None, tracking_uri: str | None) -> None:
    """Fail fast, in one line, on a Ray address or MLflow server that cannot work."""
    if address:
        storage.check_address(address)
    if tracking_uri:
        storage.check_tracking_uri(tracking_uri)


def resources_of(state: dict) -> Resources:
    """The resources a sweep was started with (sweep.json; fields added later take their defaults)."""
    fields = Resources.__dataclass_fields__
    return Resources(**{k: v for k, v in state.items() if k in fields})


def check_resources(resources: Resources) -> None:
    """--device, the CPUs and GPUs per trial (and per seed) must be able to work together; on the local
    machine they must fit in it (else trials would wait forever)."""
    import torch

    r = resources
    if r.cpus_per_trial <= 0 or r.gpus_per_trial < 0:
        raise SpaceError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if r.cpus_per_seed <= 0 or r.gpus_per_seed < 0:
        raise SpaceError("--cpus-per-seed must be > 0 and --gpus-per-seed >= 0")
    if r.max_failures < 0:
        raise SpaceError(f"--max-failures: {r.max_failures} is not allowed; allowed: an integer >= 0")
    if r.device != "auto":
        try:
            device = torch.device(r.device)
        except RuntimeError:
            raise SpaceError(f"--device: '{r.device}' is not allowed; allowed: auto, cpu, cuda, cuda:N") from None
        if device.type == "cuda" and r.gpus_per_trial == 0:
            raise SpaceError("--device cuda needs --gpus-per-trial > 0 (Ray hides GPUs from trials that ask for none)")
    if r.address:
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    asks = [("trial", r.cpus_per_trial, r.gpus_per_trial)]
    asks += [("seed", r.cpus_per_seed, r.gpus_per_seed)] if r.seeds_parallel else []
    for per, want_cpus, want_gpus in asks:
        if want_gpus > 0 and not gpus:
            raise SpaceError(f"--gpus-per-{per}: this machine has no GPU; use 0, or --address of a cluster with GPUs")
        for what, want, have in (("CPUs", want_cpus, cpus), ("GPUs", want_gpus, gpus)):
            if want > have:
                raise SpaceError(f"--{what[:3].lower()}s-per-{per}: {want:g} is more than this machine's {have} "
                                 f"{what}; allowed: at most {have}, or --address of a cluster")


def check_seed_resources(r: Resources, seeds: int) -> None:
    """With seeds in parallel a trial reserves every seed's bundle at once: on the local machine all of them
    must fit, or the trial would wait forever."""
    if not r.seeds_parallel or r.address:
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if seeds * r.cpus_per_seed > cpus:
        raise SpaceError(f"--cpus-per-seed: {seeds} seeds x {r.cpus_per_seed:g} CPUs is more than this machine's "
                         f"{cpus} CPUs; allowed: at most {cpus / seeds:g} per seed, or --address of a cluster")
