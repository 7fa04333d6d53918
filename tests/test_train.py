"""The training step, the compiled span, `fit`, and whole runs in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_mlp import config, errors, jobs, loop, model, optim, outputs, problems, train
from jax_mlp.checkpoint import load_params


class Points(loop.Hook):
    """Keeps every point the loop reports."""

    def __init__(self) -> None:
        self.points: list[loop.Point] = []

    def at_point(self, loop_: loop.Loop, point: loop.Point) -> None:
        self.points.append(point)


def _problem(dtype=jnp.float32, lr=0.1, momentum=0.0, activation="tanh"):
    sizes = (2, 8, 8, 1)
    params = model.init_params(jax.random.key(0), sizes, dtype=dtype)
    x = jax.random.normal(jax.random.key(1), (16, 2), dtype)
    y = jnp.sin(x[:, :1]) * 2.0
    hyper = {"learning_rate": lr, "momentum": momentum}
    kind = optim.kind_of("sgd", hyper)
    task = train.Task(model.MLP(sizes, activation, "identity"), "mse", kind)
    state = train.init_state(params, optim.make_optimizer(kind, hyper, dtype=dtype), jax.random.key(2))
    return state, x, y, task


def test_jitted_and_unjitted_steps_agree():
    state, x, y, task = _problem(jnp.float64)
    eager_state, eager_loss = train.make_train_step(task)(state, x, y)
    jit_state, jit_loss = train.compiled(task).train_step(state, x, y)
    assert float(jit_loss) == pytest.approx(float(eager_loss), rel=1e-14)
    for a, b in zip(jax.tree_util.tree_leaves(eager_state), jax.tree_util.tree_leaves(jit_state)):
        if jnp.issubdtype(a.dtype, jnp.floating):
            np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_span_equals_a_python_loop_of_steps(momentum):
    state, x, y, task = _problem(jnp.float32, momentum=momentum)
    step = train.compiled(task).train_step
    looped, losses = state, []
    for _ in range(25):
        looped, loss = step(looped, x, y)
        losses.append(float(loss))
    fused = loop.fit_one(state, x, y, task, steps=25, log_every=10).state
    for a, b in zip(jax.tree_util.tree_leaves(looped.params), jax.tree_util.tree_leaves(fused.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(fused.step) == 25


def test_fit_logs_mean_loss_of_each_interval():
    state, x, y, task = _problem(jnp.float64)
    step = train.compiled(task).train_step
    probe, losses = state, []
    for _ in range(7):
        probe, loss = step(probe, x, y)
        losses.append(float(loss))
    logged = Points()
    loop.fit_one(state, x, y, task, steps=7, log_every=3, hooks=[logged])
    assert [p.step for p in logged.points] == [3, 6, 7]
    assert float(logged.points[0].loss[0]) == pytest.approx(np.mean(losses[:3]), rel=1e-12)
    assert float(logged.points[2].loss[0]) == pytest.approx(losses[6], rel=1e-12)
    assert logged.points[0].lr.tolist() == [0.1] and logged.points[0].finite.tolist() == [True]


def test_fit_compiles_once_across_spans_lengths_and_learning_rates():
    state, x, y, task = _problem(jnp.float32, activation="softplus")  # a task no other test uses
    span = train.group_program(task, 1, None).span
    assert span._cache_size() == 0
    loop.fit_one(state, x, y, task, steps=25, log_every=10)  # spans of 10, 10 and 5
    other_state, *_ = _problem(jnp.float32, lr=0.003, activation="softplus")
    loop.fit_one(other_state, x, y, task, steps=30, log_every=7)
    assert span._cache_size() == 1


def test_steps_per_call_splits_spans_without_changing_results():
    state, x, y, task = _problem(jnp.float64)
    whole = loop.fit_one(state, x, y, task, steps=12, log_every=12).state
    state, *_ = _problem(jnp.float64)
    logged = Points()
    split = loop.fit_one(state, x, y, task, steps=12, log_every=12, steps_per_call=5, hooks=[logged]).state
    assert [p.step for p in logged.points] == [12]
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(split.params)):
        np.testing.assert_array_equal(a, b)


def test_next_point():
    assert loop.next_point(0, 100, 30) == 30
    assert loop.next_point(30, 100, 30, 20) == 40
    assert loop.next_point(90, 100, 30) == 100
    assert loop.next_point(5, 100, None, 7) == 7


def test_fit_stops_at_the_log_point_where_the_loss_stops_being_finite():
    state, x, y, task = _problem(jnp.float32, lr=1e4)
    logged = Points()
    result = loop.fit_one(state, x, y, task, steps=1000, log_every=50, hooks=[loop.Divergence(), logged])
    assert result.diverged_at.tolist() == [50] and [p.step for p in logged.points] == [50]
    assert result.step == 50 and int(result.state.step) == 50


def _execute(tmp_path: Path, *overrides: str) -> tuple[outputs.Outcome, Path]:
    cfg = config.load(config.compose(["trainer.compilation_cache=false", *overrides]))
    return jobs.execute(cfg, tmp_path), tmp_path


def test_default_run_writes_its_outputs(tmp_path):
    outcome, out = _execute(tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and outcome.status == "completed"
    assert summary["steps"] == 1000
    assert summary["initial_loss"] == pytest.approx(15.628558, abs=1e-5)
    assert summary["objective"] == summary["train_loss"] == outcome.objective
    assert summary["train_loss"] < 1e-6
    assert summary["config"]["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": False,
                                              "schedule": "constant", "warmup_steps": 0,
                                              "final_lr_fraction": 0.0}
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(0, 1001, 100))
    assert lines[0] == {"step": 0, "loss": 15.628558, "lr": 0.1}
    params = load_params(out / "params.npz")
    assert [p["w"].shape for p in params] == [(1, 2), (2, 2), (2, 1)]
    assert params[0]["w"].dtype == np.float32


def test_same_seed_gives_bit_identical_params(tmp_path):
    overrides = ["model=mlp", "model.hidden=[8]", "trainer.steps=50", "seed=7"]
    _execute(tmp_path / "a", *overrides)
    _execute(tmp_path / "b", *overrides)
    a, b = load_params(tmp_path / "a" / "params.npz"), load_params(tmp_path / "b" / "params.npz")
    for pa, pb in zip(a, b):
        for name in ("w", "b"):
            assert pa[name].tobytes() == pb[name].tobytes()


def test_a_different_seed_gives_different_initial_params():
    def initial(seed: int):
        cfg = config.load(config.compose(["model=mlp", f"seed={seed}"]))
        return problems.initial_state(cfg, problems.prepare(cfg))[0]

    first, second, again = initial(0), initial(1), initial(0)
    assert not np.array_equal(first.params[0]["w"], second.params[0]["w"])
    assert not np.array_equal(jax.random.key_data(first.key), jax.random.key_data(second.key))
    np.testing.assert_array_equal(first.params[0]["w"], again.params[0]["w"])
    expected = model.init_params(problems.named_key(jax.random.key(0), "init"), (1, 32, 32, 1),
                                 init="glorot_uniform")
    np.testing.assert_array_equal(first.params[1]["w"], expected[1]["w"])
    assert float(first.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.1)


def test_float64_run(tmp_path):
    outcome, out = _execute(tmp_path, "trainer.precision=float64", "trainer.steps=1")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dtype"] == "float64"
    assert load_params(out / "params.npz")[2]["b"][0] == pytest.approx(0.233287, abs=1e-6)


@pytest.mark.parametrize(("precision", "expected"), [
    ("float32", "HIGHEST"),        # true float32 products on a GPU or TPU too, as on a CPU
    ("float64", "HIGHEST"),
    ("tensorfloat32", "HIGH"),     # TF32 allowed (JAX's own default on recent GPUs)
    ("bfloat16", "DEFAULT"),       # bf16 operands: nothing to choose
])
def test_every_matmul_of_the_step_has_the_precision_the_config_names(precision, expected):
    cfg = config.load(config.compose(["trainer.compilation_cache=false", "experiment=moons",
                                      f"trainer.precision={precision}"]))
    problem = problems.prepare(cfg)
    sizes = problem.task.mlp.sizes
    params = model.init_params(jax.random.key(0), sizes, dtype=jnp.float32)
    x, y = jnp.zeros((8, sizes[0]), jnp.float32), jnp.zeros((8,), jnp.int32)
    lowered = jax.jit(jax.value_and_grad(train.objective(problem.task))).lower(params, x, y).as_text()
    found = re.findall(r"precision = \[(\w+), (\w+)\]", lowered)
    # three layers: three products forward, five backward (none for the inputs' gradient)
    assert found == [(expected, expected)] * 8


def test_bfloat16_computes_in_bf16_with_float32_params_and_state(tmp_path):
    overrides = ["experiment=sine", "data.standardize_targets=false", "trainer.steps=300", "trainer.precision=bfloat16"]
    cfg = config.load(config.compose(["trainer.compilation_cache=false", *overrides]))
    problem = problems.prepare(cfg)
    state, _ = problems.initial_state(cfg, problem)
    x, y = problems.device_split(problem.data.train, problem)
    step = str(jax.make_jaxpr(train.make_train_step(problem.task))(state, x[:8], y[:8]))
    assert len(re.findall(r"bf16\[8,\d+\] = dot_general", step)) >= 2  # forward matmuls in bf16
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves((state.params, state.opt_state))
            if jnp.issubdtype(leaf.dtype, jnp.floating)} == {jnp.dtype(jnp.float32)}
    outcome, out = _execute(tmp_path / "bf16", *overrides)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "bfloat16" and summary["dtype"] == "float32"
    assert load_params(out / "params.npz")[0]["w"].dtype == np.float32
    _, reference = _execute(tmp_path / "f32", *overrides[:-1])
    f32 = json.loads((reference / "summary.json").read_text())
    assert summary["train_loss"] != f32["train_loss"]
    assert summary["train_loss"] == pytest.approx(f32["train_loss"], rel=0.25)


def test_divergence_is_reported_with_an_infinite_objective(tmp_path):
    outcome, out = _execute(tmp_path, "optimizer.lr=1000")
    summary = json.loads((out / "summary.json").read_text())
    assert outcome.status == summary["status"] == "diverged"
    assert outcome.objective == float("inf") and summary["objective"] == "inf"
    assert "diverged at step 100" in outcome.message and "optimizer.lr=1000" in outcome.message


def test_model_sizes_that_contradict_the_data_are_user_errors(tmp_path):
    with pytest.raises(errors.UserError, match="model.input_size is 3 but data 'seed_note' has 1"):
        _execute(tmp_path, "model=mlp", "model.input_size=3")
