"""Across-seed summaries (METHODS.md §5, "Across seeds"): a re-export of core.stats, the one module every
statistic of the project comes from. Kept so ``analysis.aggregate.mean_se`` and friends stay importable;
new code calls core.stats directly."""

from __future__ import annotations

from core.stats import (REDUCTIONS, bootstrap_interval, iqm, iqm_interval, mean_se, reduce_tasks, sd, seed_summary,
                        t_interval)

__all__ = ["REDUCTIONS", "bootstrap_interval", "iqm", "iqm_interval", "mean_se", "reduce_tasks", "sd", "seed_summary",
           "t_interval"]
