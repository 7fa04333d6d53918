"""The seed note, reproduced: forward values, gradients and one SGD step (shared/seed/README.md)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_mlp import config, losses, model, optim, train

# The seed README's exact float64 values (six decimals).
H1 = [[0.268941, 0.268941], [0.5, 0.731059], [0.731059, 0.952574]]
H2 = [[0.745692, 0.931735], [0.936623, 0.992784], [0.973111, 0.998116]]
RESIDUAL = [2.609162, 3.922191, 4.969343]
LOSS = 15.628558

# (layer, kind, index): (note's figure, exact gradient, note's updated value, exact updated value)
TABLE = {
    (0, "w", (0, 0)): (-0.13, -0.129922, 1.013, 1.012992),
    (0, "w", (0, 1)): (-0.35, -0.354584, 2.035, 2.035458),
    (0, "b", (0,)): (0.23, 0.231344, -0.023, -0.023134),
    (0, "b", (1,)): (0.5, 0.503599, 0.95, 0.949640),
    (1, "w", (0, 0)): (0.23, 0.229693, 0.977, 0.977031),
    (1, "w", (0, 1)): (0.09, 0.087351, 1.991, 1.991265),
    (1, "w", (1, 0)): (0.28, 0.284759, 2.972, 2.971524),
    (1, "w", (1, 1)): (0.10, 0.098767, 3.99, 3.990123),
    (1, "b", (0,)): (0.57, 0.571761, -0.057, -0.057176),
    (1, "b", (1,)): (0.27, 0.271198, 0.973, 0.972880),
    (2, "w", (0, 0)): (6.975, 6.969978, 0.3025, 0.303002),
    (2, "w", (1, 0)): (7.519, 7.523277, 1.2481, 1.247672),
    (2, "b", (0,)): (7.667, 7.667130, 0.2333, 0.233287),
}
EXACT_TOL = 1e-6  # README values are rounded to six decimals
NOTE_GRAD_TOL = 0.006
NOTE_PARAM_TOL = 0.001


@pytest.fixture(scope="module")
def note():
    """The note's params (float64), data, task and learning rate, from the default configs."""
    cfg = config.load(config.compose([]))
    x = jnp.asarray(cfg.data.x, jnp.float64)
    y = jnp.asarray(cfg.data.y, jnp.float64)
    sizes = (1, *cfg.model.hidden, 1)
    params = model.explicit_params(cfg.model.weights, sizes, dtype=jnp.float64)
    kind = optim.kind_of(cfg.optimizer.name, config.optimizer_hyperparams(cfg.optimizer))
    task = train.Task(model.MLP(sizes, cfg.model.activation, cfg.model.output_activation), "mse", kind)
    return params, x, y, task, cfg.optimizer.lr


def test_defaults_are_the_note(note):
    params, x, y, task, lr = note
    assert task.mlp == model.MLP((1, 2, 2, 1), "sigmoid", "identity")
    assert lr == 0.1
    np.testing.assert_array_equal(params[1]["w"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(x[:, 0], [-1, 0, 1])
    np.testing.assert_array_equal(y[:, 0], [1, 0, -1])


def test_forward_values(note):
    params, x, y, task, _ = note
    h1, h2, y_hat = model.forward(params, x, activation="sigmoid", output_activation="identity")
    np.testing.assert_allclose(h1, H1, atol=EXACT_TOL)
    np.testing.assert_allclose(h2, H2, atol=EXACT_TOL)
    np.testing.assert_allclose((y_hat - y)[:, 0], RESIDUAL, atol=EXACT_TOL)
    assert float(losses.mse(y_hat, y)) == pytest.approx(LOSS, abs=EXACT_TOL)


def test_gradients_match_exact_values_and_the_note(note):
    params, x, y, task, _ = note
    grads = jax.grad(train.objective(task))(params, x, y)
    for (layer, kind, index), (note_grad, exact_grad, _, _) in TABLE.items():
        value = float(grads[layer][kind][index])
        assert value == pytest.approx(exact_grad, abs=EXACT_TOL), (layer, kind, index)
        assert value == pytest.approx(note_grad, abs=NOTE_GRAD_TOL), (layer, kind, index)


def test_one_sgd_step_matches_exact_values_and_the_note(note):
    params, x, y, task, lr = note
    tx = optim.make_optimizer(task.optimizer, {"learning_rate": lr}, dtype=jnp.float64)
    state = train.init_state(params, tx, jax.random.key(0))
    state, loss = train.compiled(task).train_step(state, x, y)
    assert float(loss) == pytest.approx(LOSS, abs=EXACT_TOL)
    assert int(state.step) == 1
    for (layer, kind, index), (_, _, note_after, exact_after) in TABLE.items():
        value = float(state.params[layer][kind][index])
        assert value == pytest.approx(exact_after, abs=EXACT_TOL), (layer, kind, index)
        assert value == pytest.approx(note_after, abs=NOTE_PARAM_TOL), (layer, kind, index)


@pytest.mark.slow
def test_walkthrough_json(run_script):
    result = run_script("walkthrough.py", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"loss", "grads", "params_after"}
    assert out["loss"] == pytest.approx(LOSS, abs=EXACT_TOL)
    for (layer, kind, index), (_, exact_grad, _, exact_after) in TABLE.items():
        assert np.asarray(out["grads"][layer][kind])[index] == pytest.approx(exact_grad, abs=EXACT_TOL)
        assert np.asarray(out["params_after"][layer][kind])[index] == pytest.approx(exact_after, abs=EXACT_TOL)


@pytest.mark.slow
def test_walkthrough_text_names_the_notes_rounding(run_script):
    result = run_script("walkthrough.py")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "L = 1/3 sum (y_hat - y)^2 = 15.628558" in text
    assert "h1 unit 2: [0.268941, 0.731059, 0.952574]" in text
    assert "  W3[1,0]        7.519    7.523277    0.004277" in text
    assert "-0.17 beside -0.13" in text and "0.62 for 0.02" in text
    assert "layer 3 unit 1: [1.739441, 2.614794, 3.312895]" in text


def test_walkthrough_draws_the_network(run_script, tmp_path):
    result = run_script("walkthrough.py", "--plot", str(tmp_path / "network.png"))
    assert result.returncode == 0, result.stderr
    picture = (tmp_path / "network.png").read_bytes()
    assert picture.startswith(b"\x89PNG\r\n\x1a\n") and len(picture) > 20000
    assert "L = 1/3 sum (y_hat - y)^2 = 15.628558" in result.stdout  # the text is still printed


@pytest.mark.parametrize("name, expected", [
    ("nowhere/network.png", "No such file or directory"),
    ("network.txt", "Format 'txt' is not supported"),
])
def test_walkthrough_plot_that_cannot_be_written_is_one_line(run_script, tmp_path, name, expected):
    result = run_script("walkthrough.py", "--plot", str(tmp_path / name))
    assert result.returncode == 2
    assert result.stderr.startswith(f"jax_mlp: error: --plot {tmp_path / name}: {expected}")
    assert result.stderr.count("\n") == 1
