"""Targets as a file holds them: which task they are (``data.task=auto``), and class labels from
whatever values they are to integers 0 .. classes-1."""

from __future__ import annotations

import logging

import numpy as np

from jax_mlp.data.dataset import CLASSIFICATION, REGRESSION
from jax_mlp.errors import UserError

log = logging.getLogger("jax_mlp")
AUTO = "auto"


def as_numbers(values: np.ndarray) -> np.ndarray | None:
    """`values` as float64 (an empty text cell as NaN), or None when one is text that is no number."""
    values = np.asarray(values)
    if values.dtype.kind in "iufb":
        return values.astype(np.float64)
    text = np.char.strip(values.astype(str))
    try:
        return np.where(text == "", "nan", text).astype(np.float64)
    except ValueError:
        return None


def decide_task(task: str, values: np.ndarray, columns: str) -> str:
    """The task of targets `values` ((n,) or (n, k), numbers or text): `task` itself unless it is
    ``auto``, which decides as scikit-learn's `type_of_target` does and logs its choice: one column
    of text, booleans or whole numbers is classification, real numbers or several columns are
    regression; except that whole numbers with more distinct values than `MAX_AUTO_CLASSES` or
    than half the samples (prices, counts) are regression too. `columns`: the target columns'
    names, for the log line.

    Raises:
      UserError: several target columns of which one holds text.
    """
    if task != AUTO:
        return task
    from sklearn.utils.multiclass import type_of_target

    values = np.asarray(values)
    several = values.ndim == 2 and values.shape[1] > 1
    numbers = None if values.dtype.kind == "b" else as_numbers(values)
    if numbers is None and several:
        raise UserError(f"the targets {columns} hold text; classification takes one label column, regression "
                        "numbers: choose one label column as data.target")
    if numbers is None:
        chosen, why = CLASSIFICATION, f"holds {len(np.unique(values.astype(str)))} distinct labels"
    else:
        known = numbers[np.all(np.isfinite(numbers.reshape(len(numbers), -1)), axis=1)]
        kind = type_of_target(known.reshape(len(known), -1) if several else known.reshape(-1)) if len(known) else ""
        distinct = len(np.unique(known))
        if several or kind not in ("binary", "multiclass"):
            chosen, why = REGRESSION, f"{'hold' if several else 'holds'} real numbers"
        elif distinct > min(MAX_AUTO_CLASSES, len(known) / 2):
            chosen, why = REGRESSION, f"holds {distinct} distinct whole numbers in {len(known)} rows (too many classes)"
        else:
            chosen, why = CLASSIFICATION, f"holds {distinct} distinct whole numbers"
    other = REGRESSION if chosen == CLASSIFICATION else CLASSIFICATION
    log.info("data.task=auto: %s, as %s %s; set data.task=%s otherwise", chosen, columns, why, other)
    return chosen


MAX_AUTO_CLASSES = 100  # most distinct whole numbers that `decide_task` takes as class labels


def encode_labels(values: np.ndarray, num_classes: int | None, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels and class names for a column of labels.

    With `num_classes` null (the default), the classes are the distinct values seen, numbered in
    sorted order (numbers by value) and named as they are written (labels 3, 4, 8 are three classes
    "3", "4", "8"). With `num_classes` given, the labels are whole numbers in ``[0, num_classes)``,
    taken as the class indices (classes that no sample has are kept).

    Returns:
      ``(labels (n,) int32, class_names)``.

    Raises:
      UserError: a missing label; with `num_classes`, one that is not such an index.
    """
    values = np.asarray(values).reshape(-1)
    numbers = as_numbers(values)
    if numbers is not None and not np.all(np.isfinite(numbers)):
        bad = int(np.flatnonzero(~np.isfinite(numbers))[0])
        raise UserError(f"{what}: sample {bad} has no class label ({values[bad]!r}); give one, or drop the rows "
                        "without a label")
    if numbers is None:
        names, labels = np.unique(np.char.strip(values.astype(str)), return_inverse=True)
        return labels.astype(np.int32), tuple(names.tolist())
    if num_classes is None:
        distinct, labels = np.unique(numbers, return_inverse=True)
        return labels.astype(np.int32), tuple(_label_name(v) for v in distinct)
    out_of_range = (numbers < 0) | (numbers >= num_classes) | (numbers != np.round(numbers))
    if np.any(out_of_range):
        bad = int(np.flatnonzero(out_of_range)[0])
        raise UserError(f"{what}: class label {values[bad]} (sample {bad}) is not a class index; with "
                        f"data.num_classes={num_classes} labels are whole numbers in [0, {num_classes}) "
                        "(data.num_classes=null: the classes are the distinct labels)")
    return numbers.astype(np.int32), tuple(str(c) for c in range(num_classes))


def _label_name(value: float) -> str:
    """A numeric label's class name as it is written: 3 for 3.0, 0.5 for 0.5."""
    return str(int(value)) if value == int(value) else repr(float(value))
