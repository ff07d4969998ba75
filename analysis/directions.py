"""Which way each metric is better: from the benchmark that produced it, else from its name."""

from __future__ import annotations

LOWER = {"fd", "fid", "loss", "mse", "denoise_loss", "nll", "error"}
HIGHER = {"acc", "accuracy", "gen_acc", "success", "success_rate", "psnr", "ssim"}


def higher_is_better(metric: str, benchmark: str | None = None, mode: str | None = None) -> bool:
    """``mode`` (min|max) wins; then the benchmark's own metric spec; then well-known names."""
    if mode is not None:
        if mode not in ("min", "max"):
            raise ValueError(f"--mode: '{mode}' is not allowed; allowed: min, max")
        return mode == "max"
    if benchmark:
        from trainables.benchmarks import BENCHMARKS

        cls = BENCHMARKS.get(benchmark)
        if cls is not None and metric in cls.metrics:
            return cls.metrics[metric].higher_is_better
    if metric in LOWER or metric.endswith("_loss"):
        return False
    if metric in HIGHER or metric.startswith("acc") or metric.endswith("_acc"):
        return True
    raise ValueError(f"--metric: the direction of '{metric}' is unknown (benchmark "
                     f"{benchmark or 'not recorded'}); pass --mode min or --mode max")
