"""Expert demonstrations as training windows for a diffusion policy: each step's observation history
(H steps) and the action sequence (S steps) that starts with it, clamped at the episode's ends."""

from __future__ import annotations

import numpy as np
import torch

from trainables import metaworld_tasks as mw
from trainables.batch import Batch


def window_index(starts: np.ndarray, horizon: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """For every step t of every episode (episode i spans starts[i]..starts[i+1]-1): the row indices of the
    observations t-H+1..t, shape (N, H), and of the actions t-H+1..t-H+S, shape (N, S), clamped to the
    episode, into the packed arrays."""
    obs_rows, act_rows = [], []
    for begin, end in zip(starts[:-1], starts[1:]):
        t = np.arange(begin, end)[:, None]
        obs_rows.append(np.clip(t + np.arange(-horizon + 1, 1), begin, end - 1))
        act_rows.append(np.clip(t + np.arange(-horizon + 1, seq_len - horizon + 1), begin, end - 1))
    return np.concatenate(obs_rows), np.concatenate(act_rows)


class TaskData:
    """The training (or held-out) windows of one task, as tensors."""

    def __init__(self, arrays: dict[str, np.ndarray], config, keep_failed: bool) -> None:
        """``config``: the continual_world settings (obs_horizon, seq_len, normalize_obs)."""
        starts, success = arrays["starts"], arrays["success"]
        keep = np.ones_like(success) if keep_failed else success
        if not keep.any():
            raise ValueError("continual_world: no successful expert episode to train on; raise demos_per_task "
                             "or set successful_demos_only: false")
        kept = [np.arange(starts[i], starts[i + 1]) for i in np.flatnonzero(keep)]
        rows = np.concatenate(kept)
        lengths = np.array([len(k) for k in kept])
        obs_idx, act_idx = window_index(np.concatenate([[0], np.cumsum(lengths)]), config.obs_horizon,
                                        config.seq_len)
        obs = arrays["obs"][rows]
        self.obs = torch.from_numpy(mw.normalize_observations(obs) if config.normalize_obs else obs)
        self.act = torch.from_numpy(arrays["act"][rows])
        self.obs_idx, self.act_idx = torch.from_numpy(obs_idx), torch.from_numpy(act_idx)

    def __len__(self) -> int:
        return len(self.obs_idx)

    def windows(self, idx: torch.Tensor) -> Batch:
        return {"obs": self.obs[self.obs_idx[idx]], "act": self.act[self.act_idx[idx]]}
