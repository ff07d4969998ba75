"""`lora_merge`: LoRA-M, 004 Table 4's "merging only" ablation: `perturb_merge` without the perturbation
(every batch at θ̂_{t−1} + LoRA_t), merged with Eq. 8's closed-form α (clipped to [0, 1] by default)."""

from __future__ import annotations

from dataclasses import dataclass

from trainables.merging import LoRAParams, MergeKnobs
from trainables.methods.perturb_merge import PerturbMerge


@dataclass(frozen=True)
class LoRAMergeParams(LoRAParams, MergeKnobs):
    """The LoRA optimizer settings and the closed-form merge's settings (no ε, no p₀)."""


class LoRAMerge(PerturbMerge):
    name = "lora_merge"
    Params = LoRAMergeParams

    def merge_rule(self) -> str:
        return "closed_form"

    def perturbation(self) -> str:
        return "none"
