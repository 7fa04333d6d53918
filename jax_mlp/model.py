"""The MLP: a params pytree, its initialisation and its forward pass.

Params are a list with one ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dict per dense layer,
applied as ``x @ w + b``, so ``params[l]["w"][i, j]`` is the weight from unit ``i`` of layer ``l``
to unit ``j`` of layer ``l + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax_mlp.errors import UserError

Params = list[dict[str, jax.Array]]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda x: x,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,
    "selu": jax.nn.selu,
}

_INITIALIZERS: dict[str, Callable[[float], jax.nn.initializers.Initializer]] = {
    "glorot_normal": lambda _: jax.nn.initializers.glorot_normal(),
    "glorot_uniform": lambda _: jax.nn.initializers.glorot_uniform(),
    "xavier_normal": lambda _: jax.nn.initializers.xavier_normal(),
    "xavier_uniform": lambda _: jax.nn.initializers.xavier_uniform(),
    "lecun_normal": lambda _: jax.nn.initializers.lecun_normal(),
    "lecun_uniform": lambda _: jax.nn.initializers.lecun_uniform(),
    "he_normal": lambda _: jax.nn.initializers.he_normal(),
    "he_uniform": lambda _: jax.nn.initializers.he_uniform(),
    "normal": jax.nn.initializers.normal,
    "uniform": jax.nn.initializers.uniform,
    "zeros": lambda _: jax.nn.initializers.zeros,
}
INITIALIZERS: tuple[str, ...] = tuple(sorted(_INITIALIZERS))


@dataclass(frozen=True)
class MLP:
    """The static structure of a network: everything `jit` may specialise on.

    Attributes:
      sizes: units per layer, input first and output last, e.g. ``(1, 2, 2, 1)``.
      activation: name in `ACTIVATIONS` for every hidden layer.
      output_activation: name in `ACTIVATIONS` for the last layer.
    """

    sizes: tuple[int, ...]
    activation: str = "relu"
    output_activation: str = "identity"


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the activation called `name`; raises `UserError` listing the known names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise UserError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def initializer(name: str, scale: float = 0.01) -> jax.nn.initializers.Initializer:
    """Returns the `jax.nn.initializers` initializer called `name`.

    `scale` is the standard deviation of ``normal`` and the half-width of ``uniform``; the other
    initialisers take their scale from the fan-in and fan-out.
    """
    try:
        return _INITIALIZERS[name](scale)
    except KeyError:
        raise UserError(
            f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}"
        ) from None


def init_params(
    key: jax.Array,
    sizes: Sequence[int],
    *,
    init: str = "glorot_uniform",
    scale: float = 0.01,
    dtype: Any = jnp.float32,
) -> Params:
    """Draws the weights of an MLP with layer widths `sizes`; biases start at zero.

    Args:
      key: a PRNG key; layer ``l`` uses ``fold_in(key, l)``, so adding a layer leaves the
        earlier layers' weights unchanged.
      sizes: ``(n_in, hidden..., n_out)``, at least two entries.
      init: a name in `INITIALIZERS`.
      scale: see `initializer`.
      dtype: dtype of every leaf.

    Returns:
      A list of ``len(sizes) - 1`` dicts ``{"w": (sizes[l], sizes[l+1]), "b": (sizes[l+1],)}``.
    """
    draw = initializer(init, scale)
    return [
        {
            "w": draw(jax.random.fold_in(key, layer), (fan_in, fan_out), dtype),
            "b": jnp.zeros((fan_out,), dtype),
        }
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]))
    ]


DRAWN_HINT = "; model=mlp draws weights of any size"


def explicit_params(
    weights: Sequence[dict[str, Any]], sizes: Sequence[int], *, dtype: Any = jnp.float32
) -> Params:
    """Builds params from given numbers (nested lists), checking them against `sizes`.

    Args:
      weights: one ``{"w": [[...]], "b": [...]}`` per layer, ``w`` as (fan_in, fan_out).
      sizes: the layer widths the weights must match.

    Returns:
      The params pytree with leaves of `dtype`.
    """
    if len(weights) != len(sizes) - 1:
        raise UserError(
            f"model.weights has {len(weights)} layers but the sizes {list(sizes)} need "
            f"{len(sizes) - 1}{DRAWN_HINT}"
        )
    params = []
    for layer, (given, fan_in, fan_out) in enumerate(zip(weights, sizes[:-1], sizes[1:])):
        if set(given) != {"w", "b"}:
            raise UserError(f"model.weights[{layer}] must have exactly the keys w and b")
        w = np.asarray(given["w"], dtype=np.float64)
        b = np.asarray(given["b"], dtype=np.float64)
        if w.shape != (fan_in, fan_out) or b.shape != (fan_out,):
            raise UserError(
                f"model.weights[{layer}] has w {list(w.shape)} and b {list(b.shape)}, but the "
                f"sizes {list(sizes)} need w [{fan_in}, {fan_out}] and b [{fan_out}]{DRAWN_HINT}"
            )
        # Cast and copy from the host: jnp.asarray would compile a program per array.
        params.append(jax.device_put({"w": w.astype(dtype), "b": b.astype(dtype)}))
    return params


def forward(
    params: Params,
    x: jax.Array,
    *,
    activation: str = "relu",
    output_activation: str = "identity",
    offsets: Sequence[jax.Array] | None = None,
) -> list[jax.Array]:
    """Runs the network and keeps every layer's output.

    Args:
      params: the params pytree.
      x: inputs, (batch, n_in).
      activation, output_activation: names in `ACTIVATIONS`.
      offsets: optional per-layer arrays added to the pre-activations; the gradient of a loss
        with respect to them at zero is that layer's back-propagated delta.

    Returns:
      One array per layer, (batch, fan_out), the last being the network's output.
    """
    hidden_fn = activation_fn(activation)
    last_fn = activation_fn(output_activation)
    outputs = []
    h = x
    for layer, p in enumerate(params):
        z = h @ p["w"] + p["b"][None, :]
        if offsets is not None:
            z = z + offsets[layer]
        h = (last_fn if layer == len(params) - 1 else hidden_fn)(z)
        outputs.append(h)
    return outputs


def apply(
    params: Params, x: jax.Array, *, activation: str = "relu", output_activation: str = "identity"
) -> jax.Array:
    """The network's output for inputs `x` (batch, n_in): an array (batch, n_out)."""
    return forward(params, x, activation=activation, output_activation=output_activation)[-1]


def num_params(sizes: Sequence[int]) -> int:
    """Number of weights and biases of an MLP with layer widths `sizes`."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
