"""Tables a user brings: CSV, TSV and Parquet files read with pandas, their columns chosen by name,
number or glob, their targets decided and labelled. Feature columns stay as the file holds them
(numbers and text) until `jax_mlp.data.encoding` encodes them on the training split."""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jax_mlp.data.dataset import REGRESSION, Raw
from jax_mlp.data.encoding import is_text
from jax_mlp.data.labels import decide_task, encode_labels
from jax_mlp.errors import UserError
from jax_mlp.files import fingerprint

log = logging.getLogger("jax_mlp")
Locate = Callable[[int], str]  # a row of a table's file, by its position among the data rows, in words
UNNAMED = "Unnamed: 0"  # pandas' name of a first column without a name (the index `DataFrame.to_csv` writes)


def csv_delimiter(value: str) -> str:
    """``data.delimiter`` as the character it means: ``\\t`` and ``tab`` are a tab."""
    return "\t" if value in ("\\t", "tab") else value


def existing_file(path: str | None, what: str = "data.path") -> Path:
    """The file `path` names; a relative one is read from the current folder (the one the command
    ran in: `jax_mlp.config.with_paths_from`).

    Raises:
      UserError: no path, or no file there (saying which folder a relative path was read from).
    """
    if not path:
        raise UserError(f"{what} is not set; give the file with {what}=PATH")
    file = Path(path).expanduser()
    if file.is_file():
        return file
    if file.is_dir():
        raise UserError(f"{what}: {file} is a folder; give a file in it")
    where = "" if file.is_absolute() else f" (a relative path, read from {Path.cwd()})"
    raise UserError(f"{what}: no file at {file}{where}")


def read_frame(cfg: Any) -> tuple[Any, Path, Locate, tuple[dict[str, Any], ...]]:
    """The table ``data.path`` holds as a pandas DataFrame of text column names, the file, where
    a row of the frame's index is in the file in words (``line 7``, ``row 5``: `locate`), and the
    file's `jax_mlp.files.fingerprint`.

    Raises:
      UserError: a file that is not a table of this kind, not UTF-8 text, or holds no rows.
    """
    import pandas as pd

    file = existing_file(cfg.path)
    files = (fingerprint(file),)
    if cfg.source == "parquet":
        try:
            frame = pd.read_parquet(file).reset_index(drop=True)  # positions, whatever index it saved
        except Exception as error:  # pyarrow's many error types for a file that is not Parquet
            raise UserError(f"{file} is not a Parquet file ({' '.join(str(error).split())[:200]})") from None

        def locate(row: int) -> str:
            return f"row {row + 1}"
    else:
        try:  # utf-8-sig: the byte-order mark spreadsheet programs put first is not part of a column name
            frame = pd.read_csv(file, sep=csv_delimiter(cfg.delimiter), header=0 if cfg.header else None,
                                decimal=cfg.decimal, encoding="utf-8-sig", skipinitialspace=True)
        except UnicodeDecodeError as error:
            raise UserError(f"{file} is not UTF-8 text (byte {error.start}); save it as CSV in UTF-8") from None
        except pd.errors.EmptyDataError:
            raise UserError(f"{file} is empty") from None
        except pd.errors.ParserError as error:
            raise UserError(f"{file} is not a table of the columns its first line names: "
                            f"{_parser_problem(str(error), cfg.header)}") from None

        def locate(row: int) -> str:
            return f"line {_file_line(file, row + (1 if cfg.header else 0))}"
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise UserError(f"{file} has no data rows")
    return frame, file, locate, files


def _file_line(file: Path, row: int) -> int:
    """The 1-based line of `file` that holds its non-empty line number `row` (0-based; the reader
    skips empty lines). Read only for a message: a file's lines are not counted while loading."""
    with open(file, encoding="utf-8-sig", errors="replace") as f:
        seen = -1
        for number, line in enumerate(f, start=1):
            seen += bool(line.strip())
            if seen == row:
                return number
    return row + 1


