"""Sources that need no file of the user's: inline arrays, synthetic sets, scikit-learn's bundled sets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from jax_mlp.data.dataset import CLASSIFICATION, REGRESSION, Raw
from jax_mlp.data.labels import decide_task, encode_labels
from jax_mlp.errors import UserError


def _names(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(count))


def _matrix(values: Any, what: str) -> np.ndarray:
    """A float64 (n, d) array from nested lists, with a `UserError` naming `what` otherwise."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be rows of numbers of equal length") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"{what} must be a non-empty list of rows, got shape {list(array.shape)}")
    return array


def inline(cfg: Any, seed: int) -> Raw:
    """Rows written in the config (``data.x``, ``data.y``); the seed note's three points."""
    x = _matrix(cfg.x, "data.x")
    if x.shape[0] != len(cfg.y):
        raise UserError(f"data.x has {x.shape[0]} rows but data.y has {len(cfg.y)}")
    if decide_task(cfg.task, np.asarray(cfg.y), "data.y") == CLASSIFICATION:
        y, classes = encode_labels(np.asarray(cfg.y).reshape(-1), cfg.num_classes, "data.y")
        return Raw(x, y, CLASSIFICATION, _names("x", x.shape[1]), classes)
    return Raw(x, _matrix(cfg.y, "data.y"), REGRESSION, _names("x", x.shape[1]))


def sine(cfg: Any, seed: int) -> Raw:
    """``y = sin(x) + noise * N(0, 1)`` for ``n`` points drawn uniformly from [low, high]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(cfg.low, cfg.high, size=(cfg.n, 1))
    y = np.sin(x) + cfg.noise * rng.standard_normal(size=(cfg.n, 1))
    return Raw(x, y, REGRESSION, ("x",))


def moons(cfg: Any, seed: int) -> Raw:
    """scikit-learn's two interleaving half circles, with Gaussian noise."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=cfg.n, noise=cfg.noise, random_state=seed)
    return Raw(x, y.astype(np.int32), CLASSIFICATION, ("x0", "x1"), ("upper", "lower"))


def spirals(cfg: Any, seed: int) -> Raw:
    """``classes`` interleaved spiral arms of ``n // classes`` points each, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    per_class = cfg.n // cfg.classes
    radius = np.linspace(0.05, 1.0, per_class)
    xs, ys = [], []
    for c in range(cfg.classes):
        angle = cfg.turns * 2 * np.pi * radius + 2 * np.pi * c / cfg.classes
        points = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        xs.append(points + cfg.noise * rng.standard_normal(points.shape) * radius[:, None])
        ys.append(np.full(per_class, c, np.int32))
    return Raw(np.concatenate(xs), np.concatenate(ys), CLASSIFICATION, ("x0", "x1"),
               _names("arm", cfg.classes))


def blobs(cfg: Any, seed: int) -> Raw:
    """Isotropic Gaussian blobs: ``n`` points, ``features`` wide, around ``classes`` centres drawn
    uniformly from [-10, 10]^features, with standard deviation ``cluster_std``; classes balanced.

    The same distribution as scikit-learn's `make_blobs`, drawn directly in float32: `make_blobs`
    builds it in float64 through several full-size copies, over a gigabyte for 60000 x 784.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10.0, 10.0, size=(cfg.classes, cfg.features)).astype(np.float32)
    y = rng.permutation(np.arange(cfg.n) % cfg.classes).astype(np.int32)
    x = rng.standard_normal((cfg.n, cfg.features), dtype=np.float32)
    x *= np.float32(cfg.cluster_std)
    x += centres[y]
    return Raw(x, y, CLASSIFICATION, _names("x", cfg.features), _names("blob", cfg.classes))


_BUNDLED = {
    "digits": ("load_digits", CLASSIFICATION),
    "iris": ("load_iris", CLASSIFICATION),
    "wine": ("load_wine", CLASSIFICATION),
    "breast_cancer": ("load_breast_cancer", CLASSIFICATION),
    "diabetes": ("load_diabetes", REGRESSION),
}
BUNDLED: tuple[str, ...] = tuple(_BUNDLED)


def bundled(cfg: Any, seed: int) -> Raw:
    """A data set that ships inside scikit-learn (``data.name``), so it works offline."""
    import sklearn.datasets

    if cfg.name not in _BUNDLED:
        raise UserError(f"data.name {cfg.name!r} is not bundled with scikit-learn; choose one of "
                        f"{', '.join(BUNDLED)}")
    loader, task = _BUNDLED[cfg.name]
    bunch = getattr(sklearn.datasets, loader)()
    features = tuple(map(str, bunch.feature_names))
    if task == REGRESSION:
        return Raw(bunch.data.astype(np.float64), bunch.target.astype(np.float64)[:, None], task, features)
    return Raw(bunch.data.astype(np.float64), bunch.target.astype(np.int32), task, features,
               tuple(map(str, bunch.target_names)))


LOADERS: dict[str, Callable[[Any, int], Raw]] = {
    "inline": inline, "sine": sine, "moons": moons, "spirals": spirals, "blobs": blobs,
    "sklearn": bundled,
}
