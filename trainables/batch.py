"""Batches are dicts of tensors that share their first dimension; methods handle them only through these
helpers, never through a benchmark's data layout."""

from __future__ import annotations

import torch

Batch = dict[str, torch.Tensor]


def size(batch: Batch) -> int:
    return len(next(iter(batch.values())))


def take(batch: Batch, index: torch.Tensor | slice) -> Batch:
    return {k: v[index] for k, v in batch.items()}


def cat(*batches: Batch) -> Batch:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def halves(batch: Batch) -> tuple[Batch, Batch]:
    """Support and query halves of a batch (the first ⌈B/2⌉ samples and the rest)."""
    n = (size(batch) + 1) // 2
    return take(batch, slice(0, n)), take(batch, slice(n, None))


def to(batch: Batch, device: torch.device | str) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}
