"""`orchestrate rerun`: one seed of one configuration of a sweep run again, in this process without Ray,
from the sweep's manifest, and its records compared with the stored ones.

The configuration is the stored one (``records/<config>.json``: method and parameters; ``space.yaml``:
the benchmark, objective and seeds), run on the device and with the torch threads the manifest says its
trial had, for as many tasks as the stored seed's records cover (a diverged or stopped configuration's
completed tasks). Before training, the seed's stream (derived seeds, class order, permutations, benchmark
seeds; ``trainables.build.seed_manifest``) must equal the manifest's; a different git commit, torch, or
``space.yaml`` is said as a note. Records are compared row by row in their stored order on every column
but wall-clock ones: identical when both the sweep's trial and the rerun ran on the CPU; otherwise
``value`` within ``|new - old| <= atol + rtol * |old|`` (GPU kernels may reduce in another order) and every
other column identical.
"""

from __future__ import annotations

import io
from typing import Callable

import pandas as pd

from core.errors import InputError
from core.records import COLUMNS, read_csv
from orchestrator.manifest import space_hash
from orchestrator.record_compare import (CPU_ULPS, GPU_ATOL, GPU_RTOL, Tolerance, _python, first_difference,
                                          inexact)
from orchestrator.sweep_dir import SweepDir

STAGES = ("search", "confirm")  # records/ and records/confirm/ (sweep_dir)
def find_sweep(runs_dir: str, name: str) -> SweepDir:
    sweep = SweepDir(runs_dir, name)
    if not sweep.started():
        names = ", ".join(s.name for s in SweepDir.all(runs_dir)) or "none"
        raise InputError(f"--sweep: no sweep named {name} in {sweep.runs_dir.resolve()}; allowed: {names}")
    return sweep


def stored_seed(sweep: SweepDir, config_id: str, seed: int) -> tuple[str, dict, pd.DataFrame]:
    """(stage, meta, records of ``seed``) of a configuration that left records: a search seed's in
    ``records/``, a confirmation seed's in ``records/confirm/``; bad ids are InputErrors."""
    found = {stage: {p.stem for p in sweep.record_files(stage)} for stage in STAGES}
    allowed = sorted(set().union(*found.values()))
    if config_id not in allowed:
        raise InputError(f"--config: '{config_id}' is not a configuration of sweep {sweep.name} with records; "
                         f"allowed: {', '.join(allowed) or 'none'}")
    by_seed: dict[int, tuple[str, dict, pd.DataFrame]] = {}
    for stage in (s for s in STAGES if config_id in found[s]):
        meta, records = sweep.read_config(config_id, stage)
        for s in records["seed"].unique():
            by_seed.setdefault(int(s), (stage, meta, records))
    if seed not in by_seed:
        raise InputError(f"--seed: {seed} is not a seed of configuration {config_id}; allowed: "
                         f"{', '.join(map(str, sorted(by_seed)))}")
    stage, meta, records = by_seed[seed]
    return stage, meta, records[records["seed"] == seed].reset_index(drop=True)


def stream_difference(stored, now, where: str = "") -> str | None:
    """The first key path where two seed manifests (nested dicts and lists) differ; None when equal."""
    if isinstance(stored, dict) and isinstance(now, dict):
        for key in list(stored) + [k for k in now if k not in stored]:
            if key not in stored or key not in now:
                return (f"{where}{key}: {stored.get(key, 'missing')} (manifest) vs {now.get(key, 'missing')} "
                        "(now)")
            found = stream_difference(stored[key], now[key], f"{where}{key}.")
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(now, list) and len(stored) == len(now):
        for i, (a, b) in enumerate(zip(stored, now)):
            found = stream_difference(a, b, f"{where}{i}.")
            if found:
                return found
        return None
    return None if stored == now else f"{where.rstrip('.')}: {stored} (manifest) vs {now} (now)"


