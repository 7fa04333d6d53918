"""The Optax optimizer a config names, with its float hyperparameters held as arrays in its state.

Every optimizer is built with `optax.inject_hyperparams`, so the learning rate (and momentum,
betas, weight decay) live in the optimizer state. The update reads them from there: a compiled
training step serves every value of them, and a sweep can stack them along a run axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import optax

from jax_mlp.errors import UserError

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "warmup_cosine", "linear")

# Hyperparameters of each optimizer, with the defaults used where a config leaves them out.
_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 0.1, "momentum": 0.0},
    "adam": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamw": {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4},
}


@dataclass(frozen=True)
class OptimizerKind:
    """What a compiled update specialises on: the algorithm and its structural switches.

    Attributes:
      name: one of `OPTIMIZERS`.
      momentum: SGD keeps a momentum buffer (a momentum of exactly 0 needs none).
      nesterov: SGD uses Nesterov momentum.
      schedule: one of `SCHEDULES`; the learning rate is multiplied by it, step by step.
      steps: the schedule's length (the run's total number of steps).
      warmup_steps: steps of linear warm-up from 0 (``warmup_cosine``).
      final_fraction: the multiplier the decaying schedules end at.
    """

    name: str
    momentum: bool = False
    nesterov: bool = False
    schedule: str = "constant"
    steps: int = 0
    warmup_steps: int = 0
    final_fraction: float = 0.0


def kind_of(
    name: str,
    hyperparams: Mapping[str, float],
    nesterov: bool = False,
    *,
    schedule: str = "constant",
    steps: int = 0,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
) -> OptimizerKind:
    """The `OptimizerKind` for a named optimizer with the given hyperparameters and schedule."""
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    has_momentum = name == "sgd" and float(hyperparams.get("momentum", 0.0)) != 0.0
    if schedule == "constant":
        steps, warmup_steps, final_fraction = 0, 0, 0.0
    return OptimizerKind(name, has_momentum, has_momentum and nesterov, schedule, steps,
                         warmup_steps if schedule == "warmup_cosine" else 0, final_fraction)


def schedule_of(kind: OptimizerKind) -> optax.Schedule | None:
    """The learning-rate multiplier of `kind` as a function of the step, None when constant."""
    if kind.schedule == "cosine":
        return optax.cosine_decay_schedule(1.0, max(kind.steps, 1), alpha=kind.final_fraction)
    if kind.schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, kind.warmup_steps, max(kind.steps, 1),
                                                  end_value=kind.final_fraction)
    if kind.schedule == "linear":
        return optax.linear_schedule(1.0, kind.final_fraction, max(kind.steps, 1))
    return None


def make_optimizer(
    kind: OptimizerKind,
    hyperparams: Mapping[str, float] | None = None,
    *,
    dtype: Any = None,
) -> optax.GradientTransformation:
    """Builds the optimizer `kind` with its hyperparameters injected into its state.

    Args:
      kind: which algorithm, see `OptimizerKind`.
      hyperparams: values by Optax's argument names (``learning_rate``, ``momentum``, ``b1``,
        ...). They become the initial state of `init`; `update` reads them from the state, so a
        transformation built with other values updates identically. Missing ones take the
        defaults in `_DEFAULTS`.
      dtype: dtype of the injected hyperparameters, arrays included; None (the default) takes
        the params', so updates keep their dtype and a float64 run's learning rate is not rounded
        to float32.

    Returns:
      An `optax.GradientTransformation` whose state has a ``hyperparams`` dict of scalars.
    """
    values = {**_DEFAULTS[kind.name], **(hyperparams or {})}
    unknown = set(values) - set(_DEFAULTS[kind.name])
    if unknown:
        raise UserError(f"{kind.name} has no hyperparameter {sorted(unknown)[0]!r}")
    if dtype is not None:  # Optax casts Python floats only; an array (a sweep's) keeps its dtype
        values = {name: jnp.asarray(value, dtype) for name, value in values.items()}
    if kind.name == "sgd":
        inject = optax.inject_hyperparams(optax.sgd, static_args=("nesterov",), hyperparam_dtype=dtype)
        if kind.momentum:
            base = inject(learning_rate=values["learning_rate"], momentum=values["momentum"],
                          nesterov=kind.nesterov)
        else:
            base = inject(learning_rate=values["learning_rate"])
    else:
        factory = optax.adam if kind.name == "adam" else optax.adamw
        base = optax.inject_hyperparams(factory, hyperparam_dtype=dtype)(**values)
    schedule = schedule_of(kind)
    # Scaling the whole update by the schedule equals scheduling the learning rate (the rate is
    # the last factor of every optimizer here), and keeps the peak rate an array in the state.
    return base if schedule is None else optax.chain(base, optax.scale_by_schedule(schedule))


def learning_rate(kind: OptimizerKind, opt_state: Any) -> Any:
    """The learning rate the next update of an optimizer from `make_optimizer` will use."""
    schedule = schedule_of(kind)
    if schedule is None:
        return opt_state.hyperparams["learning_rate"]
    base = opt_state[0]
    return base.hyperparams["learning_rate"] * schedule(base.count)


def with_hyperparams_of(restored: Any, fresh: Any) -> Any:
    """The optimizer state `restored` (from a checkpoint) holding the hyperparameters of `fresh`
    (the same optimizer's state as the run's config initialises it), its counts and moments kept:
    a resumed run trains at the learning rate (momentum, ...) its config gives now."""
    if not hasattr(restored, "hyperparams"):  # a chain with a schedule: (inject state, schedule state)
        return (with_hyperparams_of(restored[0], fresh[0]), *restored[1:])
    return restored._replace(hyperparams=fresh.hyperparams)


def changed_hyperparams(before: Any, after: Any) -> dict[str, tuple[float, float]]:
    """The hyperparameters whose values differ between two states of one optimizer, by Optax's
    names: ``{"learning_rate": (0.05, 0.5)}``."""
    before, after = (s if hasattr(s, "hyperparams") else s[0] for s in (before, after))
    return {name: (float(before.hyperparams[name]), float(value)) for name, value in after.hyperparams.items()
            if float(before.hyperparams[name]) != float(value)}
