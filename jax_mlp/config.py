"""The config schema (dataclasses in Hydra's ConfigStore), its checks, and readable errors.

Hydra composes ``conf/`` against these dataclasses, so a wrong type or an unknown key stops at
composition. `load` then turns the composed `DictConfig` into the schema's dataclass objects and
checks the ranges and names that a type cannot express. `describe_error` turns Hydra's and
OmegaConf's multi-line composition errors into the one line the command line prints.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from jax_mlp import losses, model, optim
from jax_mlp.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
SCHEMA_PREFIX = "schema"


@dataclass
class ModelConfig:
    """An MLP. `input_size` and `output_size` come from the data when left null."""

    hidden: List[int] = field(default_factory=lambda: [32, 32])
    activation: str = "relu"
    output_activation: str = "identity"
    init: str = "glorot_uniform"  # a name in model.INITIALIZERS, or "explicit" with `weights`
    init_scale: float = 0.01  # std of "normal", half-width of "uniform"
    input_size: Optional[int] = None
    output_size: Optional[int] = None
    weights: Optional[List[Any]] = None  # [{w: [[...]], b: [...]}, ...] for init=explicit


@dataclass
class DataConfig:
    """Base of the data sources; `source` picks the loader."""

    name: str = MISSING
    source: str = MISSING


@dataclass
class InlineDataConfig(DataConfig):
    """Arrays written in the config: rows of inputs `x` and of targets `y`."""

    source: str = "inline"
    x: List[Any] = MISSING  # rows of numbers
    y: List[Any] = MISSING


@dataclass
class OptimizerConfig:
    """Base of the optimizers; `name` picks the algorithm."""

    name: str = MISSING
    lr: float = 0.1


@dataclass
class SGDConfig(OptimizerConfig):
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConfig(OptimizerConfig):
    name: str = "adam"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: float = 1e-4


@dataclass
class TrainerConfig:
    steps: int = 1000
    log_every: int = 100
    loss: str = "mse"
    x64: bool = False  # train in float64
    compilation_cache: bool = True  # JAX's persistent compilation cache
    cache_dir: Optional[str] = None  # null: $XDG_CACHE_HOME/jax_mlp/xla (or ~/.cache/...)


@dataclass
class Config:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    trainer: TrainerConfig = MISSING
    seed: int = 0


_GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"": ModelConfig},
    "data": {"_inline": InlineDataConfig},
    "optimizer": {"_sgd": SGDConfig, "_adam": AdamConfig, "_adamw": AdamWConfig},
    "trainer": {"": TrainerConfig},
}


def register() -> None:
    """Stores the schemas in Hydra's ConfigStore (``schema`` and ``<group>/schema[_kind]``).

    The YAML files in ``conf/`` name them first in their defaults list, so Hydra checks every
    value's type and rejects keys the schema lacks.
    """
    store = ConfigStore.instance()
    store.store(name=SCHEMA_PREFIX, node=Config)
    for group, schemas in _GROUP_SCHEMAS.items():
        for suffix, node in schemas.items():
            store.store(group=group, name=SCHEMA_PREFIX + suffix, node=node)


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Composes ``conf/`` with command-line style `overrides`, as the train script would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def load(cfg: DictConfig) -> Config:
    """The composed config as schema dataclass objects, after every range and name check.

    Raises:
      UserError: naming the first key whose value is not allowed, and what is.
    """
    try:
        _check_known_keys(cfg)
        obj = OmegaConf.to_object(cfg)
    except Exception as error:  # an interpolation or missing value: OmegaConf's own errors
        raise UserError(describe_error(error)) from None
    if not isinstance(obj, Config):
        raise UserError("the config does not follow the jax_mlp schema (is `schema` first in its defaults?)")
    check(obj)
    return obj


def _require(ok: bool, key: str, allowed: str, value: Any) -> None:
    if not ok:
        raise UserError(f"{key} must be {allowed}, got {value!r}")


def _one_of(key: str, value: str, names: Any) -> None:
    _require(value in names, key, "one of " + ", ".join(sorted(names)), value)


def _positive(key: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, key, "a positive finite number", value)


def _unit_interval(key: str, value: float) -> None:
    _require(0 <= value < 1, key, "in [0, 1)", value)


def check(cfg: Config) -> None:
    """Checks what the schema's types cannot; raises `UserError` at the first offence."""
    m = cfg.model
    _require(all(h >= 1 for h in m.hidden), "model.hidden", "a list of positive widths", m.hidden)
    _one_of("model.activation", m.activation, model.ACTIVATIONS)
    _one_of("model.output_activation", m.output_activation, model.ACTIVATIONS)
    _one_of("model.init", m.init, (*model.INITIALIZERS, "explicit"))
    _positive("model.init_scale", m.init_scale)
    for key in ("input_size", "output_size"):
        size = getattr(m, key)
        _require(size is None or size >= 1, f"model.{key}", "null or a positive integer", size)
    _require((m.init == "explicit") == (m.weights is not None), "model.weights",
             "given exactly when model.init is explicit", m.weights)

    o = cfg.optimizer
    _one_of("optimizer.name", o.name, optim.OPTIMIZERS)
    _positive("optimizer.lr", o.lr)
    if isinstance(o, SGDConfig):
        _unit_interval("optimizer.momentum", o.momentum)
    if isinstance(o, AdamConfig):
        _unit_interval("optimizer.b1", o.b1)
        _unit_interval("optimizer.b2", o.b2)
        _positive("optimizer.eps", o.eps)
    if isinstance(o, AdamWConfig):
        _require(math.isfinite(o.weight_decay) and o.weight_decay >= 0, "optimizer.weight_decay",
                 "a finite number >= 0", o.weight_decay)

    t = cfg.trainer
    _require(t.steps >= 1, "trainer.steps", "a positive integer", t.steps)
    _require(t.log_every >= 1, "trainer.log_every", "a positive integer", t.log_every)
    _one_of("trainer.loss", t.loss, losses.LOSSES)
    _require(0 <= cfg.seed < 2**32, "seed", "an integer in [0, 2**32)", cfg.seed)


