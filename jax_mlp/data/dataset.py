"""The `Dataset` value and `load_dataset`, which builds one from a data config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jax_mlp.errors import UserError


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (n, n_in) and targets ``y`` (n, n_out), as NumPy arrays on the host."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A data set ready for training.

    Attributes:
      name: the source's name.
      task: ``"regression"`` (for now the only task).
      train: the training split.
    """

    name: str
    task: str
    train: Split

    @property
    def input_size(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def output_size(self) -> int:
        return int(self.train.y.shape[1])


def _matrix(values: Any, what: str) -> np.ndarray:
    """A float64 (n, d) array from nested lists, with a `UserError` naming `what` otherwise."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"{what} must be a non-empty list of rows, got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise UserError(f"{what} holds {int(np.sum(~np.isfinite(array)))} non-finite values")
    return array


def load_dataset(cfg: Any, key: jax.Array) -> Dataset:
    """Builds the data set a data config describes.

    Args:
      cfg: a data config (`jax_mlp.config.DataConfig` or a subclass); ``cfg.source`` picks the loader.
      key: PRNG key for sources that sample or split (unused by ``inline``).

    Returns:
      A `Dataset` with float64 host arrays; the caller casts them to the training dtype.
    """
    del key  # Only the inline source exists yet; it is deterministic.
    if cfg.source == "inline":
        x = _matrix(cfg.x, "data.x")
        y = _matrix(cfg.y, "data.y")
        if x.shape[0] != y.shape[0]:
            raise UserError(f"data.x has {x.shape[0]} rows but data.y has {y.shape[0]}")
        return Dataset(name=cfg.name, task="regression", train=Split(x, y))
    raise UserError(f"unknown data source {cfg.source!r}; choose one of inline")
