"""The params pytree, initialisers, activations, and gradients against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from jax_mlp import losses, model
from jax_mlp.errors import UserError


def test_init_params_shapes_and_dtype():
    params = model.init_params(jax.random.key(0), (3, 5, 4, 2), dtype=jnp.float32)
    assert [(p["w"].shape, p["b"].shape) for p in params] == [((3, 5), (5,)), ((5, 4), (4,)), ((4, 2), (2,))]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))
    assert model.num_params((3, 5, 4, 2)) == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2
    assert all(float(jnp.abs(p["b"]).max()) == 0.0 for p in params)


@pytest.mark.parametrize("name", model.INITIALIZERS)
def test_every_initializer_draws_the_right_shape(name):
    params = model.init_params(jax.random.key(1), (64, 32), init=name, dtype=jnp.float64)
    w = np.asarray(params[0]["w"])
    assert w.shape == (64, 32)
    if name == "zeros":
        assert not w.any()
    else:
        assert np.unique(w).size > 1000


@pytest.mark.parametrize("name, expected_std", [
    ("he_normal", np.sqrt(2 / 400)),
    ("lecun_normal", np.sqrt(1 / 400)),
    ("glorot_normal", np.sqrt(2 / (400 + 300))),
    ("normal", 0.05),
    ("glorot_uniform", np.sqrt(2 / (400 + 300))),
    ("he_uniform", np.sqrt(2 / 400)),
])
def test_initializer_scales(name, expected_std):
    w = model.init_params(jax.random.key(2), (400, 300), init=name, scale=0.05, dtype=jnp.float64)[0]["w"]
    assert float(jnp.std(w)) == pytest.approx(expected_std, rel=0.03)


def test_layers_draw_from_their_own_keys():
    a = model.init_params(jax.random.key(3), (4, 8, 2))
    b = model.init_params(jax.random.key(3), (4, 8, 8, 2))
    np.testing.assert_array_equal(a[0]["w"], b[0]["w"])
    assert not np.array_equal(a[1]["w"][:, :2], b[1]["w"][:, :2])


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="unknown initializer 'nope'; choose one of .*glorot_normal"):
        model.init_params(jax.random.key(0), (2, 2), init="nope")
    with pytest.raises(UserError, match="unknown activation 'nope'; choose one of .*sigmoid"):
        model.apply(model.init_params(jax.random.key(0), (2, 2)), jnp.ones((1, 2)), activation="nope")


def test_explicit_params_check_shapes():
    with pytest.raises(UserError, match=r"model.weights\[1\] has w \[2, 2\] and b \[2\], but the sizes \[1, 2, 1\] need w \[2, 1\] and b \[1\]"):
        model.explicit_params([{"w": [[1, 2]], "b": [0, 0]}, {"w": [[1, 2], [3, 4]], "b": [0, 1]}], (1, 2, 1))
    with pytest.raises(UserError, match="has 1 layers but the sizes"):
        model.explicit_params([{"w": [[1]], "b": [0]}], (1, 2, 1))


@pytest.mark.parametrize("name, x, expected", [
    ("identity", -2.0, -2.0), ("sigmoid", 0.0, 0.5), ("tanh", 1.0, np.tanh(1.0)),
    ("relu", -1.0, 0.0), ("relu", 2.0, 2.0), ("softplus", 0.0, np.log(2.0)),
    ("elu", -1.0, np.expm1(-1.0)), ("leaky_relu", -1.0, -0.01), ("silu", 1.0, 1 / (1 + np.exp(-1.0))),
    ("gelu", 0.0, 0.0), ("selu", 1.0, 1.0507009873554805),
])
def test_activations(name, x, expected):
    assert float(model.ACTIVATIONS[name](jnp.float64(x))) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_apply_is_x_at_w_plus_b():
    params = [{"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.array([0.5, -0.5])}]
    out = model.apply(params, jnp.array([[1.0, 1.0], [0.0, 2.0]]), output_activation="identity")
    np.testing.assert_array_equal(out, [[4.5, 5.5], [6.5, 7.5]])


SMOOTH = ["sigmoid", "tanh", "gelu", "silu", "softplus", "identity"]  # finite differences need C^2


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    activation=st.sampled_from(SMOOTH),
    output_activation=st.sampled_from(["identity", "sigmoid", "tanh"]),
    batch=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_grad_matches_central_differences(widths, activation, output_activation, batch, seed):
    keys = jax.random.split(jax.random.key(seed), 3)
    sizes = tuple(widths[:1] + widths[1:] + [widths[-1]])
    params = model.init_params(keys[0], sizes, init="glorot_normal", dtype=jnp.float64)
    x = jax.random.normal(keys[1], (batch, sizes[0]), jnp.float64)
    y = jax.random.normal(keys[2], (batch, sizes[-1]), jnp.float64)
    flat, unravel = ravel_pytree(params)
    loss = jax.jit(lambda v: losses.mse(model.apply(unravel(v), x, activation=activation,
                                                    output_activation=output_activation), y))
    grad = np.asarray(jax.grad(loss)(flat))
    eps = 1e-6
    basis = np.eye(flat.size)
    fd = np.array([(loss(flat + eps * e) - loss(flat - eps * e)) / (2 * eps) for e in basis])
    error = np.linalg.norm(grad - fd) / max(np.linalg.norm(fd), 1e-12)
    assert error < 1e-6
