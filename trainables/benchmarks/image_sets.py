"""Image data of the class-incremental ViT benchmark, paper scale (004) and laptop scale, behind one small
interface: ``labels`` (N,) and ``load(index) -> (n, C, S, S)`` float images normalised as the ViT expects.

- ``TensorImages``: images held in memory (the rendered digits; CIFAR-100's uint8 arrays), resized on load.
- ``FileImages``: image files read (PIL, RGB) and resized on load (ImageNet-R: 30,000 images).
- ``imagenet_r``: ImageNet-R from its class folders (``root/<class>/<image>``), classes in sorted folder
  order; a deterministic per-class train/held-out split (sorted file names permuted by ``split_seed``,
  the first ``held_out_fraction`` held out; 004 and InfLoRA use 80/20 and do not publish theirs).
- ``cifar100``: CIFAR-100 from its python pickles (``root/train`` and ``root/test``, keys ``data`` and
  ``fine_labels``), the official train/test split, resized from 32 to ``image_size`` (bilinear).

Normalisation: (x − 0.5) / 0.5 per channel, the one of Google's ViT-B/16 checkpoints. No torchvision.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images to the ViT's input range [-1, 1]."""
    return (x - 0.5) / 0.5


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(n, C, h, w) float images to (n, C, size, size), bilinear (antialiased when shrinking)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < max(x.shape[-2:]))


class TensorImages:
    """Images in memory: ``images`` (N, C, h, w), uint8 in [0, 255] or float in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int) -> None:
        self.images, self.labels, self.size = images, labels, size

    def load(self, index: torch.Tensor) -> torch.Tensor:
        x = self.images[index]
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        return normalise(resize(x, self.size).clamp(0, 1))


class FileImages:
    """Image files, read and resized when a batch needs them."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, size: int) -> None:
        self.paths, self.labels, self.size = paths, labels, size

    def load(self, index: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        out = []
        for i in index.tolist():
            with Image.open(self.paths[i]) as img:
                img = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
                out.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1))
        return normalise(torch.stack(out).float() / 255)


def imagenet_r_files(root: Path) -> tuple[list[str], list[list[Path]]]:
    """(class names in sorted order, each class's image files in sorted order); ValueError naming the
    folder when it holds no class folders with images."""
    root = Path(root).expanduser()
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    files = [sorted(f for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes]
    if not classes or not all(files):
        raise ValueError(f"benchmark.data_root: {str(root)!r} is not allowed; allowed: a folder of class folders "
                         "of images (ImageNet-R's imagenet-r/), each with at least one image")
    return classes, files


def imagenet_r(root: Path, size: int, held_out_fraction: float, split_seed: int
               ) -> tuple[FileImages, FileImages, list[str], str]:
    """(train, held-out, class names, split digest): the deterministic per-class split of ImageNet-R; the
    digest (sha1 of the held-out file list) identifies the split in the records' settings."""
    classes, files = imagenet_r_files(root)
    rng = np.random.default_rng(split_seed)
    train, test = ([], []), ([], [])
    for label, paths in enumerate(files):
        order = rng.permutation(len(paths))
        n_test = min(len(paths) - 1, max(1, round(held_out_fraction * len(paths)))) if len(paths) > 1 else 0
        for rank, i in enumerate(order):
            part = test if rank < n_test else train
            part[0].append(paths[i])
            part[1].append(label)
    digest = hashlib.sha1("\n".join(str(p.relative_to(Path(root).expanduser())) for p in test[0]).encode())
    return (FileImages(train[0], torch.tensor(train[1]), size), FileImages(test[0], torch.tensor(test[1]), size),
            classes, digest.hexdigest()[:16])


def record_split(root, held_out_fraction: float, split_seed: int, folder: Path) -> Path:
    """Write the held-out files of ImageNet-R's split (relative paths, one a line) to
    ``folder/imagenet_r-split-<digest>.txt``; the digest names the split."""
    _, test, _, digest = imagenet_r(root, 1, held_out_fraction, split_seed)
    path = Path(folder) / f"imagenet_r-split-{digest}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    base = Path(root).expanduser()
    path.write_text("".join(f"{p.relative_to(base)}\n" for p in test.paths))
    return path


def _cifar_part(path: Path, size: int) -> TensorImages:
    with open(path, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    images = torch.from_numpy(np.asarray(data["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
    return TensorImages(images, torch.tensor(data["fine_labels"], dtype=torch.int64), size)


def cifar100(root: Path, size: int) -> tuple[TensorImages, TensorImages]:
    """(train, test) of CIFAR-100's python version (``cifar-100-python/``); ValueError naming the folder."""
    root = Path(root).expanduser()
    if not (root / "train").is_file() or not (root / "test").is_file():
        raise ValueError(f"benchmark.data_root: {str(root)!r} is not allowed; allowed: CIFAR-100's python folder "
                         "(cifar-100-python/, holding the pickles 'train' and 'test')")
    return _cifar_part(root / "train", size), _cifar_part(root / "test", size)
