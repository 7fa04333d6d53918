"""Mixed tables (issue 23): text columns as categories, missing values imputed on the training split,
Parquet, columns by glob, and the encoding a run saves and evaluation reuses."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jax_mlp import config, jobs
from jax_mlp.data import load_dataset
from jax_mlp.data.encoding import FeatureEncoding
from jax_mlp.errors import UserError


def _cfg(*overrides: str) -> config.Config:
    return config.load(config.compose(["trainer.compilation_cache=false", *overrides]))


def _load(*overrides: str, encoding: FeatureEncoding | None = None):
    return load_dataset(_cfg(*overrides).data, 0, encoding=encoding)


def _error(*overrides: str) -> str:
    with pytest.raises(UserError) as raised:
        _load(*overrides)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def _penguins(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A table shaped like the Palmer penguins: text (island, sex), numbers with gaps, a text label."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    base = {"Adelie": 38.8, "Chinstrap": 48.8, "Gentoo": 47.5}
    frame = pd.DataFrame({
        "island": np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], n)),
        "bill_length_mm": [base[s] + rng.normal(0, 1.5) for s in species],
        "bill_depth_mm": np.where(species == "Gentoo", 15.0, 18.3) + rng.normal(0, 0.7, n),
        "sex": rng.choice(["male", "female"], n),
        "year": rng.choice([2007, 2008, 2009], n),
        "species": species,
    })
    frame.loc[[3, 7], "bill_length_mm"] = np.nan
    frame.loc[5, "sex"] = np.nan
    return frame


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "penguins.csv", **options) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False, **options)
    return path


def test_text_columns_are_one_hot_categories_learned_on_the_training_split(tmp_path):
    path = _csv(tmp_path, _penguins())
    common = ("data=csv", f"data.path={path}", "data.target=species", "data.missing=median")
    data = _load(*common)
    assert data.task == "classification" and data.class_names == ("Adelie", "Chinstrap", "Gentoo")
    assert data.feature_names == ("island=Biscoe", "island=Dream", "island=Torgersen", "bill_length_mm",
                                  "bill_depth_mm", "sex=female", "sex=male", "year")
    onehot = data.train.x[:, [0, 1, 2, 5, 6]]
    assert set(np.unique(onehot)) == {0.0, 1.0}  # indicators are not standardised
    np.testing.assert_array_equal(onehot[:, :3].sum(axis=1), 1)
    # The year column is a number unless declared a category.
    assert _load(*common, "data.categorical=[year]").feature_names[-3:] == ("year=2007.0", "year=2008.0", "year=2009.0")
    ordinal = _load(*common, "data.encoding=ordinal")
    assert ordinal.feature_names == ("island", "bill_length_mm", "bill_depth_mm", "sex", "year")
    saved = ordinal.encoding.as_dict()
    island = saved["columns"][0]
    assert (island["name"], island["kind"], island["categories"]) == ("island", "category",
                                                                      ["Biscoe", "Dream", "Torgersen"])
    assert set(np.unique(ordinal.train.x[:, 0] * ordinal.scaling.x_std[0] + ordinal.scaling.x_mean[0]).round(9)) == {
        0, 1, 2}
    assert FeatureEncoding.from_dict(json.loads(json.dumps(saved))) == ordinal.encoding


def test_imputation_is_fitted_on_the_training_split_only(tmp_path):
    frame = pd.DataFrame({"a": np.arange(40, dtype=float), "y": np.arange(40) % 2})
    frame.loc[0, "a"] = np.nan
    path = _csv(tmp_path, frame, "gaps.csv")
    for strategy in ("mean", "median", "most_frequent"):
        data = _load("data=csv", f"data.path={path}", "data.target=y", f"data.missing={strategy}",
                     "data.standardize=false")
        fill = data.encoding.columns[0].fill
        train_values = data.train.x[:, 0]
        # The fill is the statistic of the training rows (other than the one imputed), not of all 39 numbers.
        imputed = np.flatnonzero(train_values == fill)
        kept = np.delete(train_values, imputed[:1])  # the training rows' own values
        statistic = {"mean": np.mean, "median": np.median}.get(strategy)
        if statistic is not None:
            assert fill == pytest.approx(statistic(kept))
            assert fill != pytest.approx(statistic(frame["a"].dropna()))
        else:
            assert fill in kept
        assert not np.isnan(data.train.x).any()
    assert "data.missing=drop" in _error("data=csv", f"data.path={path}", "data.target=y")


def test_unseen_categories_are_no_category_or_an_error(tmp_path):
    train = _penguins()
    path = _csv(tmp_path, train)
    data = _load("data=csv", f"data.path={path}", "data.target=species", "data.missing=median")
    new = train.copy()
    new.loc[:, "island"] = "Atlantis"
    moved = _csv(tmp_path, new, "new.csv")
    again = _load("data=csv", f"data.path={moved}", "data.target=species", "data.missing=median",
                  encoding=data.encoding)
    assert np.all(again.train.x[:, :3] == 0)  # ignore: no category
    strict = FeatureEncoding.from_dict({**data.encoding.as_dict(), "unknown_category": "error"})
    with pytest.raises(UserError) as raised:
        _load("data=csv", f"data.path={moved}", "data.target=species", "data.missing=median", encoding=strict)
    assert str(raised.value).startswith(f"{moved} line ")
    assert str(raised.value).endswith(", column 'island': category 'Atlantis' is not among those of the training "
                                      "split (Biscoe, Dream, Torgersen); set data.unknown_category=ignore to encode "
                                      "it as no category")


def test_parquet_equals_csv_and_columns_by_glob_and_exclude(tmp_path):
    frame = _penguins()
    csv, parquet = _csv(tmp_path, frame), tmp_path / "penguins.parquet"
    frame.to_parquet(parquet)
    common = ("data.target=species", "data.missing=median", "data.features=[bill_*,island,sex,year]",
              "data.exclude=[year]")
    a, b = _load("data=csv", f"data.path={csv}", *common), _load("data=parquet", f"data.path={parquet}", *common)
    assert a.feature_names == b.feature_names == ("bill_length_mm", "bill_depth_mm", "island=Biscoe", "island=Dream",
                                                  "island=Torgersen", "sex=female", "sex=male")
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(getattr(a, split).x, getattr(b, split).x, rtol=1e-12)
        np.testing.assert_array_equal(getattr(a, split).y, getattr(b, split).y)
    assert "is not a Parquet file" in _error("data=parquet", f"data.path={csv}", "data.target=species")


def test_the_index_column_pandas_writes_is_left_out_with_a_warning(tmp_path, caplog):
    # Sorted by class, the index leaks the label: before, it was taken as a feature.
    frame = pd.DataFrame({"a": np.random.default_rng(0).normal(size=40), "y": np.repeat([0, 1], 20)})
    path = tmp_path / "indexed.csv"
    frame.to_csv(path)  # pandas writes the index first, under an empty name
    with caplog.at_level(logging.WARNING, logger="jax_mlp"):
        data = _load("data=csv", f"data.path={path}", "data.target=y")
    assert data.feature_names == ("a",)
    assert any("leaving out its first column, which has no name" in r.message for r in caplog.records)


def test_messages_lead_to_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _error("data=csv", "data.path=nowhere.csv", "data.target=y") == (
        f"data.path: no file at nowhere.csv (a relative path, read from {tmp_path})")
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("a;b;y\n1;2;3\n4;5;6\n")
    assert _error("data=csv", f"data.path={semicolons}", "data.target=y") == (
        f"{semicolons} reads as one column named 'a;b;y' with data.delimiter=','; it looks separated by ';': "
        "set 'data.delimiter=;'")
    commas = tmp_path / "decimal.csv"
    commas.write_text("a;y\n" + "".join(f"{i},5;{i}\n" for i in range(10)))
    assert _error("data=csv", f"data.path={commas}", "data.target=y", "data.delimiter=';'") == (
        f"{commas}: column 'a' holds numbers with a decimal comma ('0,5'); set data.decimal=',' (and a "
        "data.delimiter other than the comma, e.g. 'data.delimiter=;')")
    target = tmp_path / "decimal_target.csv"
    target.write_text("a;y\n" + "".join(f"{i};{i},5\n" for i in range(10)))  # before: ten text "classes"
    assert _error("data=csv", f"data.path={target}", "data.target=y", "data.delimiter=';'").startswith(
        f"{target}: column 'y' holds numbers with a decimal comma ('0,5'); set data.decimal=','")
    data = _load("data=csv", f"data.path={commas}", "data.target=y", "data.delimiter=';'", "data.decimal=','",
                 "data.standardize=false", "data.val_fraction=0", "data.test_fraction=0")
    assert sorted(data.train.x[:, 0]) == [i + 0.5 for i in range(10)]


def test_a_mixed_table_trains_and_evaluation_reuses_its_encoding(tmp_path):
    path = _csv(tmp_path, _penguins(300))
    run = tmp_path / "run"
    outcome = jobs.execute(_cfg("model=mlp", "data=csv", f"data.path={path}", "data.target=species",
                                "data.missing=median", "optimizer=adam", "optimizer.lr=0.01", "trainer.steps=300"),
                           run)
    summary = json.loads((run / "summary.json").read_text())
    assert outcome.status == "completed" and summary["test_accuracy"] >= 0.95
    saved = json.loads((run / "features.json").read_text())
    assert saved["inputs"][:3] == ["island=Biscoe", "island=Dream", "island=Torgersen"]
    assert jobs.evaluate_run(run, "test")["accuracy"] == summary["test_accuracy"]
    assert summary["data_files"] == [{"path": str(path), "size": path.stat().st_size,
                                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]
    # The file shuffled in place: before, evaluation re-split it and reported other metrics silently.
    pd.read_csv(path).sample(frac=1.0, random_state=1).to_csv(path, index=False)
    with pytest.raises(UserError) as raised:
        jobs.evaluate_run(run, "test")
    assert str(raised.value) == (f"the data the run trained on changed since: {path} (changed); its splits and "
                                 "metrics would not be the run's: restore the file, or evaluate anyway with "
                                 "--allow-changed-data")
    assert 0 <= jobs.evaluate_run(run, "test", allow_changed_data=True)["accuracy"] <= 1
    path.unlink()
    with pytest.raises(UserError, match=f"changed since: {path} \\(gone\\)"):
        jobs.evaluate_run(run, "test")


def test_the_palmer_penguins_train_end_to_end_beside_scikit_learn(tmp_path):
    """The README's "Your own table": a public mixed table (text, gaps, a text label) from its PyPI package."""
    import palmerpenguins
    from sklearn.neural_network import MLPClassifier

    path = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
    overrides = ("model=mlp", "data=csv", f"data.path={path}", "data.target=species", "data.missing=median",
                 "optimizer=adam", "optimizer.lr=0.01", "trainer.steps=500")
    outcome = jobs.execute(_cfg(*overrides), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert outcome.status == "completed" and summary["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert summary["samples"] == {"train": 206, "val": 69, "test": 69}
    # scikit-learn's MLP on the same encoded, scaled splits.
    data = load_dataset(_cfg(*overrides).data, 0)
    reference = MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=2000, random_state=0).fit(data.train.x, data.train.y)
    sklearn_accuracy = reference.score(data.test.x, data.test.y)
    assert sklearn_accuracy >= 0.97 and summary["test_accuracy"] >= sklearn_accuracy - 0.03
