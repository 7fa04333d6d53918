"""The schema, its checks, and the one-line messages for composition errors (in-process)."""

from __future__ import annotations

import dataclasses

import pytest

from jax_mlp import config, optim
from jax_mlp.errors import UserError


def _load(*overrides: str) -> config.Config:
    return config.load(config.compose(list(overrides)))


def _message(*overrides: str) -> str:
    try:
        _load(*overrides)
    except UserError as error:
        return str(error)
    except Exception as error:  # Hydra's composition errors, as the command line sees them
        return config.describe_error(error)
    raise AssertionError(f"{overrides} was accepted")


def test_groups_compose_into_their_schemas():
    cfg = _load("model=mlp", "optimizer=adamw", "optimizer.lr=0.01", "seed=3")
    assert isinstance(cfg.optimizer, config.OPTIMIZER_SCHEMAS["adamw"])
    assert cfg.optimizer.lr == 0.01 and cfg.optimizer.weight_decay == 1e-4
    assert cfg.model.hidden == [32, 32] and cfg.model.init == "glorot_uniform"
    assert cfg.seed == 3
    assert config.optimizer_hyperparams(cfg.optimizer) == {
        "learning_rate": 0.01, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4}


def test_width_and_depth_replace_hidden():
    cfg = config.load(config.compose(["model=mlp", "model.width=8", "model.depth=3"]))
    assert config.hidden_sizes(cfg.model) == (8, 8, 8)
    assert config.hidden_sizes(config.load(config.compose(["model=mlp", "model.width=8", "model.depth=0"])).model) == ()
    assert config.hidden_sizes(config.load(config.compose(["model=mlp"])).model) == (32, 32)


def test_a_config_saved_with_x64_loads_as_float64_precision():
    saved = config.load(config.compose([]))
    values = dataclasses.asdict(saved)
    values["trainer"].pop("precision")
    values["trainer"]["x64"] = True
    assert config.from_saved(values).trainer.precision == "float64"


def test_an_experiment_takes_another_optimizer_with_that_optimizers_defaults():
    cfg = _load("experiment=moons", "optimizer=adam")
    assert isinstance(cfg.optimizer, config.OPTIMIZER_SCHEMAS["adam"])
    assert (cfg.optimizer.lr, cfg.optimizer.schedule) == (0.001, "cosine")
    moons = _load("experiment=moons").optimizer
    assert (moons.name, moons.lr, moons.momentum, moons.nesterov, moons.schedule) == ("sgd", 0.05, 0.9, True, "cosine")


def test_momentum_preset():
    cfg = _load("optimizer=momentum")
    assert (cfg.optimizer.name, cfg.optimizer.momentum, cfg.optimizer.nesterov) == ("sgd", 0.9, True)


@pytest.mark.parametrize("overrides, expected", [
    (["optimizer.lr=-1"], "optimizer.lr must be a positive finite number, got -1.0"),
    (["optimizer.lr=abc"], "optimizer.lr must be a number, got 'abc'"),
    (["optimizer.lr=inf"], "optimizer.lr must be a positive finite number, got inf"),
    (["model.hidden=[0]"], "model.hidden must be a list of positive widths, got [0]"),
    (["model.hidden=[a]"], "model.hidden[0] must be an integer, got 'a'"),
    (["foo=1"], "unknown config key 'foo'; allowed here: data, distributed, logger, model, optimizer, seed, trainer"),
    (["+foo=1"], "unknown config key 'foo'; allowed here: data, distributed, logger, model, optimizer, seed, trainer"),
    (["+model.layers=3"], "unknown config key 'model.layers'; allowed here: activation, depth, hidden, init, "
                         "init_scale, input_size, output_activation, output_size, weights"),
    (["optimizer.b1=0.5"], "unknown config key 'optimizer.b1'; allowed here: final_lr_fraction, lr, "
                           "momentum, name, nesterov, schedule, warmup_steps"),
    (["model.activation=swish"], "model.activation must be one of elu, gelu, identity, leaky_relu, "
                                 "relu, selu, sigmoid, silu, softplus, tanh, got 'swish'"),
    (["model.output_activation=soft"], "model.output_activation must be one of elu,"),
    (["model=mlp", "model.init=orthogonal"], "model.init must be one of explicit, glorot_normal,"),
    (["model=resnet"], "model=resnet is not a config option; choose one of mlp, seed_note"),
    (["optimizer=lbfgs"], "optimizer=lbfgs is not a config option; choose one of adam, adamw, momentum, sgd"),
    (["logger=[jsonl,wandb]"], "logger=wandb is not a config option; choose one of csv, jsonl, tensorboard"),  # was Hydra's search path
    (["optimizer.momentum=1"], "optimizer.momentum must be in [0, 1), got 1.0"),
    (["optimizer=adam", "optimizer.b2=1.5"], "optimizer.b2 must be in [0, 1), got 1.5"),
    (["optimizer=adamw", "optimizer.weight_decay=-1"], "optimizer.weight_decay must be a finite number >= 0"),
    (["trainer.steps=0"], "trainer.steps must be null or a positive integer, got 0"),
    (["experiment=digits", "trainer.steps=500"], "trainer.steps=500 and trainer.epochs=100 are both set; add "
                                                 "trainer.steps=null to train for 100 epochs, or trainer.epochs=null "
                                                 "for 500 steps"),
    (["trainer.log_every=-5"], "trainer.log_every must be a positive integer, got -5"),
    (["trainer.loss=l1"], "trainer.loss must be one of auto, cross_entropy, huber, mae, mse, got 'l1'"),
    (["trainer.x64=true"], "unknown config key 'trainer.x64'"),
    (["trainer.precision=float16"], "trainer.precision must be one of bfloat16, float32, float64, tensorfloat32, got 'float16'"),
    (["model=mlp", "model.width=8"], "model.width and model.depth must be both null or both set, got [8, None]"),
    (["model=mlp", "model.width=0", "model.depth=2"], "model.width must be a positive integer, got 0"),
    (["trainer.platform=quantum"], "trainer.platform must be one of auto, cpu, gpu, tpu, got 'quantum'"),
    (["seed=-1"], "seed must be an integer in [0, 2**32), got -1"),
    (["seed=1.5"], "seed must be an integer, got '1.5'"),
    (["model=mlp", "model.weights=[1]"], "model.init=glorot_uniform draws the weights, but model.weights gives "
                                         "them; add model.weights=null"),
    (["model.init=he_normal"], "model.init=he_normal draws the weights, but model.weights gives them"),
    (["model=mlp", "model.init=explicit"], "model.init=explicit needs model.weights (one {w, b} a layer)"),
    (["optimizer.lr=[1"], "cannot parse the override 'optimizer.lr=[1'"),
    (["data=csv", "data.delimiter=;"], "cannot parse the override 'data.delimiter=;': LexerNoViableAltException: "
                                       "data.delimiter=;; quote a value with special characters, e.g. "
                                       "'data.delimiter=\";\"'"),
    (["data=csv", "data.target=y", "data.delimiter=ab"], "data.delimiter must be one character (or \\t, tab), got 'ab'"),
    (["experiment=digits", "optimizer=sgd"], "unknown config key 'optimizer.weight_decay' (set by experiment/digits); "
                                             "allowed here: final_lr_fraction, lr, momentum, name, nesterov, schedule, warmup_steps"),
])
def test_bad_values_name_the_key_and_what_is_allowed(overrides, expected):
    message = _message(*overrides)
    assert message.startswith(expected)
    assert "\n" not in message


