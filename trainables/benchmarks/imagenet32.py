"""`imagenet32`: class-incremental generation on downsampled ImageNet 32×32 (000 §4.1, Table 3).

The paper's ImageNet-500: the first 500 class indices in order, 10 tasks × 50 classes, pixels in
(−1, 1), evaluated on the official validation images. Data come from a user-given folder in the
published format of Chrabaszcz et al. (2017): ``train_data_batch_1`` … ``train_data_batch_10`` and
``val_data``, each a pickled dict (or the same names with ``.npz``) holding ``data`` (N × 3072 uint8,
channel-major: 1024 red, 1024 green, 1024 blue values) and ``labels`` (1-based class indices).
Nothing is downloaded.

fd is measured in the features of a small CNN trained once on the training split and cached; it is not
Inception FID, so the paper's absolute FID numbers do not transfer: compare methods with it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainables.benchmarks.diffusion import ClassConditionalDiffusion, DiffusionConfig
from trainables.params import knob


@dataclass(frozen=True)
class ImageNet32Config(DiffusionConfig):
    data_dir: str = knob("", "folder holding train_data_batch_* and val_data (pickle or .npz)")
    classes_per_task: int = knob(50, "classes per task", low=1)
    num_tasks: int = knob(10, "number of tasks", low=1)
    channels: list = knob([128, 256, 256, 256], "UNet block widths, one per resolution level")
    layers_per_block: int = knob(2, "ResNet layers per UNet block", low=1)
    attention_levels: list = knob([1, 2, 3], "UNet levels (0-based) with self-attention (diffusers' "
                                  "default layout)")
    batch_size: int = knob(128, "samples of the current task per batch", low=1)
    ddim_steps: int = knob(50, "DDIM steps when sampling for evaluation", low=1)
    replay_ddim_steps: int = knob(50, "DDIM steps when the teacher generates replay samples", low=1)
    classifier_epochs: int = knob(5, "epochs of the feature classifier behind fd and gen_acc", low=1)


class ImageNetClassifier(nn.Module):
    """A small CNN (3 conv stages, 32/64/128 channels); ``features`` is its 128-d pooled output."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        def stage(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*stage(3, 32), *stage(32, 64), *stage(64, 128),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels 0-based) from one file of the published format."""
    if path.suffix == ".npz":
        with np.load(path) as f:
            data, labels = f["data"], f["labels"]
    else:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        data, labels = d["data"], d["labels"]
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be N x 3072 uint8, got shape {data.shape}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64) - 1


def _find(folder: Path, stem: str) -> Path | None:
    for p in (folder / stem, folder / f"{stem}.npz", folder / f"{stem}.pkl"):
        if p.exists():
            return p
    return None


class ImageNet32(ClassConditionalDiffusion):
    name = "imagenet32"
    Config = ImageNet32Config
    image_size = 32
    max_classes = 1000
    presets = {
        # 000 Table 3: batch 128, Adam 2e-4, 100 epochs per task (65,000 images / 128 = 508 steps an
        # epoch), 50 DDIM steps. λ, replay buffer and ratio are method settings (the `imagenet32_paper`
        # space sets them).
        "paper": {"steps_per_task": 50_800, "eval_every": 5_080, "dense_until": 64},
    }

    @classmethod
    def check(cls, config: ImageNet32Config) -> None:
        super().check(config)
        if not config.data_dir:
            raise ValueError("benchmark.data_dir: required for imagenet32; the folder holding "
                             "train_data_batch_1..10 and val_data (pickle or .npz)")
        folder = Path(config.data_dir).expanduser()
        for stem in ("train_data_batch_1", "val_data"):
            if _find(folder, stem) is None:
                raise ValueError(f"benchmark.data_dir: no {stem} (or {stem}.npz) in {folder}")

    def load(self):
        c = self.config
        self.check(c)
        folder = Path(c.data_dir).expanduser()
        keep_below = c.classes_per_task * c.num_tasks
        parts = []
        for i in range(1, 11):
            path = _find(folder, f"train_data_batch_{i}")
            if path is None:
                continue
            x, y = read_batch_file(path)
            parts.append((x[y < keep_below], y[y < keep_below]))
        xv, yv = read_batch_file(_find(folder, "val_data"))
        x_train = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        y_train = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        keep = yv < keep_below
        return x_train, y_train, torch.from_numpy(xv[keep]), torch.from_numpy(yv[keep])

    def make_classifier(self) -> nn.Module:
        return ImageNetClassifier(self.num_classes)

    def data_fingerprint(self) -> dict:
        folder = Path(self.config.data_dir).expanduser().resolve()
        files = sorted(p for p in folder.iterdir() if p.name.startswith(("train_data_batch", "val_data")))
        return {"folder": str(folder), "files": [(p.name, p.stat().st_size) for p in files]}
