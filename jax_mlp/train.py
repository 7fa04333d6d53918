"""Training: the state, one step, a compiled run of steps and evaluation, for one run or a group.

The compiled core is `train_span`: one `jax.jit` call that runs any number of steps inside a
`jax.lax.fori_loop` on data already on the device: it shuffles at each epoch start, gathers each
batch, takes the gradient and applies the update, and returns the loss reduced over its steps.
`group_program` gives the span and the evaluation for a group of R runs (leaves with a leading run
axis): vmapped for R > 1, the unbatched program for R = 1. `jax_mlp.loop.fit` calls the span once
between two log, evaluation or checkpoint points, so Python only sees those points.
"""

from __future__ import annotations

import functools
import math
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
      key: the typed PRNG key of the data order; epoch ``e`` shuffles with ``fold_in(key, e)``.
      active: whether the run still trains, a bool scalar; a span leaves an inactive run's
        params, optimizer state and step as they are, bit for bit (early stopping, divergence).
    """

    params: model.Params
    opt_state: optax.OptState
    step: jax.Array
    key: jax.Array
    active: jax.Array


class SpanMetrics(NamedTuple):
    """What one `train_span` call reports, reduced on the device.

    Attributes:
      loss_sum: sum of the training losses of the span's steps (each taken before its update).
      finite: whether every loss of the span and the params after it are finite.
      lr: the learning rate the next step will use.
    """

    loss_sum: jax.Array
    finite: jax.Array
    lr: jax.Array


@dataclass(frozen=True)
class Task:
    """The static description of a training problem: what compiled code specialises on.

    Attributes:
      mlp: the network's structure.
      loss: a name in `jax_mlp.losses.LOSSES`.
      optimizer: the optimizer's algorithm, switches and schedule (its numbers live in the state).
      num_train: number of training samples.
      batch_size: samples per step; None (or at least `num_train`) trains on the full batch.
      batch_sharding: with data parallelism, how a batch is split over the devices (its first
        axis over the mesh); None on one device.
      compute_dtype: the arithmetic's dtype when it differs from the params' ("bfloat16": the
        forward and backward passes in bf16, params, optimizer state and loss in float32).
      matmul_precision: the precision of the network's matrix products (forward and backward)
        as `jax.default_matmul_precision` names it: "float32" computes float32 products in full
        on every device (JAX's default rounds them to TF32 on recent GPUs and to bfloat16 on
        TPUs), "tensorfloat32" allows TF32; None leaves JAX's default.
    """

    mlp: model.MLP
    loss: str
    optimizer: optim.OptimizerKind
    num_train: int = 0
    batch_size: int | None = None
    batch_sharding: jax.sharding.NamedSharding | None = None
    compute_dtype: str | None = None
    matmul_precision: str | None = None

    @property
    def full_batch(self) -> bool:
        return self.batch_size is None or self.batch_size >= self.num_train

    @property
    def steps_per_epoch(self) -> int:
        """Steps that see every training sample once; the last batch of an epoch may be partial."""
        return 1 if self.full_batch else math.ceil(self.num_train / self.batch_size)


def network(task: Task) -> Callable[[model.Params, jax.Array], jax.Array]:
    """The forward pass ``(params, x (b, n_in)) -> outputs (b, n_out)`` in the params' dtype,
    computed in `task.compute_dtype` when it is set (its gradient reaches the params in theirs),
    its matrix products at `task.matmul_precision` (their gradients' products too)."""
    apply = functools.partial(
        model.apply, activation=task.mlp.activation, output_activation=task.mlp.output_activation
    )
    if task.compute_dtype is not None:
        apply = _in_dtype(apply, task.compute_dtype)
    if task.matmul_precision is None:
        return apply

    def apply_at_precision(params: model.Params, x: jax.Array) -> jax.Array:
        with jax.default_matmul_precision(task.matmul_precision):  # read while tracing
            return apply(params, x)

    return apply_at_precision


def _in_dtype(
    apply: Callable[[model.Params, jax.Array], jax.Array], dtype: str
) -> Callable[[model.Params, jax.Array], jax.Array]:
    """`apply` computed in `dtype`, its output cast back to the inputs' dtype."""

    def apply_in_dtype(params: model.Params, x: jax.Array) -> jax.Array:
        low = jax.tree_util.tree_map(lambda p: p.astype(dtype), params)
        return apply(low, x.astype(dtype)).astype(x.dtype)

    return apply_in_dtype


def objective(task: Task) -> Callable[..., jax.Array]:
    """The training loss as a pure function ``(params, x (b, n_in), y, weights (b,) | None) -> ()``."""
    loss = losses.loss_fn(task.loss)
    apply = network(task)

    def loss_of_params(params: model.Params, x: jax.Array, y: jax.Array,
                       weights: jax.Array | None = None) -> jax.Array:
        return loss(apply(params, x), y, weights)

    return loss_of_params


def init_state(
    params: model.Params, optimizer: optax.GradientTransformation, key: jax.Array
) -> TrainState:
    """A fresh, active `TrainState` at step 0."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), key, jnp.ones((), bool))


def make_train_step(task: Task) -> Callable[..., tuple[TrainState, jax.Array]]:
    """A pure (un-jitted) step ``(state, x, y, weights=None) -> (new_state, loss before the update)``."""
    loss_of_params = objective(task)
    # The numbers given here only seed `init`; `update` reads the state's hyperparameters.
    optimizer = optim.make_optimizer(task.optimizer)

    def train_step(state: TrainState, x: jax.Array, y: jax.Array,
                   weights: jax.Array | None = None) -> tuple[TrainState, jax.Array]:
        loss, grads = jax.value_and_grad(loss_of_params)(state.params, x, y, weights)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state._replace(params=params, opt_state=opt_state, step=state.step + 1), loss

    return train_step


def frozen_unless_active(state: TrainState, new: TrainState) -> TrainState:
    """`new` where `state` is active, else `state` itself: a stopped run does not change."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(state.active, n, o), new, state)


def epoch_order(task: Task, key: jax.Array, epoch: jax.Array) -> jax.Array:
    """Sample indices of one epoch, (steps_per_epoch, batch_size): a fresh permutation, padded
    at the end (with index 0, weighted 0) to fill the last batch."""
    order = jax.random.permutation(jax.random.fold_in(key, epoch), task.num_train)
    padding = task.steps_per_epoch * task.batch_size - task.num_train
    if padding:
        order = jnp.concatenate([order, jnp.zeros((padding,), order.dtype)])
    return order.reshape(task.steps_per_epoch, task.batch_size)


def batch_weights(task: Task, batch: jax.Array) -> jax.Array | None:
    """Weights (batch_size,) of batch `batch` of an epoch: 0 on padding; None when none is padded."""
    if task.num_train % task.batch_size == 0:
        return None
    position = batch * task.batch_size + jnp.arange(task.batch_size)
    return (position < task.num_train).astype(jnp.float32)


def make_train_span(task: Task) -> Callable[..., tuple[TrainState, SpanMetrics]]:
    """A pure function ``(state, x, y, num_steps) -> (state, SpanMetrics)`` running `num_steps`
    steps in one `lax.fori_loop`, on the full batch or on shuffled mini-batches.

    `num_steps` is an array, so one compilation serves spans of every length. With mini-batches a
    span stays within one epoch (`fit` ends spans at epoch boundaries): it draws the epoch's order
    from ``(state.key, epoch)`` once, so a span may start anywhere in an epoch.
    """
    train_step = make_train_step(task)
    per_epoch = task.steps_per_epoch

    def train_span(state: TrainState, x: jax.Array, y: jax.Array,
                   num_steps: jax.Array) -> tuple[TrainState, SpanMetrics]:
        dtype = jax.tree_util.tree_leaves(state.params)[0].dtype
        zero = jnp.zeros((), dtype)

        if task.full_batch:
            def body(_, carry):
                state, loss_sum = carry
                new, loss = train_step(state, x, y)
                return frozen_unless_active(state, new), loss_sum + loss
        else:
            order = epoch_order(task, state.key, state.step // per_epoch)

            def body(_, carry):
                state, loss_sum = carry
                batch = state.step % per_epoch
                index = order[batch]
                weights = batch_weights(task, batch)
                batch_arrays = (x[index], y[index], None if weights is None else weights.astype(dtype))
                if task.batch_sharding is not None:  # each device takes its share of the batch
                    batch_arrays = jax.lax.with_sharding_constraint(batch_arrays, task.batch_sharding)
                new, loss = train_step(state, *batch_arrays)
                return frozen_unless_active(state, new), loss_sum + loss

        state, loss_sum = jax.lax.fori_loop(0, num_steps, body, (state, zero))
        params_finite = jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(state.params)])
        )
        finite = jnp.isfinite(loss_sum) & params_finite
        lr = optim.learning_rate(task.optimizer, state.opt_state)
        return state, SpanMetrics(loss_sum, finite, lr)

    return train_span