def rerun(name: str, runs_dir: str, config_id: str, seed: int, say: Callable[[str], None],
          device: str | None = None, rtol: float = GPU_RTOL, atol: float = GPU_ATOL, ulps: int = CPU_ULPS) -> int:
    """Run seed ``seed`` of configuration ``config_id`` of sweep ``name`` again; 0 when its records match
    the stored ones, 1 (after saying the first difference) when not."""
    import torch

    from orchestrator.spaces import load
    from trainables.build import Configuration, method_params, seeds_manifest

    sweep = find_sweep(runs_dir, name)
    stage, meta, stored = stored_seed(sweep, config_id, seed)
    manifest = sweep.read_manifest()
    if manifest is None:
        raise InputError(f"--sweep: sweep {name} has no manifest.json (it started before sweeps wrote one); "
                         "allowed: a sweep started by this version")
    space = load(str(sweep.space_yaml))
    for note in _notes(manifest, sweep):
        say(f"note: {note}")
    # the search trains on the search stream (protocol held_out_stream), a confirmation on the target one
    bench_config = (getattr(space, "search_config", None) if stage == "search" else None) or space.bench_config
    entry = manifest.get("seeds" if stage == "search" else "confirm_seeds", {}).get(str(seed))
    now = seeds_manifest(space.benchmark, bench_config, [seed])[str(seed)]
    differs = "the seed is not in the manifest" if entry is None else stream_difference(entry, now)
    if differs:
        say(f"differs: seed {seed}'s stream is not the manifest's: {differs}")
        return 1

    trial_device = manifest["trial"]["device"]
    device = device or (trial_device if trial_device == "cpu" or torch.cuda.is_available() else "cpu")
    tolerance = Tolerance(exact=device == "cpu" and trial_device == "cpu", rtol=rtol, atol=atol, ulps=ulps)
    tasks, threads = int(stored["train_task"].max()), manifest["trial"]["threads"]
    say(f"rerun of sweep {name}, configuration {config_id} ({meta['method']}), {stage} seed {seed}: {tasks} "
        f"task(s) on {device} with {threads} thread(s); expecting {tolerance}")
    config = Configuration(meta["method"], method_params(meta["method"], meta["params"], bench_config),
                           space.benchmark, bench_config, (seed,), space.objective.metric, space.objective.reduce,
                           device)
    # the records' constant columns (config_id, sweep, num_tasks, stage, ...) as the trial gave them;
    # ``benchmark`` comes from the configuration
    context = {c: _python(stored[c].iloc[0]) for c in stored.columns if c not in COLUMNS and c != "benchmark"}
    new = run_seed(config, tasks, context, threads, say)
    found = first_difference(stored, new, tolerance)
    if found:
        say(f"differs: {found}")
        return 1
    say(f"match: {len(stored)} records of seed {seed} ({tolerance}; {inexact(stored, new)})")
    return 0


def run_seed(config, tasks: int, context: dict, threads: int, say: Callable[[str], None]) -> pd.DataFrame:
    """The first ``tasks`` tasks of ``config``'s one seed, here, with torch on ``threads`` threads; its records
    as the sweep stores them (through CSV). A divergence is said and ends the run."""
    import torch

    from trainables.build import make_runs
    from trainables.loop import Diverged
    from trainables.trainable import Trial

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    trial = Trial(config, make_runs(config), context)
    try:
        while trial.done < tasks:
            trial.next_task()
    except Diverged as e:
        say(f"note: the rerun diverged ({e}); comparing the records of its completed tasks")
    finally:
        torch.set_num_threads(before)
        trial.close()
    return read_csv(io.StringIO(trial.frame().to_csv(index=False)))

def _notes(manifest: dict, sweep: SweepDir) -> list[str]:
    """What changed since the sweep started that could explain a difference."""
    from orchestrator.provenance import git_changes, git_commit, versions

    notes = []
    if space_hash(sweep.space_yaml.read_text()) != manifest["space_hash"]:
        notes.append("space.yaml changed since the sweep started (its hash differs from the manifest's)")
    commit = git_commit()
    if commit != manifest["git_commit"]:
        notes.append(f"the code is at {commit}; the sweep ran at {manifest['git_commit']}")
    elif commit.endswith("-dirty") and git_changes()["diff"] != manifest.get("git", {}).get("diff"):
        notes.append("the checkout's uncommitted changes differ from the sweep's (manifest.json: git.diff)")
    for pkg, old in manifest["versions"].items():
        if versions().get(pkg, old) != old:
            notes.append(f"{pkg} {versions()[pkg]} here, {old} in the sweep")
    for entry in manifest.get("resumes", []):
        if entry["git_commit"] != manifest["git_commit"]:
            notes.append(f"the sweep was resumed at {entry['at']} on code at {entry['git_commit']}: seeds that ran "
                         "after that ran on it (manifest.json: resumes)")
    return notes

