"""Registered benchmarks (task streams), by name."""

from __future__ import annotations

from core.errors import UnknownName
from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task
from trainables.benchmarks.continual_world import ContinualWorld
from trainables.benchmarks.digits_classification import PermutedDigits, SplitDigits
from trainables.benchmarks.imagenet32 import ImageNet32
from trainables.benchmarks.mnist_streams import ManyPermutations, MnistPermutations, MnistRotations, SplitMnist
from trainables.benchmarks.nf_faces import NFFaces
from trainables.benchmarks.nf_images import NFImages, NFNatural
from trainables.benchmarks.split_digits_diffusion import SplitDigitsDiffusion
from trainables.benchmarks.vit_cil import ViTCIL

BENCHMARKS: dict[str, type[Benchmark]] = {
    b.name: b for b in (SplitDigitsDiffusion, ImageNet32, PermutedDigits, SplitDigits, MnistPermutations,
                        ManyPermutations, MnistRotations, SplitMnist, ContinualWorld, ViTCIL, NFFaces, NFNatural,
                        NFImages)}


def get_benchmark(name: str) -> type[Benchmark]:
    if name not in BENCHMARKS:
        raise UnknownName(f"benchmark.name: unknown benchmark '{name}'; allowed: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


__all__ = ["BENCHMARKS", "Benchmark", "MetricSpec", "Protocol", "Task", "get_benchmark"]
