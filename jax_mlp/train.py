"""Training: the state, one step, a compiled run of steps, and the Python loop that drives it.

The compiled core is `train_span`: one `jax.jit` call that runs any number of steps inside a
`jax.lax.fori_loop` on data already on the device, and returns the loss reduced over those steps.
`fit` calls it once a log interval, so Python only sees the log points.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_mlp import losses, model, optim


class TrainState(NamedTuple):
    """Everything that changes during training; a pytree.

    Attributes:
      params: the model's params pytree (see `jax_mlp.model`).
      opt_state: the optimizer state, holding the hyperparameters as arrays.
      step: number of updates applied so far, an int32 scalar.
      key: the typed PRNG key for data order and other training randomness.
    """

    params: model.Params
    opt_state: optax.OptState
    step: jax.Array
    key: jax.Array


class SpanMetrics(NamedTuple):
    """What one `train_span` call reports, reduced on the device.

    Attributes:
      loss: mean training loss over the span's steps (each taken before its update).
      last_loss: the loss of the span's last step.
      finite: whether every loss of the span and the params after it are finite.
    """

    loss: jax.Array
    last_loss: jax.Array
    finite: jax.Array


@dataclass(frozen=True)
class Task:
    """The static description of a training problem: what compiled code specialises on.

    Attributes:
      mlp: the network's structure.
      loss: a name in `jax_mlp.losses.LOSSES`.
      optimizer: the optimizer's algorithm and switches (its numbers live in the state).
    """

    mlp: model.MLP
    loss: str
    optimizer: optim.OptimizerKind


def objective(task: Task) -> Callable[[model.Params, jax.Array, jax.Array], jax.Array]:
    """The training loss as a pure function ``(params, x (batch, n_in), y (batch, n_out)) -> ()``."""
    loss = losses.loss_fn(task.loss)
    apply = functools.partial(
        model.apply, activation=task.mlp.activation, output_activation=task.mlp.output_activation
    )

    def loss_of_params(params: model.Params, x: jax.Array, y: jax.Array) -> jax.Array:
        return loss(apply(params, x), y)

    return loss_of_params


def init_state(
    params: model.Params, optimizer: optax.GradientTransformation, key: jax.Array
) -> TrainState:
    """A fresh `TrainState` at step 0."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), key)


def make_train_step(task: Task) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, jax.Array]]:
    """A pure (un-jitted) step ``(state, x, y) -> (new_state, loss before the update)``."""
    loss_of_params = objective(task)
    # The numbers given here only seed `init`; `update` reads the state's hyperparameters.
    optimizer = optim.make_optimizer(task.optimizer)

    def train_step(state: TrainState, x: jax.Array, y: jax.Array) -> tuple[TrainState, jax.Array]:
        loss, grads = jax.value_and_grad(loss_of_params)(state.params, x, y)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1, state.key), loss

    return train_step


def make_train_span(task: Task) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], tuple[TrainState, SpanMetrics]]:
    """A pure function that runs `num_steps` full-batch steps in one `lax.fori_loop`.

    The returned ``train_span(state, x, y, num_steps)`` takes `num_steps` as an array, so one
    compilation serves spans of every length.
    """
    train_step = make_train_step(task)

    def train_span(
        state: TrainState, x: jax.Array, y: jax.Array, num_steps: jax.Array
    ) -> tuple[TrainState, SpanMetrics]:
        dtype = jax.tree_util.tree_leaves(state.params)[0].dtype

        def body(_: jax.Array, carry: tuple[TrainState, jax.Array, jax.Array]):
            state, loss_sum, _last = carry
            state, loss = train_step(state, x, y)
            return state, loss_sum + loss, loss

        zero = jnp.zeros((), dtype)
        state, loss_sum, last = jax.lax.fori_loop(0, num_steps, body, (state, zero, zero))
        params_finite = jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(state.params)])
        )
        finite = jnp.isfinite(loss_sum) & params_finite
        return state, SpanMetrics(loss_sum / num_steps.astype(dtype), last, finite)

    return train_span


class Compiled(NamedTuple):
    """The jitted functions of one `Task`."""

    train_step: Callable[..., tuple[TrainState, jax.Array]]
    train_span: Callable[..., tuple[TrainState, SpanMetrics]]
    loss: Callable[[model.Params, jax.Array, jax.Array], jax.Array]


@functools.lru_cache(maxsize=64)
def compiled(task: Task) -> Compiled:
    """Jitted `train_step`, `train_span` (state donated) and loss for `task`, built once per task."""
    return Compiled(
        train_step=jax.jit(make_train_step(task)),
        train_span=jax.jit(make_train_span(task), donate_argnums=0),
        loss=jax.jit(objective(task)),
    )


@dataclass(frozen=True)
class FitResult:
    """How `fit` ended.

    Attributes:
      state: the final state (the last finite one's successor when training diverged).
      diverged_at: the step at whose log point a non-finite loss or param was seen, else None.
    """

    state: TrainState
    diverged_at: int | None


def shortest_float(value: Any) -> float:
    """A 0-d array as the Python float with the shortest repr that rounds back to it.

    A float32 0.1 reads 0.1 in logs and JSON instead of 0.10000000149011612.
    """
    return float(str(np.asarray(value)))


LogFn = Callable[[int, dict[str, Any]], None]


def fit(
    state: TrainState,
    x: jax.Array,
    y: jax.Array,
    task: Task,
    *,
    steps: int,
    log_every: int,
    on_log: LogFn | None = None,
) -> FitResult:
    """Trains `state` for `steps` full-batch steps on ``x`` (n, n_in), ``y`` (n, n_out).

    Runs one compiled span per log interval and calls ``on_log(step, metrics)`` after each, with
    ``metrics = {"loss": mean loss of the interval, "lr": learning rate}``. Stops early, at the
    log point where it is seen, when the loss or the params stop being finite.

    Returns:
      A `FitResult`; `state` is consumed (its buffers are donated).
    """
    train_span = compiled(task).train_span
    done = int(state.step)
    end = done + steps
    while done < end:
        span = min(log_every, end - done)
        state, metrics = train_span(state, x, y, jnp.asarray(span, jnp.int32))
        done += span
        loss, finite = jax.device_get((metrics.loss, metrics.finite))
        if on_log is not None:
            lr = jax.device_get(optim.learning_rate(state.opt_state))
            on_log(done, {"loss": shortest_float(loss), "lr": shortest_float(lr)})
        if not finite:
            return FitResult(state, diverged_at=done)
    return FitResult(state, diverged_at=None)
