"""Image sources of the neural-field benchmarks: `nf_natural` (RGB crops of the images bundled with
scikit-image and scikit-learn, whole source images held out) and `nf_images` (a folder of PNG/JPEG files:
CelebA's aligned faces with its partition file, or any folder). Everything else is ``nf_base``.

- `nf_natural`: each bundled RGB image is downscaled ``downscale``× (block means) and cut into
  non-overlapping ``crop``×``crop`` crops (row-major, the remainder dropped); the crops of the images
  named in ``test_images`` are the meta-test signals, every other image's crops meta-train, so no crop
  of a test image is ever seen in meta-training. Sources: scikit-image's astronaut, chelsea, coffee,
  rocket, hubble_deep_field, immunohistochemistry and retina, and
  scikit-learn's china.jpg and flower.jpg (``load_sample_images``).
- `nf_images`: every ``.png``/``.jpg``/``.jpeg`` of ``data_dir`` (sorted by name), converted to RGB (or
  grey with ``channels: 1``), centre-cropped to a square of side min(height, width, size), zero-padded
  to size×size (CelebA's aligned 178×218 faces become 178×178 padded by 1 pixel to 003's 180×180).
  With ``partition_file`` (CelebA's list_eval_partition.txt: "<file> <0|1|2>" per line), partition 0 is
  meta-train and 2 meta-test (1, validation, unused); without it a fixed permutation of ``split_seed``
  holds out ``held_out`` images. ``max_images`` caps the images read per split (0: all).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainables.benchmarks.nf_base import NeuralFieldBenchmark, NeuralFieldConfig, pad_to, split_indices
from trainables.params import knob

SKIMAGE_RGB = ("astronaut", "chelsea", "coffee", "rocket",
               "hubble_deep_field", "immunohistochemistry", "retina")
SKLEARN_RGB = ("china", "flower")


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, C) -> (H // f, W // f, C) by means over f×f blocks (the remainder dropped)."""
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor, -1).mean((1, 3))


def crops(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size×size crops of (H, W, C), row-major: (n, size, size, C)."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    return np.stack([image[r * size:(r + 1) * size, c * size:(c + 1) * size]
                     for r in range(rows) for c in range(cols)])