def optimizer_hyperparams(cfg: OptimizerConfig) -> dict[str, float]:
    """The optimizer's float hyperparameters by Optax's names (``lr`` becomes ``learning_rate``)."""
    fields = {"lr": "learning_rate", "momentum": "momentum", "b1": "b1", "b2": "b2", "eps": "eps",
              "weight_decay": "weight_decay"}
    return {optax_name: float(getattr(cfg, key)) for key, optax_name in fields.items()
            if hasattr(cfg, key)}


def describe_error(error: BaseException) -> str:
    """One line for a Hydra or OmegaConf composition error: what is wrong and what is allowed."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(error, MissingConfigException) and error.options is not None:
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        options = [o for o in error.options if not o.startswith(SCHEMA_PREFIX)]
        return f"{group}={name} is not a config option; choose one of {', '.join(options)}"
    if isinstance(error, OverrideParseException):
        return f"cannot parse the override {error.override!r}: {error.message.splitlines()[0]}"
    cause = error.__cause__ if error.__cause__ is not None else error
    key = getattr(cause, "full_key", None)
    message = str(getattr(cause, "msg", cause)).strip().splitlines()[0]
    if key and " not in " in message:
        parent = getattr(cause, "parent_node", None)
        allowed = sorted(k for k in parent.keys() if k != "hydra") if parent is not None else []
        return f"unknown config key {key!r}; allowed here: {', '.join(map(str, allowed))}"
    converted = re.match(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", message)
    if key and converted:
        return f"{key} must be {_TYPE_NAMES.get(converted[2], converted[2])}, got {converted[1]!r}"
    return f"{key}: {message}" if key else " ".join(str(error).split())


_TYPE_NAMES = {"Float": "a number", "Integer": "an integer", "Boolean": "true or false"}


def _check_known_keys(node: DictConfig, path: str = "") -> None:
    """Rejects keys added with ``+key=value`` that the node's schema dataclass does not have."""
    schema = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        if key == "hydra" and not path:
            continue
        full = f"{path}{key}"
        if known is not None and key not in known:
            raise UserError(f"unknown config key {full!r}; allowed here: {', '.join(sorted(known))}")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            _check_known_keys(child, full + ".")
