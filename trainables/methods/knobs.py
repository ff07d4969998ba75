"""Knobs several methods share, as small dataclass mixins of their Params (not a method itself): the
episodic memory size, the query memory of the bilevel methods, and the Fisher estimate of `ewc` and
`trust_region` (with the check of its timestep range)."""

from __future__ import annotations

from dataclasses import dataclass

from trainables.params import knob


@dataclass(frozen=True)
class MemoryKnobs:
    memory_size: int = knob(200, "real samples the episodic memory holds (002: 200 for MNIST permutations)",
                            low=1, smoke=12)


@dataclass(frozen=True)
class QueryMemoryKnobs:
    """A reservoir memory of the stream whose samples join the query of a meta-update."""

    memory_size: int = knob(200, "real samples the reservoir memory holds (002: 200); 0: no memory", low=0,
                            smoke=12)
    replay_batch: int = knob(10, "memory samples added to the query half in each meta-loss", low=0, smoke=2)


@dataclass(frozen=True)
class FisherKnobs:
    lam: float = knob(1000.0, "λ, weight of L_EWC (000 Table 3: 15,000 for ImageNet, rank-1 projection)",
                      low=0)
    rho_estimator: str = knob("projection", "rank-1 ρ: mean (g_nᵀu)² ('projection') or ‖ḡ‖² "
                              "('mean_outer')", choices=("projection", "mean_outer"))
    fisher_samples: int = knob(256, "training samples of a task the Fisher is estimated on (paper: 10,000)",
                               low=1, smoke=8)
    fisher_batch: int = knob(32, "samples per forward pass while estimating the Fisher", low=1, smoke=4)
    fisher_t_min: int = knob(0, "lowest diffusion timestep sampled for the Fisher", low=0)
    fisher_t_max: int | None = knob(None, "one past the highest timestep sampled for the Fisher (default: "
                                    "all timesteps; collinearity is strongest late)", low=1)


def check_fisher_timesteps(name: str, params: FisherKnobs, bench_config) -> None:
    """0 <= fisher_t_min < fisher_t_max <= the benchmark's diffusion timesteps."""
    total = getattr(bench_config, "num_train_timesteps", None)
    if total is None:
        return
    t_max = params.fisher_t_max if params.fisher_t_max is not None else total
    if t_max > total:
        raise ValueError(f"methods.{name}.fisher_t_max: {t_max} is not allowed; allowed: an integer <= {total} "
                         "(the benchmark's num_train_timesteps)")
    if params.fisher_t_min >= t_max:
        raise ValueError(f"methods.{name}.fisher_t_min: {params.fisher_t_min} is not allowed; allowed: an "
                         f"integer < fisher_t_max ({t_max})")
