"""Benchmarks: real bundled data, the cached evaluation classifier, deterministic metrics, and the
imagenet32 loader on tiny files written in the published format."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.linalg
import torch

from trainables.benchmarks.imagenet32 import read_batch_file
from trainables.frechet import frechet_distance
from trainables.build import make_benchmark


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 5)), rng.normal(1.0, 2.0, size=(150, 5)) @ rng.normal(size=(5, 5))
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_split_digits_tasks_and_held_out_split():
    b = make_benchmark("split_digits_diffusion", {})
    assert [t.classes for t in b.tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert len(b.x_train) + len(b.x_test) == 1797
    assert 0.18 < len(b.x_test) / 1797 < 0.22
    assert b.x_train.min() >= -1 and b.x_train.max() <= 1 and b.image_shape == (1, 8, 8)
    for cls in range(10):  # every class in both splits
        assert (b.y_test == cls).sum() > 0 and (b.y_train == cls).sum() > 0
    batch = next(b.train_batches(b.tasks[1], torch.Generator().manual_seed(0)))
    assert set(batch["y"].tolist()) <= {2, 3} and len(batch["y"]) == b.config.batch_size


def test_classifier_is_trained_once_cached_and_rebuilt_when_damaged(tmp_path):
    settings = {"preset": "tiny", "cache_dir": str(tmp_path)}
    first = make_benchmark("split_digits_diffusion", settings)
    net = first.classifier()
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1
    keep = first.y_test < first.num_classes  # the tiny preset's 2 tasks: classes 0-3
    x = first.to_pixels(first.x_test[keep])
    accuracy = (net(x).argmax(1) == first.y_test[keep]).float().mean().item()
    assert accuracy > 0.9  # a real classifier of real digits
    stamp = files[0].stat().st_mtime_ns
    second = make_benchmark("split_digits_diffusion", settings).classifier()
    assert files[0].stat().st_mtime_ns == stamp  # loaded, not retrained
    torch.testing.assert_close(second(x), net(x))
    files[0].write_bytes(b"not a checkpoint")
    third = make_benchmark("split_digits_diffusion", settings).classifier()
    torch.testing.assert_close(third(x), net(x))  # retrained identically from the same seed
    assert files[0].stat().st_size > 100


def test_evaluation_is_deterministic_for_fixed_parameters():
    b = make_benchmark("split_digits_diffusion", {"preset": "tiny"})
    torch.manual_seed(0)
    model = b.make_model()
    first = b.evaluate(model, b.tasks[0], ("fd", "gen_acc", "denoise_loss"))
    torch.randn(100)  # global RNG state must not matter
    second = b.evaluate(model, b.tasks[0], ("fd", "gen_acc", "denoise_loss"))
    assert first == second and set(first) == {"fd", "gen_acc", "denoise_loss"}
    assert first["fd"] > 0 and 0 <= first["gen_acc"] <= 1


def write_imagenet32(folder, fmt: str, classes=(1, 2, 3, 4, 7), per_class=6):
    """A few files in the published Imagenet32 format: dict(data=N x 3072 uint8, labels 1-based)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_data_batch_1", per_class), ("train_data_batch_2", per_class), ("val_data", 3)):
        labels = np.repeat(np.array(classes), n)
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        if fmt == "npz":
            np.savez(folder / f"{name}.npz", data=data, labels=labels, mean=data.mean(0))
        else:
            with open(folder / name, "wb") as f:
                pickle.dump({"data": data, "labels": labels.tolist(), "mean": data.mean(0)}, f)


@pytest.mark.parametrize("fmt", ["pickle", "npz"])
def test_imagenet32_reads_the_published_format(tmp_path, fmt):
    write_imagenet32(tmp_path / "in32", fmt)
    x, y = read_batch_file(next((tmp_path / "in32").glob("train_data_batch_1*")))
    assert x.shape == (30, 3, 32, 32) and x.dtype == np.uint8 and y.min() == 0  # labels made 0-based
    raw = np.asarray(pickle.load(open(tmp_path / "in32" / "train_data_batch_1", "rb"))["data"]) if fmt == "pickle" \
        else np.load(tmp_path / "in32" / "train_data_batch_1.npz")["data"]
    assert (x[0, 1].reshape(-1) == raw[0, 1024:2048]).all()  # channel-major: green is the 2nd 1024 values
    b = make_benchmark("imagenet32", {"data_dir": str(tmp_path / "in32"), "classes_per_task": 2, "num_tasks": 2,
                                      "channels": [8, 16], "layers_per_block": 1, "attention_levels": [],
                                      "steps_per_task": 2, "eval_samples_per_class": 4, "ddim_steps": 2,
                                      "classifier_epochs": 1})
    # first 4 class indices (0-3, i.e. labels 1-4), in order; label 7 is dropped
    assert [t.classes for t in b.tasks] == [(0, 1), (2, 3)]
    assert sorted(set(b.y_train.tolist())) == [0, 1, 2, 3] and len(b.y_train) == 2 * 4 * 6
    assert len(b.y_test) == 4 * 3 and b.image_shape == (3, 32, 32)
    batch = next(b.train_batches(b.tasks[0], torch.Generator().manual_seed(0)))
    loss = b.loss(b.make_model(), batch, torch.Generator().manual_seed(0))
    assert loss.shape == (len(batch["y"]),) and torch.isfinite(loss).all()
    scores = b.evaluate(b.make_model(), b.tasks[1], ("fd", "gen_acc", "denoise_loss"))
    assert np.isfinite(list(scores.values())).all()


def test_imagenet32_paper_preset_is_table_3(tmp_path):
    from trainables.build import benchmark_config

    write_imagenet32(tmp_path, "npz")
    c = benchmark_config("imagenet32", {"preset": "paper", "data_dir": str(tmp_path)})
    assert (c.batch_size, c.num_tasks, c.classes_per_task, c.ddim_steps) == (128, 10, 50, 50)
    assert c.steps_per_task == 100 * 508  # 100 epochs of 65,000 images at batch 128
    assert c.channels == [128, 256, 256, 256]


def test_imagenet32_without_data_says_what_to_give(tmp_path):
    with pytest.raises(ValueError, match="benchmark.data_dir: required"):
        make_benchmark("imagenet32", {})
    with pytest.raises(ValueError, match="benchmark.data_dir: no train_data_batch_1"):
        make_benchmark("imagenet32", {"data_dir": str(tmp_path)})
