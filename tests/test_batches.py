"""Mini-batches, classification losses and metrics, evaluation, and the experiments' targets."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_mlp import config, errors, jobs, loop, losses, model, optim, train


def _task(num_train: int, batch_size: int | None, activation: str = "tanh") -> train.Task:
    return train.Task(model.MLP((3, 5, 1), activation, "identity"), "mse",
                      optim.kind_of("sgd", {}), num_train, batch_size)


@pytest.mark.parametrize("num_train, batch_size", [(10, 4), (12, 4), (7, 7), (5, 2)])
def test_every_sample_is_seen_once_an_epoch(num_train, batch_size):
    task = _task(num_train, batch_size)
    key = jax.random.key(0)
    orders = []
    for epoch in range(3):
        order = np.asarray(train.epoch_order(task, key, jnp.int32(epoch)))
        assert order.shape == (task.steps_per_epoch, batch_size)
        seen = [order[b][np.asarray(w) > 0] if (w := train.batch_weights(task, jnp.int32(b))) is not None
                else order[b] for b in range(task.steps_per_epoch)]
        seen = np.concatenate(seen)
        assert sorted(seen.tolist()) == list(range(num_train))
        orders.append(seen)
    if num_train > 2:
        assert not np.array_equal(orders[0], orders[1])


def test_a_partial_last_batch_weighs_only_its_real_samples():
    task = _task(10, 4)
    np.testing.assert_array_equal(train.batch_weights(task, jnp.int32(2)), [1, 1, 0, 0])
    np.testing.assert_array_equal(train.batch_weights(task, jnp.int32(0)), [1, 1, 1, 1])
    assert train.batch_weights(_task(12, 4), jnp.int32(2)) is None
    y, out = jnp.array([[1.0], [2.0], [5.0], [5.0]]), jnp.array([[0.0], [0.0], [0.0], [0.0]])
    assert float(losses.mse(out, y, jnp.array([1.0, 1.0, 0.0, 0.0]))) == pytest.approx(2.5)


def test_fused_mini_batch_epochs_equal_a_plain_loop():
    num_train, batch = 10, 4
    task = _task(num_train, batch)
    x = jax.random.normal(jax.random.key(1), (num_train, 3), jnp.float32)
    y = jnp.sum(x, axis=1, keepdims=True)
    params = model.init_params(jax.random.key(2), (3, 5, 1))
    tx = optim.make_optimizer(task.optimizer, {"learning_rate": 0.05})
    state = train.init_state(params, tx, jax.random.key(3))
    step = train.compiled(task).train_step
    plain = state
    for epoch in range(3):
        order = train.epoch_order(task, state.key, jnp.int32(epoch))
        for b in range(task.steps_per_epoch):
            weights = train.batch_weights(task, jnp.int32(b))
            plain, _ = step(plain, x[order[b]], y[order[b]], weights)
    fused = loop.fit_one(state, x, y, task, steps=3 * task.steps_per_epoch, log_every=4).state
    for a, b in zip(jax.tree_util.tree_leaves(plain.params), jax.tree_util.tree_leaves(fused.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mini_batch_fit_compiles_once_across_epochs_and_learning_rates():
    task = _task(10, 4, activation="silu")  # a task no other test compiles
    x = jnp.ones((10, 3), jnp.float32)
    y = jnp.ones((10, 1), jnp.float32)
    for lr in (0.1, 0.01):
        params = model.init_params(jax.random.key(0), (3, 5, 1))  # fit donates the last state's
        state = train.init_state(params, optim.make_optimizer(task.optimizer, {"learning_rate": lr}),
                                 jax.random.key(0))
        loop.fit_one(state, x, y, task, steps=7, log_every=2)
    assert train.group_program(task, 1, None).span._cache_size() == 1


def test_classification_losses_and_accuracy():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    labels = jnp.array([0, 1])
    expected = np.mean([np.log(1 + 2 * np.exp(-2.0)), -(1 - np.log(1 + np.e + np.e**3))])
    assert float(losses.softmax_cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.accuracy(logits, labels)) == 0.5
    single = jnp.array([[2.0], [-1.0]])
    expected = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))])
    assert float(losses.sigmoid_cross_entropy(single, jnp.array([1, 0]))) == pytest.approx(expected, rel=1e-6)
    assert float(losses.accuracy(single, jnp.array([1, 1]))) == 0.5


def test_regression_metrics_in_the_targets_units():
    out = jnp.array([[1.0], [2.0], [4.0]])
    y = jnp.array([[1.0], [3.0], [5.0]])
    m = losses.regression_metrics(out, y, jnp.array([2.0]))
    assert float(m["rmse"]) == pytest.approx(2 * np.sqrt(2 / 3))
    assert float(m["mae"]) == pytest.approx(2 * 2 / 3)
    assert float(m["r2"]) == pytest.approx(1 - 2 / 8)


def _run(tmp_path: Path, *overrides: str) -> dict:
    cfg = config.load(config.compose(["trainer.compilation_cache=false", *overrides]))
    jobs.execute(cfg, tmp_path)
    return json.loads((tmp_path / "summary.json").read_text())


def test_sine_reaches_a_validation_rmse_below_0_1(tmp_path):
    summary = _run(tmp_path, "experiment=sine")
    assert summary["val_rmse"] < 0.1 and summary["config"]["data"]["noise"] == 0.0
    assert summary["objective"] == summary["val_loss"]


def test_digits_trains_to_high_accuracy_and_logs_evaluations(tmp_path):
    summary = _run(tmp_path, "experiment=digits")
    assert summary["test_accuracy"] > 0.95 and summary["samples"] == {"train": 1077, "val": 360, "test": 360}
    assert summary["loss"] == "softmax_cross_entropy" and summary["epochs"] == 100
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == list(range(0, 101, 10))
    assert all("val_accuracy" in l for l in lines)
    assert "test_accuracy" in lines[-1] and "test_accuracy" not in lines[-2]
    assert lines[-1]["test_accuracy"] == summary["test_accuracy"]
    assert lines[0]["lr"] == 0.003 and lines[-1]["lr"] == 0.0


def test_classification_with_a_regression_loss_is_refused(tmp_path):
    with pytest.raises(errors.UserError, match="trainer.loss=mae is a regression loss but data 'iris'"):
        _run(tmp_path, "experiment=iris", "trainer.loss=mae")
    with pytest.raises(errors.UserError, match="model.output_activation must be identity for classification"):
        _run(tmp_path, "experiment=iris", "model.output_activation=sigmoid")
    with pytest.raises(errors.UserError, match="model.output_size is 4 but data 'iris' has 3"):
        _run(tmp_path, "experiment=iris", "model.output_size=4")


@pytest.mark.slow
def test_evaluate_script_reproduces_the_recorded_metrics(train_cli, run_script):
    result, out = train_cli("experiment=moons", "trainer.epochs=5")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    for split in ("test", "val"):
        evaluated = run_script("evaluate.py", str(out), "--split", split)
        assert evaluated.returncode == 0, evaluated.stderr
        assert f"{split}_accuracy " in evaluated.stdout
        eval_json = json.loads((out / "eval.json").read_text())
        assert eval_json["split"] == split
        assert eval_json["accuracy"] == summary[f"{split}_accuracy"]
        assert eval_json["loss"] == summary[f"{split}_loss"]
    missing = run_script("evaluate.py", str(out / "nope"))
    assert missing.returncode == 2 and missing.stderr.startswith("jax_mlp: error: ") and "summary.json" in missing.stderr
    (out / "scaling.json").unlink()
    unscaled = run_script("evaluate.py", str(out))
    assert unscaled.returncode == 2
    assert unscaled.stderr == f"jax_mlp: error: {out} lacks scaling.json, the standardisation its params expect\n"


def test_evaluating_a_sweeps_folder_names_its_jobs_folders(tmp_path):
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(errors.UserError) as raised:
        jobs.restore_run(tmp_path)
    assert str(raised.value) == (f"{tmp_path} is a sweep's folder; give one of its jobs' folders ({tmp_path / '0'}, "
                                 "...); its sweep_summary.md holds every job's final metrics")
    with pytest.raises(errors.UserError, match=r"is not a run folder \(it has no summary.json\)"):
        jobs.restore_run(tmp_path / "0")
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "summary.json").write_text("{}")  # named instead of its folder: "has no summary.json"
    with pytest.raises(errors.UserError) as raised:
        jobs.restore_run(tmp_path / "0" / "summary.json")
    assert str(raised.value) == f"{tmp_path / '0' / 'summary.json'} is a file; give the run's folder ({tmp_path / '0'})"


def test_a_run_is_evaluated_from_elsewhere_and_where_its_platform_is_missing(run_script, tmp_path):
    """A relative data.path is read from where the run started; a platform this machine lacks
    (a run trained on a GPU, evaluated on a laptop) gives way to JAX's default."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "points.npz", x=x, y=x @ np.array([[1.0], [-2.0]]))
    out = tmp_path / "run"
    result = run_script("train.py", f"hydra.run.dir={out}", "model=mlp", "data=npz", "data.path=data/points.npz",
                        "trainer.steps=20", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["working_dir"] == str(tmp_path)
    summary["config"]["trainer"]["platform"] = "tpu"
    (out / "summary.json").write_text(json.dumps(summary))
    evaluated = run_script("evaluate.py", str(out), "--split", "test")  # from the repository's root
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stderr == "the run trained with trainer.platform=tpu, which this machine lacks; using cpu\n"
    eval_json = json.loads((out / "eval.json").read_text())
    assert eval_json["rmse"] == summary["test_rmse"] and eval_json["loss"] == summary["test_loss"]
