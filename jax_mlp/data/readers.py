"""Sources read from the user's array files: ``.npz`` and MNIST's IDX files (tables: `jax_mlp.data.tables`)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jax_mlp.data import downloads
from jax_mlp.data.dataset import CLASSIFICATION, REGRESSION, Raw, Split
from jax_mlp.data.labels import AUTO, decide_task, encode_labels
from jax_mlp.data.tables import existing_file
from jax_mlp.errors import UserError
from jax_mlp.files import fingerprint


def _targets(values: np.ndarray, task: str, cfg: Any, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Regression targets (n, k) float64, or classification labels (n,) with class names."""
    if task == CLASSIFICATION:
        if values.ndim == 2 and values.shape[1] != 1:
            raise UserError(f"{what}: classification takes one label column, got {values.shape[1]}")
        return encode_labels(values, cfg.num_classes, what)
    values = values.astype(np.float64)
    return (values[:, None] if values.ndim == 1 else values), ()


def read_npz(cfg: Any, seed: int) -> Raw:
    """An ``.npz`` of plain arrays: inputs under ``data.x_key``, targets under ``data.y_key``."""
    file = existing_file(cfg.path)
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as error:
        raise UserError(f"{file} holds pickled objects or is not an .npz of arrays; save plain "
                        f"numeric arrays with np.savez ({error})") from None
    except (OSError, EOFError) as error:
        raise UserError(f"{file} is not a readable .npz file ({error})") from None
    for key in (cfg.x_key, cfg.y_key):
        if key not in arrays:
            raise UserError(f"{file} has no array {key!r}; it has {', '.join(sorted(arrays)) or 'none'}")
    x, y = arrays[cfg.x_key], arrays[cfg.y_key]
    real = x.dtype.kind in REAL_KINDS
    if x.ndim != 2 or not real or x.shape[1] == 0:
        hint = ""
        if real and x.ndim == 1:
            hint = "; for one feature a sample, save x[:, None]"
        elif real and x.ndim > 2:
            hint = "; flatten each sample: save x.reshape(len(x), -1)"
        raise UserError(f"{file}: {cfg.x_key!r} must be a 2-D array of real numbers (samples x features), got "
                        f"{x.dtype} of shape {list(x.shape)}{hint}")
    if y.ndim == 0 or len(y) != len(x):
        raise UserError(f"{file}: {cfg.x_key!r} has {len(x)} rows but {cfg.y_key!r} has "
                        f"{len(y) if y.ndim else 'none (a scalar)'}")
    _check_npz_targets(y, cfg.task, f"{file}: {cfg.y_key!r}")
    task = decide_task(cfg.task, y, f"array {cfg.y_key!r}")
    y, classes = _targets(y, task, cfg, str(file))
    return Raw(x.astype(np.float64), y, task, tuple(f"x{i}" for i in range(x.shape[1])), classes,
               origin=str(file), files=(fingerprint(file),))


REAL_KINDS = "iuf"  # NumPy's dtype kinds of signed and unsigned integers and floats


def _check_npz_targets(y: np.ndarray, task: str, what: str) -> None:
    """Refuses an ``.npz``'s targets that would be misread: more than one axis a sample, no
    target at all, or values of another kind than the task takes (regression: real numbers;
    classification: whole numbers, text or booleans). Complex numbers would lose their imaginary
    parts and dates would become day counts without a word.

    Raises:
      UserError: saying what `what` holds and what it should.
    """
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] == 0):
        raise UserError(f"{what} must hold one target a sample (shape [n]) or a row of targets ([n, k]), got "
                        f"shape {list(y.shape)}")
    if task == REGRESSION and y.dtype.kind not in REAL_KINDS:
        hint = "; for class labels set data.task=classification" if y.dtype.kind in "USb" else ""
        raise UserError(f"{what} must hold real numbers for regression, got {y.dtype}{hint}")
    if task == CLASSIFICATION and y.dtype.kind not in REAL_KINDS + "USb":
        raise UserError(f"{what} must hold class labels (whole numbers or text), got {y.dtype}")
    if task == AUTO and y.dtype.kind not in REAL_KINDS + "USb":
        raise UserError(f"{what} must hold real numbers (regression) or class labels (classification), got {y.dtype}")


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def read_idx(file: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array of the shape its header gives."""
    try:
        with (gzip.open if file.suffix == ".gz" else open)(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:  # gzip's: not gzipped, truncated, corrupt
        raise UserError(f"{file} cannot be read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or len(data) < 4 + 4 * data[3]:
        raise UserError(f"{file} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{file} is truncated: its header promises {int(np.prod(shape))} values, it holds {body.size}")
    return body.reshape(shape)


def read_mnist(cfg: Any, seed: int) -> Raw:
    """MNIST or Fashion-MNIST from the four IDX files in the folder ``data.path``, or, without
    one, downloaded once into the cache (`jax_mlp.data.downloads`).

    Pixels become floats in [0, 1], one row of 784 per image; the t10k files are the test split.
    """
    if cfg.path:
        folder = Path(cfg.path).expanduser()
    elif cfg.name in downloads.PUBLISHED:  # downloaded once into the cache
        folder = downloads.fetch(cfg.name, downloads.PUBLISHED[cfg.name],
                                 downloads.cache_folder(cfg.name, cfg.cache_dir),
                                 tuple(cfg.mirrors) if cfg.mirrors else None)
    else:
        raise UserError(f"data.path is not set and data.name={cfg.name} is not a data set jax_mlp downloads "
                        f"({', '.join(downloads.PUBLISHED)}); give the folder of the four IDX files "
                        f"({', '.join(MNIST_FILES.values())}, each may end in .gz) with data.path=DIR")
    found, missing = {}, []
    for role, stem in MNIST_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(stem)
        found[role] = hit
    if missing:
        raise UserError(f"data.path={folder} lacks {', '.join(missing)} (each may end in .gz); put "
                        f"the four MNIST or Fashion-MNIST IDX files there")
    arrays = {role: read_idx(path) for role, path in found.items()}
    def images(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1).astype(np.float64) / 255.0
    classes = FASHION_CLASSES if cfg.name == "fashion_mnist" else tuple(map(str, range(10)))
    y_train, _ = encode_labels(arrays["train_labels"], len(classes), f"{found['train_labels']}")
    y_test, _ = encode_labels(arrays["test_labels"], len(classes), f"{found['test_labels']}")
    x_train = images(arrays["train_images"])
    return Raw(x_train, y_train, CLASSIFICATION, tuple(f"pixel{i}" for i in range(x_train.shape[1])),
               classes, test=Split(images(arrays["test_images"]), y_test),
               files=tuple(map(fingerprint, found.values())))


LOADERS: dict[str, Callable[[Any, int], Raw]] = {"npz": read_npz, "mnist": read_mnist}
