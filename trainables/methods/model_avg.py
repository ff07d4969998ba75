"""`model_avg`: LoRA with model averaging (004 Table 3, "w/ Model Averaging"): θ̂_t = θ̂_{t−1} + LoRA_t/t,
i.e. θ̂_t = (1 − 1/t)·θ̂_{t−1} + (1/t)·θ*_t, α_t = 1/t, no perturbation.

004 does not define its model averaging precisely. This is the running mean of the task optima θ*_i in the
convex-combination form of its Eq. 3 (each θ*_i trained from the previous average), with equal weight for
every task; averaging the task vectors of independently trained adapters would be another reading.
"""

from __future__ import annotations

from trainables.merging import LoRAParams
from trainables.methods.perturb_merge import PerturbMerge


class ModelAvg(PerturbMerge):
    name = "model_avg"
    Params = LoRAParams

    def merge_rule(self) -> str:
        return "average"

    def perturbation(self) -> str:
        return "none"
