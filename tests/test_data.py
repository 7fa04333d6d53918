"""Data sources, splits, scaling and the bad inputs each must refuse (issue: real data)."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from jax_mlp import config
from jax_mlp.data import CLASSIFICATION, REGRESSION, Scaling, load_dataset
from jax_mlp.errors import UserError


def _data(*overrides: str):
    cfg = config.load(config.compose(list(overrides)))
    return cfg.data


def _load(*overrides: str, key: int = 0, scaling: Scaling | None = None):
    return load_dataset(_data(*overrides), key, scaling)


def test_seed_note_is_kept_as_it_is():
    data = _load()
    assert data.task == REGRESSION and data.val is None and data.test is None
    np.testing.assert_array_equal(data.train.x[:, 0], [-1, 0, 1])
    np.testing.assert_array_equal(data.train.y[:, 0], [1, 0, -1])
    assert data.scaling == Scaling()


@pytest.mark.parametrize("name, task, n_in, classes, total", [
    ("digits", CLASSIFICATION, 64, 10, 1797),
    ("iris", CLASSIFICATION, 4, 3, 150),
    ("wine", CLASSIFICATION, 13, 3, 178),
    ("breast_cancer", CLASSIFICATION, 30, 2, 569),
    ("diabetes", REGRESSION, 10, 0, 442),
    ("moons", CLASSIFICATION, 2, 2, 1000),
    ("spirals", CLASSIFICATION, 2, 3, 900),
    ("blobs", CLASSIFICATION, 2, 3, 1000),
    ("sine", REGRESSION, 1, 0, 512),
])
def test_sources(name, task, n_in, classes, total):
    data = _load(f"data={name}")
    assert data.task == task and data.input_size == n_in and data.num_classes == classes
    assert len(data.train) + len(data.val) + len(data.test) == total
    assert len(data.test) == pytest.approx(0.2 * total, abs=1) and len(data.val) == pytest.approx(0.2 * total, abs=1)
    assert len(data.feature_names) == n_in
    assert data.output_size == (1 if classes == 2 else classes or 1)


def test_blobs_takes_its_sizes_from_the_config():
    data = _load("data=blobs", "data.n=500", "data.features=7", "data.classes=4", "data.val_fraction=0",
                 "data.test_fraction=0")
    assert data.train.x.shape == (500, 7) and sorted(set(data.train.y.tolist())) == [0, 1, 2, 3]


def test_splits_are_seeded_stratified_and_scaled_on_train_only():
    a, b, c = _load("data=digits"), _load("data=digits"), _load("data=digits", key=1)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert not np.array_equal(a.test.x, c.test.x)
    counts = lambda y: np.bincount(y, minlength=10) / len(y)  # noqa: E731
    np.testing.assert_allclose(counts(a.test.y), counts(a.train.y), atol=0.01)
    np.testing.assert_allclose(a.train.x.mean(axis=0), 0, atol=1e-12)
    assert not np.allclose(a.test.x.mean(axis=0), 0, atol=1e-3)
    std = a.train.x.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-9) | (std == 0))


def test_a_given_scaling_is_applied_instead_of_fitted():
    fitted = _load("data=iris")
    again = _load("data=iris", scaling=fitted.scaling)
    np.testing.assert_array_equal(fitted.val.x, again.val.x)
    shifted = Scaling(fitted.scaling.x_mean + 1, fitted.scaling.x_std)
    moved = _load("data=iris", scaling=shifted)
    np.testing.assert_allclose(moved.train.x, fitted.train.x - 1 / fitted.scaling.x_std, atol=1e-12)


def test_diabetes_standardises_its_targets():
    data = _load("data=diabetes")
    assert data.scaling.y_mean is not None and abs(float(data.train.y.mean())) < 1e-12


def test_spirals_and_sine_values():
    sine = _load("data=sine", "data.noise=0", "data.standardize=false", "data.standardize_targets=false")
    np.testing.assert_allclose(sine.train.y[:, 0], np.sin(sine.train.x[:, 0]), atol=1e-12)
    assert sine.train.x.min() >= -np.pi and sine.train.x.max() <= np.pi
    spirals = _load("data=spirals", "data.noise=0", "data.standardize=false")
    radius = np.linalg.norm(spirals.train.x, axis=1)
    assert radius.max() <= 1.0 + 1e-12


# Files of the user's, written by the tests.

def test_csv_with_header_named_target_and_features(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,label\n" + "".join(f"{i},{2 * i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(40)))
    data = _load("data=csv", f"data.path={path}", "data.target=label", "data.features=[a,c]",
                 "data.task=classification", "data.standardize=false", "data.val_fraction=0.25",
                 "data.test_fraction=0")
    assert data.feature_names == ("a", "c") and data.class_names == ("no", "yes")
    assert len(data.train) == 30 and len(data.val) == 10
    x = np.concatenate([data.train.x, data.val.x])
    y = np.concatenate([data.train.y, data.val.y])
    row = np.flatnonzero(x[:, 0] == 7)[0]
    assert x[row, 1] == 1 and y[row] == 1


def test_csv_without_header_and_several_targets(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("".join(f"{i};{i * 0.5};{-i}\n" for i in range(10)))
    data = _load("data=csv", f"data.path={path}", "data.header=false", "data.delimiter=';'",
                 "data.target=[1,2]", "data.standardize=false", "data.standardize_targets=false", "data.val_fraction=0",
                 "data.test_fraction=0")
    assert data.train.x.shape == (10, 1) and data.train.y.shape == (10, 2)
    np.testing.assert_array_equal(np.sort(data.train.y[:, 1]), -np.arange(10)[::-1])


def test_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.arange(20.0).reshape(10, 2), labels=np.arange(10) % 3)
    data = _load("data=npz", f"data.path={path}", "data.x_key=inputs", "data.y_key=labels",
                 "data.task=classification", "data.val_fraction=0", "data.test_fraction=0")
    assert data.num_classes == 3 and data.train.x.shape == (10, 2)


def _write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_gzipped_or_not(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n, gz in (("train", 50, True), ("t10k", 20, False)):
        _write_idx(tmp_path / (f"{prefix}-images-idx3-ubyte" + (".gz" if gz else "")),
                   rng.integers(0, 256, (n, 28, 28)), gz)
        _write_idx(tmp_path / (f"{prefix}-labels-idx1-ubyte" + (".gz" if gz else "")), np.arange(n) % 10, gz)
    data = _load("data=mnist", f"data.path={tmp_path}", "data.standardize=false")
    assert data.input_size == 784 and data.num_classes == 10
    assert len(data.train) == 45 and len(data.val) == 5 and len(data.test) == 20
    assert 0 <= data.train.x.min() and data.train.x.max() <= 1
    np.testing.assert_array_equal(data.test.y, np.arange(20) % 10)


# Bad input: each stops before training with one line that says what to change.

def _error(*overrides: str) -> str:
    with pytest.raises(UserError) as raised:
        _load(*overrides)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_missing_files(tmp_path):
    assert "data.path: no file at" in _error("data=csv", f"data.path={tmp_path}/none.csv", "data.target=y")
    assert "data.path is not set" in _error("data=npz")
    assert _error("data=csv", f"data.path={tmp_path}/d.csv") == "data.target is not set; give it with data.target=VALUE"
    message = _error("data=mnist", f"data.path={tmp_path}")
    assert "lacks train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in message
    assert "put the four MNIST or Fashion-MNIST IDX files there" in message
    assert _error("data=mnist", "data.name=kmnist") == (  # without data.path, mnist and fashion_mnist download
        "data.path is not set and data.name=kmnist is not a data set jax_mlp downloads (mnist, fashion_mnist); give "
        "the folder of the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, each may end in .gz) with data.path=DIR")


def test_csv_cell_that_is_not_a_number_names_row_and_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n4,oops,6\n" + "".join(f"{i},{i},{i}\n" for i in range(10)))
    assert _error("data=csv", f"data.path={path}", "data.target=y") == (
        f"{path} line 3, column 'b': 'oops' is not a number, as the column's other values are; correct it (an "
        "empty cell is a missing value), or list the column in data.categorical")


def test_csv_unknown_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n")
    assert _error("data=csv", f"data.path={path}", "data.target=z") == (
        f"{path} has no column 'z' (data.target); its columns are a, b, y")


def test_csv_target_among_the_features_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n")
    assert _error("data=csv", f"data.path={path}", "data.target=y", "data.features=[a,y]") == (
        f"{path}: column 'y' is both a target and a feature; leave it out of data.features (null: every column "
        "but the targets)")


@pytest.mark.parametrize("overrides, message", [
    (["data.target=y", "data.features=[a,b,a]"], "data.features names column 'a' twice"),
    (["data.target=y", "data.features=[0,a]"], "data.features names column 'a' twice"),  # by number and by name
    (["data.target=[y,y]"], "data.target names column 'y' twice"),
])
def test_csv_column_named_twice_is_refused(tmp_path, overrides, message):
    # The features' column was copied into a second input; the target's into a second output.
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n")
    assert _error("data=csv", f"data.path={path}", *overrides) == f"{path}: {message}; name each once"


def test_nonfinite_features_are_counted_and_located_or_dropped(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{'nan' if i in (3, 5) else i},{i}\n" for i in range(20))
                    + "7,inf,1\n")
    message = _error("data=csv", f"data.path={path}", "data.target=y")
    assert message == (f"the features hold 3 missing (NaN or empty) or infinite values in 3 rows (first: {path} line 5, "
                       "column 'b'); set data.missing=drop to drop those rows, or data.missing=mean (median, "
                       "most_frequent) to impute them from the training split")
    data = _load("data=csv", f"data.path={path}", "data.target=y", "data.missing=drop",
                 "data.val_fraction=0", "data.test_fraction=0")
    assert len(data.train) == 18


def test_label_out_of_range(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((6, 2)), y=np.array([0, 1, 2, 0, 1, 5]))
    message = _error("data=npz", f"data.path={path}", "data.task=classification", "data.num_classes=3")
    assert message.endswith("class label 5 (sample 5) is not a class index; with data.num_classes=3 labels are whole "
                            "numbers in [0, 3) (data.num_classes=null: the classes are the distinct labels)")


def test_negative_label(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.array([0, 1, -1, 0]))
    assert "class label -1 (sample 2) is not a class index" in _error(
        "data=npz", f"data.path={path}", "data.task=classification", "data.num_classes=2")
    data = _load("data=npz", f"data.path={path}", "data.task=classification", "data.val_fraction=0",
                 "data.test_fraction=0")
    assert data.class_names == ("-1", "0", "1")  # without data.num_classes: the distinct labels


def test_pickled_npz_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([Payload()], dtype=object), y=np.zeros(1))
    assert "holds pickled objects" in _error("data=npz", f"data.path={path}")
    plain_pickle = tmp_path / "p.npz"
    plain_pickle.write_bytes(pickle.dumps(Payload()))
    assert "holds pickled objects" in _error("data=npz", f"data.path={plain_pickle}")
    assert not marker.exists()


def test_empty_split():
    message = _error("data.val_fraction=0.5", "data.test_fraction=0.4")
    assert message.startswith("splitting 1 samples with a fraction of 0.833333 leaves an empty split")
    assert message.endswith("change data.val_fraction / data.test_fraction")


def test_fractions_that_leave_no_training_data():
    with pytest.raises(UserError, match=r"data.val_fraction \+ data.test_fraction must be below 1"):
        config.load(config.compose(["data=iris", "data.val_fraction=0.5", "data.test_fraction=0.5"]))


def test_unknown_bundled_name():
    assert "is not bundled with scikit-learn; choose one of digits, iris" in _error("data=iris", "data.name=mnist2")


@pytest.mark.parametrize("shape, hint", [
    ((10,), "; for one feature a sample, save x[:, None]"),
    ((10, 4, 4), "; flatten each sample: save x.reshape(len(x), -1)"),
])
def test_npz_features_of_another_rank_say_how_to_reshape_them(tmp_path, shape, hint):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros(shape), y=np.zeros(10))
    assert _error("data=npz", f"data.path={path}") == (
        f"{path}: 'x' must be a 2-D array of real numbers (samples x features), got float64 of shape {list(shape)}{hint}")


@pytest.mark.parametrize("x, y, task, message", [
    # complex features or targets would lose their imaginary parts, dates would become day counts
    (np.ones((6, 2), np.complex64), np.ones(6), "regression",
     "'x' must be a 2-D array of real numbers (samples x features), got complex64 of shape [6, 2]"),
    (np.ones((6, 0)), np.ones(6), "regression",
     "'x' must be a 2-D array of real numbers (samples x features), got float64 of shape [6, 0]"),
    (np.ones((6, 2)), np.ones(6, np.complex128), "regression", "'y' must hold real numbers for regression, got complex128"),
    (np.ones((6, 2)), np.array(["2020-01-01"] * 6, "datetime64[D]"), "regression",
     "'y' must hold real numbers for regression, got datetime64[D]"),
    (np.ones((6, 2)), np.array(list("abcabc")), "regression",
     "'y' must hold real numbers for regression, got <U1; for class labels set data.task=classification"),
    (np.ones((6, 2)), np.ones((6, 2, 2)), "regression",
     "'y' must hold one target a sample (shape [n]) or a row of targets ([n, k]), got shape [6, 2, 2]"),
    (np.ones((6, 2)), np.ones((6, 0)), "regression",
     "'y' must hold one target a sample (shape [n]) or a row of targets ([n, k]), got shape [6, 0]"),
    (np.ones((6, 2)), np.ones((6, 2, 1)), "classification",
     "'y' must hold one target a sample (shape [n]) or a row of targets ([n, k]), got shape [6, 2, 1]"),
    (np.ones((6, 2)), np.ones(6, np.complex64), "classification",
     "'y' must hold class labels (whole numbers or text), got complex64"),
    (np.ones((6, 2)), np.float64(1), "regression", "'x' has 6 rows but 'y' has none (a scalar)"),
])
def test_npz_arrays_that_would_be_misread_are_refused(tmp_path, x, y, task, message):
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    assert _error("data=npz", f"data.path={path}", f"data.task={task}") == f"{path}: {message}"


def test_npz_labels_may_be_text_or_booleans(tmp_path):
    path = tmp_path / "d.npz"
    for labels, names in ((np.array(list("baabab")), ("a", "b")), (np.arange(6) % 2 == 0, ("0", "1"))):
        np.savez(path, x=np.arange(12.0).reshape(6, 2), y=labels)
        data = _load("data=npz", f"data.path={path}", "data.task=classification", "data.val_fraction=0",
                     "data.test_fraction=0", "data.standardize=false")
        assert data.class_names == names and sorted(data.train.y.tolist()) == [0, 0, 0, 1, 1, 1]


def test_csv_as_spreadsheets_save_it_byte_order_mark_tabs_and_empty_cells(tmp_path):
    path = tmp_path / "d.csv"
    rows = "".join(f"{i}\t{'' if i == 3 else 2 * i}\t{'' if i == 5 else 3 * i}\r\n" for i in range(10))
    path.write_bytes(("\ufeffa\tb\ty\r\n" + rows).encode("utf-8"))  # Excel's "Unicode text"
    overrides = ("data=csv", f"data.path={path}", "data.target=y", "data.standardize=false",
                 "data.val_fraction=0", "data.test_fraction=0")
    for tab in ("data.delimiter=\\t", "data.delimiter=tab"):
        assert _error(*overrides, tab) == (f"{path} line 7, column 'y': no target (1 row without one); set "
                                           "data.drop_missing_labels=true to drop such rows, or give them one")
        assert _error(*overrides, tab, "data.drop_missing_labels=true").startswith(
            f"the features hold 1 missing (NaN or empty) or infinite values in 1 rows (first: {path} line 5, "
            "column 'b')")
    data = _load(*overrides, "data.delimiter=tab", "data.drop_missing_labels=true", "data.missing=drop")
    assert data.feature_names == ("a", "b")  # no byte-order mark in the first name
    assert sorted(data.train.x[:, 0]) == [0, 1, 2, 4, 6, 7, 8, 9]


def test_csv_that_is_not_utf8_text_or_lacks_a_label_is_one_line(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("café,y\n1,2\n".encode("latin-1"))
    assert _error("data=csv", f"data.path={latin}", "data.target=y") == (
        f"{latin} is not UTF-8 text (byte 3); save it as CSV in UTF-8")
    labels = tmp_path / "labels.csv"
    labels.write_text("a,y\n1,x\n2,\n3,y\n")
    assert _error("data=csv", f"data.path={labels}", "data.target=y", "data.task=classification") == (
        f"{labels} line 3, column 'y': no target (1 row without one); set data.drop_missing_labels=true to drop "
        "such rows, or give them one")


# mtime=0 and ids: pytest-xdist workers must collect the same test names, and gzip stamps the time
@pytest.mark.parametrize("content, expected", [
    (b"garbage\n", "cannot be read (Not a gzipped file (b'ga'))"),  # named .gz, not gzipped
    (gzip.compress(b"\x00\x00\x08\x03\x00", mtime=0), "is not an IDX file of unsigned bytes"),  # a header cut short
], ids=["not-gzipped", "short-header"])
def test_mnist_files_that_cannot_be_read_are_one_line(tmp_path, content, expected):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / f"{stem}.gz").write_bytes(content)
    assert _error("data=mnist", f"data.path={tmp_path}") == f"{tmp_path / 'train-images-idx3-ubyte.gz'} {expected}"
