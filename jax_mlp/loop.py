"""The one loop: a group of R runs trained span by span, and the hooks called between the spans.

A single run is a group of one. `fit` runs the group's compiled span (`jax_mlp.train.group_program`)
up to each log, evaluation or checkpoint point, each epoch boundary (with mini-batches) and the
end, so Python sees the group only there. At a log or evaluation point it hands every hook a
`Point` (per-run values with a run axis), in the hooks' order; at a checkpoint point and after
every span it calls them again. The hooks are the loop's whole control: evaluation, divergence,
early stopping, metric records, progress, checkpoints and stop requests are each one `Hook`.

Each run carries whether it still trains (`TrainState.active`); a hook stops runs with
`Loop.stop_runs` (they stay as they are, bit for bit, while the others train on), and the loop
ends when none is left, at the end, or when a hook asks the whole group to stop (`Loop.interrupt`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jax_mlp import devices
from jax_mlp.train import SpanMetrics, Task, TrainState, group_program

NOT_YET = -1  # a run's `Loop.diverged_at` or `stopped_at` while it has not


@dataclass
class Point:
    """What the hooks see at a log or evaluation point; every array has one entry a run (R,).

    Attributes:
      step: the group's step.
      loss: mean training loss of the steps since the previous point (at step 0: the initial loss).
      lr: the learning rate of the next step.
      finite: whether every loss since the previous point and the params are finite.
      training: which runs trained up to this point (they were active before it).
      evaluations: split -> metric -> values, filled by the evaluation hook.
    """

    step: int
    loss: np.ndarray
    lr: np.ndarray
    finite: np.ndarray
    training: np.ndarray
    evaluations: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass
class Loop:
    """The loop's state as the hooks see and change it, and, once `fit` returns it, how training
    ended: it owns each run's divergence and stopping.

    Attributes:
      state: the group's `TrainState` (a leading run axis); between points on the device.
      step: the group's step (a stopped run's own `state.step` stays where it stopped).
      end: the step training ends at.
      active: a host copy of which runs still train.
      diverged_at: per run, the step at whose point its loss or params were not finite.
      stopped_at: per run, the step at which a hook stopped it (early stopping).
      signal: the signal that stopped the whole group, when one did.
    """

    state: TrainState
    step: int
    end: int
    active: np.ndarray
    diverged_at: np.ndarray
    stopped_at: np.ndarray
    signal: int | None = None

    @property
    def running(self) -> bool:
        return self.step < self.end and self.signal is None and bool(self.active.any())

    def stop_runs(self, runs: np.ndarray, diverged: bool = False) -> None:
        """Stops the active runs where `runs` (R,) is true, at this step; their state no longer
        changes. `diverged`: they stop because they diverged, else a hook chose to stop them."""
        runs = np.asarray(runs, bool) & self.active
        if not runs.any():
            return
        record = self.diverged_at if diverged else self.stopped_at
        record[runs] = self.step
        self.active = self.active & ~runs
        self.state = self.state._replace(active=devices.place(self.active, self.state.active.sharding))

    def interrupt(self, signum: int) -> None:
        """Stops the whole group after this span (a signal arrived)."""
        self.signal = signum


class Hook:
    """One piece of the loop's control; each method does nothing unless a hook overrides it."""

    def at_point(self, loop: Loop, point: Point) -> None:
        """At a log or evaluation point (and at step 0 of a fresh run)."""

    def at_checkpoint(self, loop: Loop) -> None:
        """At a multiple of the checkpoint interval and where training ends."""

    def after_span(self, loop: Loop) -> None:
        """After every compiled span."""


class Divergence(Hook):
    """Stops a run at the first point where its loss or params are not finite."""

    def at_point(self, loop: Loop, point: Point) -> None:
        loop.stop_runs(point.training & ~point.finite, diverged=True)