def _parser_problem(message: str, header: bool) -> str:
    """pandas' tokenizer error as "line N has M cells, the first line K"."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found is None:
        return " ".join(message.split())
    expected, line, saw = found.groups()
    return f"line {line} has {saw} cells, the {'header' if header else 'first line'} has {expected}"


def _is_pattern(ref: str) -> bool:
    return any(c in ref for c in "*?[")


def _columns(refs: list[Any], names: list[str], file: Path, setting: str) -> list[str]:
    """The columns `refs` name, in order: a name, a 0-based number, or a glob (``bill_*``)."""
    chosen = []
    for ref in refs:
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(names):
            chosen.append(names[ref])
        elif str(ref) in names:
            chosen.append(str(ref))
        elif _is_pattern(str(ref)) and (matched := fnmatch.filter(names, str(ref))):
            chosen.extend(matched)
        else:
            raise UserError(f"{file} has no column {ref!r} ({setting}); its columns are {', '.join(names)}")
    return chosen


def _listed(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def choose_columns(cfg: Any, names: list[str], file: Path) -> tuple[list[str], list[str]]:
    """The target and feature columns of a table with columns `names`: ``data.target``, and
    ``data.features`` (null: every other column) less ``data.exclude``. A first column without a
    name (``Unnamed: 0``, the index pandas writes) is left out with a warning, unless named.

    Raises:
      UserError: an unknown column, one named twice, a target among the features, no feature left.
    """
    targets = _columns(_listed(cfg.target), names, file, "data.target")
    if cfg.features is not None:
        features = _columns(_listed(cfg.features), names, file, "data.features")
    else:
        features = [name for name in names if name not in targets]
        if features and features[0] == UNNAMED == names[0]:
            log.warning("%s: leaving out its first column, which has no name (the row numbers pandas' to_csv "
                        "writes); name it in data.features to keep it", file)
            features = features[1:]
    excluded = set(_columns(_listed(cfg.exclude), names, file, "data.exclude"))
    features = [name for name in features if name not in excluded]
    for setting, cols in (("data.target", targets), ("data.features", features)):
        if twice := [c for c in dict.fromkeys(cols) if cols.count(c) > 1]:
            raise UserError(f"{file}: {setting} names column {', '.join(map(repr, twice))} twice; name each once")
    if both := [c for c in features if c in targets]:  # the target among the inputs: the model would copy it
        raise UserError(f"{file}: column {', '.join(map(repr, both))} is both a target and a feature; "
                        "leave it out of data.features (null: every column but the targets)")
    if not features:
        raise UserError(f"{file}: no feature columns are left besides the target")
    return targets, features


def read_table(cfg: Any, seed: int) -> Raw:
    """A table (``data=csv``, ``data=parquet``): ``data.target`` (a column or a list of them)
    against the feature columns (`choose_columns`). Features stay a DataFrame of numbers and text
    (text columns, and those in ``data.categorical``, are categories); an empty cell is a missing
    value. Rows without a target are dropped with ``data.drop_missing_labels``, else refused."""
    frame, file, locate, files = read_frame(cfg)
    return table_raw(frame, cfg, file, locate, files)


def read_openml(cfg: Any, seed: int) -> Raw:
    """A data set of OpenML (``data=openml data.name=NAME`` or ``data.id=ID``) through
    scikit-learn's `fetch_openml`, kept in its cache (``data.cache_dir/openml``, by default
    ``$XDG_CACHE_HOME/jax_mlp/data/openml``); its nominal columns are categories, its default
    target the target unless ``data.target`` names others.

    Raises:
      UserError: no such data set, or no network and nothing cached.
    """
    import urllib.error

    from sklearn.datasets import fetch_openml

    from jax_mlp.data.downloads import cache_folder

    home = cache_folder("openml", cfg.cache_dir)  # scikit-learn's data_home is its parent: it adds openml/
    what = f"OpenML data set {cfg.id if cfg.id is not None else repr(cfg.name)}"
    try:
        with warnings.catch_warnings():  # its retry's warning: the line below says more
            warnings.filterwarnings("ignore", message="A network error occurred", category=UserWarning)
            bunch = fetch_openml(name=None if cfg.id is not None else cfg.name, data_id=cfg.id, version=cfg.version,
                                 data_home=str(home.parent), as_frame=True, parser="auto", n_retries=1, delay=0.1)
    except (urllib.error.URLError, OSError) as error:
        raise UserError(f"cannot fetch the {what} ({getattr(error, 'reason', error)}) and scikit-learn's cache in "
                        f"{home} does not hold it; connect, or copy a cache that does there") from None
    except ValueError as error:  # no data set of that name or version
        raise UserError(f"{what}: {' '.join(str(error).split())}") from None
    frame = bunch.frame.reset_index(drop=True)
    if cfg.target is None:
        cfg = dataclasses.replace(cfg, target=list(bunch.target_names))
    return table_raw(frame, cfg, what, lambda row: f"row {row + 1}", ())


def table_raw(frame: Any, cfg: Any, file: Path | str, locate: Locate, files: tuple[dict[str, Any], ...]) -> Raw:
    """The `Raw` samples of a table's DataFrame `frame` (columns chosen by `cfg`); `file` names
    the table in messages, `locate` a row of it."""
    names = list(frame.columns)
    if len(names) == 1:
        raise UserError(_one_column_hint(file, names[0], cfg))
    targets, features = choose_columns(cfg, names, file)
    frame = _rows_with_targets(frame, targets, file, locate, cfg.drop_missing_labels)
    _hint_decimal_commas(frame[targets], file, cfg, set())  # else taken as text labels
    values = frame[targets].to_numpy()
    named = ", ".join(map(repr, targets))
    task = decide_task(cfg.task, values, f"column{'s' * (len(targets) > 1)} {named}")
    if task == REGRESSION:
        y = _regression_targets(frame, targets, file, locate, cfg)
        classes: tuple[str, ...] = ()
    elif len(targets) > 1:
        raise UserError(f"{file}: classification takes one label column, got {len(targets)} ({named})")
    else:
        y, classes = encode_labels(values[:, 0], cfg.num_classes, f"{file} column {targets[0]!r}")
    categorical = set(_columns(_listed(cfg.categorical), names, file, "data.categorical"))
    x = frame[features]
    _hint_decimal_commas(x, file, cfg, categorical)
    _refuse_stray_text(x, file, locate, categorical)
    categorical &= set(features)
    if not categorical and not any(is_text(x[name]) for name in features):  # numbers only: one array
        x = x.to_numpy(np.float64, na_value=np.nan)  # often a view of pandas' own column-major block
    return Raw(x, y, task, tuple(features), classes, categorical=frozenset(categorical),
               origin=str(file), lines=frame.index.to_numpy(), locate=locate, files=files)


def _rows_with_targets(frame: Any, targets: list[str], file: Path, locate: Locate, drop: bool) -> Any:
    """`frame` without rows whose target is missing (empty) when `drop`; else refuses them."""
    missing = frame[targets].isna().to_numpy()
    rows = missing.any(axis=1)
    if not rows.any():
        return frame
    row, col = np.argwhere(missing)[0]
    first, count = f"{locate(int(frame.index[row]))}, column {targets[col]!r}", int(rows.sum())
    if not drop:
        raise UserError(f"{file} {first}: no target ({count} row{'s' * (count > 1)} without one); set "
                        "data.drop_missing_labels=true to drop such rows, or give them one")
    log.warning("dropping the %d rows of %s without a target (first: %s)", count, file, first)
    return frame[~rows]


def _refuse_stray_text(x: Any, file: Path, locate: Locate, categorical: set[str]) -> None:
    """Refuses a text cell in a column of numbers (at least `NUMERIC_SHARE` of its cells): a typo,
    or a missing value written as text, that would make the whole column categories."""
    for name in x.columns:
        column = x[name]
        if name in categorical or not is_text(column):
            continue
        numbers, row = _as_numbers(column)
        if row is not None and numbers.notna().sum() >= NUMERIC_SHARE * column.notna().sum():
            raise UserError(f"{file} {locate(int(x.index[row]))}, column {name!r}: {str(column.iloc[row])!r} "
                            "is not a number, as the column's other values are; correct it (an empty cell is a "
                            "missing value), or list the column in data.categorical")


NUMERIC_SHARE = 0.9  # of a text column's cells that are numbers, from which its text cells are refused


def _regression_targets(frame: Any, targets: list[str], file: Path, locate: Locate, cfg: Any) -> np.ndarray:
    """The target columns as float64 (n, k); a text cell is refused with its line and column."""
    columns = []
    for name in targets:
        column = frame[name]
        numbers, row = _as_numbers(column)
        if row is not None:
            hint = (" (a decimal comma? set data.decimal=',')" if _decimal_comma(str(column.iloc[row]))
                    else " (set data.task=classification for class labels)")
            raise UserError(f"{file} {locate(int(frame.index[row]))}, column {name!r}: "
                            f"{str(column.iloc[row])!r} is not a number{hint}")
        columns.append(numbers.to_numpy(np.float64, na_value=np.nan))
    return np.stack(columns, axis=1)


def _as_numbers(column: Any) -> tuple[Any, int | None]:
    """A column's cells as numbers (NaN where missing or text), and the position of its first
    cell of text that is no number (None when there is none)."""
    import pandas as pd

    numbers = pd.to_numeric(column, errors="coerce")
    text = (numbers.isna() & column.notna()).to_numpy()
    return numbers, int(np.flatnonzero(text)[0]) if text.any() else None


def _decimal_comma(text: str) -> bool:
    return re.fullmatch(r"\s*-?\d+,\d+\s*", text) is not None


def _hint_decimal_commas(x: Any, file: Path, cfg: Any, categorical: set[str]) -> None:
    """Refuses a text feature column whose every value is a number written with a decimal comma
    (``39,1``) when ``data.decimal`` is the point: it would become categories."""
    if cfg.source != "csv" or cfg.decimal == ",":
        return
    for name in x.columns:
        if name in categorical or not is_text(x[name]):
            continue
        column = x[name].dropna()
        if len(column) and all(map(_decimal_comma, map(str, column.iloc[:100]))):
            raise UserError(f"{file}: column {name!r} holds numbers with a decimal comma ({column.iloc[0]!r}); set "
                            "data.decimal=',' (and a data.delimiter other than the comma, e.g. 'data.delimiter=;')")


def _one_column_hint(file: Path, name: str, cfg: Any) -> str:
    """The message for a CSV read as one column: most often the delimiter is another."""
    for candidate in (";", "\t", "|", ",") if cfg.source == "csv" else ():
        if candidate != csv_delimiter(cfg.delimiter) and candidate in name:
            shown = "tab" if candidate == "\t" else f"'{candidate}'"
            override = "data.delimiter=tab" if candidate == "\t" else f"'data.delimiter={candidate}'"
            return (f"{file} reads as one column named {name[:60]!r} with data.delimiter="
                    f"{cfg.delimiter!r}; it looks separated by {shown}: set {override}")
    return f"{file} holds one column ({name[:60]!r}); a table needs a target and at least one feature column"


LOADERS = {"csv": read_table, "parquet": read_table, "openml": read_openml}
