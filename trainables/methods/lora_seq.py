"""`lora_seq`: sequential LoRA (004 Tables 2-3, "LoRA"): a fresh LoRA_t per task on the key and value
projections, trained from θ̂_{t−1} without perturbation and folded in whole (θ̂_t = θ̂_{t−1} + LoRA_t, α = 1)."""

from __future__ import annotations

from trainables.merging import LoRAParams
from trainables.methods.perturb_merge import PerturbMerge


class LoRASeq(PerturbMerge):
    name = "lora_seq"
    Params = LoRAParams

    def merge_rule(self) -> str:
        return "sequential"

    def perturbation(self) -> str:
        return "none"
