"""The laptop stand-in for ImageNet-R (004): scikit-learn's 8×8 digits, upright for pretraining and in
renditions for the continual stream.

Half of each class's images (chosen by ``split_seed``) is the *source* split a small ViT is pretrained on,
upright; the other half is rendered in every style of ``renditions`` (inverted, rotated, blurred,
thickened, thinned, shrunk), as ImageNet-R renders classes its backbone saw as photos. Images are upsampled
to ``image_size`` (bilinear) before rendering, values in [0, 1]. Every rendition is deterministic: the
rotation angle of an image is drawn from ``split_seed`` and its index, the same for every run seed. The
continual half is split per class by *source image* into train and held-out (``held_out_fraction``), so a
held-out rendition never shares its digit with a training one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

RENDITIONS = ("inverted", "rotated", "blurred", "thickened", "thinned", "shrunk")


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, h, w) in [0, 1] resized to (N, 1, size, size) (bilinear, values clipped to [0, 1])."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def _rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    theta = degrees * math.pi / 180
    cos, sin, zero = torch.cos(theta), torch.sin(theta), torch.zeros_like(theta)
    affine = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(affine, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, round(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def render(images: torch.Tensor, style: str, angles: torch.Tensor) -> torch.Tensor:
    """``images`` (N, 1, S, S) in [0, 1] in one rendition style; ``angles`` (N,) degrees for ``rotated``."""
    s = images.shape[-1]
    if style == "inverted":
        return 1 - images
    if style == "rotated":
        return _rotate(images, angles)
    if style == "blurred":
        return _blur(images, sigma=s / 16)
    if style == "thickened":  # grey-level dilation
        return F.max_pool2d(images, 3, stride=1, padding=1)
    if style == "thinned":  # grey-level erosion of the (bilinearly smoothed) strokes, rescaled
        eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
        return eroded / eroded.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    if style == "shrunk":  # 0.6 times the size, centred
        return _shrink(images, 0.6)
    raise ValueError(f"unknown rendition '{style}'; allowed: {', '.join(RENDITIONS)}")


def _shrink(images: torch.Tensor, factor: float) -> torch.Tensor:
    affine = torch.tensor([[1 / factor, 0.0, 0.0], [0.0, 1 / factor, 0.0]]).expand(len(images), 2, 3)
    grid = F.affine_grid(affine, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def digit_halves(image_size: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source images, source labels, continual images, continual labels): half of every class each
    (the source gets the extra image of an odd class), upsampled to ``image_size``, in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(split_seed)
    source = np.zeros(len(digits.target), dtype=bool)
    for cls in range(10):
        idx = np.flatnonzero(digits.target == cls)
        source[rng.choice(idx, (len(idx) + 1) // 2, replace=False)] = True
    x = upsample(torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1), image_size)
    y = torch.tensor(digits.target, dtype=torch.int64)
    keep = torch.from_numpy(source)
    return x[keep], y[keep], x[~keep], y[~keep]


def rendered_split(image_size: int, renditions: list[str], held_out_fraction: float, split_seed: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images, train labels, held-out images, held-out labels) of the continual half, every source
    image in every style of ``renditions``; the held-out images are ``held_out_fraction`` of each class's
    source images (all their renditions)."""
    _, _, x, y = digit_halves(image_size, split_seed)
    g = torch.Generator().manual_seed(split_seed)
    angles = (torch.rand(len(y), generator=g) * 30 + 15) * torch.where(torch.rand(len(y), generator=g) < 0.5, -1, 1)
    order = torch.randperm(len(y), generator=g)
    test = torch.zeros(len(y), dtype=torch.bool)
    for cls in range(10):
        idx = order[y[order] == cls]
        test[idx[:round(held_out_fraction * len(idx))]] = True
    styled = [render(x, style, angles) for style in renditions]
    xs, ys = torch.cat(styled), y.repeat(len(renditions))
    mask = test.repeat(len(renditions))
    return xs[~mask], ys[~mask], xs[mask], ys[mask]
