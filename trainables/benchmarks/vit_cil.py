"""`vit_cil`: class-incremental image classification with a pretrained ViT (004 Perturb-and-Merge).

N tasks of an equal share of the classes (task k: classes (k−1)·m .. k·m−1, in label order), a pretrained
``transformers`` ViT (separate q/k/v projections, which LoRA targets by name) and one linear head over all
classes, a block of rows per task. No task id at test time: after tasks 1..k, a sample's prediction is
the argmax over the classes of tasks 1..k (``eval_view``); metric ``accuracy`` on each seen task's
held-out data, so the final average is 004's Acc and the table's AAA is 004's AAA.

Training loss (``train_head``; 004 is silent, it follows InfLoRA): ``task`` (default) is the cross-entropy
over the classes of the sample's own task (InfLoRA masks the other classes' logits while training), so a
task trains only its own head block; ``seen`` is over the classes of every task up to the latest one in
the batch (a replayed sample competes with the current classes).

Data: ``digits`` (laptop, default): the rendered digits of ``digit_renditions`` on a small ViT pretrained
on the upright half (``vit_backbone``, cached); ``imagenet_r`` and ``cifar100`` (paper, presets): the
loaders of ``image_sets`` and a ViT-B/16 checkpoint folder (``checkpoint``), images at the checkpoint's
size. Batches are {x, y, task}. Paper protocol: batch 256, 10 epochs per task (``steps_per_task`` of the
presets ≈ 10 epochs).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Collection, Iterator

import torch
from torch import nn

from trainables.batch import Batch
from trainables.benchmarks import image_sets, vit_backbone
from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task, cache_dir
from trainables.benchmarks.digit_renditions import RENDITIONS, rendered_split
from trainables.params import knob

DATASET_CLASSES = {"digits": 10, "imagenet_r": 200, "cifar100": 100}  # imagenet_r: its class folders


@dataclass(frozen=True)
class ViTCILConfig(Protocol):
    steps_per_task: int = knob(80, "optimizer steps per task (the digits stream: ~5 epochs at batch 32)", low=1)
    batch_size: int = knob(32, "samples per batch (004: 256)", low=1)
    eval_every: int = knob(1000, "evaluate every seen task every this many steps", low=1)
    dense_until: int = knob(0, "dense evaluation grid up to this step (0: off)", low=0)
    num_tasks: int = knob(5, "tasks, each an equal share of the classes (004: ImageNet-R 5/10/20, CIFAR 10)",
                          low=1)
    dataset: str = knob("digits", "digits: rendered digits on a small pretrained ViT (laptop); imagenet_r, "
                        "cifar100: from data_root, on the checkpoint's ViT", choices=tuple(DATASET_CLASSES))
    data_root: str = knob("", "imagenet_r: the folder of class folders; cifar100: cifar-100-python/")
    checkpoint: str = knob("", "a transformers ViT checkpoint folder (004: ViT-B/16, IN-21K + IN-1K); '': the "
                           "small ViT pretrained on upright digits, cached")
    train_head: str = knob("task", "training loss over the classes of the sample's task (InfLoRA, 004) or of "
                           "every task up to the batch's latest", choices=("task", "seen"))
    held_out_fraction: float = knob(0.3, "fraction of each class held out (digits: by source image; imagenet_r: "
                                    "004/InfLoRA use 0.2)", low=0.05, high=0.9)
    split_seed: int = knob(0, "seed of the source/continual halves and of the train/held-out split")
    renditions: list = knob(["rotated", "blurred", "thickened", "shrunk"], "digits: the rendition styles of the "
                            f"continual half ({', '.join(RENDITIONS)})")
    image_size: int = knob(16, "digits: side of the upsampled images", low=4)
    patch_size: int = knob(4, "digits ViT: patch side", low=1)
    vit_hidden: int = knob(64, "digits ViT: hidden width", low=1)
    vit_layers: int = knob(4, "digits ViT: transformer layers", low=1)
    vit_heads: int = knob(4, "digits ViT: attention heads", low=1)
    vit_mlp: int = knob(128, "digits ViT: MLP width", low=1)
    pretrain_epochs: int = knob(60, "digits ViT: pretraining epochs on the upright source half", low=1)
    pretrain_lr: float = knob(1e-3, "digits ViT: pretraining AdamW rate", low=0, low_open=True)
    eval_batch: int = knob(256, "held-out images per forward pass at evaluation", low=1)


class SeenClasses(nn.Module):
    """A classifier answering only over the classes seen so far: other logits are −inf."""

    def __init__(self, model: nn.Module, seen: torch.Tensor) -> None:
        super().__init__()
        self.model, self.seen = model, seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(x)).masked_fill(~self.seen, float("-inf"))


def logits_of(out) -> torch.Tensor:
    """Logits of a transformers output (``.logits``) or of a plain tensor."""
    return out.logits if hasattr(out, "logits") else out


class ViTCIL(Benchmark):
    name = "vit_cil"
    Config = ViTCILConfig
    metrics = {"accuracy": MetricSpec(higher_is_better=True, cheap=True)}
    capabilities = frozenset({"lora_vit", "linear_head"})
    lora_targets = ("k_proj", "v_proj")  # 004: LoRA on the key and value projections
    head_name = "classifier"
    presets = {
        "tiny": {"num_tasks": 5, "steps_per_task": 4, "eval_every": 2, "batch_size": 8, "image_size": 8,
                 "vit_hidden": 16, "vit_layers": 1, "vit_heads": 2, "vit_mlp": 16, "pretrain_epochs": 1,
                 "renditions": ["inverted", "rotated"]},
        "imagenet_r": {"dataset": "imagenet_r", "num_tasks": 10, "batch_size": 256, "steps_per_task": 100,
                       "held_out_fraction": 0.2, "eval_batch": 128},
        "imagenet_r_5": {"dataset": "imagenet_r", "num_tasks": 5, "batch_size": 256, "steps_per_task": 190,
                         "held_out_fraction": 0.2, "eval_batch": 128},
        "imagenet_r_20": {"dataset": "imagenet_r", "num_tasks": 20, "batch_size": 256, "steps_per_task": 50,
                          "held_out_fraction": 0.2, "eval_batch": 128},
        "cifar100": {"dataset": "cifar100", "num_tasks": 10, "batch_size": 256, "steps_per_task": 200,
                     "eval_batch": 128},
    }

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.dataset != "digits" and (not config.checkpoint or not config.data_root):
            raise ValueError(f"benchmark.{'checkpoint' if not config.checkpoint else 'data_root'}: '' is not allowed "
                             f"for dataset {config.dataset}; allowed: the folder (nothing is downloaded)")
        total = cls.class_count(config)
        if total % config.num_tasks:
            raise ValueError(f"benchmark.num_tasks: {config.num_tasks} is not allowed; allowed: a divisor of the "
                             f"{total} classes of {config.dataset}")
        if config.dataset == "digits":
            if not config.renditions or set(config.renditions) - set(RENDITIONS):
                raise ValueError(f"benchmark.renditions: {config.renditions!r} is not allowed; allowed: a non-empty "
                                 f"list of {', '.join(RENDITIONS)}")
            if config.image_size % config.patch_size or config.vit_hidden % config.vit_heads:
                raise ValueError(f"benchmark.patch_size: {config.patch_size} is not allowed; allowed: a divisor of "
                                 f"image_size ({config.image_size}), with vit_heads dividing vit_hidden")

    @staticmethod
    def class_count(config) -> int:
        """Classes of the stream: 10 digits, 100 CIFAR classes, or ImageNet-R's class folders (200)."""
        if config.dataset == "imagenet_r":
            return len(image_sets.imagenet_r_files(config.data_root)[0])
        return DATASET_CLASSES[config.dataset]

    @classmethod
    def prepare(cls, config) -> None:
        """Pretrain and cache the laptop ViT once, before trials start; write ImageNet-R's held-out file list
        (the recorded split) next to the cache as imagenet_r-split-<digest>.txt."""
        vit_backbone.ensure_pretrained(config)
        if config.dataset == "imagenet_r":
            image_sets.record_split(config.data_root, config.held_out_fraction, config.split_seed,
                                    cache_dir(config))

    def __init__(self, config, device="cpu") -> None:
        super().__init__(config, device)
        self.num_classes = self.class_count(config)
        self.backbone = vit_backbone.load_backbone(vit_backbone.ensure_pretrained(config), self.num_classes)
        self.train_set, self.test_set, self.split_digest = self._data(config)
        per = self.num_classes // config.num_tasks
        self.tasks = [Task(k + 1, f"classes {k * per}-{(k + 1) * per - 1}", tuple(range(k * per, (k + 1) * per)))
                      for k in range(config.num_tasks)]
        self.owner = torch.arange(self.num_classes) // per + 1  # the task of every class
        self._index = {}

    def _data(self, c):
        if c.dataset == "digits":
            x, y, xt, yt = rendered_split(c.image_size, list(c.renditions), c.held_out_fraction, c.split_seed)
            return image_sets.TensorImages(x, y, c.image_size), image_sets.TensorImages(xt, yt, c.image_size), ""
        size = self.backbone.config.image_size
        if c.dataset == "cifar100":
            return (*image_sets.cifar100(c.data_root, size), "")
        train, test, _, digest = image_sets.imagenet_r(c.data_root, size, c.held_out_fraction, c.split_seed)
        return train, test, digest

    def index(self, task: Task, train: bool) -> torch.Tensor:
        """Positions of the task's samples in the training or held-out set."""
        key = (task.index, train)
        if key not in self._index:
            labels = (self.train_set if train else self.test_set).labels
            self._index[key] = torch.nonzero(self.owner[labels] == task.index).flatten()
        return self._index[key]

    def train_size(self, task: Task) -> int:
        return len(self.index(task, train=True))

    def _batch(self, data, task: Task, idx: torch.Tensor) -> Batch:
        return {"x": data.load(idx).to(self.device), "y": data.labels[idx].to(self.device),
                "task": torch.full((len(idx),), task.index, dtype=torch.int64, device=self.device)}

    def make_model(self) -> nn.Module:
        model = copy.deepcopy(self.backbone)
        model.classifier = nn.Linear(model.config.hidden_size, self.num_classes)  # seeded by the run
        return model.to(self.device)

    def train_batches(self, task: Task, generator) -> Iterator[Batch]:
        idx, bs = self.index(task, train=True), self.config.batch_size
        while True:
            order = idx[torch.randperm(len(idx), generator=generator)]
            for start in range(0, len(order), bs):
                yield self._batch(self.train_set, task, order[start:start + bs])

    def train_sample(self, task: Task, n: int, generator) -> Batch:
        idx = self.index(task, train=True)
        reps = -(-n // len(idx))
        order = torch.cat([torch.randperm(len(idx), generator=generator) for _ in range(reps)])[:n]
        return self._batch(self.train_set, task, idx[order])

    def logits(self, model, batch: Batch) -> torch.Tensor:
        """The training logits: classes outside ``train_head``'s set are −inf."""
        owner = self.owner.to(batch["y"].device)
        task = batch["task"].unsqueeze(1)
        keep = owner.unsqueeze(0) == task if self.config.train_head == "task" else owner.unsqueeze(0) <= task.max()
        return logits_of(model(batch["x"])).masked_fill(~keep, float("-inf"))

    def loss(self, model, batch: Batch, generator, t_range=None) -> torch.Tensor:
        return nn.functional.cross_entropy(self.logits(model, batch), batch["y"], reduction="none")

    def distill_loss(self, student, teacher, batch: Batch, generator) -> torch.Tensor:
        """KL(teacher ‖ student) of the softmax outputs over the batch's training classes."""
        with torch.no_grad():
            target = torch.log_softmax(self.logits(teacher, batch), dim=1)
        pred = torch.log_softmax(self.logits(student, batch), dim=1)
        return nn.functional.kl_div(pred, target, log_target=True, reduction="none").nan_to_num(0.0).sum(1)

    def eval_view(self, model: nn.Module, seen: int) -> nn.Module:
        """The model answering over the classes of tasks 1..seen only (class-incremental, no task id)."""
        return SeenClasses(model, (self.owner <= seen).to(self.device))

    @torch.no_grad()
    def evaluate(self, model, task: Task, metrics: Collection[str]) -> dict[str, float]:
        if "accuracy" not in metrics:
            return {}
        idx, correct = self.index(task, train=False), 0
        for start in range(0, len(idx), self.config.eval_batch):
            batch = self._batch(self.test_set, task, idx[start:start + self.config.eval_batch])
            correct += (logits_of(model(batch["x"])).argmax(1) == batch["y"]).sum().item()
        return {"accuracy": correct / len(idx)}
