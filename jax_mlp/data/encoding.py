"""Feature columns as the network takes them: categories encoded (one-hot or ordinal, scikit-learn's
encoders) and missing values imputed (scikit-learn's `SimpleImputer`), both learned on the
training split only. `FeatureEncoding` is saved in the run folder (``features.json``), so that
evaluation, and every later prediction, encodes new rows exactly as training did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jax_mlp.errors import UserError

NUMBER, CATEGORY = "number", "category"
IMPUTERS = ("mean", "median", "most_frequent")  # data.missing's strategies that fill values in
MISSING = ("error", "drop", *IMPUTERS)
ENCODINGS = ("onehot", "ordinal")
UNKNOWN_CATEGORIES = ("ignore", "error")


@dataclass(frozen=True)
class Column:
    """One feature column as training saw it.

    Attributes:
      name: its name in the file.
      kind: `NUMBER` or `CATEGORY`.
      categories: a category column's values in the training split, in scikit-learn's (sorted) order.
      fill: the value a missing cell becomes (the training split's mean, median or most frequent
        value), or None when missing values are not imputed.
    """

    name: str
    kind: str
    categories: tuple[Any, ...] = ()
    fill: Any = None


@dataclass(frozen=True)
class FeatureEncoding:
    """The feature columns and how they become the network's inputs.

    Attributes:
      columns: every feature column, in the file's chosen order.
      encoding: ``onehot`` (one input a category, unscaled) or ``ordinal`` (one input a column: the
        category's position, -1 for one training never saw).
      unknown_category: ``ignore`` (all-zero one-hot inputs, or -1) or ``error``.
    """

    columns: tuple[Column, ...]
    encoding: str = "onehot"
    unknown_category: str = "ignore"
    _encoders: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The network's inputs: a one-hot column's as ``name=category``."""
        return tuple(name for column in self.columns for name in self._inputs(column))

    def _inputs(self, column: Column) -> list[str]:
        if column.kind == CATEGORY and self.encoding == "onehot":
            return [f"{column.name}={value}" for value in column.categories]
        return [column.name]

    @property
    def scaled(self) -> np.ndarray:
        """Which inputs standardisation applies to (n_in,): every one but the one-hot indicators."""
        return np.asarray([not (c.kind == CATEGORY and self.encoding == "onehot")
                           for c in self.columns for _ in self._inputs(c)], bool)

    @property
    def is_identity(self) -> bool:
        """Whether an array of numbers passes unchanged (no categories, nothing imputed)."""
        return all(c.kind == NUMBER and c.fill is None for c in self.columns)

    @classmethod
    def fit(cls, x: Any, names: tuple[str, ...], categorical: frozenset[str], missing: str,
            encoding: str = "onehot", unknown_category: str = "ignore") -> FeatureEncoding:
        """Learns the encoding of the training split's features `x` (a DataFrame, or an array
        (n, d) of numbers) with columns `names`: text columns and those in `categorical` are
        categories; with `missing` an imputer's strategy, each column's fill (a category
        column's most frequent value whatever the strategy)."""
        if isinstance(x, np.ndarray):  # numbers only: one imputer over every column, if any
            fills = [None] * len(names)
            if missing in IMPUTERS:
                from sklearn.impute import SimpleImputer  # here: importing scikit-learn takes half a second

                imputer = SimpleImputer(strategy=missing, keep_empty_features=True)
                fills = [_plain(v) for v in imputer.fit(np.where(np.isinf(x), np.nan, x)).statistics_]
            return cls(tuple(Column(name, NUMBER, (), fill) for name, fill in zip(names, fills)), encoding,
                       unknown_category)
        frame = _as_frame(x, names)
        columns = []
        for name in names:
            kind = _kind(frame[name], name, categorical)
            cells = _cells(frame[name], kind)
            fill = None
            if missing in IMPUTERS:
                from sklearn.impute import SimpleImputer

                strategy = missing if kind == NUMBER else "most_frequent"
                imputer = SimpleImputer(strategy=strategy, keep_empty_features=True)
                fill = _plain(imputer.fit(cells[:, None]).statistics_[0])
            categories = ()
            if kind == CATEGORY:
                present = cells[~_missing(cells)]
                categories = tuple(_plain(v) for v in np.unique(present if fill is None else
                                                                 np.append(present, np.asarray([fill], object))))
            columns.append(Column(name, kind, categories, fill))
        return cls(tuple(columns), encoding, unknown_category)

    def transform(self, x: Any, where: Any = None) -> np.ndarray:
        """The inputs (n, n_in) of features `x` (a DataFrame with the columns, or an array (n, d)
        of numbers); float64, or `x` itself when it is an array that passes unchanged.
        `where(row)` names a row in messages (``FILE line N``).

        Raises:
          UserError: an unknown category with ``unknown_category=error``.
        """
        if isinstance(x, np.ndarray) and self.is_identity:
            return x
        frame = _as_frame(x, tuple(c.name for c in self.columns))
        if all(c.kind == NUMBER for c in self.columns):  # one conversion of the whole table
            inputs = frame[[c.name for c in self.columns]].to_numpy(
                np.float64, na_value=np.nan, copy=any(c.fill is not None for c in self.columns))
            for j, column in enumerate(self.columns):
                if column.fill is not None:
                    inputs[:, j] = np.where(np.isfinite(inputs[:, j]), inputs[:, j], column.fill)
            return inputs
        blocks = []
        for column in self.columns:
            cells = _cells(frame[column.name], column.kind)
            if column.fill is not None:
                cells = np.where(_missing(cells), np.asarray(column.fill, cells.dtype), cells)
            if column.kind == NUMBER:
                blocks.append(cells.astype(np.float64)[:, None])
                continue
            self._check_known(column, cells, where)
            blocks.append(np.asarray(self._encoder(column).transform(cells[:, None]), np.float64))
        return np.concatenate(blocks, axis=1)

    def _check_known(self, column: Column, cells: np.ndarray, where: Any) -> None:
        unknown = ~np.isin(cells, np.asarray(column.categories, object))
        if self.unknown_category == "ignore" or not unknown.any():
            return
        row = int(np.flatnonzero(unknown)[0])
        at = where(row) if where is not None else f"sample {row}"
        raise UserError(f"{at}, column {column.name!r}: category {cells[row]!r} is not among those of the "
                        f"training split ({', '.join(map(str, column.categories))}); set "
                        "data.unknown_category=ignore to encode it as no category")

    def _encoder(self, column: Column) -> Any:
        """scikit-learn's encoder of `column`, fitted to its saved categories (built once)."""
        if column.name not in self._encoders:
            from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

            categories = [np.asarray(column.categories, object)]
            if self.encoding == "onehot":
                encoder = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)
            else:
                encoder = OrdinalEncoder(categories=categories, handle_unknown="use_encoded_value", unknown_value=-1)
            self._encoders[column.name] = encoder.fit(categories[0][:, None])
        return self._encoders[column.name]

    def as_dict(self) -> dict[str, Any]:
        """What ``features.json`` holds."""
        return {"encoding": self.encoding, "unknown_category": self.unknown_category,
                "columns": [{"name": c.name, "kind": c.kind, **({"categories": list(c.categories)} if c.kind ==
                            CATEGORY else {}), "fill": c.fill} for c in self.columns],
                "inputs": list(self.input_names)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureEncoding:
        columns = tuple(Column(c["name"], c["kind"], tuple(c.get("categories", ())), c.get("fill"))
                        for c in values["columns"])
        return cls(columns, values["encoding"], values["unknown_category"])


def _as_frame(x: Any, names: tuple[str, ...]) -> Any:
    import pandas as pd

    return x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x), columns=list(names), copy=False)


