"""The task-stream interface every benchmark implements."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Collection, Iterator

import torch
from torch import nn

from trainables.batch import Batch
from trainables.params import knob


CAPABILITIES = {
    "generative_replay": "replay(teacher, task, n): old-task samples produced by a frozen model",
    "distillation": "distill_loss(student, teacher, batch): per-sample loss onto a frozen model",
    "timesteps": "loss(..., t_range): a diffusion loss restricted to a timestep range",
    "linear_head": "make_model() ends in one nn.Linear layer (a network body plus a linear head)",
    "neural_field": "make_field(width): a coordinate network over the stream's signals of that width; "
                    "config.module_width: a parameter-matched module of a modular method (003)",
    "meta_episodes": "meta_episode(generator, n): n held-apart meta-training signals, each region's (context, "
                     "query) batches, for episodic meta-training (003)",
    "lora_vit": "make_model() is a transformers ViT: attention projections named in lora_targets (key, value) "
                "for LoRA, one nn.Linear head head_name over all classes (a task's rows: its classes), and "
                "train_size(task) counts a task's training samples",
}


def check_capabilities(owner: str, names: frozenset[str]) -> None:
    """A method's ``requires`` or a benchmark's ``capabilities`` may only name known capabilities, so a
    typo fails when the class is defined instead of silently skipping the method everywhere."""
    unknown = sorted(set(names) - set(CAPABILITIES))
    if unknown:
        raise TypeError(f"{owner}: unknown capability {', '.join(unknown)}; allowed: {', '.join(CAPABILITIES)}")


@dataclass(frozen=True)
class MetricSpec:
    """How to read a metric: its direction, and whether it is cheap enough for the dense grid."""

    higher_is_better: bool
    cheap: bool = False


@dataclass(frozen=True)
class Task:
    index: int  # numbered from 1
    name: str
    classes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Protocol:
    """The training protocol every benchmark config carries (the loop reads it)."""

    steps_per_task: int = knob(100, "optimizer steps per task", low=1)
    batch_size: int = knob(32, "samples of the current task per batch", low=1)
    eval_every: int = knob(50, "evaluate every seen task on every metric every this many steps", low=1)
    dense_until: int = knob(16, "also evaluate dense_metrics 1, 2, 4, ... steps into each task up to this step "
                            "(0: off); steps-to-re-converge is only as fine as this grid", low=0)
    dense_metrics: list | None = knob(None, "metrics evaluated on the dense grid (default: the benchmark's cheap "
                                      "ones; e.g. [fd]: an expensive metric, on the tasks of dense_tasks)")
    dense_tasks: list | None = knob(None, "tasks (numbered from 1) evaluated on the dense grid once seen "
                                    "(default: every seen task; e.g. [1] for 000 Table 2)")
    cache_dir: str = knob("", "where trained evaluation networks and generated data are cached (default: "
                          "$CLSWEEP_CACHE_DIR or ~/.cache/clsweep)")
    precision: str = knob("fp32", "training steps under autocast: fp32 (off) or bf16; evaluation stays fp32 "
                          "(trainables.acceleration)", choices=("fp32", "bf16"))
    tf32: bool = knob(False, "TF32 matmuls and cuDNN convolutions in the training steps (CUDA only)")
    channels_last: bool = knob(False, "convolution weights stored channels-last (the image UNet; for GPUs)")


def cache_dir(config: Protocol) -> Path:
    """The cache folder of a benchmark config: its setting, else $CLSWEEP_CACHE_DIR, else ~/.cache/clsweep."""
    path = config.cache_dir or os.environ.get("CLSWEEP_CACHE_DIR") or Path.home() / ".cache" / "clsweep"
    return Path(path).expanduser().resolve()


def randn(shape: tuple, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Gaussian noise drawn by a CPU generator, then moved: the same numbers on every device."""
    return torch.randn(shape, generator=generator).to(device)


def check_levels(channels, attention_levels) -> None:
    """A U-Net's ``channels`` (one positive width per level) and its ``attention_levels`` (0-based, within
    them); raises ValueError naming the setting."""
    if not channels or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels):
        raise ValueError(f"benchmark.channels: {channels!r} is not allowed; allowed: a non-empty list of positive "
                         "integers")
    if not all(isinstance(i, int) and 0 <= i < len(channels) for i in attention_levels):
        raise ValueError(f"benchmark.attention_levels: {attention_levels!r} is not allowed; allowed: levels 0 to "
                         f"{len(channels) - 1}")