def bundled_rgb() -> dict[str, np.ndarray]:
    """{name: (H, W, 3) float in [0, 1]} of the RGB images shipped inside scikit-image and scikit-learn."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = {name: np.asarray(getattr(skimage.data, name)()[..., :3], dtype=np.float32) / 255.0
           for name in SKIMAGE_RGB}
    sample = load_sample_images()
    for name, image in zip(SKLEARN_RGB, sample.images):
        out[name] = np.asarray(image, dtype=np.float32) / 255.0
    return out


@dataclass(frozen=True)
class NaturalConfig(NeuralFieldConfig):
    crop: int = knob(32, "side of the square crops (003's ImageNette: 160; ours: 32)", low=4)
    downscale: int = knob(4, "block-mean downscaling of the source images before cropping", low=1)
    test_images: list = knob(["chelsea", "china"], "source images whose crops are all meta-test (one of "
                             + ", ".join(SKIMAGE_RGB + SKLEARN_RGB) + ")")
    test_signals: int = knob(20, "meta-test crops evaluated (the first ones); 0: all", low=0)


class NFNatural(NeuralFieldBenchmark):
    name = "nf_natural"
    Config = NaturalConfig
    presets = {
        "tiny": {"width": 8, "module_width": 4, "steps_per_task": 4, "meta_steps": 2, "meta_batch": 2,
                 "test_signals": 3, "batch_size": 8, "crop": 16, "downscale": 8},
        "laptop": {"width": 64, "module_width": 32, "steps_per_task": 256, "meta_steps": 100},
        "paper": {"width": 256, "module_width": 128, "steps_per_task": 4096, "meta_steps": 500_000,
                  "crop": 160, "downscale": 1},
    }

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        known = set(SKIMAGE_RGB + SKLEARN_RGB)
        if not config.test_images or set(config.test_images) - known or set(config.test_images) >= known:
            raise ValueError(f"benchmark.test_images: {config.test_images!r} is not allowed; allowed: a non-empty "
                             f"list of some (not all) of {', '.join(sorted(known))}")

    def load(self):
        c = self.config
        cut = {name: crops(downscale(image, c.downscale), c.crop) for name, image in bundled_rgb().items()
               if min(image.shape[:2]) // c.downscale >= c.crop}
        test = [cut[n] for n in c.test_images if n in cut]
        train = [v for n, v in cut.items() if n not in c.test_images]
        if not test or not train:
            raise ValueError(f"benchmark.crop: {c.crop} is not allowed with downscale {c.downscale}; allowed: "
                             "a crop that fits the downscaled test and training images")
        return np.concatenate(train), np.concatenate(test)


@dataclass(frozen=True)
class FolderConfig(NeuralFieldConfig):
    data_dir: str = knob("", "a folder of .png/.jpg/.jpeg images (e.g. CelebA's img_align_celeba)")
    partition_file: str = knob("", "CelebA's list_eval_partition.txt (0: meta-train, 2: meta-test); empty: "
                               "hold out held_out images by a fixed permutation")
    size: int = knob(180, "side after centre-crop and zero-pad (003's CelebA: 180)", low=4)
    channels: int = knob(3, "3: RGB, 1: grey", choices=(1, 3))
    held_out: int = knob(20, "images held out for meta-test without a partition file", low=1)
    max_images: int = knob(0, "at most this many images per split (the first by name); 0: all", low=0)


def read_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as (size, size, channels) in [0, 1]: centre-cropped to a square of side min(h, w, size),
    then zero-padded to size×size."""
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.float32) / 255.0
    array = array.reshape(array.shape[0], array.shape[1], channels)
    side = min(array.shape[0], array.shape[1], size)
    top, left = (array.shape[0] - side) // 2, (array.shape[1] - side) // 2
    return pad_to(array[None, top:top + side, left:left + side], (size, size))[0]


class NFImages(NeuralFieldBenchmark):
    name = "nf_images"
    Config = FolderConfig
    presets = {"tiny": {"width": 8, "module_width": 4, "steps_per_task": 4, "meta_steps": 2, "meta_batch": 2,
                        "batch_size": 8, "size": 16, "held_out": 2},
               "celeba": {"width": 256, "module_width": 128, "steps_per_task": 4096, "meta_steps": 500_000}}

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if not config.data_dir or not Path(config.data_dir).is_dir():
            raise ValueError(f"benchmark.data_dir: {config.data_dir!r} is not allowed; allowed: a folder of "
                             ".png/.jpg/.jpeg images")
        if config.partition_file and not Path(config.partition_file).is_file():
            raise ValueError(f"benchmark.partition_file: {config.partition_file!r} is not allowed; allowed: an "
                             "existing file of '<image> <0|1|2>' lines, or empty")

    def files(self) -> tuple[list[Path], list[Path]]:
        c = self.config
        found = sorted(p for p in Path(c.data_dir).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if c.partition_file:
            part = dict(line.split()[:2] for line in Path(c.partition_file).read_text().splitlines() if line.strip())
            train = [p for p in found if part.get(p.name) == "0"]
            test = [p for p in found if part.get(p.name) == "2"]
        else:
            tr, te = split_indices(len(found), min(c.held_out, len(found) - 1), c.split_seed)
            train, test = [found[i] for i in tr], [found[i] for i in te]
        cap = c.max_images or None
        return train[:cap], test[:cap]

    def load(self):
        train, test = self.files()
        if not train or not test:
            raise ValueError(f"benchmark.data_dir: {self.config.data_dir!r} gives {len(train)} meta-training and "
                             f"{len(test)} meta-test images; allowed: at least one of each")
        read = lambda paths: np.stack([read_image(p, self.config.size, self.config.channels) for p in paths])
        return read(train), read(test)
