"""The Optax optimizer a config names, with its float hyperparameters held as arrays in its state.

Every optimizer is built with `optax.inject_hyperparams`, so the learning rate (and momentum,
betas, weight decay) live in the optimizer state. The update reads them from there: a compiled
training step serves every value of them, and a sweep can stack them along a run axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import optax

from jax_mlp.errors import UserError

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "warmup_cosine", "linear")


@dataclass(frozen=True)
class Float:
    """A float hyperparameter of an optimizer, held as an array in its state (a vmap sweep varies it).

    Attributes:
      key: its name in the config (``optimizer.lr``).
      optax: the Optax factory's argument.
      default: the schema's default.
      allowed: "positive", "unit" (in [0, 1)) or "non-negative": what `jax_mlp.config` checks.
      drops_state_at_zero: exactly 0 leaves its state out (SGD without momentum keeps no buffer),
        so whether it is 0 is part of the compiled structure.
    """

    key: str
    optax: str
    default: float
    allowed: str = "positive"
    drops_state_at_zero: bool = False


@dataclass(frozen=True)
class Optimizer:
    """One registry entry: the Optax `factory`, its float hyperparameters and its boolean switches
    (config key -> default; static arguments of the factory). The config schema, the defaults, the
    checks and what a vmap sweep may vary are all read from here."""

    factory: Callable[..., optax.GradientTransformation]
    floats: tuple[Float, ...]
    switches: tuple[tuple[str, bool], ...] = ()


def _lr(default: float) -> Float:
    return Float("lr", "learning_rate", default)


_ADAM = (_lr(1e-3), Float("b1", "b1", 0.9, "unit"), Float("b2", "b2", 0.999, "unit"), Float("eps", "eps", 1e-8))
REGISTRY: dict[str, Optimizer] = {
    "sgd": Optimizer(optax.sgd, (_lr(0.1), Float("momentum", "momentum", 0.0, "unit", drops_state_at_zero=True)),
                     (("nesterov", False),)),
    "adam": Optimizer(optax.adam, _ADAM),
    "adamw": Optimizer(optax.adamw, (*_ADAM, Float("weight_decay", "weight_decay", 1e-4, "non-negative"))),
}
OPTIMIZERS: tuple[str, ...] = tuple(REGISTRY)


@dataclass(frozen=True)
class OptimizerKind:
    """What a compiled update specialises on: the algorithm and its structural switches.

    Attributes:
      name: one of `OPTIMIZERS`.
      dropped: the Optax names of the hyperparameters left out because they are 0 (and their state
        with them: `Float.drops_state_at_zero`).
      switches: the factory's boolean arguments, (Optax name, value) pairs.
      schedule: one of `SCHEDULES`; the learning rate is multiplied by it, step by step.
      steps: the schedule's length (the run's total number of steps).
      warmup_steps: steps of linear warm-up from 0 (``warmup_cosine``).
      final_fraction: the multiplier the decaying schedules end at.
    """

    name: str
    dropped: tuple[str, ...] = ()
    switches: tuple[tuple[str, bool], ...] = ()
    schedule: str = "constant"
    steps: int = 0
    warmup_steps: int = 0
    final_fraction: float = 0.0


def kind_of(
    name: str,
    hyperparams: Mapping[str, float],
    switches: Mapping[str, bool] | None = None,
    *,
    schedule: str = "constant",
    steps: int = 0,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
) -> OptimizerKind:
    """The `OptimizerKind` for a named optimizer with the given hyperparameters (by Optax's names;
    missing ones take their defaults), switches and schedule."""
    if name not in REGISTRY:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    entry = REGISTRY[name]
    dropped = tuple(f.optax for f in entry.floats
                    if f.drops_state_at_zero and float(hyperparams.get(f.optax, f.default)) == 0.0)
    # A switch of a dropped state means nothing (Nesterov without momentum): left at its default.
    chosen = {key: bool((switches or {}).get(key, default)) and not dropped for key, default in entry.switches}
    if schedule == "constant":
        steps, warmup_steps, final_fraction = 0, 0, 0.0
    return OptimizerKind(name, dropped, tuple(sorted(chosen.items())), schedule, steps,
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
        registry's defaults (`REGISTRY`).
      dtype: dtype of the injected hyperparameters, arrays included; None (the default) takes
        the params', so updates keep their dtype and a float64 run's learning rate is not rounded
        to float32.

    Returns:
      An `optax.GradientTransformation` whose state has a ``hyperparams`` dict of scalars.
    """
    entry = REGISTRY[kind.name]
    defaults = {f.optax: f.default for f in entry.floats if f.optax not in kind.dropped}
    values = {**defaults, **(hyperparams or {})}
    if unknown := set(values) - {f.optax for f in entry.floats}:
        raise UserError(f"{kind.name} has no hyperparameter {sorted(unknown)[0]!r}")
    values = {name: value for name, value in values.items() if name not in kind.dropped}
    if dtype is not None:  # Optax casts Python floats only; an array (a sweep's) keeps its dtype
        values = {name: jnp.asarray(value, dtype) for name, value in values.items()}
    switches = dict(kind.switches)
    inject = optax.inject_hyperparams(entry.factory, static_args=tuple(switches), hyperparam_dtype=dtype)
    base = inject(**values, **switches)
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
