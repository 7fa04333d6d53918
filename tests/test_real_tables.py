"""Tables as users have them (issue 23): defaults that cannot finish a run that learned nothing
without saying so, tasks and labels decided from the data, messages that lead to the fix."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from jax_mlp import config, jobs
from jax_mlp.data import CLASSIFICATION, REGRESSION, load_dataset
from jax_mlp.errors import UserError


def _table(path: Path, columns: dict[str, np.ndarray | list]) -> Path:
    """Writes `columns` as a CSV with a header row; returns `path`."""
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    path.write_text(",".join(names) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def _cfg(*overrides: str) -> config.Config:
    return config.load(config.compose(["trainer.compilation_cache=false", *overrides]))


def _summary(tmp_path: Path, *overrides: str) -> tuple[jobs.Outcome, dict]:
    outcome = jobs.execute(_cfg(*overrides), tmp_path)
    return outcome, json.loads((tmp_path / "summary.json").read_text())


def _house_prices(path: Path, n: int = 400) -> Path:
    """A regression table whose target is in its own large units (prices about 200000 +- 60000)."""
    rng = np.random.default_rng(0)
    rooms, area = rng.integers(1, 7, n), rng.uniform(30, 250, n)
    price = 20000 * rooms + 900 * area + rng.normal(0, 5000, n)
    return _table(path, {"rooms": rooms, "area": area.round(1), "price": price.round(2)})


def test_regression_in_the_targets_own_units_learns_by_default(tmp_path):
    """Before: targets unscaled by default, SGD lr 0.1 learned the mean (R2 0) or diverged."""
    path = _house_prices(tmp_path / "houses.csv")
    outcome, summary = _summary(tmp_path / "run", "model=mlp", "data=csv", f"data.path={path}", "data.target=price")
    assert outcome.status == "completed" and outcome.message == ""
    assert summary["task"] == REGRESSION and summary["val_r2"] > 0.95 and "warning" not in summary
    assert 2000 < summary["val_rmse"] < 20000  # in the targets' own units, near the noise's 5000
    # Unscaled (the old default) it diverges, and the advice names the standardisation.
    outcome, summary = _summary(tmp_path / "unscaled", "model=mlp", "data=csv", f"data.path={path}",
                                "data.target=price", "data.standardize_targets=false")
    assert outcome.status == "diverged" and summary["status"] == "diverged"
    assert "the targets are unscaled and spread widely (std 6" in outcome.message
    assert "data.standardize_targets=true" in outcome.message


def test_a_run_no_better_than_a_constant_ends_with_a_warning(tmp_path):
    path = _house_prices(tmp_path / "houses.csv")
    outcome, summary = _summary(tmp_path / "mean", "model=mlp", "data=csv", f"data.path={path}",
                                "data.target=price", "data.standardize_targets=false", "optimizer.lr=1e-9",
                                "trainer.steps=10")
    assert summary["status"] == outcome.status == "completed" and summary["val_r2"] <= 0
    expected = (f"the run learned nothing useful: val R2 {summary['val_r2']:.4g} <= 0: the model predicts no better "
                "than the mean; standardise the targets (data.standardize_targets=true)")
    assert summary["warning"] == expected and outcome.message == f"warning: {expected}"
    # Classification: 80% of one class and features of pure noise; the model can only say "yes".
    rng = np.random.default_rng(1)
    labels = np.where(rng.permutation(200) < 160, "yes", "no")
    noise = _table(tmp_path / "noise.csv", {"a": rng.normal(size=200).round(3), "label": labels})
    outcome, summary = _summary(tmp_path / "majority", "model=mlp", "data=csv", f"data.path={noise}",
                                "data.target=label", "trainer.steps=200")
    assert summary["task"] == CLASSIFICATION and summary["val_accuracy"] <= 0.8
    assert summary["warning"].startswith(f"the run learned nothing useful: val accuracy "
                                         f"{summary['val_accuracy']:.4g} is no better than always predicting the "
                                         "most frequent class (0.8)")


def test_task_auto_decides_from_the_target_column_and_logs_it(tmp_path, caplog):
    rng = np.random.default_rng(2)
    x = rng.normal(size=40).round(3)
    cases = {  # target column -> the task auto decides
        "flag": (np.arange(40) % 2, CLASSIFICATION),  # a 0/1 target: before, a regression
        "grade": (np.array([3, 4, 5, 6, 8] * 8), CLASSIFICATION),
        "species": (np.array(["Adelie", "Gentoo"] * 20), CLASSIFICATION),
        "price": (rng.integers(1000, 100000, 40), REGRESSION),  # whole numbers, nearly all distinct
        "height": (rng.normal(170, 10, 40).round(1), REGRESSION),
    }
    for name, (target, task) in cases.items():
        path = _table(tmp_path / f"{name}.csv", {"x": x, name: target})
        with caplog.at_level(logging.INFO, logger="jax_mlp"):
            caplog.clear()
            data = load_dataset(_cfg("data=csv", f"data.path={path}", f"data.target={name}").data, 0)
        assert data.task == task, name
        other = REGRESSION if task == CLASSIFICATION else CLASSIFICATION
        assert [r.message for r in caplog.records if r.message.startswith("data.task=auto")] == [
            caplog.records[0].message] and caplog.records[0].message.endswith(f"set data.task={other} otherwise")
        assert caplog.records[0].message.startswith(f"data.task=auto: {task}, as column '{name}' holds ")
    grades = load_dataset(_cfg("data=csv", f"data.path={tmp_path / 'grade.csv'}", "data.target=grade").data, 0)
    assert grades.class_names == ("3", "4", "5", "6", "8") and grades.output_size == 5  # before: 9 classes


def test_text_label_with_task_regression_names_the_value_plainly(tmp_path):
    path = _table(tmp_path / "p.csv", {"x": [1, 2, 3, 4], "species": ["Adelie", "Gentoo", "Adelie", "Gentoo"]})
    with pytest.raises(UserError) as raised:
        load_dataset(_cfg("data=csv", f"data.path={path}", "data.target=species", "data.task=regression").data, 0)
    assert str(raised.value) == (f"{path} line 2, column 'species': 'Adelie' is not a number "
                                 "(set data.task=classification for class labels)")


def test_a_warning_reaches_stderr_with_exit_status_0(train_cli, tmp_path):
    path = _house_prices(tmp_path / "houses.csv", n=100)
    process, out = train_cli("model=mlp", "data=csv", f"data.path={path}", "data.target=price",
                             "data.standardize_targets=false", "optimizer.lr=1e-9", "trainer.steps=5")
    assert process.returncode == 0, process.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert process.stderr.splitlines()[-1] == f"jax_mlp: warning: {summary['warning']}"


def test_outputs_follow_the_umask_and_a_refused_run_leaves_no_folder(run_script, train_cli, tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    process, out = train_cli("trainer.steps=10")
    assert process.returncode == 0, process.stderr
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in out.iterdir() if path.is_file()}
    assert {"params.npz", "summary.json", "scaling.json", "metrics.jsonl"} <= modes.keys()
    assert set(modes.values()) == {0o666 & ~mask}  # before: params.npz and summary.json were 0600
    process = run_script("train.py", "hydra.run.dir=outputs/day/run", "data=csv", "data.path=/no/such.csv",
                         "data.target=y", cwd=tmp_path)
    assert (process.returncode, process.stderr) == (2, "jax_mlp: error: data.path: no file at /no/such.csv\n")
    assert not (tmp_path / "outputs").exists()


def test_a_run_saved_with_data_drop_nonfinite_reads_as_data_missing():
    saved = config.as_saved(_cfg("data=csv", "data.path=x.csv", "data.target=y"))
    for dropped, missing in ((True, "drop"), (False, "error")):
        data = {k: v for k, v in saved["data"].items() if k not in ("missing", "drop_missing_labels")}
        old = {**saved, "data": {**data, "drop_nonfinite": dropped}}
        cfg = config.from_saved(old)
        assert (cfg.data.missing, cfg.data.drop_missing_labels) == (missing, dropped)


def test_the_default_command_imports_neither_scikit_learn_nor_pandas(train_cli, monkeypatch):
    """Half a second each: only the data that need them import them (the seed note does not)."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # Python writes each import to stderr
    process, _ = train_cli("trainer.steps=10")
    assert process.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in process.stderr.splitlines()
                if line.startswith("import time:")}
    assert "jax" in imported and not {"sklearn", "pandas", "pyarrow"} & imported
