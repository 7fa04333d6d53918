"""Pure losses and metrics.

Every loss maps network outputs (batch, n_out) and targets to a scalar: the mean over samples of a
per-sample loss, weighted when `weights` (batch,) is given (a padded batch weighs its padding 0).
Regression targets are (batch, n_out) floats; classification targets are (batch,) integer labels,
with outputs that are logits: one per class (softmax), or a single one for two classes (sigmoid).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jax_mlp.errors import UserError

Loss = Callable[..., jax.Array]


def _mean(per_sample: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(per_sample)
    return jnp.sum(weights * per_sample) / jnp.sum(weights)


def mse(outputs: jax.Array, targets: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean squared error over every element; for one output it is ``1/n sum_k (yhat_k - y_k)^2``."""
    return _mean(jnp.mean(optax.losses.squared_error(outputs, targets), axis=-1), weights)


def mae(outputs: jax.Array, targets: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean absolute error over every element."""
    return _mean(jnp.mean(jnp.abs(outputs - targets), axis=-1), weights)


def huber(outputs: jax.Array, targets: jax.Array, weights: jax.Array | None = None,
          delta: float = 1.0) -> jax.Array:
    """Mean Huber loss: quadratic below `delta`, linear above (`optax.losses.huber_loss`)."""
    return _mean(jnp.mean(optax.losses.huber_loss(outputs, targets, delta=delta), axis=-1), weights)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean softmax cross-entropy of logits (batch, classes) against integer labels (batch,)."""
    return _mean(optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels), weights)


def sigmoid_cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean binary cross-entropy of one logit (batch, 1) against labels 0 or 1 (batch,)."""
    per_sample = optax.losses.sigmoid_binary_cross_entropy(logits[:, 0], labels.astype(logits.dtype))
    return _mean(per_sample, weights)


REGRESSION_LOSSES: dict[str, Loss] = {"mse": mse, "mae": mae, "huber": huber}
CLASSIFICATION_LOSSES: dict[str, Loss] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "sigmoid_cross_entropy": sigmoid_cross_entropy,
}
LOSSES: dict[str, Loss] = {**REGRESSION_LOSSES, **CLASSIFICATION_LOSSES}


def loss_fn(name: str) -> Loss:
    """Returns the loss called `name`; raises `UserError` listing the known names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise UserError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def regression_metrics(outputs: jax.Array, targets: jax.Array, scale: jax.Array) -> dict[str, jax.Array]:
    """RMSE, MAE and R2 of outputs against targets (both (n, n_out)), in the targets' own units.

    `scale` (n_out,) is the standard deviation the targets were divided by (ones when unscaled);
    R2 is averaged over outputs, as scikit-learn's default. An output whose targets are constant
    has R2 1 where it is predicted exactly and 0 otherwise, and R2 is NaN on a single sample, as
    scikit-learn's `r2_score` gives.
    """
    error = (outputs - targets) * scale[None, :]
    centred = (targets - jnp.mean(targets, axis=0, keepdims=True)) * scale[None, :]
    residual, total = jnp.sum(error**2, axis=0), jnp.sum(centred**2, axis=0)
    varies = total > 0
    r2 = jnp.where(varies, 1.0 - residual / jnp.where(varies, total, 1.0), jnp.where(residual == 0, 1.0, 0.0))
    r2 = jnp.mean(r2) if targets.shape[0] > 1 else jnp.full((), jnp.nan, r2.dtype)
    return {"rmse": jnp.sqrt(jnp.mean(error**2)), "mae": jnp.mean(jnp.abs(error)), "r2": r2}


def predicted_labels(logits: jax.Array) -> jax.Array:
    """Class labels (n,) from logits: argmax, or logit > 0 for a single logit."""
    if logits.shape[-1] == 1:
        return (logits[:, 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of samples whose predicted label equals the label."""
    return jnp.mean((predicted_labels(logits) == labels).astype(jnp.float32))
