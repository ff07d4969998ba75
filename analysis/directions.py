"""Which way each metric is better: an explicit --mode, else the sweep's metadata, else its name.

The direction travels with the records' metadata (a sweep's parent run logs ``direction.<metric>`` =
max|min); analysis never imports the benchmark registry. The well-known names below cover every metric
a registered benchmark declares (tests/analysis/test_directions.py checks them against the registry).
"""

from __future__ import annotations

from typing import Mapping

from core.errors import InputError

LOWER = {"fd", "fid", "loss", "mse", "denoise_loss", "nll", "error"}
HIGHER = {"acc", "accuracy", "gen_acc", "success", "success_rate", "psnr", "ssim"}
PARAM_PREFIX = "direction."  # a sweep's parent-run params: direction.<metric> = max|min


def by_name(metric: str) -> bool | None:
    """The direction of a well-known metric name (True: higher is better), None when unknown."""
    if metric in LOWER or metric.endswith("_loss"):
        return False
    if metric in HIGHER or metric.startswith("acc") or metric.endswith("_acc"):
        return True
    return None


def higher_is_better(metric: str, directions: Mapping[str, bool] | None = None, mode: str | None = None) -> bool:
    """``mode`` (min|max) wins; then ``directions`` ({metric: higher is better}, from the sweep's
    metadata); then well-known names. ValueError when none of them knows ``metric``."""
    if mode is not None:
        if mode not in ("min", "max"):
            raise InputError(f"--mode: '{mode}' is not allowed; allowed: min, max")
        return mode == "max"
    if isinstance(directions, str):
        raise TypeError("higher_is_better: directions must be a {metric: bool} mapping (from the sweep's "
                        f"metadata), not the benchmark name {directions!r}")
    if directions and metric in directions:
        return bool(directions[metric])
    known = by_name(metric)
    if known is None:
        raise InputError(f"--metric: the direction of '{metric}' is unknown (not in the sweep's metadata, not "
                         "a well-known name); pass --mode min or --mode max")
    return known


def from_params(params: Mapping[str, str]) -> dict[str, bool]:
    """{metric: higher is better} from params ``direction.<metric>`` = max|min (none: {})."""
    out = {}
    for key, value in params.items():
        if not key.startswith(PARAM_PREFIX):
            continue
        metric, value = key[len(PARAM_PREFIX):], str(value).strip().lower()
        if value not in ("max", "min"):
            raise InputError(f"param {key}: '{value}' is not allowed; allowed: max, min")
        out[metric] = value == "max"
    return out
