"""Continual-World's CW10 tasks from Meta-World, their scripted experts, and cached demonstrations.

The groundwork of the `continual_world` benchmark (000 §4.2, C.2). The `metaworld` package (3.1.1) ships
the tasks as ``-v3``; the paper used ``-v1``, so absolute success rates need not match it. Observations
are 39-D, actions 4-D clipped to [-1, 1], episodes at most 200 steps, success = the environment's flag.
Each episode e of a task uses Meta-World's goal variant e mod 50 (MT1's train tasks, drawn from the
seed) and resets the environment with its own seed, so an episode is fixed by (task, seed, e).

Demonstrations are generated in worker processes and cached on disk as one ``.npz`` per
(task, episodes, seed, metaworld version), written atomically with a checksum of its arrays; a damaged
or partial file is detected on load and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import zipfile
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

CW10 = ("hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3", "stick-pull-v3",
        "handle-press-side-v3", "push-v3", "shelf-place-v3", "window-close-v3", "peg-unplug-side-v3")
MAX_STEPS = 200
OBS_DIM, ACT_DIM = 39, 4


@lru_cache(maxsize=16)
def _task_set(task: str, seed: int):
    """(env, goal variants) of a task, built once per process (building MT1 takes about a second)."""
    import metaworld

    mt = metaworld.MT1(task, seed=seed)
    env = mt.train_classes[task]()
    return env, mt.train_tasks


def expert(task: str):
    """Meta-World's scripted policy of a task: 'push-wall-v3' -> SawyerPushWallV3Policy."""
    import metaworld.policies as policies

    name = "Sawyer" + "".join(part.capitalize() for part in task[:-3].split("-")) + "V3Policy"
    if not hasattr(policies, name):
        raise ValueError(f"task '{task}': no scripted policy {name} in metaworld.policies")
    return getattr(policies, name)()


def reset(task: str, seed: int, episode: int):
    """The environment of episode ``episode``, reset to its goal variant and seed; returns (env, obs)."""
    env, variants = _task_set(task, seed)
    env.set_task(variants[episode % len(variants)])
    obs, _ = env.reset(seed=seed * 100_003 + episode)
    return env, obs


def expert_episode(task: str, seed: int, episode: int) -> dict[str, np.ndarray]:
    """One scripted-expert episode: observations (T, 39), clipped actions (T, 4), success (bool)."""
    env, obs = reset(task, seed, episode)
    policy = expert(task)
    observations, actions, success = [], [], False
    for _ in range(MAX_STEPS):
        action = np.clip(policy.get_action(obs), -1.0, 1.0).astype(np.float32)
        observations.append(obs.astype(np.float32))
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        if info.get("success"):
            success = True
            break
        if terminated or truncated:
            break
    return {"obs": np.stack(observations), "act": np.stack(actions), "success": np.bool_(success)}


def _episode(args: tuple[str, int, int]) -> dict[str, np.ndarray]:
    return expert_episode(*args)


def collect(task: str, episodes: int, seed: int, workers: int = 1) -> dict[str, np.ndarray]:
    """``episodes`` expert episodes of ``task`` (in ``workers`` processes), packed: obs (ΣT, 39), act
    (ΣT, 4), starts (episodes + 1,) offsets, success (episodes,)."""
    jobs = [(task, seed, e) for e in range(episodes)]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            eps = pool.map(_episode, jobs, chunksize=max(1, episodes // (4 * workers)))
    else:
        eps = [_episode(j) for j in jobs]
    lengths = [len(e["obs"]) for e in eps]
    return {"obs": np.concatenate([e["obs"] for e in eps]), "act": np.concatenate([e["act"] for e in eps]),
            "starts": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            "success": np.array([e["success"] for e in eps], dtype=bool)}


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha1()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def cache_path(folder: Path, task: str, episodes: int, seed: int) -> Path:
    key = {"task": task, "episodes": episodes, "seed": seed, "metaworld": version("metaworld"),
           "max_steps": MAX_STEPS, "format": 1}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(folder) / f"cw-demos-{task}-{episodes}-{seed}-{digest}.npz"


def load(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None when it is missing, partial or damaged."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("obs", "act", "starts", "success")}
            stored = str(f["checksum"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if stored != _checksum(arrays) or arrays["starts"][-1] != len(arrays["obs"]):
        return None
    return arrays


def demonstrations(task: str, episodes: int, seed: int, folder: Path, workers: int = 1) -> dict[str, np.ndarray]:
    """Cached expert demonstrations: loaded when the cache file is sound, else generated and written."""
    path = cache_path(folder, task, episodes, seed)
    arrays = load(path)
    if arrays is not None:
        return arrays
    arrays = collect(task, episodes, seed, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{multiprocessing.current_process().pid}.tmp.npz")
    np.savez(tmp, checksum=np.array(_checksum(arrays)), **arrays)
    tmp.replace(path)
    return arrays
