"""The `Dataset` value and `load_dataset`, which builds one from a data config."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jax_mlp.data.encoding import FeatureEncoding
from jax_mlp.errors import UserError

REGRESSION = "regression"
CLASSIFICATION = "classification"


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (n, n_in) and targets ``y``: (n, n_out) for regression, (n,) int32 class labels
    for classification. NumPy arrays on the host, float64 or (large synthetic sets) float32."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Raw:
    """What a source yields before cleaning, splitting, encoding and scaling.

    Attributes:
      x: all samples' features: an array (n, d) of numbers (NaN where missing), or a table's
        pandas DataFrame of numbers and text (`jax_mlp.data.encoding` encodes it).
      y: the targets (see `Split`); y of classification holds labels 0 .. classes-1.
      task: `REGRESSION` or `CLASSIFICATION`.
      feature_names, class_names: names where the source has them, else generated ones.
      test: a test split the source ships (MNIST's t10k files), else None.
      categorical: the feature columns that are categories besides the text ones.
      origin: the file the samples come from ("" when none), `lines` (n,) each one's row there
        and `locate` that row in words (``line 7``), for messages that point at a cell.
    """

    x: Any
    y: np.ndarray
    task: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    test: Split | None = None
    categorical: frozenset[str] = frozenset()
    origin: str = ""
    lines: np.ndarray | None = None
    locate: Callable[[int], str] | None = None
    files: tuple[dict[str, Any], ...] = ()  # the files read, as `jax_mlp.files.fingerprint` describes them

    def where(self, row: int) -> str:
        """Sample `row` in words: ``FILE line N``, or ``sample N``."""
        if self.lines is None or self.locate is None:
            return f"sample {row}"
        return f"{self.origin} {self.locate(int(self.lines[row]))}"


@dataclass(frozen=True)
class Scaling:
    """Standardisation fitted on the training split: ``x' = (x - x_mean) / x_std``, likewise y.

    Unused parts are None. `as_dict` / `from_dict` carry it to and from ``scaling.json``.
    """

    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None

    def as_dict(self) -> dict[str, list[float] | None]:
        return {k: None if v is None else np.asarray(v).tolist() for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Scaling:
        return cls(**{k: None if v is None else np.asarray(v, np.float64) for k, v in values.items()})


@dataclass(frozen=True)
class Dataset:
    """A data set ready for training: split, scaled, described.

    Attributes:
      name: the config's name for it.
      task: `REGRESSION` or `CLASSIFICATION`.
      train, val, test: the splits (val and test None when their fraction is 0), scaled.
      feature_names: the network's inputs (a one-hot column's as ``name=category``);
        class_names: as in `Raw`.
      scaling: what was applied to every split (fitted on train only).
      encoding: how the feature columns became inputs (learned on train only).
      files: each file the data were read from, as `jax_mlp.files.fingerprint` describes it.
    """

    name: str
    task: str
    train: Split
    val: Split | None
    test: Split | None
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    scaling: Scaling
    encoding: FeatureEncoding
    files: tuple[dict[str, Any], ...] = ()

    @property
    def input_size(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def output_size(self) -> int:
        """Outputs of the network: one per class, a single logit for two classes, else y's width."""
        if self.task == CLASSIFICATION:
            return 1 if self.num_classes == 2 else self.num_classes
        return int(self.train.y.shape[1])

    def splits(self) -> dict[str, Split]:
        """The splits that exist, by name."""
        named = {"train": self.train, "val": self.val, "test": self.test}
        return {name: split for name, split in named.items() if split is not None}


def load_dataset(cfg: Any, seed: int, scaling: Scaling | None = None,
                 encoding: FeatureEncoding | None = None) -> Dataset:
    """Builds the data set a data config describes.

    Data are drawn and split on the host (NumPy, scikit-learn), from seeds derived from `seed` by
    name, so no device work runs before training.

    Args:
      cfg: a data config (a `jax_mlp.config.DataConfig` subclass); ``cfg.source`` picks the loader.
      seed: the same seed gives the same data and splits.
      scaling, encoding: standardisation and feature encoding to apply instead of fitting them
        (what evaluation of a run reuses).

    Returns:
      A `Dataset` of host arrays; the caller casts them to the training dtype.

    Raises:
      UserError: a missing or malformed file, a bad value, or an empty split.
    """
    from jax_mlp.data import readers, sources, split, tables

    loaders = {**sources.LOADERS, **readers.LOADERS, **tables.LOADERS}
    if cfg.source not in loaders:
        raise UserError(f"unknown data source {cfg.source!r}; choose one of {', '.join(sorted(loaders))}")
    source_seed, split_seed = (int(s) >> 1 for s in np.random.SeedSequence(
        [seed, zlib.crc32(b"data")]).generate_state(2))
    raw = split.clean(loaders[cfg.source](cfg, source_seed), cfg.missing, cfg.drop_missing_labels)
    return dataclasses.replace(split.split_and_scale(raw, cfg, split_seed, scaling, encoding), files=raw.files)