def _short(value) -> str:
    """repr(value), cut to 80 characters for an error line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Benchmark:
    """An ordered stream of tasks, the network that learns it, its losses and its evaluation.

    Methods reach data only through ``loss``, ``train_sample``, ``replay`` and ``distill_loss``;
    ``capabilities`` says which of the optional ones exist (e.g. ``generative_replay``).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    presets: ClassVar[dict[str, dict]] = {}
    metrics: ClassVar[dict[str, MetricSpec]] = {}
    capabilities: ClassVar[frozenset[str]] = frozenset()
    results_note: ClassVar[str] = ""  # a caveat printed under every results table of this benchmark
    # how the loop runs the stream: "continual" (trainables.loop.ContinualRun: one model through the tasks)
    # or "step_grid" (trainables.step_grid.StepGridRun: (meta-)initialise once, then the stream from that
    # initialisation for every S = 1, 2, 4, ..., steps_per_task steps per task; 003's protocol)
    protocol: ClassVar[str] = "continual"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        check_capabilities(f"benchmark {cls.__name__}", cls.capabilities)

    def __init__(self, config: Protocol, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.tasks: list[Task] = []

    @classmethod
    def check(cls, config: Protocol) -> None:
        """Raise ValueError naming the setting if ``config`` cannot work (e.g. data not where it says);
        runs when a space is validated, before any work. Checks the dense grid's settings; a subclass that
        overrides it calls ``super().check(config)``."""
        metrics = config.dense_metrics
        if metrics is not None and (not all(isinstance(m, str) for m in metrics) or set(metrics) - set(cls.metrics)):
            raise ValueError(f"benchmark.dense_metrics: {_short(metrics)} is not allowed; allowed: a list of metrics "
                             f"of {cls.name} ({', '.join(cls.metrics)})")
        tasks, n = config.dense_tasks, getattr(config, "num_tasks", None)
        if tasks is not None and not all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t
                                         and (n is None or t <= n) for t in tasks):
            raise ValueError(f"benchmark.dense_tasks: {_short(tasks)} is not allowed; allowed: a list of task "
                             f"numbers from 1{f' to {n} (num_tasks)' if n is not None else ''}")

    def dense_grid_metrics(self) -> tuple[str, ...]:
        """The metrics of the dense grid: the ``dense_metrics`` setting, else the cheap metrics."""
        names = self.config.dense_metrics
        if names is None:
            return tuple(m for m, spec in self.metrics.items() if spec.cheap)
        return tuple(m for m in self.metrics if m in names)  # the benchmark's order, each once

    @classmethod
    def data_source(cls, config: Protocol) -> str:
        """One line naming the data a run of ``config`` reads where a benchmark can read more than one
        (e.g. the embedded 5,000 MNIST images or the user's full set); "" where there is one. It goes into
        the records (column ``data``), the manifest and every results title."""
        return ""

    @classmethod
    def prepare(cls, config: Protocol) -> None:
        """Fill the on-disk data caches the runs will read (e.g. generated demonstrations); the orchestrator
        calls it once before trials start, so concurrent trials do not all generate the same data."""

    def for_seed(self, seed: int) -> "Benchmark":
        """The task stream a run with this seed sees; the same for every seed unless a benchmark draws
        its tasks per seed (e.g. the pixel permutations of permuted_digits)."""
        return self

    def make_model(self) -> nn.Module:
        raise NotImplementedError

    def train_batches(self, task: Task, generator: torch.Generator) -> Iterator[Batch]:
        """Batches of the task's training data, reshuffled every epoch, endless unless single-pass."""
        raise NotImplementedError

    def train_sample(self, task: Task, n: int, generator: torch.Generator) -> Batch:
        """n training samples of the task (without replacement while n <= the task's size)."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator,
             t_range: tuple[int, int] | None = None) -> torch.Tensor:
        """Per-sample training loss, shape (B,)."""
        raise NotImplementedError

    def replay(self, teacher: nn.Module, task: Task, n: int, generator: torch.Generator) -> Batch:
        """n samples of an old task produced by a frozen teacher (generative replay)."""
        raise NotImplementedError(f"{self.name} has no generative replay")

    def distill_loss(self, student: nn.Module, teacher: nn.Module, batch: Batch,
                     generator: torch.Generator) -> torch.Tensor:
        """Per-sample distillation loss of the student onto the frozen teacher, shape (B,)."""
        raise NotImplementedError(f"{self.name} has no distillation loss")

    def evaluate(self, model: nn.Module, task: Task, metrics: Collection[str]) -> dict[str, float]:
        """The named metrics of ``model`` on the held-out data of ``task``; deterministic."""
        raise NotImplementedError

    def eval_view(self, model: nn.Module, seen: int) -> nn.Module:
        """The model as evaluated once tasks 1..seen have been trained; by default itself. A
        class-incremental benchmark returns a view answering only over the seen tasks' classes."""
        return model

    def evaluate_dense(self, model: nn.Module, task: Task, metrics: Collection[str]) -> dict[str, float]:
        """``evaluate`` at a dense-grid-only step; a benchmark whose expensive metric has a cheaper dense
        setting (e.g. fewer generated samples) overrides it. Deterministic, like ``evaluate``."""
        return self.evaluate(model, task, metrics)
