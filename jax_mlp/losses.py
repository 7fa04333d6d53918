"""Pure losses: each maps predictions and targets of the same shape to a scalar mean."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jax_mlp.errors import UserError

Loss = Callable[[jax.Array, jax.Array], jax.Array]


def mse(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error over every element; for one output it is ``1/n sum_k (yhat_k - y_k)^2``."""
    return jnp.mean(optax.losses.squared_error(predictions, targets))


def mae(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean absolute error over every element."""
    return jnp.mean(jnp.abs(predictions - targets))


def huber(predictions: jax.Array, targets: jax.Array, delta: float = 1.0) -> jax.Array:
    """Mean Huber loss: quadratic below `delta`, linear above (`optax.losses.huber_loss`)."""
    return jnp.mean(optax.losses.huber_loss(predictions, targets, delta=delta))


LOSSES: dict[str, Loss] = {"mse": mse, "mae": mae, "huber": huber}


def loss_fn(name: str) -> Loss:
    """Returns the loss called `name`; raises `UserError` listing the known names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise UserError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
