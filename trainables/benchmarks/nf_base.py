"""Meta-continual learning of neural fields (003 §3, §5.2): what the image benchmarks share.

A signal (an image) is a field over global coordinates in [−1, 1]² (pixel centres; x along the width, y
along the height); it is split into ``num_tasks`` vertical strips (003: 180×180 into four 180×45), region
j = task j, seen in order, an earlier region never coming back. Signals are split into meta-training
signals (for the methods that meta-learn, through ``meta_episode``) and meta-test signals: the stream's
fields. The stream trains one field per meta-test signal at once (``trainables.siren``: batched fields), so
a batch holds coordinates ``x`` (B, 2) and every test signal's value there, ``y`` (B, F, C).

- ``loss``: per coordinate, the squared error averaged over channels and summed over the F fields (each
  field's gradient is its own; optimizers act per element, so F fields train as F separate runs).
- ``evaluate`` (a region) and ``evaluate_signal`` (the whole signal, every region answered by its own
  model): ``mse`` per signal averaged over channels and pixels, ``psnr`` = 10 log10(1 / mse) per signal
  (values in [0, 1], peak 1; mse floored at 1e-10, so PSNR <= 100 dB), both averaged over the test signals.
- ``meta_episode(generator, n)``: n meta-training signals drawn without replacement, per region a context
  batch (``batch_size`` coordinates drawn without replacement, or the whole region: the same rule as a
  test-time step; shared by the n signals) and a query batch (every coordinate of the region).
- The protocol is the S grid (``protocol = "step_grid"``, ``trainables.step_grid``): ``steps_per_task`` is
  S_max; every S in 1, 2, 4, ..., S_max runs the stream from the same (meta-)initialisation.
  ``eval_every`` and the dense grid do not apply (each S is evaluated once per region).
Choices 003 leaves open, all ours: coordinates of pixel centres in [−1, 1]; strips along the width; the
context/query split above; the test signals share one initialisation (a seed's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Collection, Iterator

import numpy as np
import torch

from trainables.batch import Batch
from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task
from trainables.params import knob
from trainables.siren import Siren

EVAL_CHUNK = 4096  # coordinates per forward pass at evaluation


@dataclass(frozen=True)
class NeuralFieldConfig(Protocol):
    steps_per_task: int = knob(256, "S_max: test-time steps per region; the grid is S = 1, 2, 4, ..., S_max "
                               "(003: 4096)", low=1)
    batch_size: int = knob(0, "coordinates per step (context size), drawn from the region without "
                           "replacement; 0: the whole region", low=0)
    num_tasks: int = knob(4, "regions (vertical strips) of a signal, seen in order (003: 4)", low=1)
    width: int = knob(64, "hidden width of the single network of non-modular methods", low=1)
    module_width: int = knob(32, "hidden width of each of the num_tasks modules of a modular method "
                             "(parameter-matched to width)", low=1)
    layers: int = knob(5, "linear layers of the SIREN (003: 5)", low=2)
    omega0: float = knob(30.0, "ω₀ of the first sine layer (Sitzmann et al.: 30)", low=0, low_open=True)
    hidden_omega0: float = knob(30.0, "ω of the hidden sine layers (Sitzmann et al.: 30)", low=0, low_open=True)
    meta_steps: int = knob(100, "outer (meta) steps of the methods that meta-learn an initialisation "
                           "(003: until 500K)", low=1)
    meta_batch: int = knob(4, "meta-training signals per outer step", low=1)
    test_signals: int = knob(0, "meta-test signals evaluated (the stream's fields); 0: all held out", low=0)
    split_seed: int = knob(0, "seed of the meta-train / meta-test split (fixed across run seeds)")


class NeuralFieldBenchmark(Benchmark):
    """Signals as (N, H, W, C) arrays in [0, 1]; subclasses set ``load()`` -> (meta-train, meta-test)."""

    metrics = {"psnr": MetricSpec(higher_is_better=True, cheap=True),
               "mse": MetricSpec(higher_is_better=False, cheap=True)}
    signal_metrics: ClassVar[dict[str, MetricSpec]] = {
        "psnr_signal": MetricSpec(higher_is_better=True), "mse_signal": MetricSpec(higher_is_better=False)}
    capabilities = frozenset({"linear_head", "neural_field", "meta_episodes"})
    protocol = "step_grid"

    @classmethod
    def check(cls, config) -> None:
        super().check(config)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(meta-train signals, meta-test signals), each (N, H, W, C) float in [0, 1]."""
        raise NotImplementedError

    def __init__(self, config, device="cpu") -> None:
        super().__init__(config, device)
        train, test = self.load()
        if config.test_signals:
            test = test[:config.test_signals]
        n, h, w, c = test.shape
        if w % config.num_tasks:
            raise ValueError(f"benchmark.num_tasks: {config.num_tasks} is not allowed; allowed: a divisor of the "
                             f"signal width {w}")
        self.shape = (h, w, c)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        self.coords = torch.stack([xs, ys], -1).reshape(h * w, 2).to(self.device)
        strip = torch.arange(w).repeat(h) // (w // config.num_tasks)  # region of each pixel, 0-based
        self.regions = [torch.nonzero(strip == j).squeeze(1).to(self.device) for j in range(config.num_tasks)]
        self.meta_train = torch.tensor(train, dtype=torch.float32).reshape(len(train), h * w, c).to(self.device)
        self.test = torch.tensor(test, dtype=torch.float32).reshape(n, h * w, c).to(self.device)
        self.tasks = [Task(j + 1, f"strip {j + 1} of {config.num_tasks}") for j in range(config.num_tasks)]

    # -- networks ------------------------------------------------------------------------------------------
    def make_field(self, width: int, fields: int | None = None) -> Siren:
        c = self.config
        return Siren(fields or len(self.test), 2, self.shape[2], width, c.layers, c.omega0,
                     c.hidden_omega0).to(self.device)

    def make_model(self) -> Siren:
        return self.make_field(self.config.width)

    def region_of(self, x: torch.Tensor) -> torch.Tensor:
        """The 0-based region of each coordinate (B, 2): its pixel column's strip."""
        w = self.shape[1]
        column = torch.round((x[:, 0] + 1) / 2 * (w - 1)).long().clamp(0, w - 1)
        return column // (w // self.config.num_tasks)

    # -- data ----------------------------------------------------------------------------------------------
    def _batch(self, signals: torch.Tensor, idx: torch.Tensor) -> Batch:
        return {"x": self.coords[idx], "y": signals[:, idx].transpose(0, 1)}

    def _context(self, task_index: int, generator) -> torch.Tensor:
        region = self.regions[task_index - 1]
        b = self.config.batch_size
        if b == 0 or b >= len(region):
            return region
        return region[torch.randperm(len(region), generator=generator)[:b].to(self.device)]

    def train_batches(self, task: Task, generator) -> Iterator[Batch]:
        while True:
            yield self._batch(self.test, self._context(task.index, generator))

    def train_sample(self, task: Task, n: int, generator) -> Batch:
        region = self.regions[task.index - 1]
        reps = -(-n // len(region))
        order = torch.cat([torch.randperm(len(region), generator=generator) for _ in range(reps)])[:n]
        return self._batch(self.test, region[order.to(self.device)])

    def meta_episode(self, generator, n: int) -> list[tuple[Batch, Batch]]:
        """n meta-training signals: per region (in order), its (context, query) batches, y (B, n, C)."""
        pick = torch.randperm(len(self.meta_train), generator=generator)[:n].to(self.device)
        signals = self.meta_train[pick]
        return [(self._batch(signals, self._context(t.index, generator)), self._batch(signals, self.regions[t.index - 1]))
                for t in self.tasks]

    def loss(self, model, batch: Batch, generator=None, t_range=None) -> torch.Tensor:
        return ((model(batch["x"]) - batch["y"]) ** 2).mean(-1).sum(-1)

    # -- evaluation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def region_sse(self, model, task_index: int) -> torch.Tensor:
        """Per test signal, the squared error summed over the region's pixels, averaged over channels (F,)."""
        region = self.regions[task_index - 1]
        total = torch.zeros(len(self.test), device=self.device)
        for start in range(0, len(region), EVAL_CHUNK):
            batch = self._batch(self.test, region[start:start + EVAL_CHUNK])
            total += ((model(batch["x"]) - batch["y"]) ** 2).mean(-1).sum(0)
        return total

    @staticmethod
    def scores(mse: torch.Tensor, prefix: str = "") -> dict[str, float]:
        """Mean over signals of the per-signal mse and psnr (peak 1; mse floored at 1e-10)."""
        psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
        return {f"psnr{prefix}": float(psnr.mean()), f"mse{prefix}": float(mse.mean())}

    def evaluate(self, model, task: Task, metrics: Collection[str]) -> dict[str, float]:
        mse = self.region_sse(model, task.index) / len(self.regions[task.index - 1])
        return {k: v for k, v in self.scores(mse).items() if k in metrics}

    def evaluate_signal(self, models: dict[int, torch.nn.Module]) -> dict[str, float]:
        """Whole-signal psnr_signal and mse_signal, region j answered by ``models[j]`` (003's routing)."""
        sse = sum(self.region_sse(models[t.index], t.index) for t in self.tasks)
        return self.scores(sse / len(self.coords), "_signal")


def pad_to(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w, C) zero-padded to (N, H, W, C): ⌊(H − h)/2⌋ rows above, the rest below (same for columns)."""
    n, h, w, c = images.shape
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    out = np.zeros((n, size[0], size[1], c), dtype=images.dtype)
    out[:, top:top + h, left:left + w] = images
    return out


def split_indices(n: int, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(meta-train, meta-test) indices of n signals: a fixed permutation of ``seed``, the first ``held_out``
    held out; both sorted."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[held_out:]), np.sort(order[:held_out])
