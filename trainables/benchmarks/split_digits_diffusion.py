"""`split_digits_diffusion`: class-incremental generation of scikit-learn's bundled 8×8 digits.

The laptop-scale stand-in for 000's ImageNet-500 experiment (same code as `imagenet32`): 5 tasks of 2
classes (0-1, 2-3, ...), a fixed stratified held-out split per class, pixels rescaled from [0, 16] to
[-1, 1]. fd is measured in the 32-d penultimate features of an MLP trained on the training split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainables.benchmarks.diffusion import ClassConditionalDiffusion, DiffusionConfig
from trainables.benchmarks.digits import digits_split
from trainables.params import knob


@dataclass(frozen=True)
class DigitsDiffusionConfig(DiffusionConfig):
    steps_per_task: int = knob(300, "optimizer steps per task", low=1)
    eval_every: int = knob(100, "evaluate every seen task on every metric every this many steps", low=1)
    channels: list = knob([16, 32], "UNet block widths, one per resolution level")
    beta_schedule: str = knob("squaredcos_cap_v2", "DDPM β schedule (cosine learns 8×8 images in fewer "
                              "steps than the paper's linear one)",
                              choices=("linear", "scaled_linear", "squaredcos_cap_v2"))
    held_out_fraction: float = knob(0.2, "fraction of each class held out for evaluation", low=0.05,
                                    high=0.9)
    split_seed: int = knob(0, "seed of the train / held-out split (fixed across run seeds)")


class DigitsClassifier(nn.Module):
    """64 → 128 → 32 → 10 ReLU MLP; ``features`` is the 32-d layer."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU())
        self.head = nn.Linear(32, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class SplitDigitsDiffusion(ClassConditionalDiffusion):
    name = "split_digits_diffusion"
    Config = DigitsDiffusionConfig
    image_size = 8
    max_classes = 10
    presets = {
        # Sized for `quickstart`: 4 methods x 2 seeds within 15 minutes on 2 CPU cores.
        "laptop": {},
        # For tests: seconds per run.
        "tiny": {"steps_per_task": 6, "batch_size": 16, "eval_every": 3, "dense_until": 2, "num_tasks": 2,
                 "channels": [16, 32], "ddim_steps": 3, "replay_ddim_steps": 2, "eval_samples_per_class": 12},
    }

    def load(self):
        images, labels, test = digits_split(self.config.held_out_fraction, self.config.split_seed)
        x = torch.tensor(images / 8.0 - 1.0, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(labels, dtype=torch.int64)
        return x[~test], y[~test], x[test], y[test]

    def make_classifier(self) -> nn.Module:
        return DigitsClassifier(self.num_classes)

    def data_fingerprint(self) -> dict:
        return {"source": "sklearn.load_digits", "held_out_fraction": self.config.held_out_fraction,
                "split_seed": self.config.split_seed}