def test_the_readmes_option_table_is_the_configs():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("config_table", ROOT / "scripts" / "config_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    assert table.markdown() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("missing, expected", [
    ("hydra/launcher/joblib", 'hydra/launcher=joblib is a Hydra plugin that is not installed: pip install -e ".[launchers]"'),
    ("hydra/sweeper/optuna", 'hydra/sweeper=optuna is a Hydra plugin that is not installed: pip install -e ".[optuna]"'),
    ("hydra/launcher/ray", "hydra/launcher=ray is not a config option; choose one of basic"),
])
def test_a_plugin_of_an_extra_that_is_not_installed_says_what_to_install(missing, expected):
    # What Hydra raises when no installed plugin registers the option (seen in a plain `pip install -e .`).
    from hydra.errors import MissingConfigException

    error = MissingConfigException(f"Could not find '{missing}'", missing_cfg_file=missing, options=["basic"])
    assert config.describe_error(error) == expected


def test_a_data_set_alone_trains_an_mlp_and_a_length_alone_is_the_length():
    from jax_mlp import problems

    bare, digits = (config.load(config.compose(o)) for o in ([], ["data=digits"]))
    assert (bare.model.init, bare.model.hidden) == ("explicit", [2, 2])  # the note's network
    assert (digits.model.init, digits.model.hidden, digits.data.name) == ("glorot_uniform", [32, 32], "digits")
    assert problems.prepare(bare).total_steps == config.DEFAULT_STEPS == 1000
    moons = problems.prepare(config.load(config.compose(["data=moons", "trainer.epochs=3", "trainer.batch_size=32"])))
    assert moons.total_steps == 3 * moons.task.steps_per_epoch == 3 * 19


@pytest.mark.parametrize("name", list(optim.REGISTRY))
def test_each_optimizer_is_one_registry_entry_read_by_the_schema_the_checks_and_the_sweep(name):
    from jax_mlp import sweep

    entry = optim.REGISTRY[name]
    schema = config.OPTIMIZER_SCHEMAS[name]()
    floats = {f.key: f.default for f in entry.floats}
    assert {k: getattr(schema, k) for k in floats} == floats and schema.name == name
    assert {k: getattr(schema, k) for k, _ in entry.switches} == dict(entry.switches)
    base = _load(f"optimizer={name}")
    for f in entry.floats:  # each float varies inside one vmap group, and its range is checked
        other = 2 * f.default + 0.25 if f.allowed != "unit" else 0.5
        varied = _load(f"optimizer={name}", f"optimizer.{f.key}={other}")
        same_group = sweep.structure_key(varied) == sweep.structure_key(base)
        assert same_group != (f.drops_state_at_zero and f.default == 0), f.key  # 0 -> 0.5 adds SGD's buffer
        with pytest.raises(UserError, match=rf"^optimizer\.{f.key} must be "):
            _load(f"optimizer={name}", f"optimizer.{f.key}=-1")
