"""Online digit classification streams of the EMCL paper's protocol (002 §V), on scikit-learn's digits.

- `permuted_digits`: N tasks (default 20), each the 64 pixels under a fixed random permutation (drawn
  from ``permutation_seed``, different for every task), all ten classes, one shared head (002's MNIST
  permutations, at 8×8).
- `split_digits`: 5 tasks of 2 classes; ``scenario: task`` gives one head per task (the task's logits
  only, task-incremental), ``scenario: class`` one shared 10-way head (class-incremental).

The single-pass online protocol (002): each task's training stream is seen once (``epochs: 1``), in
batches of 10; the phase ends when the stream does. The network is 002's 2×100 ReLU MLP. Metric:
``accuracy`` on a fixed held-out split per class (cheap, so it is evaluated on the dense grid too).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Collection, Iterator

import torch
from torch import nn

from trainables.batch import Batch
from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task
from trainables.benchmarks.digits import digits_split
from trainables.params import knob


INITS = ("torch", "xavier_uniform", "kaiming_normal")


@dataclass(frozen=True)
class OnlineClassificationConfig(Protocol):
    """002's online protocol, shared by the digit and the MNIST streams."""

    steps_per_task: int = knob(1_000_000, "at most this many steps per task (the single-pass stream "
                               "usually ends first)", low=1)
    batch_size: int = knob(10, "samples per batch (002: 10)", low=1)
    eval_every: int = knob(50, "evaluate every seen task every this many steps", low=1)
    epochs: int = knob(1, "passes over each task's stream (002's online protocol: 1)", low=1)
    hidden: list = knob([100, 100], "hidden widths of the ReLU MLP (002: 2×100)")
    init: str = knob("torch", "initialisation of the MLP's linear layers: torch (PyTorch's default), "
                     "xavier_uniform (GEM's MLP, also MER's; zero biases) or kaiming_normal (La-MAML's learner; zero "
                     "biases)", choices=INITS)


@dataclass(frozen=True)
class DigitsSplitKnobs:
    held_out_fraction: float = knob(0.2, "fraction of each class held out for evaluation", low=0.05, high=0.9)
    split_seed: int = knob(0, "seed of the train / held-out split (fixed across run seeds)")


@dataclass(frozen=True)
class DigitsClassificationConfig(OnlineClassificationConfig, DigitsSplitKnobs):
    pass


class DigitsClassification(Benchmark):
    """Shared data, MLP, loss and accuracy of the two digit streams."""

    Config = DigitsClassificationConfig
    metrics = {"accuracy": MetricSpec(higher_is_better=True, cheap=True)}
    capabilities = frozenset({"linear_head"})  # the MLP ends in one Linear layer (OML adapts only it)

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if not all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 100_000 for h in config.hidden):
            raise ValueError(f"benchmark.hidden: {config.hidden!r} is not allowed; allowed: a list of widths, "
                             "integers from 1 to 100000 (an empty list is a linear model)")

    def __init__(self, config, device="cpu") -> None:
        super().__init__(config, device)
        self.x_train, self.y_train, self.x_test, self.y_test = self.load_data()
        self.tasks = self.make_tasks()

    def load_data(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_train (N, D) float, y_train, x_test, y_test): scikit-learn's 8×8 digits in [0, 1], a fixed
        stratified held-out split (the MNIST streams override it)."""
        images, labels, mask = digits_split(self.config.held_out_fraction, self.config.split_seed)
        x = torch.tensor(images.reshape(len(labels), 64) / 16.0, dtype=torch.float32)
        y = torch.tensor(labels, dtype=torch.int64)
        return x[~mask], y[~mask], x[mask], y[mask]

    # -- what the two streams define ----------------------------------------------------------------------
    def make_tasks(self) -> list[Task]:
        raise NotImplementedError

    def task_data(self, task: Task, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of the task's training or held-out data."""
        raise NotImplementedError

    def num_outputs(self) -> int:
        return 10

    def logit_mask(self, task_index: torch.Tensor) -> torch.Tensor | None:
        """(B, outputs) True where a logit belongs to the sample's head; None: one shared head."""
        return None

    # -- the benchmark interface --------------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        layers, width = [], self.x_train.shape[1]
        for h in self.config.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        model = nn.Sequential(*layers, nn.Linear(width, self.num_outputs()))
        if self.config.init != "torch":
            fill = nn.init.xavier_uniform_ if self.config.init == "xavier_uniform" else nn.init.kaiming_normal_
            for layer in model:
                if isinstance(layer, nn.Linear):
                    fill(layer.weight)
                    nn.init.zeros_(layer.bias)
        return model.to(self.device)

    def _batch(self, task: Task, x: torch.Tensor, y: torch.Tensor) -> Batch:
        return {"x": x.to(self.device), "y": y.to(self.device),
                "task": torch.full((len(y),), task.index, dtype=torch.int64, device=self.device)}

    def train_batches(self, task: Task, generator) -> Iterator[Batch]:
        x, y = self.task_data(task, train=True)
        bs = self.config.batch_size
        for _ in range(self.config.epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(order), bs):
                idx = order[start:start + bs]
                yield self._batch(task, x[idx], y[idx])

    def train_sample(self, task: Task, n: int, generator) -> Batch:
        x, y = self.task_data(task, train=True)
        reps = math.ceil(n / len(y))
        idx = torch.cat([torch.randperm(len(y), generator=generator) for _ in range(reps)])[:n]
        return self._batch(task, x[idx], y[idx])

    def logits(self, model, batch: Batch) -> torch.Tensor:
        out = model(batch["x"])
        mask = self.logit_mask(batch["task"])
        return out if mask is None else out.masked_fill(~mask, float("-inf"))

    def loss(self, model, batch: Batch, generator, t_range=None) -> torch.Tensor:
        return nn.functional.cross_entropy(self.logits(model, batch), batch["y"], reduction="none")

    def distill_loss(self, student, teacher, batch: Batch, generator) -> torch.Tensor:
        """KL(teacher ‖ student) of the softmax outputs on the batch's heads."""
        with torch.no_grad():
            target = torch.log_softmax(self.logits(teacher, batch), dim=1)
        pred = torch.log_softmax(self.logits(student, batch), dim=1)
        return nn.functional.kl_div(pred, target, log_target=True, reduction="none").nan_to_num(0.0).sum(1)

    @torch.no_grad()
    def evaluate(self, model, task: Task, metrics: Collection[str]) -> dict[str, float]:
        x, y = self.task_data(task, train=False)
        batch = self._batch(task, x, y)
        accuracy = (self.logits(model, batch).argmax(1) == batch["y"]).float().mean().item()
        return {"accuracy": accuracy} if "accuracy" in metrics else {}


