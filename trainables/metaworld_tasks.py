"""Continual-World's CW10 tasks from Meta-World, their scripted experts, and cached demonstrations.

The groundwork of the `continual_world` benchmark (000 §4.2, C.2). The `metaworld` package (3.1.1) ships
the tasks as ``-v3``; the paper used ``-v1``, so absolute success rates need not match it. Observations
are 39-D, actions 4-D clipped to [-1, 1], episodes at most 200 steps, success = the environment's flag.
Each episode e of a task uses goal variant e mod 50 of MT1's train tasks drawn from (seed, e // 50)
(Meta-World's reset ignores its seed: the variant is what makes episodes differ), so an episode is fixed
by (task, seed, e) and the first 50 episodes are MT1's own for that seed.

Demonstrations are generated in worker processes and cached on disk as one ``.npz`` per
(task, episodes, seed, metaworld version), written atomically with a checksum of its arrays; a damaged
or partial file is detected on load and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import uuid
import warnings
import zipfile
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

CW10 = ("hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3", "stick-pull-v3",
        "handle-press-side-v3", "push-v3", "shelf-place-v3", "window-close-v3", "peg-unplug-side-v3")
MAX_STEPS = 200
VARIANTS = 50  # goal variants in one MT1 draw
OBS_DIM, ACT_DIM = 39, 4
# the x, y, z slots of the observation: hand, object 1, object 2 (current and previous frame), goal
POSITION_SLOTS = (0, 4, 11, 18, 22, 29, 36)
HAND_LOW, HAND_HIGH = np.array([-0.5, 0.4, 0.05]), np.array([0.5, 1.0, 0.5])  # Meta-World's hand workspace


def task_stream(tasks: list | None, num_tasks: int) -> tuple[str, ...]:
    """The first ``num_tasks`` of ``tasks`` (CW10 names in the order they are learned; None: CW10's order).
    Raises ValueError naming the setting and its allowed values when a name is not a CW10 task, a name
    repeats, or there are fewer than ``num_tasks``."""
    if tasks is None:
        tasks = list(CW10)
    unknown = [t for t in tasks if t not in CW10]
    if unknown or not tasks:
        raise ValueError(f"benchmark.tasks: {repr(unknown[0]) if unknown else '[]'} is not allowed; allowed: "
                         f"a list of distinct CW10 tasks ({', '.join(CW10)})")
    if len(set(tasks)) < len(tasks):
        repeated = next(t for t in tasks if tasks.count(t) > 1)
        raise ValueError(f"benchmark.tasks: {repeated!r} appears twice; allowed: a list of distinct CW10 tasks")
    if num_tasks > len(tasks):
        raise ValueError(f"benchmark.num_tasks: {num_tasks} is not allowed; allowed: at most the {len(tasks)} "
                         "tasks of benchmark.tasks")
    return tuple(tasks[:num_tasks])


def normalize_observations(obs: np.ndarray) -> np.ndarray:
    """Positions mapped by the fixed hand workspace [HAND_LOW, HAND_HIGH] -> [-1, 1]; the gripper opening and
    the quaternions are already within [-1, 1]. The same map for every task, so it never shifts under a
    continual learner (a normaliser fitted per task would)."""
    out = np.array(obs, dtype=np.float32, copy=True)
    center, half = (HAND_HIGH + HAND_LOW) / 2, (HAND_HIGH - HAND_LOW) / 2
    for i in POSITION_SLOTS:
        out[..., i:i + 3] = (out[..., i:i + 3] - center) / half
    return out


@lru_cache(maxsize=64)
def _task_set(task: str, seed: int, block: int = 0):
    """(env, goal variants) of a task, built once per process (building MT1 takes about a second). Block 0
    holds MT1's 50 train variants drawn from ``seed``; block b > 0 those drawn from a seed derived from
    (seed, b), so episodes beyond the 50th are new ones."""
    import metaworld

    mt = metaworld.MT1(task, seed=seed if block == 0 else seed * 7_919 + block * 1_000_003)
    env = mt.train_classes[task]()
    return env, mt.train_tasks


def make_envs(task: str, n: int) -> list:
    """n fresh environments of a task (about 0.1 s and 26 MB each), to be set up by ``reset_env``."""
    env, _ = _task_set(task, 0)
    return [type(env)() for _ in range(n)]


def reset_env(env, task: str, seed: int, episode: int) -> np.ndarray:
    """Reset ``env`` to episode ``episode`` of (task, seed): goal variant ``episode`` mod 50 of block
    ``episode`` // 50. Meta-World's reset ignores its seed argument: the variant fixes the episode."""
    _, variants = _task_set(task, seed, episode // VARIANTS)
    env.set_task(variants[episode % VARIANTS])
    obs, _ = env.reset(seed=seed * 100_003 + episode)
    return obs


class EpisodeBatch:
    """Episodes of one task stepped together, one environment each; an episode ends on success or after
    ``max_steps`` steps, and its environment is no longer stepped."""

    def __init__(self, envs: list, task: str, seed: int, episodes: list[int], max_steps: int = MAX_STEPS) -> None:
        self.envs, self.max_steps = envs[:len(episodes)], max_steps
        self.obs = np.stack([reset_env(e, task, seed, i) for e, i in zip(self.envs, episodes)]).astype(np.float32)
        self.active = np.ones(len(episodes), dtype=bool)
        self.success = np.zeros(len(episodes), dtype=bool)
        self.steps = 0

    def step(self, actions: np.ndarray) -> None:
        """Apply ``actions`` (K, 4), clipped to [-1, 1], to the active episodes."""
        actions = np.clip(actions, -1.0, 1.0).astype(np.float32)
        for i in np.flatnonzero(self.active):
            obs, _, terminated, truncated, info = self.envs[i].step(actions[i])
            self.obs[i] = obs
            if info.get("success"):
                self.success[i] = True
            if self.success[i] or terminated or truncated:
                self.active[i] = False
        self.steps += 1
        if self.steps >= self.max_steps:
            self.active[:] = False


def expert(task: str):
    """Meta-World's scripted policy of a task: 'push-wall-v3' -> SawyerPushWallV3Policy."""
    import metaworld.policies as policies

    name = "Sawyer" + "".join(part.capitalize() for part in task[:-3].split("-")) + "V3Policy"
    if not hasattr(policies, name):
        raise ValueError(f"task '{task}': no scripted policy {name} in metaworld.policies")
    return getattr(policies, name)()


def reset(task: str, seed: int, episode: int):
    """The environment of episode ``episode``, reset to its goal variant and seed; returns (env, obs)."""
    env, _ = _task_set(task, seed)
    return env, reset_env(env, task, seed, episode)


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
    with warnings.catch_warnings():  # several scripted policies warn that their gains exceed [-1, 1]
        warnings.filterwarnings("ignore", message="Constant.*may be too high")
        return expert_episode(*args)


def collect(task: str, episodes: int, seed: int, workers: int = 1) -> dict[str, np.ndarray]:
    """``episodes`` expert episodes of ``task`` (in ``workers`` processes), packed: obs (ΣT, 39), act
    (ΣT, 4), starts (episodes + 1,) offsets, success (episodes,)."""
    return collect_many([(task, episodes, seed)], workers)[0]


def collect_many(requests: list[tuple[str, int, int]], workers: int = 1) -> list[dict[str, np.ndarray]]:
    """``collect`` for several (task, episodes, seed) at once, all episodes in one pool of workers."""
    jobs = [(task, seed, e) for task, episodes, seed in requests for e in range(episodes)]
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            eps = pool.map(_episode, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
    else:
        eps = [_episode(j) for j in jobs]
    out, first = [], 0
    for _, episodes, _ in requests:
        part, first = eps[first:first + episodes], first + episodes
        lengths = [len(e["obs"]) for e in part]
        out.append({"obs": np.concatenate([e["obs"] for e in part]),
                    "act": np.concatenate([e["act"] for e in part]),
                    "starts": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                    "success": np.array([e["success"] for e in part], dtype=bool)})
    return out


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha1()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def cache_path(folder: Path, task: str, episodes: int, seed: int) -> Path:
    key = {"task": task, "episodes": episodes, "seed": seed, "metaworld": version("metaworld"),
           "max_steps": MAX_STEPS, "format": 1 if episodes <= VARIANTS else 2}  # 2: variants beyond 50
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
    return ensure_demonstrations([(task, episodes, seed)], folder, workers)[0]


def ensure_demonstrations(requests: list[tuple[str, int, int]], folder: Path,
                          workers: int = 1) -> list[dict[str, np.ndarray]]:
    """``demonstrations`` of several (task, episodes, seed); the missing or damaged ones are generated
    together in one pool of workers."""
    paths = [cache_path(folder, *r) for r in requests]
    found = [load(p) for p in paths]
    missing = [i for i, arrays in enumerate(found) if arrays is None]
    for i, arrays in zip(missing, collect_many([requests[i] for i in missing], workers)):
        _write(paths[i], arrays)
        found[i] = arrays
    return found


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a reader sees the old file, the new one, or none, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp.npz")
    np.savez(tmp, checksum=np.array(_checksum(arrays)), **arrays)
    tmp.replace(path)
