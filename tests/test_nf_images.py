"""The image sources of the neural-field benchmarks: bundled natural images with whole test images held
out, and the image-folder loader on PNG/JPEG files this test writes (CelebA's layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import InputError
from trainables.benchmarks.nf_images import bundled_rgb, crops, downscale
from trainables.build import make_benchmark


def test_natural_crops_of_test_images_never_reach_meta_training():
    bench = make_benchmark("nf_natural", {"test_signals": 0})
    images = bundled_rgb()
    expected = {n: crops(downscale(images[n], 4), 32) for n in images}
    assert len(bench.test) == sum(len(expected[n]) for n in ("chelsea", "china"))
    assert len(bench.meta_train) == sum(len(v) for n, v in expected.items() if n not in ("chelsea", "china"))
    assert torch.allclose(bench.test[0].reshape(32, 32, 3), torch.tensor(expected["chelsea"][0]))
    assert torch.cdist(bench.test.flatten(1), bench.meta_train.flatten(1)).min() > 0
    block = images["coffee"][:4, :4].mean((0, 1))
    assert np.allclose(downscale(images["coffee"], 4)[0, 0], block)


def write_celeba(folder, partition):
    """Eight 22×18 (h×w) RGB images, CelebA-like names, pixel (r, c) = (r, c, index) / 255."""
    folder.mkdir()
    names = []
    for i in range(8):
        r, c = np.meshgrid(np.arange(22), np.arange(18), indexing="ij")
        array = np.stack([r * 10, c * 10, np.full_like(r, i * 20)], -1).astype(np.uint8)
        name = f"{i + 1:06d}.png" if i % 2 == 0 else f"{i + 1:06d}.jpg"
        Image.fromarray(array).save(folder / name) if name.endswith(".png") else \
            Image.fromarray(array).save(folder / name, quality=100)
        names.append(name)
    (folder / "notes.txt").write_text("not an image")
    partition.write_text("".join(f"{n} {[0, 0, 0, 0, 1, 2, 2, 0][i]}\n" for i, n in enumerate(names)))
    return names


def test_folder_loader_centre_crops_pads_and_follows_the_partition_file(tmp_path):
    names = write_celeba(tmp_path / "img", tmp_path / "list_eval_partition.txt")
    bench = make_benchmark("nf_images", {"preset": "tiny", "data_dir": str(tmp_path / "img"), "size": 20,
                                         "partition_file": str(tmp_path / "list_eval_partition.txt")})
    assert len(bench.meta_train) == 5 and len(bench.test) == 2  # partition 0 and 2; 1 (validation) unused
    first = bench.test[0].reshape(20, 20, 3).numpy()  # 000006.jpg: 22×18 -> 18×18 centre crop -> pad 1
    assert np.all(first[0] == 0) and np.all(first[:, 0] == 0) and np.all(first[19] == 0)
    png = bench.meta_train[0].reshape(20, 20, 3).numpy()  # 000001.png, lossless
    # inner pixel (1, 1) is source (row 2, col 0): the crop drops 2 rows above
    assert png[1, 1] == pytest.approx([20 / 255, 0.0, 0.0], abs=1e-6)
    assert png[18, 18] == pytest.approx([190 / 255, 170 / 255, 0.0], abs=1e-6)


def test_folder_loader_without_partition_holds_out_a_fixed_split(tmp_path):
    write_celeba(tmp_path / "img", tmp_path / "p.txt")
    settings = {"preset": "tiny", "data_dir": str(tmp_path / "img"), "size": 16, "channels": 1, "held_out": 3}
    bench = make_benchmark("nf_images", settings)
    assert bench.meta_train.shape == (5, 256, 1) and bench.test.shape == (3, 256, 1)
    assert torch.equal(make_benchmark("nf_images", settings).test, bench.test)
    with pytest.raises(InputError, match="benchmark.data_dir"):
        make_benchmark("nf_images", {"data_dir": str(tmp_path / "missing")})
