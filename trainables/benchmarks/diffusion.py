"""Class-incremental image generation with a class-conditional diffusion model (000 §4.1).

Shared by `split_digits_diffusion` (laptop scale) and `imagenet32` (paper scale): a subclass only
loads images (pixels in [-1, 1], shape (N, C, H, W)) and labels, and names its evaluation classifier.
Training: diffusers' DDPM noise schedule, ε-prediction, per-sample loss = mean over pixels of the noise
MSE (the scaling the paper's λ assumes). Sampling: DDIM. Both in trainables/ddpm.py. Metrics: ``fd``
(Fréchet distance between generated and held-out images in the features of a classifier trained once on
the training split and cached on disk; the stand-in for FID, which needs Inception weights), ``gen_acc``
(that classifier's accuracy on generated images of the task's classes), ``denoise_loss`` (held-out noise
MSE at fixed timesteps and noise; cheap, so it runs on the dense grid by default).

Dense fd (``dense_metrics: [fd]``): at a dense-grid-only step (not a multiple of eval_every, not a task's
end) fd and gen_acc use ``dense_eval_samples_per_class`` images per class when set; the records keep the
name ``fd``, and the step with these settings (part of the configuration) says which values used fewer
samples. Fewer samples bias fd upward: compare against the end-of-task value only at equal counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Collection, Iterator

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel
from torch import nn

from trainables import ddpm
from trainables.batch import Batch
from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task, check_levels
from trainables.benchmarks.feature_classifier import cached_classifier
from trainables.frechet import frechet_distance
from trainables.params import knob


@dataclass(frozen=True)
class DiffusionConfig(Protocol):
    classes_per_task: int = knob(2, "classes per task", low=1)
    num_tasks: int = knob(5, "number of tasks", low=1)
    channels: list = knob([32, 64], "UNet block widths, one per resolution level")
    layers_per_block: int = knob(1, "ResNet layers per UNet block", low=1)
    attention_levels: list = knob([], "UNet levels (0-based) with self-attention blocks")
    num_train_timesteps: int = knob(1000, "DDPM timesteps", low=2)
    beta_schedule: str = knob("linear", "DDPM β schedule", choices=("linear", "scaled_linear",
                                                                    "squaredcos_cap_v2"))
    ddim_steps: int = knob(20, "DDIM steps when sampling for evaluation (paper: 50)", low=1)
    replay_ddim_steps: int = knob(20, "DDIM steps when the teacher generates replay samples", low=1)
    eval_samples_per_class: int = knob(50, "generated images per class for fd and gen_acc", low=2)
    dense_eval_samples_per_class: int | None = knob(None, "generated images per class for fd and gen_acc at "
                                                    "dense-grid-only steps (default: eval_samples_per_class; "
                                                    "fewer samples bias fd upward)", low=2)
    eval_seed: int = knob(1234, "seed of the evaluation noise (same noise at every evaluation)")
    classifier_epochs: int = knob(30, "epochs of the feature classifier behind fd and gen_acc", low=1)


def norm_groups(channels: list[int]) -> int:
    """GroupNorm groups of the UNet: up to 32, at least 4 channels a group."""
    return max(1, min(32, min(channels) // 4))


class ClassConditionalDiffusion(Benchmark):
    Config = DiffusionConfig
    image_size: ClassVar[int]
    max_classes: ClassVar[int]
    metrics = {"fd": MetricSpec(higher_is_better=False),
               "gen_acc": MetricSpec(higher_is_better=True),
               "denoise_loss": MetricSpec(higher_is_better=False, cheap=True)}
    capabilities = frozenset({"generative_replay", "distillation", "timesteps"})

    def __init__(self, config: DiffusionConfig, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device)
        x_train, y_train, x_test, y_test = self.load()
        self.image_shape = tuple(x_train.shape[1:])
        self.num_classes = config.classes_per_task * config.num_tasks
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        per = config.classes_per_task
        self.tasks = [Task(k + 1, f"classes {k * per}-{k * per + per - 1}",
                           tuple(range(k * per, (k + 1) * per))) for k in range(config.num_tasks)]
        self.scheduler = DDPMScheduler(num_train_timesteps=config.num_train_timesteps,
                                       beta_schedule=config.beta_schedule)
        self._alphas = self.scheduler.alphas_cumprod.to(self.device)
        self._classifier: nn.Module | None = None
        self._real_features: dict[int, np.ndarray] = {}

    @classmethod
    def check(cls, config: DiffusionConfig) -> None:
        super().check(config)
        ch = config.channels
        check_levels(ch, config.attention_levels)
        groups = norm_groups(ch)
        if any(c % groups for c in ch):
            raise ValueError(f"benchmark.channels: {ch!r} is not allowed; allowed: widths divisible by "
                             f"{groups} (the UNet's GroupNorm groups)")
        if cls.image_size % 2 ** (len(ch) - 1):
            raise ValueError(f"benchmark.channels: {len(ch)} levels is not allowed for {cls.image_size}x"
                             f"{cls.image_size} images; allowed: at most {cls.image_size.bit_length()} levels")
        if config.classes_per_task * config.num_tasks > cls.max_classes:
            raise ValueError(f"benchmark.num_tasks: {config.num_tasks} tasks of {config.classes_per_task} classes "
                             f"is not allowed; allowed: classes_per_task * num_tasks <= {cls.max_classes}")

    # -- data, supplied by subclasses -------------------------------------------------------------------
    def load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_train, y_train, x_test, y_test): images float or uint8 (N, C, H, W), labels int64."""
        raise NotImplementedError

    def make_classifier(self) -> nn.Module:
        """The evaluation classifier; ``features(x)`` gives the space fd is measured in."""
        raise NotImplementedError

    def data_fingerprint(self) -> dict:
        """What identifies the data the classifier is trained on (part of its cache key)."""
        raise NotImplementedError

    @staticmethod
    def to_pixels(x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] as float32; uint8 images are rescaled."""
        return x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()

    # -- model and losses -------------------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        c = self.config
        levels = range(len(c.channels))
        down = tuple("AttnDownBlock2D" if i in c.attention_levels else "DownBlock2D" for i in levels)
        up = tuple("AttnUpBlock2D" if i in c.attention_levels else "UpBlock2D" for i in reversed(levels))
        return UNet2DModel(sample_size=self.image_shape[-1], in_channels=self.image_shape[0],
                           out_channels=self.image_shape[0], layers_per_block=c.layers_per_block,
                           block_out_channels=tuple(c.channels), down_block_types=down,
                           up_block_types=up, num_class_embeds=self.num_classes,
                           norm_num_groups=norm_groups(c.channels)).to(self.device)

    @staticmethod
    def _predict(model, labels: torch.Tensor) -> ddpm.Predict:
        return lambda x_t, t: model(x_t, t, class_labels=labels).sample

    def loss(self, model, batch: Batch, generator, t_range=None) -> torch.Tensor:
        return ddpm.denoising_loss(self._predict(model, batch["y"]), self.to_pixels(batch["x"]), self._alphas,
                                   t_range or (0, self.config.num_train_timesteps), generator, self.device)

    def distill_loss(self, student, teacher, batch: Batch, generator) -> torch.Tensor:
        return ddpm.distillation_loss(self._predict(student, batch["y"]), self._predict(teacher, batch["y"]),
                                      self.to_pixels(batch["x"]), self._alphas,
                                      (0, self.config.num_train_timesteps), generator, self.device)

    def sample(self, model: nn.Module, labels: torch.Tensor, steps: int,
               generator: torch.Generator) -> torch.Tensor:
        """DDIM (η = 0) samples for the given class labels, clipped to [-1, 1]."""
        predict = self._predict(model, labels)
        return ddpm.ddim_sample(model, lambda x, t: predict(x, t.expand(len(x))),
                                ddpm.ddim_sampler(self.scheduler, steps), (len(labels), *self.image_shape),
                                generator, self.device)

    def replay(self, teacher, task: Task, n: int, generator) -> Batch:
        labels = torch.tensor(task.classes, device=self.device).repeat(math.ceil(n / len(task.classes)))[:n]
        return {"x": self.sample(teacher, labels, self.config.replay_ddim_steps, generator), "y": labels}

    # -- data access --------------------------------------------------------------------------------------
    def _task_index(self, task: Task, train: bool) -> torch.Tensor:
        y = self.y_train if train else self.y_test
        return torch.nonzero(torch.isin(y, torch.tensor(task.classes)), as_tuple=True)[0]

    def _gather(self, idx: torch.Tensor, train: bool = True) -> Batch:
        x, y = (self.x_train, self.y_train) if train else (self.x_test, self.y_test)
        return {"x": x[idx].to(self.device), "y": y[idx].to(self.device)}

    def train_batches(self, task: Task, generator) -> Iterator[Batch]:
        idx = self._task_index(task, train=True)
        bs = self.config.batch_size
        while True:
            order = idx[torch.randperm(len(idx), generator=generator)]
            for start in range(0, len(order) - bs + 1 if len(order) >= bs else 1, bs):
                yield self._gather(order[start:start + bs])

    def train_sample(self, task: Task, n: int, generator) -> Batch:
        idx = self._task_index(task, train=True)
        reps = math.ceil(n / len(idx))
        order = torch.cat([idx[torch.randperm(len(idx), generator=generator)] for _ in range(reps)])[:n]
        return self._gather(order)

    # -- evaluation ---------------------------------------------------------------------------------------
    def classifier(self) -> nn.Module:
        """The feature classifier, trained once per settings and cached on disk."""
        if self._classifier is None:
            self._classifier = cached_classifier(self)
        return self._classifier

    def _features(self, x: torch.Tensor) -> np.ndarray:
        net = self.classifier()
        out = [net.features(self.to_pixels(x[i:i + 512]).to(self.device)) for i in range(0, len(x), 512)]
        return torch.cat(out).double().cpu().numpy()

    def evaluate(self, model, task: Task, metrics: Collection[str]) -> dict[str, float]:
        return self._evaluate(model, task, metrics, self.config.eval_samples_per_class)

    def evaluate_dense(self, model, task: Task, metrics: Collection[str]) -> dict[str, float]:
        """``evaluate`` with ``dense_eval_samples_per_class`` generated images per class (when set)."""
        c = self.config
        return self._evaluate(model, task, metrics, c.dense_eval_samples_per_class or c.eval_samples_per_class)

    @torch.no_grad()
    def _evaluate(self, model, task: Task, metrics: Collection[str], samples_per_class: int) -> dict[str, float]:
        c = self.config
        generator = torch.Generator().manual_seed(c.eval_seed * 1000 + task.index)
        out: dict[str, float] = {}
        if "denoise_loss" in metrics:
            held = self._gather(self._task_index(task, train=False), train=False)
            was_training = model.training
            model.eval()
            out["denoise_loss"] = float(self.loss(model, held, generator).mean())
            model.train(was_training)
        if "fd" in metrics or "gen_acc" in metrics:
            labels = torch.tensor(task.classes, device=self.device).repeat_interleave(samples_per_class)
            images = self.sample(model, labels, c.ddim_steps, generator)
            if "gen_acc" in metrics:
                pred = torch.cat([self.classifier()(images[i:i + 512]).argmax(1)
                                  for i in range(0, len(images), 512)])
                out["gen_acc"] = float((pred == labels).float().mean())
            if "fd" in metrics:
                if task.index not in self._real_features:
                    held = self._gather(self._task_index(task, train=False), train=False)
                    self._real_features[task.index] = self._features(held["x"])
                out["fd"] = frechet_distance(self._features(images), self._real_features[task.index])
        return out