@dataclass(frozen=True)
class PermutationKnobs:
    num_tasks: int = knob(20, "number of permutations (002: 20; many permutations: 100)", low=1)
    permutation_seed: int | None = knob(None, "seed of the tasks' pixel permutations (default: the run's "
                                        "seed, so every seed sees its own permutations)")


@dataclass(frozen=True)
class PermutedDigitsConfig(DigitsClassificationConfig, PermutationKnobs):
    pass


class PermutedDigits(DigitsClassification):
    name = "permuted_digits"
    Config = PermutedDigitsConfig
    presets = {
        # 002 Table II, MNIST permutations: 20 tasks, single pass, batch 10 (the methods' rates are
        # method settings; see the permuted_digits space).
        "paper": {"num_tasks": 20},
        "tiny": {"num_tasks": 3, "eval_every": 20, "dense_until": 4, "held_out_fraction": 0.5},
    }

    def make_tasks(self) -> list[Task]:
        self.permutations = self.draw_permutations(self.config.permutation_seed or 0)
        return [Task(k + 1, f"permutation {k + 1}", tuple(range(10))) for k in range(self.config.num_tasks)]

    def draw_permutations(self, seed: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return [torch.randperm(self.x_train.shape[1], generator=g) for _ in range(self.config.num_tasks)]

    def for_seed(self, seed: int) -> "PermutedDigits":
        if self.config.permutation_seed is not None:
            return self
        other = copy.copy(self)  # shares the data; only the permutations differ
        other.permutations = self.draw_permutations(seed)
        return other

    def task_data(self, task, train):
        x, y = (self.x_train, self.y_train) if train else (self.x_test, self.y_test)
        return x[:, self.permutations[task.index - 1]], y


@dataclass(frozen=True)
class SplitKnobs:
    num_tasks: int = knob(5, "number of tasks", low=1)
    classes_per_task: int = knob(2, "classes per task", low=1)
    scenario: str = knob("task", "task: one head per task (task-incremental); class: one shared head "
                         "(class-incremental)", choices=("task", "class"))


@dataclass(frozen=True)
class SplitDigitsConfig(DigitsClassificationConfig, SplitKnobs):
    pass


class SplitDigits(DigitsClassification):
    name = "split_digits"
    Config = SplitDigitsConfig
    presets = {"tiny": {"num_tasks": 2, "eval_every": 20, "dense_until": 4}}

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.num_tasks * config.classes_per_task > 10:
            raise ValueError(f"benchmark.num_tasks: {config.num_tasks} tasks of {config.classes_per_task} classes "
                             "is not allowed; allowed: classes_per_task * num_tasks <= 10")

    def make_tasks(self) -> list[Task]:
        per = self.config.classes_per_task
        return [Task(k + 1, f"classes {k * per}-{k * per + per - 1}", tuple(range(k * per, (k + 1) * per)))
                for k in range(self.config.num_tasks)]

    def task_data(self, task, train):
        x, y = (self.x_train, self.y_train) if train else (self.x_test, self.y_test)
        keep = torch.isin(y, torch.tensor(task.classes))
        return x[keep], y[keep]

    def logit_mask(self, task_index):
        if self.config.scenario == "class":
            return None
        per = self.config.classes_per_task
        owner = torch.arange(10, device=task_index.device) // per + 1  # the task each class belongs to
        return owner.unsqueeze(0) == task_index.unsqueeze(1)
