"""Class labels: from whatever a file holds to integers 0 .. classes-1."""

from __future__ import annotations

import numpy as np

from jax_mlp.errors import UserError


def encode_labels(values: np.ndarray, num_classes: int | None, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels and class names for a column of labels.

    Numbers must be whole and in ``[0, num_classes)`` (``num_classes`` defaults to max + 1); any
    other text is taken as class names, numbered in sorted order.

    Returns:
      ``(labels (n,) int32, class_names)``.
    """
    values = np.asarray(values).reshape(-1)
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        names, labels = np.unique(values.astype(str), return_inverse=True)
        return labels.astype(np.int32), tuple(names.tolist())
    if not np.all(np.isfinite(numbers)) or np.any(numbers != np.round(numbers)):
        bad = int(np.flatnonzero(~np.isfinite(numbers) | (numbers != np.round(numbers)))[0])
        raise UserError(f"{what}: class label {values[bad]} (sample {bad}) is not a whole number")
    count = int(numbers.max()) + 1 if num_classes is None else num_classes
    out_of_range = (numbers < 0) | (numbers >= count)
    if np.any(out_of_range):
        bad = int(np.flatnonzero(out_of_range)[0])
        raise UserError(f"{what}: class label {values[bad]} (sample {bad}) is out of range; labels "
                        f"must lie in [0, {count}) (data.num_classes={count})")
    return numbers.astype(np.int32), tuple(str(c) for c in range(count))
