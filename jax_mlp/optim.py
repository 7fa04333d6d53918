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
    """

    name: str
    momentum: bool = False
    nesterov: bool = False


def kind_of(name: str, hyperparams: Mapping[str, float], nesterov: bool = False) -> OptimizerKind:
    """The `OptimizerKind` for a named optimizer with the given hyperparameters."""
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    has_momentum = name == "sgd" and float(hyperparams.get("momentum", 0.0)) != 0.0
    return OptimizerKind(name=name, momentum=has_momentum, nesterov=has_momentum and nesterov)


def make_optimizer(
    kind: OptimizerKind,
    hyperparams: Mapping[str, float] | None = None,
    *,
    dtype: Any = jnp.float32,
) -> optax.GradientTransformation:
    """Builds the optimizer `kind` with its hyperparameters injected into its state.

    Args:
      kind: which algorithm, see `OptimizerKind`.
      hyperparams: values by Optax's argument names (``learning_rate``, ``momentum``, ``b1``,
        ...). They become the initial state of `init`; `update` reads them from the state, so a
        transformation built with other values updates identically. Missing ones take the
        defaults in `_DEFAULTS`.
      dtype: dtype of the injected hyperparameters (that of the params, so updates keep it).

    Returns:
      An `optax.GradientTransformation` whose state has a ``hyperparams`` dict of scalars.
    """
    values = {**_DEFAULTS[kind.name], **(hyperparams or {})}
    unknown = set(values) - set(_DEFAULTS[kind.name])
    if unknown:
        raise UserError(f"{kind.name} has no hyperparameter {sorted(unknown)[0]!r}")
    if kind.name == "sgd":
        inject = optax.inject_hyperparams(optax.sgd, static_args=("nesterov",), hyperparam_dtype=dtype)
        if not kind.momentum:
            return inject(learning_rate=values["learning_rate"])
        return inject(
            learning_rate=values["learning_rate"],
            momentum=values["momentum"],
            nesterov=kind.nesterov,
        )
    factory = optax.adam if kind.name == "adam" else optax.adamw
    return optax.inject_hyperparams(factory, hyperparam_dtype=dtype)(**values)


def learning_rate(opt_state: Any) -> Any:
    """The learning rate stored in an optimizer state built by `make_optimizer`."""
    return opt_state.hyperparams["learning_rate"]
