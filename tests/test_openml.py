"""``data=openml`` (issue 23) without a network: scikit-learn's own recorded OpenML responses for iris
(its test data) laid out as its cache folder, which `fetch_openml` reads instead of downloading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sklearn

from jax_mlp import config
from jax_mlp.data import load_dataset
from jax_mlp.errors import UserError

RECORDED = Path(sklearn.__file__).parent / "datasets" / "tests" / "data" / "openml" / "id_61"
# Each recorded response -> its place under data_home/openml/openml.org (sklearn's cache layout).
CACHE_PATHS = {
    "api-v1-jd-61.json.gz": "api/v1/json/data/61.gz",
    "api-v1-jdf-61.json.gz": "api/v1/json/data/features/61.gz",
    "api-v1-jdq-61.json.gz": "api/v1/json/data/qualities/61.gz",
    "api-v1-jdl-dn-iris-l-2-dv-1.json.gz": "api/v1/json/data/list/data_name/iris/limit/2/data_version/1.gz",
    "data-v1-dl-61.arff.gz": "data/v1/download/61/iris.arff.gz",
}


@pytest.fixture
def cached_iris(tmp_path: Path) -> Path:
    root = tmp_path / "openml" / "openml.org"
    for recorded, cached in CACHE_PATHS.items():
        (root / cached).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RECORDED / recorded, root / cached)
    return tmp_path


def _load(*overrides: str):
    return load_dataset(config.load(config.compose(["data=openml", *overrides])).data, 0)


def test_an_openml_data_set_loads_from_scikit_learns_cache(cached_iris):
    data = _load("data.name=iris", "data.version=1", f"data.cache_dir={cached_iris}")
    assert data.task == "classification" and data.class_names == ("Iris-setosa", "Iris-versicolor", "Iris-virginica")
    assert data.feature_names == ("sepallength", "sepalwidth", "petallength", "petalwidth")
    assert len(data.train) + len(data.val) + len(data.test) == 150
    by_id = _load("data.name=iris", "data.id=61", f"data.cache_dir={cached_iris}")
    assert by_id.feature_names == data.feature_names
    # Another target: a regression of the petal width on the rest, the class a one-hot category.
    width = _load("data.name=iris", "data.version=1", f"data.cache_dir={cached_iris}", "data.target=petalwidth")
    assert width.task == "regression" and width.feature_names[-3:] == (
        "class=Iris-setosa", "class=Iris-versicolor", "class=Iris-virginica")


def test_an_openml_data_set_neither_cached_nor_reachable_is_one_line(tmp_path):
    with pytest.raises(UserError) as raised:
        _load("data.name=no_such_set", "data.version=1", f"data.cache_dir={tmp_path}")
    message = str(raised.value)
    assert "\n" not in message and message.startswith("cannot fetch the OpenML data set 'no_such_set' (")
    assert message.endswith(f"scikit-learn's cache in {tmp_path / 'openml'} does not hold it; connect, or copy a "
                            "cache that does there")
