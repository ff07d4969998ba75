"""The class-incremental ViT benchmark's data: rendered digits, and the paper-scale loaders (a ViT checkpoint
folder, ImageNet-R class folders, CIFAR-100 pickles) on tiny files written here in those formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from core.errors import InputError
from trainables.benchmarks import digit_renditions as dr
from trainables.build import make_benchmark, make_run, method_params
from trainables.methods import METHODS
from trainables.params import smoke_values


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny 3-channel ViT saved with save_pretrained, as a user's ViT-B/16 folder would be."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                                intermediate_size=8, image_size=16, patch_size=8, num_labels=7))
    path = tmp_path_factory.mktemp("vit") / "vit-tiny"
    model.save_pretrained(path)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def imagenet_r(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet-r") / "imagenet-r"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["n01", "n02", "n03", "n04"]):
        (root / name).mkdir(parents=True)
        for i in range(5):
            pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"art_{i}.png")
    return root


def test_renditions_are_deterministic_and_held_out_by_source_image():
    a = dr.rendered_split(8, ["inverted", "rotated"], 0.3, split_seed=0)
    b = dr.rendered_split(8, ["inverted", "rotated"], 0.3, split_seed=0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    x_train, y_train, x_test, y_test = a
    _, _, x, y = dr.digit_halves(8, 0)
    assert len(y_train) + len(y_test) == 2 * len(y)  # every continual image in both styles
    inverted_test = x_test[: len(y_test) // 2]
    same = lambda a, b: ((a.unsqueeze(1) - b.unsqueeze(0)).abs() < 1e-6).flatten(2).all(2)  # noqa: E731
    assert same(1 - inverted_test, x).any(1).all()
    shared = same(1 - x_train[: len(y_train) // 2], 1 - inverted_test)
    assert not shared.any()  # a held-out digit never appears among the training renditions
    assert torch.equal(dr.render(x[:3], "thickened", torch.zeros(3)), torch.nn.functional.max_pool2d(x[:3], 3, 1, 1))


def test_imagenet_r_split_checkpoint_and_run(checkpoint, imagenet_r, tmp_path):
    path, weights = checkpoint
    settings = {"dataset": "imagenet_r", "data_root": str(imagenet_r), "checkpoint": str(path), "num_tasks": 2,
                "held_out_fraction": 0.2, "steps_per_task": 2, "batch_size": 4, "cache_dir": str(tmp_path)}
    bench = make_benchmark("vit_cil", settings, device="cpu")
    assert bench.num_classes == 4 and [t.classes for t in bench.tasks] == [(0, 1), (2, 3)]
    assert [bench.train_size(t) for t in bench.tasks] == [8, 8] and len(bench.test_set.labels) == 4
    loaded = bench.make_model().state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items() if not k.startswith("classifier."))
    assert loaded["classifier.weight"].shape == (4, 8)  # a fresh head over the stream's classes
    batch = bench.train_sample(bench.tasks[1], 3, torch.Generator().manual_seed(0))
    assert batch["x"].shape == (3, 3, 16, 16) and batch["x"].min() >= -1 and batch["x"].max() <= 1
    assert set(batch["y"].tolist()) <= {2, 3} and batch["task"].tolist() == [2, 2, 2]
    again = make_benchmark("vit_cil", settings, device="cpu")
    assert again.split_digest == bench.split_digest and [str(p) for p in again.test_set.paths] == \
        [str(p) for p in bench.test_set.paths]
    other = make_benchmark("vit_cil", {**settings, "split_seed": 5}, device="cpu")
    assert {p.parent.name for p in other.test_set.paths} == {"n01", "n02", "n03", "n04"}
    type(bench).prepare(bench.config)
    recorded = (tmp_path / f"imagenet_r-split-{bench.split_digest}.txt").read_text().split()
    assert recorded == [str(p.relative_to(imagenet_r)) for p in bench.test_set.paths]
    params = method_params("perturb_merge", smoke_values(METHODS["perturb_merge"].Params))
    run = make_run(bench, "perturb_merge", params, seed=0)
    records = run.run_task(1) + run.run_task(2)
    assert {r.eval_task for r in records if r.metric == "accuracy"} == {1, 2}


def test_cifar100_pickles_resized_to_the_checkpoint(checkpoint, tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    for part, per_class in (("train", 2), ("test", 1)):
        labels = [c for c in range(100) for _ in range(per_class)]
        data = np.zeros((len(labels), 3072), dtype=np.uint8)
        data[:, :1024] = 255  # red channel on, green and blue off
        with open(root / part, "wb") as f:
            pickle.dump({"data": data, "fine_labels": labels}, f)
    bench = make_benchmark("vit_cil", {"dataset": "cifar100", "data_root": str(root), "checkpoint": str(checkpoint[0]),
                                       "num_tasks": 10}, device="cpu")
    assert len(bench.tasks) == 10 and bench.tasks[3].classes == tuple(range(30, 40))
    batch = bench.train_sample(bench.tasks[0], 4, torch.Generator().manual_seed(0))
    assert batch["x"].shape == (4, 3, 16, 16)
    assert torch.allclose(batch["x"][:, 0], torch.ones(4, 16, 16)) and (batch["x"][:, 1:] == -1).all()


def test_paper_presets_need_the_users_folders():
    with pytest.raises(InputError, match="benchmark.checkpoint"):
        make_benchmark("vit_cil", {"preset": "imagenet_r"})
    with pytest.raises(InputError, match="benchmark.num_tasks"):
        make_benchmark("vit_cil", {"num_tasks": 3})
