"""Losses against hand values; optimizers against the update rules and Optax's own."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax_mlp import losses, optim
from jax_mlp.errors import UserError

PRED = jnp.array([[1.0, 2.0], [3.0, -1.0]])
TARGET = jnp.array([[1.5, 2.0], [0.0, -1.0]])


def test_mse_mae_huber_values():
    assert float(losses.mse(PRED, TARGET)) == pytest.approx((0.25 + 0 + 9 + 0) / 4)
    assert float(losses.mae(PRED, TARGET)) == pytest.approx((0.5 + 0 + 3 + 0) / 4)
    assert float(losses.huber(PRED, TARGET)) == pytest.approx((0.5 * 0.25 + 0 + (3 - 0.5) + 0) / 4)
    assert float(losses.huber(PRED, TARGET, delta=2.0)) == pytest.approx((0.125 + 2 * (3 - 1)) / 4)
    with pytest.raises(UserError, match="unknown loss 'l3'; choose one of mse, mae, huber"):
        losses.loss_fn("l3")


PARAMS = {"w": jnp.array([1.0, -2.0, 3.0])}
GRADS = {"w": jnp.array([0.5, 0.25, -1.0])}


def _steps(tx, n=3):
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(n):
        updates, state = tx.update(GRADS, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def test_sgd_is_w_minus_lr_grad_and_keeps_lr_in_state():
    kind = optim.kind_of("sgd", {"learning_rate": 0.1, "momentum": 0.0})
    assert kind == optim.OptimizerKind("sgd", dropped=("momentum",), switches=(("nesterov", False),))
    params, state = _steps(optim.make_optimizer(kind, {"learning_rate": 0.1}, dtype=jnp.float64), n=1)
    np.testing.assert_allclose(params["w"], PARAMS["w"] - 0.1 * GRADS["w"], rtol=1e-15)
    assert float(optim.learning_rate(kind, state)) == 0.1
    assert optim.learning_rate(kind, state).dtype == jnp.float64


def test_update_reads_the_learning_rate_from_the_state():
    kind = optim.kind_of("sgd", {})
    tx_a = optim.make_optimizer(kind, {"learning_rate": 0.5}, dtype=jnp.float64)
    tx_b = optim.make_optimizer(kind, {"learning_rate": 0.001}, dtype=jnp.float64)
    state = tx_a.init(PARAMS)
    updates, _ = tx_b.update(GRADS, state, PARAMS)
    np.testing.assert_allclose(updates["w"], -0.5 * GRADS["w"], rtol=1e-15)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_hyperparameters_take_the_params_dtype_by_default(dtype):
    # The training step builds its optimizer without a dtype; with a float32 default, Optax 0.2.6
    # cast a float64 run's learning rate to float32 in the step (and its loop's carry check failed).
    kind = optim.kind_of("sgd", {})
    tx = optim.make_optimizer(kind, {"learning_rate": 0.1})
    params = {"w": PARAMS["w"].astype(dtype)}
    state = tx.init(params)
    _, state = tx.update({"w": GRADS["w"].astype(dtype)}, state, params)
    lr = optim.learning_rate(kind, state)
    assert lr.dtype == dtype
    assert float(lr) == float(np.asarray(0.1, dtype))


def test_a_given_dtype_casts_hyperparameters_that_are_arrays_too():
    # A sweep passes stacked float64 arrays, which Optax's own cast leaves alone.
    kind = optim.kind_of("sgd", {"momentum": 0.9})
    tx = optim.make_optimizer(kind, {"learning_rate": jnp.asarray(0.1, jnp.float64),
                                     "momentum": jnp.asarray(0.9, jnp.float64)}, dtype=jnp.float32)
    state = tx.init({"w": PARAMS["w"].astype(jnp.float32)})
    assert {k: v.dtype for k, v in state.hyperparams.items()} == {"learning_rate": jnp.float32, "momentum": jnp.float32}
    assert float(optim.learning_rate(kind, state)) == float(np.float32(0.1))


@pytest.mark.parametrize("name, hyper, reference", [
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}, optax.sgd(0.1, momentum=0.9)),
    ("adam", {"learning_rate": 0.01}, optax.adam(0.01)),
    ("adamw", {"learning_rate": 0.01, "weight_decay": 0.1}, optax.adamw(0.01, weight_decay=0.1)),
])
def test_optimizers_match_optax(name, hyper, reference):
    tx = optim.make_optimizer(optim.kind_of(name, hyper), hyper, dtype=jnp.float64)
    ours, _ = _steps(tx)
    theirs, _ = _steps(reference)
    np.testing.assert_allclose(ours["w"], theirs["w"], rtol=1e-12)


def test_nesterov_differs_from_heavy_ball():
    hyper = {"learning_rate": 0.1, "momentum": 0.9}
    nesterov, _ = _steps(optim.make_optimizer(optim.kind_of("sgd", hyper, {"nesterov": True}), hyper, dtype=jnp.float64))
    reference, _ = _steps(optax.sgd(0.1, momentum=0.9, nesterov=True))
    np.testing.assert_allclose(nesterov["w"], reference["w"], rtol=1e-12)


def test_unknown_optimizer_and_hyperparameter():
    with pytest.raises(UserError, match="unknown optimizer 'rmsprop'; choose one of sgd, adam, adamw"):
        optim.kind_of("rmsprop", {})
    with pytest.raises(UserError, match="sgd has no hyperparameter 'b1'"):
        optim.make_optimizer(optim.kind_of("sgd", {}), {"b1": 0.9})


@pytest.mark.parametrize("targets", [
    [[1.0, 2.0], [2.0, 0.0], [4.0, 1.0]],
    [[3.0, 2.0], [3.0, 0.0], [3.0, 1.0]],  # the first output constant: R2 0, not a huge negative number
    [[3.0, 2.0]],  # one sample: NaN
])
def test_r2_equals_scikit_learns(targets):
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import r2_score

    targets = np.asarray(targets)
    outputs = targets + np.array([[0.5, -0.25]])
    outputs[:, 1] = targets[:, 1]  # the second output predicted exactly
    metrics = losses.regression_metrics(jnp.asarray(outputs), jnp.asarray(targets), jnp.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # one sample
        expected = r2_score(targets, outputs)
    assert float(metrics["r2"]) == pytest.approx(expected, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_restored_state_takes_new_hyperparameters_and_keeps_its_count_and_moments(schedule):
    kind = optim.OptimizerKind("sgd", switches=(("nesterov", False),), schedule=schedule, steps=10)
    params = {"w": jnp.ones(3)}
    old = optim.make_optimizer(kind, {"learning_rate": 0.1, "momentum": 0.9})
    state = old.init(params)
    _, state = old.update({"w": jnp.full(3, 2.0)}, state, params)
    fresh = optim.make_optimizer(kind, {"learning_rate": 0.5, "momentum": 0.9}).init(params)
    moved = optim.with_hyperparams_of(state, fresh)
    assert optim.changed_hyperparams(state, fresh) == {"learning_rate": (pytest.approx(0.1), 0.5)}
    assert optim.changed_hyperparams(moved, fresh) == {}
    injected, injected_before = (moved, state) if schedule == "constant" else (moved[0], state[0])
    assert int(injected.count) == 1
    np.testing.assert_array_equal(injected.inner_state[0].trace["w"], injected_before.inner_state[0].trace["w"])
    expected = 0.5 * (1.0 if schedule == "constant" else float(optax.cosine_decay_schedule(1.0, 10)(1)))
    assert float(optim.learning_rate(kind, moved)) == pytest.approx(expected)