def make_evaluate(task: Task) -> Callable[..., dict[str, jax.Array]]:
    """A pure ``(params, x, y, target_scale (n_out,)) -> {"loss", metrics...}`` on a whole split.

    Regression adds ``rmse``, ``mae``, ``r2`` (in the targets' own units); classification adds
    ``accuracy``.
    """
    loss = losses.loss_fn(task.loss)
    classify = task.loss in losses.CLASSIFICATION_LOSSES
    apply = network(task)

    def evaluate(params: model.Params, x: jax.Array, y: jax.Array,
                 target_scale: jax.Array) -> dict[str, jax.Array]:
        outputs = apply(params, x)
        metrics = {"loss": loss(outputs, y)}
        if classify:
            metrics["accuracy"] = losses.accuracy(outputs, y)
        else:
            metrics.update(losses.regression_metrics(outputs, y, target_scale))
        return metrics

    return evaluate


class Compiled(NamedTuple):
    """The jitted functions of one `Task`."""

    train_step: Callable[..., tuple[TrainState, jax.Array]]
    evaluate: Callable[..., dict[str, jax.Array]]


@functools.lru_cache(maxsize=64)
def compiled(task: Task) -> Compiled:
    """Jitted `train_step` and `evaluate` of one run of `task`, built once (the span of a run or a
    group: `group_program`)."""
    return Compiled(
        train_step=jax.jit(make_train_step(task)),
        evaluate=jax.jit(make_evaluate(task)),
    )


