"""002 §V's MNIST streams: samples per task, permutations and angles fixed across run seeds, one head,
evaluation on the whole test set under the task's transform, and the data source in records and titles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.benchmarks.mnist_streams import EMBEDDED, rotate
from trainables.build import configure, make_benchmark


@pytest.fixture(scope="module")
def perms():
    return make_benchmark("mnist_permutations", {}, "cpu")


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x}


def test_mnist_permutations_draws_1000_pool_samples_per_task_and_seed(perms):
    assert len(perms.tasks) == 20 and perms.x_train.shape == (4000, 784) and perms.x_test.shape == (1000, 784)
    a, b = perms.for_seed(0), perms.for_seed(1)
    for run in (a, b):
        assert all(len(i) == 1000 and len(set(i.tolist())) == 1000 and int(i.max()) < 4000 for i in run.samples)
    assert not torch.equal(a.samples[0], a.samples[1])  # afresh for every task
    assert not torch.equal(a.samples[0], b.samples[0])  # and for every run seed
    assert torch.equal(a.samples[3], perms.for_seed(0).samples[3])  # deterministic
    x, y = a.task_data(a.tasks[0], train=True)
    idx, perm = a.samples[0], a.permutations[0]
    assert torch.equal(x, perms.x_train[idx][:, perm]) and torch.equal(y, perms.y_train[idx])
    assert len(list(a.train_batches(a.tasks[0], torch.Generator().manual_seed(0)))) == 100  # one pass, batch 10


def test_mnist_permutations_fixed_across_seeds_and_evaluated_on_the_whole_test_set(perms):
    a, b = perms.for_seed(0), perms.for_seed(7)
    assert all(torch.equal(p, q) for p, q in zip(a.permutations, b.permutations))
    assert len({tuple(p.tolist()) for p in a.permutations}) == 20
    assert not torch.equal(a.permutations[0], torch.arange(784))  # task 1 is permuted too (GEM's script)
    x, y = a.task_data(a.tasks[4], train=False)
    assert torch.equal(x, perms.x_test[:, a.permutations[4]]) and torch.equal(y, perms.y_test)
    other = make_benchmark("mnist_permutations", {"permutation_seed": 1}, "cpu")  # another stream
    assert not torch.equal(other.permutations[0], a.permutations[0])


def test_one_shared_head_and_the_2x100_mlp(perms):
    model = perms.make_model()
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(100, 784), (100,), (100, 100), (100,), (10, 100), (10,)]
    assert perms.logit_mask(torch.tensor([1, 5])) is None
    batch = next(perms.train_batches(perms.tasks[2], torch.Generator().manual_seed(0)))
    assert perms.logits(model, batch).isfinite().all()  # no task's logits masked


def test_many_permutations_is_100_tasks_of_200():
    many = make_benchmark("many_permutations", {}, "cpu").for_seed(0)
    assert len(many.tasks) == 100 and all(len(i) == 200 for i in many.samples)
    assert len({tuple(p[:20].tolist()) for p in many.permutations}) == 100


def test_rotation_angles_one_per_slice_fixed_across_seeds():
    rot = make_benchmark("mnist_rotations", {}, "cpu")
    assert len(rot.angles) == 20
    for k, angle in enumerate(rot.angles):  # task k's angle lies in the k-th of 20 slices of [0, 180)
        assert 9 * k <= angle < 9 * (k + 1)
    assert rot.for_seed(3).angles == rot.angles
    other = make_benchmark("mnist_rotations", {"angle_seed": 1}, "cpu")
    assert other.angles != rot.angles


def test_rotate_is_counter_clockwise_nearest_with_zeros_outside():
    img = torch.zeros(1, 28, 28)
    img[0, 2, 10], img[0, 5, 20] = 1.0, 0.5
    turned = rotate(img.reshape(1, 784), 90.0).reshape(28, 28)
    assert torch.equal(turned, torch.from_numpy(np.rot90(img[0].numpy(), 1).copy()))  # np.rot90: CCW
    assert set(rotate(img.reshape(1, 784), 33.0).unique().tolist()) <= {0.0, 0.5, 1.0}  # nearest: no blending


def test_rotated_task_data_train_and_test():
    rot = make_benchmark("mnist_rotations", {"num_tasks": 3, "samples_per_task": 50}, "cpu").for_seed(0)
    x, y = rot.task_data(rot.tasks[1], train=True)
    idx = rot.samples[1]
    assert x.shape == (50, 784) and torch.equal(y, rot.y_train[idx])
    assert torch.equal(x, rotate(rot.x_train[idx], rot.angles[1]))
    xt, yt = rot.task_data(rot.tasks[2], train=False)
    assert torch.equal(xt, rotate(rot.x_test, rot.angles[2])) and torch.equal(yt, rot.y_test)


def test_split_mnist_task_and_class_scenarios():
    split = make_benchmark("split_mnist", {}, "cpu")
    assert [t.classes for t in split.tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    x, y = split.task_data(split.tasks[2], train=True)
    assert len(y) == 800 and set(y.tolist()) == {4, 5} and x.shape[1] == 784
    mask = split.logit_mask(torch.tensor([3]))
    assert mask[0].nonzero().flatten().tolist() == [4, 5]
    assert make_benchmark("split_mnist", {"scenario": "class"}, "cpu").logit_mask(torch.tensor([3])) is None


def _write_npz(path, n_train=30, n_test=20):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
             y_train=np.arange(n_train) % 10, x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
             y_test=np.arange(n_test) % 10)


def test_full_data_from_data_dir_and_its_source(tmp_path):
    _write_npz(tmp_path / "mnist.npz")
    full = make_benchmark("mnist_permutations", {"data_dir": str(tmp_path), "samples_per_task": 10,
                                                 "num_tasks": 2}, "cpu")
    assert full.x_train.shape == (30, 784) and full.x_test.shape == (20, 784)
    assert full.data_source(full.config) == f"MNIST: full, from {tmp_path}"
    assert full.data_source(make_benchmark("split_mnist", {"preset": "tiny"}, "cpu").config) == EMBEDDED


def test_a_wrong_data_dir_is_one_line_naming_it(tmp_path):
    from orchestrator.spaces import SpaceError, validate

    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03")
    doc = {"name": "x", "benchmark": {"name": "mnist_permutations", "data_dir": str(tmp_path)},
           "methods": {"finetune": {}}}
    with pytest.raises(SpaceError, match=r"^benchmark\.data_dir: .*train-labels-idx1-ubyte") as err:
        validate(doc)
    assert "\n" not in str(err.value)


def test_records_and_results_titles_name_the_data_source(tmp_path):
    from click.testing import CliRunner

    from orchestrator.cli import main
    from orchestrator.spaces import validate
    from trainables.trainable import run_configuration

    config = configure("finetune", {"optimizer": "sgd", "lr": 0.03}, "mnist_permutations",
                       {"preset": "tiny", "num_tasks": 2}, (0,))
    records = run_configuration(config, lambda *a: None)
    assert set(records["data"]) == {EMBEDDED}
    records.to_csv(tmp_path / "r.csv", index=False)
    table = CliRunner().invoke(main, ["table", "--records", str(tmp_path / "r.csv"), "--metric", "accuracy"])
    assert table.exit_code == 0 and table.output.startswith(f"data: {EMBEDDED}\n"), table.output
    space = validate({"name": "x", "benchmark": {"name": "split_mnist"}, "methods": {"finetune": {}}})
    assert space.results_note.startswith(EMBEDDED)
    digits = validate({"name": "x", "benchmark": {"name": "split_digits"}, "methods": {"finetune": {}}})
    assert "MNIST" not in digits.results_note
