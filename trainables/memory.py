"""Episodic memories of real samples for the methods that replay them (ER, A-GEM, GEM, MER, La-MAML, and the
bilevel methods on benchmarks without generative replay)."""

from __future__ import annotations

import torch

from trainables.batch import Batch, size, take


class Reservoir:
    """Reservoir sampling (Vitter's algorithm R): after n samples have been offered, each of them is in
    the memory with probability capacity / n."""

    def __init__(self, capacity: int, generator: torch.Generator) -> None:
        self.capacity, self.generator = capacity, generator
        self.data: Batch | None = None
        self.seen = 0
        self.filled = 0

    def add(self, batch: Batch) -> None:
        for i in range(size(batch)):
            sample = take(batch, slice(i, i + 1))
            if self.data is None:
                self.data = {k: v.new_zeros((self.capacity, *v.shape[1:])) for k, v in sample.items()}
            if self.filled < self.capacity:
                slot = self.filled
                self.filled += 1
            else:
                slot = int(torch.randint(self.seen + 1, (1,), generator=self.generator))
            if slot < self.capacity:
                for k, v in sample.items():
                    self.data[k][slot] = v[0]
            self.seen += 1

    def __len__(self) -> int:
        return self.filled

    def sample(self, n: int) -> Batch:
        """n samples drawn uniformly with replacement from the memory."""
        idx = torch.randint(self.filled, (n,), generator=self.generator)
        return take(self.contents(), idx.to(next(iter(self.data.values())).device))

    def contents(self) -> Batch:
        return take(self.data, slice(0, self.filled))
