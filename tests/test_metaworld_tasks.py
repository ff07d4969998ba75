"""Groundwork of Continual-World: the environment wrapper, the scripted experts and the demo cache."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.metaworld_tasks import CW10, OBS_DIM, cache_path, collect, demonstrations, expert, expert_episode


@pytest.mark.parametrize("task", CW10[:3])
def test_the_scripted_expert_succeeds_on_most_episodes(task):
    episodes = [expert_episode(task, seed=0, episode=e) for e in range(10)]
    assert sum(bool(e["success"]) for e in episodes) >= 8
    for e in episodes:
        assert e["obs"].shape[1] == OBS_DIM and e["act"].shape[1] == 4 and len(e["obs"]) <= 200
        assert np.abs(e["act"]).max() <= 1.0


def test_every_cw10_task_has_an_expert():
    assert len(CW10) == 10 and all(expert(t) is not None for t in CW10)


def test_episodes_are_fixed_by_task_seed_and_index():
    a, b = expert_episode("push-wall-v3", 1, 3), expert_episode("push-wall-v3", 1, 3)
    c = expert_episode("push-wall-v3", 1, 4)
    assert np.array_equal(a["obs"], b["obs"]) and np.array_equal(a["act"], b["act"])
    assert not np.array_equal(a["obs"][0], c["obs"][0])


def test_parallel_workers_give_the_serial_demonstrations():
    serial = collect("faucet-close-v3", 4, seed=2, workers=1)
    parallel = collect("faucet-close-v3", 4, seed=2, workers=2)
    for key in serial:
        assert np.array_equal(serial[key], parallel[key])
    assert serial["starts"][-1] == len(serial["obs"]) == len(serial["act"])


def test_the_cache_is_reused_and_a_damaged_file_rebuilt(tmp_path):
    first = demonstrations("hammer-v3", 3, seed=0, folder=tmp_path)
    path = cache_path(tmp_path, "hammer-v3", 3, 0)
    stamp = path.stat().st_mtime_ns
    again = demonstrations("hammer-v3", 3, seed=0, folder=tmp_path)
    assert path.stat().st_mtime_ns == stamp and np.array_equal(first["obs"], again["obs"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a partial write
    rebuilt = demonstrations("hammer-v3", 3, seed=0, folder=tmp_path)
    assert path.stat().st_mtime_ns != stamp and np.array_equal(first["act"], rebuilt["act"])
    with np.load(path) as f:  # a file whose arrays do not match its checksum is not used either
        arrays = {k: f[k] for k in f.files}
    arrays["act"] = arrays["act"] + 1
    np.savez(path, **arrays)
    assert np.array_equal(demonstrations("hammer-v3", 3, seed=0, folder=tmp_path)["act"], first["act"])
    assert cache_path(tmp_path, "hammer-v3", 4, 0) != path and cache_path(tmp_path, "hammer-v3", 3, 1) != path