def _kind(values: Any, name: str, categorical: frozenset[str]) -> str:
    """A column's kind: `CATEGORY` for text and for the columns `categorical` names, else `NUMBER`."""
    return CATEGORY if name in categorical or is_text(values) else NUMBER


def _cells(values: Any, kind: str) -> np.ndarray:
    """A column's cells as its `kind` takes them (`_category_cells`, `_number_cells`)."""
    return _category_cells(values) if kind == CATEGORY else _number_cells(values)


def _number_cells(values: Any) -> np.ndarray:
    """A numeric column as float64, an infinite value as missing (NaN)."""
    cells = values.to_numpy(np.float64, na_value=np.nan)
    return np.where(np.isinf(cells), np.nan, cells)


def _category_cells(values: Any) -> np.ndarray:
    """A category column as objects: text stripped (booleans as text), numbers as floats, missing as NaN."""
    from pandas.api.types import is_bool_dtype

    missing = values.isna().to_numpy()
    if is_text(values) or is_bool_dtype(values):
        cells = values.astype(str).str.strip().to_numpy(object)
    else:
        cells = values.to_numpy(np.float64, na_value=np.nan).astype(object)
    cells[missing] = np.nan
    return cells


def _missing(cells: np.ndarray) -> np.ndarray:
    """Which cells are missing (NaN), for float and object arrays alike."""
    import pandas as pd

    return np.asarray(pd.isna(cells), bool)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON writes (text stays text)."""
    return value.item() if isinstance(value, np.generic) else value


def missing_cells(x: Any, names: tuple[str, ...], categorical: frozenset[str]) -> np.ndarray:
    """Which feature cells (n, d) are missing: NaN, empty, or an infinite number."""
    if isinstance(x, np.ndarray):
        return ~np.isfinite(x)
    frame = _as_frame(x, names)
    return np.stack([_missing(_cells(frame[name], _kind(frame[name], name, categorical))) for name in names], axis=1)


def is_text(values: Any) -> bool:
    """Whether a pandas column holds text (object or string dtype) rather than numbers or booleans."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return not (is_numeric_dtype(values) or is_bool_dtype(values))
