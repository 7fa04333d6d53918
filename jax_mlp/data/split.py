"""Cleaning, splitting and standardising a source's samples."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from jax_mlp.data.dataset import CLASSIFICATION, REGRESSION, Dataset, Raw, Scaling, Split
from jax_mlp.errors import UserError

log = logging.getLogger("jax_mlp")


def drop_nonfinite(raw: Raw, drop: bool) -> Raw:
    """Drops rows holding NaN or infinity when `drop`, else refuses them, saying where they are."""
    bad = ~np.isfinite(raw.x)
    if raw.task == REGRESSION:
        bad = np.concatenate([bad, ~np.isfinite(raw.y)], axis=1)
    if not bad.any():
        return raw
    rows = np.flatnonzero(bad.any(axis=1))
    if not drop:
        row, col = np.argwhere(bad)[0]
        column = raw.feature_names[col] if col < len(raw.feature_names) else f"target {col - len(raw.feature_names)}"
        raise UserError(f"the data hold {int(bad.sum())} missing (NaN or empty) or infinite values in {len(rows)} "
                        f"rows (first: sample {row}, {column!r}); set data.drop_nonfinite=true to drop those rows")
    log.warning("dropping %d rows with missing or infinite values (first: sample %d)", len(rows), rows[0])
    keep = np.setdiff1d(np.arange(len(raw.x)), rows)
    return Raw(raw.x[keep], raw.y[keep], raw.task, raw.feature_names, raw.class_names, raw.test)


def _split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool):
    """``(kept_x, taken_x, kept_y, taken_y)`` with `fraction` of the samples taken, seeded."""
    from sklearn.model_selection import train_test_split

    error = None
    for by in ([y, None] if stratify else [None]):
        try:
            parts = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=by)
        except ValueError as e:  # a class too small to stratify, or nothing left to take
            error = e
            continue
        if by is None and stratify:
            log.warning("a class has too few samples to stratify the split; splitting at random")
        return parts
    raise UserError(f"splitting {len(x)} samples with a fraction of {fraction:g} leaves an empty split "
                    f"({error}); change data.val_fraction / data.test_fraction")


def fit_scaling(train: Split, task: str, standardize: bool, standardize_targets: bool) -> Scaling:
    """Means and standard deviations (float64) of the training split; a constant column gets std 1."""
    def moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        std = a.std(axis=0, dtype=np.float64)
        return a.mean(axis=0, dtype=np.float64), np.where(std > 0, std, 1.0)

    x_mean, x_std = moments(train.x) if standardize else (None, None)
    y_mean, y_std = moments(train.y) if standardize_targets and task == REGRESSION else (None, None)
    return Scaling(x_mean, x_std, y_mean, y_std)


def _standardized(a: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """``(a - mean) / std`` in a's float dtype, through a single new array."""
    if mean is None:
        return a
    out = a - mean.astype(a.dtype)
    out /= std.astype(a.dtype)
    return out


def apply_scaling(split: Split, scaling: Scaling) -> Split:
    """`split` standardised by `scaling`."""
    return Split(_standardized(split.x, scaling.x_mean, scaling.x_std),
                 _standardized(split.y, scaling.y_mean, scaling.y_std))


def split_and_scale(raw: Raw, cfg: Any, seed: int, scaling: Scaling | None = None) -> Dataset:
    """Splits `raw` into train, validation and test (seeded; stratified for classification) and
    standardises every split with `scaling`, or with one fitted on the training split.

    ``data.test_fraction`` and ``data.val_fraction`` are fractions of all samples.
    """
    stratify = raw.task == CLASSIFICATION
    x, y, test = raw.x, raw.y, raw.test
    if raw.test is not None and cfg.test_fraction > 0:
        raise UserError(f"data {cfg.name!r} ships its own test split; set data.test_fraction=0")
    if cfg.test_fraction > 0:
        x, x_test, y, y_test = _split_off(x, y, cfg.test_fraction, seed, stratify)
        test = Split(x_test, y_test)
    val = None
    if cfg.val_fraction > 0:
        x, x_val, y, y_val = _split_off(x, y, cfg.val_fraction / (1 - cfg.test_fraction), seed + 1, stratify)
        val = Split(x_val, y_val)
    train = Split(x, y)
    for name, split in (("train", train), ("validation", val), ("test", test)):
        if split is not None and len(split) == 0:
            raise UserError(f"the {name} split of {len(raw.x)} samples is empty; change "
                            f"data.val_fraction / data.test_fraction")
    if scaling is None:
        scaling = fit_scaling(train, raw.task, cfg.standardize, cfg.standardize_targets)
    scaled = [None if s is None else apply_scaling(s, scaling) for s in (train, val, test)]
    return Dataset(cfg.name, raw.task, scaled[0], scaled[1], scaled[2], raw.feature_names,
                   raw.class_names, scaling)
