"""Fréchet distance between two sets of feature vectors (the formula of FID, Heusel et al. 2017)."""

from __future__ import annotations

import numpy as np


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}) for rows of features a and b.

    Tr((Σ_a Σ_b)^{1/2}) is computed as the trace of the symmetric square root of Σ_a^{1/2} Σ_b Σ_a^{1/2},
    which has the same eigenvalues and stays real for positive semi-definite covariances.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu = a.mean(0) - b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(mu @ mu + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)