def next_point(step: int, end: int, *intervals: int | None) -> int:
    """The first step after `step` that is a multiple of one of `intervals`, or `end`."""
    candidates = [end] + [(step // every + 1) * every for every in intervals if every]
    return min(candidates)


Span = Callable[[TrainState, jax.Array, jax.Array, np.ndarray], tuple[TrainState, SpanMetrics]]


def fit(
    state: TrainState,
    x: jax.Array,
    y: jax.Array,
    span: Span,
    *,
    end: int,
    log_every: int,
    start: int = 0,
    steps_per_epoch: int | None = None,
    eval_every: int | None = None,
    steps_per_call: int | None = None,
    checkpoint_every: int | None = None,
    hooks: Sequence[Hook] = (),
    first: Point | None = None,
    diverged_at: np.ndarray | None = None,
    stopped_at: np.ndarray | None = None,
) -> Loop:
    """Trains the group `state` (leaves with a leading run axis) from step `start` to `end` on
    ``x`` (n, n_in) and ``y`` with `span` (`jax_mlp.train.GroupProgram.span`).

    Runs one span up to each multiple of `log_every`, `eval_every` or `steps_per_call` (all in
    steps) or `checkpoint_every`, each epoch boundary (`steps_per_epoch`, with mini-batches) and
    `end`. At each log or evaluation point it calls every hook's `Hook.at_point`, in order, with a
    `Point`; `first`, when given, is the point of step `start` (a fresh run's initial loss). Then,
    at a checkpoint point (and where no run is left), `Hook.at_checkpoint`, and after every span
    `Hook.after_span`. `diverged_at` and `stopped_at` (R,): what a resumed group's runs did before.

    Returns:
      The `Loop` as training left it; `state` is consumed (its buffers are donated).
    """
    active = np.asarray(jax.device_get(state.active), bool).reshape(-1)
    not_yet = np.full(len(active), NOT_YET)
    loop = Loop(state, start, end, active, not_yet.copy() if diverged_at is None else np.array(diverged_at),
                not_yet.copy() if stopped_at is None else np.array(stopped_at))
    if first is not None:
        _at_point(loop, first, hooks)
    since, pending = start, []
    while loop.running:
        span_end = next_point(loop.step, end, steps_per_epoch, log_every, eval_every, steps_per_call, checkpoint_every)
        loop.state, metrics = span(loop.state, x, y, np.int32(span_end - loop.step))
        loop.step = span_end
        pending.append(metrics)
        if span_end == next_point(span_end - 1, end, log_every, eval_every):  # else no sync with the device
            fetched = jax.device_get(pending)
            loss = np.sum([m.loss_sum for m in fetched], axis=0) / (span_end - since)
            finite = np.logical_and.reduce([m.finite for m in fetched])
            since, pending = span_end, []
            _at_point(loop, Point(span_end, loss.astype(fetched[-1].loss_sum.dtype), fetched[-1].lr, finite,
                                  loop.active.copy()), hooks)
        if span_end == next_point(span_end - 1, end, checkpoint_every) or not loop.active.any():
            for hook in hooks:
                hook.at_checkpoint(loop)
        for hook in hooks:
            hook.after_span(loop)
    return loop


def _at_point(loop: Loop, point: Point, hooks: Sequence[Hook]) -> None:
    for hook in hooks:
        hook.at_point(loop, point)


def select_runs(runs: np.ndarray, new: object, old: object) -> object:
    """A pytree of `new`'s leaves for the runs where `runs` (R,) is true, `old`'s elsewhere;
    leaves carry a leading run axis."""
    runs = np.asarray(runs, bool)
    return jax.tree_util.tree_map(lambda n, o: jnp.where(runs.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


def fit_one(state: TrainState, x: jax.Array, y: jax.Array, task: Task, *, steps: int, log_every: int,
            hooks: Sequence[Hook] = (), **options: int | None) -> Loop:
    """`fit` for one run's `state` (leaves without a run axis) of `task`, `steps` more steps on
    its compiled span; `options`: `fit`'s intervals (``eval_every``, ``steps_per_call``,
    ``checkpoint_every``). The result's state has no run axis either.

    Returns:
      The `Loop` as training left it; `state` is consumed (its buffers are donated).
    """
    start = int(state.step)
    group = jax.tree_util.tree_map(lambda leaf: leaf[None], state)
    result = fit(group, x, y, group_program(task, 1, None).span, start=start, end=start + steps,
                 steps_per_epoch=None if task.full_batch else task.steps_per_epoch, log_every=log_every,
                 hooks=hooks, **options)
    return dataclasses.replace(result, state=jax.tree_util.tree_map(lambda leaf: leaf[0], result.state))
