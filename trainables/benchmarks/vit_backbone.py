"""The pretrained ViT backbone of the class-incremental ViT benchmark (004): a checkpoint folder the user
brings (paper scale: ViT-B/16, loaded offline with ``from_pretrained``), or, at laptop scale, a small ViT
pretrained once on the upright source half of scikit-learn's digits and cached on disk as a checkpoint
folder of the same format, keyed by every setting that changes its weights. Both are then loaded the same
way; the pretraining head is replaced by a fresh head over the continual stream's classes (as 004 replaces
ViT-B/16's ImageNet head).

Attention runs in transformers' ``eager`` implementation (plain matmul-softmax): per-sample gradients
(``torch.func.vmap``) and forward-mode AD work through it on every device.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from trainables.benchmarks.base import cache_dir

PRETRAIN_VERSION = 1  # bump when the pretraining recipe changes


@contextlib.contextmanager
def quiet():
    """transformers' progress bars off while loading or saving a checkpoint, restored afterwards."""
    from transformers.utils import logging

    was_off = logging.is_progress_bar_enabled() is False
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_off:
            logging.enable_progress_bar()


def small_vit_config(c):
    """The laptop ViT's ``ViTConfig`` from the benchmark settings (one input channel, separate q/k/v)."""
    from transformers import ViTConfig

    return ViTConfig(hidden_size=c.vit_hidden, num_hidden_layers=c.vit_layers, num_attention_heads=c.vit_heads,
                     intermediate_size=c.vit_mlp, image_size=c.image_size, patch_size=c.patch_size, num_channels=1,
                     num_labels=10, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def pretrained_path(c) -> Path:
    """The backbone's checkpoint folder: ``checkpoint`` if set, else the cached laptop ViT of these settings."""
    if c.checkpoint:
        return Path(c.checkpoint).expanduser()
    import transformers

    key = {"config": small_vit_config(c).to_dict(), "epochs": c.pretrain_epochs, "lr": c.pretrain_lr,
           "split_seed": c.split_seed, "version": PRETRAIN_VERSION, "torch": torch.__version__,
           "transformers": transformers.__version__}
    key["config"].pop("transformers_version", None)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_dir(c) / f"vit_cil-digits-backbone-{digest}"


def ensure_pretrained(c) -> Path:
    """The backbone's folder, pretraining and caching the laptop ViT first when it is not there yet."""
    path = pretrained_path(c)
    if c.checkpoint or (path / "config.json").is_file():
        return path
    model = pretrain_on_digits(c)
    tmp = path.with_name(path.name + f".tmp{id(model)}")
    with quiet():
        model.save_pretrained(tmp)
    try:
        tmp.rename(path)
    except OSError:  # another process finished first: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def pretrain_on_digits(c) -> nn.Module:
    """The laptop ViT trained on the upright source half of digits (10 classes): AdamW, batch 64, cosine
    rate from ``pretrain_lr``, ``pretrain_epochs`` epochs, seed 0 (the same weights for every run seed)."""
    from transformers import ViTForImageClassification

    from trainables.benchmarks.digit_renditions import digit_halves
    from trainables.benchmarks.image_sets import normalise

    x, y, _, _ = digit_halves(c.image_size, c.split_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ViTForImageClassification(small_vit_config(c))
    model.config._attn_implementation = "eager"
    generator = torch.Generator().manual_seed(0)
    steps = c.pretrain_epochs * -(-len(y) // 64)
    opt = torch.optim.AdamW(model.parameters(), lr=c.pretrain_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    model.train()
    with torch.enable_grad():
        for _ in range(c.pretrain_epochs):
            order = torch.randperm(len(y), generator=generator)
            for i in range(0, len(y), 64):
                idx = order[i:i + 64]
                loss = nn.functional.cross_entropy(model(normalise(x[idx])).logits, y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    return model.eval()


def load_backbone(path: Path, num_classes: int) -> nn.Module:
    """The checkpoint's ViT (offline, eager attention) with its head replaced by an untrained
    ``nn.Linear(hidden, num_classes)``; ValueError naming the setting when the folder is not a checkpoint."""
    from transformers import ViTForImageClassification

    if not (Path(path) / "config.json").is_file():
        raise ValueError(f"benchmark.checkpoint: {str(path)!r} is not allowed; allowed: a folder saved with "
                         "save_pretrained (config.json and the weights) of a transformers ViT")
    with quiet():
        model = ViTForImageClassification.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    model.classifier = nn.Linear(model.config.hidden_size, num_classes)
    model.config.num_labels = num_classes
    return model.eval()
