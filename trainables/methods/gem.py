"""`gem`: Gradient Episodic Memory (Lopez-Paz & Ranzato 2017, Eq. 6-7 and 10-11; a baseline of 002).

Memory: as in `agem`, an equal share memory_size // (number of tasks) of each finished task's stream, chosen
by reservoir sampling over that task's stream (the GEM code keeps the task's most recent samples in a ring
buffer instead; both hold the same number of samples per task).

Update on a batch of task t: g is the gradient of the batch loss, g_i (the rows of G) the gradient of the
loss on task i's whole memory, one per finished task i < t. If every gᵀg_i >= 0 the step uses g (Eq. 6).
Otherwise g is replaced by the solution of the primal QP (Eq. 10) min ½‖g̃ − g‖² s.t. G g̃ >= 0, computed
through its dual (Eq. 11): v* = argmin_{v >= 0} ½ vᵀ(G Gᵀ)v + gᵀGᵀv, g̃ = Gᵀv* + g.

memory_strength: GEM's paper adds "a small constant γ >= 0 to v*" to favour backward transfer; its code
(facebookresearch/GradientEpisodicMemory `project2cone2`, the GEM code 002 adopts) implements it as the
dual bound v >= γ (the `h = margin` of its quadprog call), γ = memory_strength (0.5: project2cone2's
default margin and La-MAML's GEM runs). We do the same: v* = argmin_{v >= γ}, so every memory gradient
enters g̃ with a weight of at least γ while the constraints G g̃ >= 0 still hold exactly (KKT: G g̃ = ∇ of
the dual objective >= 0). γ = 0 gives the paper's Eq. 11. The GEM code also adds 1e-3·I to G Gᵀ; that
ridge breaks G g̃ >= 0 by up to 1e-3·v_i, so we leave it out and instead solve the possibly singular QP
exactly (``nonnegative_qp``: eigen-factor G Gᵀ = AᵀA and call scipy's NNLS on A, the Cholesky
reformulation extended to rank-deficient G Gᵀ); quadprog is not used. The gradient-norm clipping of the
La-MAML copy of GEM is not applied (the paper has none).

``reset_optimizer`` is false by default: the GEM code builds one plain SGD for the whole stream, which holds
no state (true matters only with ``optimizer: adam``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls

from trainables.methods.agem import AGEM
from trainables.methods.base import OnlineParams
from trainables.methods.knobs import MemoryKnobs
from trainables.params import knob
from trainables.tensors import parameters_of, set_flat_grad


@dataclass(frozen=True)
class GEMParams(OnlineParams, MemoryKnobs):
    memory_strength: float = knob(0.5, "γ: lower bound on the dual variables v (the GEM code's margin: 0.5 in "
                                  "project2cone2 and La-MAML's runs; 0: the paper's Eq. 11)", low=0)


def nonnegative_qp(P: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin_{w >= 0} ½ wᵀPw + cᵀw for a symmetric positive semi-definite P (t×t) and c in the range of P.

    With P = U diag(λ) Uᵀ and A = diag(√λ) Uᵀ over the nonzero λ (AᵀA = P), b = −diag(1/√λ) Uᵀc gives
    ‖Aw − b‖² = wᵀPw + 2cᵀw + const, so the QP is the non-negative least-squares problem
    min_{w >= 0} ‖Aw − b‖², which scipy's NNLS solves exactly (active-set method).
    """
    P = 0.5 * (P + P.T)
    lam, U = np.linalg.eigh(P)
    keep = lam > max(lam.max(), 0.0) * 1e-12
    if not keep.any():
        return np.zeros(len(c))
    root = np.sqrt(lam[keep])
    A = root[:, None] * U[:, keep].T
    b = -(U[:, keep].T @ c) / root
    w, _ = nnls(A, b, maxiter=100 * len(c))
    return w


def project(g: torch.Tensor, G: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """GEM's projected gradient g̃ = g + Gᵀv*, v* = argmin_{v >= margin} ½ vᵀ(G Gᵀ)v + gᵀGᵀv (G: rows g_i).

    Solved in float64 with v = margin + w, w >= 0: ½ wᵀPw + (P·margin·1 + G g)ᵀw + const, P = G Gᵀ.
    """
    G64, g64 = G.double(), g.double()
    P = (G64 @ G64.T).cpu().numpy()
    shift = np.full(len(P), float(margin))
    c = P @ shift + (G64 @ g64).cpu().numpy()
    v = torch.as_tensor(shift + nonnegative_qp(P, c), dtype=torch.float64, device=g.device)
    return (g64 + G64.T @ v).to(g.dtype)


class GEM(AGEM):
    """Shares A-GEM's per-task reservoir and its gradient helper; keeps one memory per finished task."""

    name = "gem"
    Params = GEMParams

    def __init__(self, params, model, bench, generator):
        super().__init__(params, model, bench, generator)
        self.memories: list[dict] = []  # one batch per finished task

    def update(self, batch):
        g, loss = self.gradient(batch)
        out = {"loss": loss, "projected": 0.0, "violations": 0.0}
        if self.memories:
            G = torch.stack([self.gradient(m)[0] for m in self.memories])
            dots = G @ g
            out["violations"] = float((dots < 0).sum())
            if (dots < 0).any():
                g = project(g, G, self.params.memory_strength)
                out["projected"] = 1.0
        self.optimizer.zero_grad(set_to_none=True)
        set_flat_grad(parameters_of(self.model), g)
        self.optimizer.step()
        self.current.add(batch)
        return out

    def end_task(self, task):
        self.memories.append(self.current.contents())
        return {}
