"""`nf_faces`: meta-continual learning of face images (003 §5.2's CelebA at laptop scale, no download).

scikit-image's bundled ``lfw_subset`` (its first 100 images are faces: grey 25×25 in [0, 1]), zero-padded
to 28×28 (1 pixel above/left, 2 below/right; 003 pads CelebA's 178×178 to 180×180), four 28×7 strips.
80 faces meta-train, 20 held out for meta-test (a fixed permutation of ``split_seed``). Everything else is
``nf_base``: SIREN fields batched over the test faces, metrics ``psnr`` and ``mse`` per strip and
``psnr_signal``/``mse_signal`` of the whole face, the S-grid protocol.

Presets: ``tiny`` (tests: width 8, S_max 4, 2 meta steps, 3 test faces), ``laptop`` (003's parameter
matching at laptop size: modules 5×32 against one 5×64; S_max 256), ``paper`` (003 §5.2: modules 5×128
against 5×256, S_max 4096, 500K outer steps: for accelerators).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainables.benchmarks.nf_base import NeuralFieldBenchmark, NeuralFieldConfig, pad_to, split_indices
from trainables.params import knob

FACES = 100  # lfw_subset: 100 faces, then 100 non-faces


@dataclass(frozen=True)
class FacesConfig(NeuralFieldConfig):
    held_out: int = knob(20, "faces held out for meta-test (the rest meta-train)", low=1, high=FACES - 1)


class NFFaces(NeuralFieldBenchmark):
    name = "nf_faces"
    Config = FacesConfig
    presets = {
        "tiny": {"width": 8, "module_width": 4, "steps_per_task": 4, "meta_steps": 2, "meta_batch": 2,
                 "test_signals": 3, "batch_size": 8},
        "laptop": {"width": 64, "module_width": 32, "steps_per_task": 256, "meta_steps": 100, "meta_batch": 4},
        "paper": {"width": 256, "module_width": 128, "steps_per_task": 4096, "meta_steps": 500_000,
                  "meta_batch": 4},
    }

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        from skimage.data import lfw_subset

        faces = pad_to(np.asarray(lfw_subset()[:FACES], dtype=np.float32)[..., None], (28, 28))
        train, test = split_indices(FACES, self.config.held_out, self.config.split_seed)
        return faces[train], faces[test]