def shortest_float(value: Any) -> float:
    """A 0-d array as the Python float with the shortest repr that rounds back to it.

    A float32 0.1 reads 0.1 in logs and JSON instead of 0.10000000149011612.
    """
    return float(str(np.asarray(value)))


# A group's shared training split is copied to every run inside its program up to this size:
# the gradient of a batched product is then computed as a lone run computes it (bit for bit on
# the CPU), where a shared operand folds the run axis into the product's other dimensions.
BROADCAST_BYTES = 256 * 2**20


class GroupProgram(NamedTuple):
    """A group's jitted functions; every state and metric has a leading run axis of R.

    Attributes:
      span: ``(state, x, y, num_steps) -> (state, SpanMetrics)`` (the state donated).
      evaluate: ``(params, x, y, target_scale) -> {metric: (R,)}``.
    """

    span: Callable[..., tuple[TrainState, SpanMetrics]]
    evaluate: Callable[..., dict[str, jax.Array]]


@functools.lru_cache(maxsize=64)
def group_program(task: Task, runs: int, data_axis: int | None, broadcast: bool = False) -> GroupProgram:
    """The span and evaluation of `runs` runs of `task` that share their data (`data_axis` None)
    or stack it along the run axis (0). One run compiles without the run axis (about 10% faster
    on a CPU), reshaped at the program's edge; `broadcast` copies the shared training data to
    every run (see `BROADCAST_BYTES`)."""
    span, evaluate = make_train_span(task), make_evaluate(task)
    if runs == 1:
        return GroupProgram(jax.jit(_of_one(span), donate_argnums=0), jax.jit(_of_one(evaluate)))
    vmapped = jax.vmap(span, in_axes=(0, 0 if broadcast else data_axis, 0 if broadcast else data_axis, None))
    if broadcast:
        def span_of_group(state: TrainState, x: jax.Array, y: jax.Array, num_steps: jax.Array):
            copies = lambda a: jnp.broadcast_to(a, (runs, *a.shape))  # noqa: E731
            return vmapped(state, copies(x), copies(y), num_steps)
    else:
        span_of_group = vmapped
    return GroupProgram(jax.jit(span_of_group, donate_argnums=0),
                        jax.jit(jax.vmap(evaluate, in_axes=(0, data_axis, data_axis, data_axis))))


def _of_one(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` of one run's state (or params) as a function of a group of one: its first
    argument and its results carry a run axis of 1, its other arguments are shared."""

    def of_one(first: Any, *shared: Any) -> Any:
        result = function(jax.tree_util.tree_map(lambda a: a[0], first), *shared)
        return jax.tree_util.tree_map(lambda a: a[None], result)

    return of_one
