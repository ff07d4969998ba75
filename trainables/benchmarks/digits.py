"""scikit-learn's bundled 8×8 digits with a fixed stratified held-out split (shared by the digit benchmarks)."""

from __future__ import annotations

import numpy as np
import torch


def digits_split(held_out_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(images (N, 8, 8) in [0, 16], labels (N,), held-out mask (N,)): ``held_out_fraction`` of every
    class, chosen by ``split_seed`` (the same for every run seed)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(split_seed)
    test = np.zeros(len(digits.target), dtype=bool)
    for cls in range(10):
        idx = np.flatnonzero(digits.target == cls)
        test[rng.choice(idx, int(round(held_out_fraction * len(idx))), replace=False)] = True
    return digits.images, digits.target, torch.from_numpy(test)
