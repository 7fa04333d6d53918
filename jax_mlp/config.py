"""The config schema (dataclasses in Hydra's ConfigStore), its checks, and readable errors.

Hydra composes ``conf/`` against these dataclasses, so a wrong type or an unknown key stops at
composition. `load` then turns the composed `DictConfig` into the schema's dataclass objects and
checks the ranges and names that a type cannot express. `describe_error` turns Hydra's and
OmegaConf's multi-line composition errors into the one line the command line prints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from jax_mlp import devices, losses, model, optim
from jax_mlp.data import encoding as feature_encoding
from jax_mlp.data.tables import csv_delimiter
from jax_mlp.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
DEFAULT_STEPS = 1000  # a run's length when neither trainer.steps nor trainer.epochs is set
SCHEMA_PREFIX = "schema"
# trainer.precision -> the precision of the network's matrix products (`train.Task.matmul_precision`):
# float32 and float64 runs get the products they name on every device, the same numbers as on a CPU.
MATMUL_PRECISIONS = {"float32": "float32", "float64": "float32", "bfloat16": None, "tensorfloat32": "tensorfloat32"}
PRECISIONS = tuple(MATMUL_PRECISIONS)


@dataclass
class ModelConfig:
    """An MLP. `input_size` and `output_size` come from the data when left null."""

    hidden: List[int] = field(default_factory=lambda: [32, 32])
    width: Optional[int] = None  # with depth: hidden = [width] * depth (numbers a search can choose)
    depth: Optional[int] = None
    activation: str = "relu"
    output_activation: str = "identity"
    init: str = "glorot_uniform"  # a name in model.INITIALIZERS, or "explicit" with `weights`
    init_scale: float = 0.01  # std of "normal", half-width of "uniform"
    input_size: Optional[int] = None
    output_size: Optional[int] = None
    weights: Optional[List[Any]] = None  # [{w: [[...]], b: [...]}, ...] for init=explicit


@dataclass
class DataConfig:
    """Base of the data sources; `source` picks the loader, the rest splits and scales."""

    name: str = MISSING
    source: str = MISSING
    val_fraction: float = 0.0  # of all samples, seeded, stratified for classification
    test_fraction: float = 0.0
    standardize: bool = True  # inputs to mean 0, std 1, fitted on the training split
    standardize_targets: bool = True  # regression targets too (metrics stay in their units)
    missing: str = "error"  # features missing (NaN, empty) or infinite: error | drop | mean | median | most_frequent
    drop_missing_labels: bool = False  # drop rows whose target is missing instead of stopping
    seed: Optional[int] = None  # null: the top-level seed


@dataclass
class InlineDataConfig(DataConfig):
    """Rows written in the config: inputs `x` and targets `y` (class labels for classification)."""

    source: str = "inline"
    x: List[Any] = MISSING
    y: List[Any] = MISSING
    task: str = "regression"
    num_classes: Optional[int] = None


@dataclass
class SineDataConfig(DataConfig):
    """y = sin(x) + noise * N(0, 1), x uniform in [low, high]."""

    source: str = "sine"
    n: int = 512
    noise: float = 0.0
    low: float = -3.141592653589793
    high: float = 3.141592653589793


@dataclass
class MoonsDataConfig(DataConfig):
    source: str = "moons"
    n: int = 1000
    noise: float = 0.1


@dataclass
class SpiralsDataConfig(DataConfig):
    source: str = "spirals"
    n: int = 900
    classes: int = 3
    turns: float = 1.0
    noise: float = 0.1


@dataclass
class BlobsDataConfig(DataConfig):
    source: str = "blobs"
    n: int = 1000
    features: int = 2
    classes: int = 3
    cluster_std: float = 1.0


@dataclass
class SklearnDataConfig(DataConfig):
    """A data set bundled with scikit-learn, chosen by `name`."""

    source: str = "sklearn"


@dataclass
class TableDataConfig(DataConfig):
    """Base of the table sources: columns by name, 0-based number or glob (``bill_*``)."""

    path: Optional[str] = None
    target: Any = MISSING  # a column, or a list of them
    features: Optional[List[Any]] = None  # null: every other column (a first one without a name aside)
    exclude: Optional[List[Any]] = None  # columns left out of the features
    categorical: Optional[List[Any]] = None  # numeric columns that are categories too (text ones always are)
    encoding: str = "onehot"  # onehot | ordinal: how categories become inputs
    unknown_category: str = "ignore"  # ignore (no category) | error, for a category training never saw
    task: str = "auto"  # auto (from the target column, as scikit-learn's type_of_target) | regression | classification
    num_classes: Optional[int] = None


@dataclass
class CsvDataConfig(TableDataConfig):
    source: str = "csv"
    header: bool = True
    delimiter: str = ","
    decimal: str = "."  # the decimal mark: "," for 39,1


@dataclass
class ParquetDataConfig(TableDataConfig):
    source: str = "parquet"


@dataclass
class OpenmlDataConfig(TableDataConfig):
    """An OpenML data set by `name` (and `version`) or `id`, through scikit-learn's fetch_openml."""

    source: str = "openml"
    target: Any = None  # null: the data set's default target
    id: Optional[int] = None  # OpenML's data id; wins over name
    version: Any = "active"  # active, or a version number
    cache_dir: Optional[str] = None  # null: $XDG_CACHE_HOME/jax_mlp/data (scikit-learn's cache in it, openml/)


@dataclass
class NpzDataConfig(DataConfig):
    source: str = "npz"
    path: Optional[str] = None
    x_key: str = "x"
    y_key: str = "y"
    task: str = "auto"
    num_classes: Optional[int] = None


@dataclass
class MnistDataConfig(DataConfig):
    """MNIST or Fashion-MNIST (`name`) from the four IDX files in the folder `path`, or downloaded."""

    source: str = "mnist"
    path: Optional[str] = None  # null: downloaded once into cache_dir (mnist, fashion_mnist)
    cache_dir: Optional[str] = None  # null: $XDG_CACHE_HOME/jax_mlp/data (or ~/.cache/...)
    mirrors: Optional[List[str]] = None  # base URLs tried in order; null: the published ones


@dataclass
class OptimizerConfig:
    """Base of the optimizers; `name` picks the algorithm, `schedule` shapes the learning rate."""

    name: str = MISSING
    lr: float = 0.1
    schedule: str = "constant"  # constant | cosine | warmup_cosine | linear
    warmup_steps: int = 0  # for warmup_cosine
    final_lr_fraction: float = 0.0  # where cosine, warmup_cosine and linear end, times lr


def _optimizer_schema(name: str, entry: optim.Optimizer) -> type:
    """The config schema of a registry entry (`jax_mlp.optim.REGISTRY`): its name, float
    hyperparameters and switches, with the entry's defaults."""
    fields = [("name", str, field(default=name)), *((f.key, float, field(default=f.default)) for f in entry.floats),
              *((key, bool, field(default=default)) for key, default in entry.switches)]
    return dataclasses.make_dataclass(f"{name.capitalize()}Config", fields, bases=(OptimizerConfig,))


@dataclass
class EarlyStoppingConfig:
    """trainer.early_stopping: stop a run whose `monitor` has not improved for `patience` evaluations."""

    monitor: str = "val_loss"  # a validation metric the run records: val_loss, val_accuracy, val_rmse, ...
    mode: str = "auto"  # min | max | auto (max for accuracy and r2, else min)
    patience: int = 5  # evaluations without improvement before the run stops
    min_delta: float = 0.0  # how much better than the best counts as an improvement
    restore_best: bool = True  # end with the params (params.npz, test metrics) of the best evaluation


@dataclass
class TrainerConfig:
    steps: Optional[int] = None  # optimizer steps; null: `epochs`, or DEFAULT_STEPS when that is null too
    epochs: Optional[int] = None  # passes over the training split
    batch_size: Optional[int] = None  # null: the full batch
    log_every: int = 100  # steps between log lines
    steps_per_call: Optional[int] = None  # most steps one compiled call runs; null: up to a log line
    eval_every: Optional[int] = None  # epochs between validation passes; null: at every log line
    # null: off; {patience: 5, ...} (keys of EarlyStoppingConfig) to stop on a stall. Untyped here:
    # OmegaConf cannot merge a dict into a null structured node; `early_stopping` checks it.
    early_stopping: Any = None
    loss: str = "auto"  # auto (mse, or cross-entropy for classification) | mse | mae | huber
    precision: str = "float32"  # float32 | float64 | bfloat16 (bf16 arithmetic) | tensorfloat32 (TF32 matmuls)
    platform: str = "auto"  # auto | cpu | gpu | tpu
    data_parallel: bool = False  # split each batch over the devices (of every process), params replicated
    checkpoint_every: Optional[int] = None  # steps between Orbax checkpoints (and one at the end); null: none
    keep_checkpoints: int = 3
    resume: Any = False  # true: continue the run in hydra.run.dir; or a checkpoints folder to start from
    progress: bool = True  # a progress bar on stderr when it is a terminal (never in a multirun)
    plots: bool = False  # loss.png, metrics.png, fit.png in the run folder, sweep.png at a sweep's root
    compilation_cache: bool = True  # JAX's persistent compilation cache
    cache_dir: Optional[str] = None  # null: $XDG_CACHE_HOME/jax_mlp/xla (or ~/.cache/...)


@dataclass
class LoggerConfig:
    """The metric writers: one is on when its node is present (``logger=[jsonl,csv]``)."""

    jsonl: Optional[Dict[str, Any]] = None  # metrics.jsonl (the default; resumes read it)
    csv: Optional[Dict[str, Any]] = None  # metrics.csv
    tensorboard: Optional[Dict[str, Any]] = None  # tensorboard/ event files, with the hparams view


@dataclass
class DistributedConfig:
    """JAX's multi-process runtime (`jax.distributed.initialize`), for runs over several hosts."""

    enabled: Any = "auto"  # auto: when SLURM runs several tasks or JAX_COORDINATOR_ADDRESS is set | true | false
    coordinator_address: Optional[str] = None  # host:port of process 0; null: from the cluster
    num_processes: Optional[int] = None
    process_id: Optional[int] = None


@dataclass
class Config:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    seed: int = 0


# The schema of each data source (by `source`) and optimizer (by `name`).
DATA_SCHEMAS: dict[str, type] = {
    "inline": InlineDataConfig, "sine": SineDataConfig, "moons": MoonsDataConfig,
    "spirals": SpiralsDataConfig, "blobs": BlobsDataConfig, "sklearn": SklearnDataConfig,
    "csv": CsvDataConfig, "parquet": ParquetDataConfig, "openml": OpenmlDataConfig, "npz": NpzDataConfig,
    "mnist": MnistDataConfig,
}
OPTIMIZER_SCHEMAS: dict[str, type] = {name: _optimizer_schema(name, entry) for name, entry in optim.REGISTRY.items()}

_GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"": ModelConfig},
    "data": {f"_{source}": schema for source, schema in DATA_SCHEMAS.items()},
    "optimizer": {f"_{name}": schema for name, schema in OPTIMIZER_SCHEMAS.items()},
    "trainer": {"": TrainerConfig},
}


def register() -> None:
    """Stores the schemas in Hydra's ConfigStore (``schema`` and ``<group>/schema[_kind]``).

    The YAML files in ``conf/`` name them first in their defaults list, so Hydra checks every
    value's type and rejects keys the schema lacks. Hydra's own options of the plugins jax_mlp
    wraps (``hydra/launcher=joblib``...) are pointed at the wrappers.
    """
    from jax_mlp import plugin_wrappers

    plugin_wrappers.choose_wrappers()
    if not OmegaConf.has_resolver("jax_mlp.sqlite"):
        OmegaConf.register_new_resolver("jax_mlp.sqlite", sqlite_url)
    store = ConfigStore.instance()
    store.store(name=SCHEMA_PREFIX, node=Config)
    for group, schemas in _GROUP_SCHEMAS.items():
        for suffix, node in schemas.items():
            store.store(group=group, name=SCHEMA_PREFIX + suffix, node=node)


def sqlite_url(path: str) -> str:
    """``${jax_mlp.sqlite:PATH}``: the SQLAlchemy URL of an SQLite file at PATH, its folder made
    (an Optuna study in a sweep folder that does not exist yet)."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Composes ``conf/`` with command-line style `overrides`, as the train script would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def load(cfg: DictConfig) -> Config:
    """The composed config as schema dataclass objects, after every range and name check.

    A ``hydra`` node in `cfg` (a whole composed config) is left alone.

    Raises:
      UserError: naming the first key whose value is not allowed, and what is.
    """
    try:
        _check_known_keys(cfg)
        values = {f.name: cfg[f.name] for f in dataclasses.fields(Config)}
        obj = Config(**{k: OmegaConf.to_object(v) if isinstance(v, DictConfig) else v
                        for k, v in values.items()})
    except Exception as error:  # an interpolation or missing value: OmegaConf's own errors
        raise UserError(describe_error(error)) from None
    schemas = {"model": ModelConfig, "data": DataConfig, "optimizer": OptimizerConfig, "trainer": TrainerConfig}
    if not all(isinstance(getattr(obj, k), schema) for k, schema in schemas.items()):
        raise UserError("the config does not follow the jax_mlp schema (is `schema` first in its defaults?)")
    check(obj)
    return obj


def reload(base: Config, cfg: DictConfig, changed: set[str]) -> Config:
    """`load` of `cfg` when it differs from the config `base` was loaded from only under the
    top-level keys `changed` (a sweep's jobs): those are read again, and the whole is checked.

    Raises:
      UserError: as `load`.
    """
    try:
        values = {}
        for name in changed:
            value = cfg[name]
            if isinstance(value, DictConfig):
                _check_known_keys(value, name + ".")
                value = OmegaConf.to_object(value)
            values[name] = value
        obj = dataclasses.replace(base, **values)
    except Exception as error:  # as in `load`
        raise UserError(describe_error(error)) from None
    check(obj)
    return obj


def with_paths_from(cfg: Config, folder: Path) -> Config:
    """`cfg` with each relative file path it holds (``data.path``, a ``trainer.resume`` PATH,
    ``trainer.cache_dir``) joined to `folder`: where the command ran, which a job of Hydra's
    ``hydra.job.chdir=true`` has left for its output folder before it reads them."""

    def joined(path: Any) -> Any:
        if not isinstance(path, str) or not path or Path(path).expanduser().is_absolute():
            return path
        return str(Path(folder) / path)

    data = cfg.data
    for key in ("path", "cache_dir"):
        if hasattr(data, key):
            data = dataclasses.replace(data, **{key: joined(getattr(data, key))})
    trainer = dataclasses.replace(cfg.trainer, resume=joined(cfg.trainer.resume),
                                  cache_dir=joined(cfg.trainer.cache_dir))
    return dataclasses.replace(cfg, data=data, trainer=trainer)


def as_saved(cfg: Config) -> dict[str, Any]:
    """`cfg` as ``summary.json`` and the checkpoints' metadata hold it: JSON's dicts, lists,
    numbers, text and nulls (`from_saved` reads it back)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_saved(saved: DictConfig | dict) -> Config:
    """A run's saved config (``.hydra/config.yaml`` or summary.json's ``config``) as a checked `Config`.

    Each group is read against the schema its ``source`` or ``name`` names, so the result does
    not depend on what ``conf/`` holds today.
    """
    values = OmegaConf.to_container(saved, resolve=True) if isinstance(saved, DictConfig) else dict(saved)
    values.pop("hydra", None)
    trainer = values.get("trainer")
    if isinstance(trainer, dict) and "x64" in trainer:  # runs saved before trainer.precision
        trainer = values["trainer"] = dict(trainer)
        trainer.setdefault("precision", "float64" if trainer.pop("x64") else "float32")
    data = values.get("data")
    if isinstance(data, dict) and "drop_nonfinite" in data:  # runs saved before data.missing
        data = values["data"] = dict(data)
        dropped = data.pop("drop_nonfinite")
        data.setdefault("missing", "drop" if dropped else "error")
        data.setdefault("drop_missing_labels", bool(dropped))
    try:
        data_schema = DATA_SCHEMAS[values["data"]["source"]]
        optimizer_schema = OPTIMIZER_SCHEMAS[values["optimizer"]["name"]]
        node = OmegaConf.merge(
            OmegaConf.structured(Config(model=ModelConfig(), data=data_schema(),
                                        optimizer=optimizer_schema(), trainer=TrainerConfig())),
            values)
    except (KeyError, TypeError) as error:
        raise UserError(f"the saved config lacks {error}; is it a jax_mlp run's config?") from None
    except Exception as error:  # OmegaConf's validation errors
        raise UserError(describe_error(error)) from None
    return load(node)


def _require(ok: bool, key: str, allowed: str, value: Any) -> None:
    if not ok:
        raise UserError(f"{key} must be {allowed}, got {value!r}")


def _one_of(key: str, value: str, names: Any) -> None:
    _require(value in names, key, "one of " + ", ".join(sorted(names)), value)


def _positive(key: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, key, "a positive finite number", value)


def _non_negative(key: str, value: float) -> None:
    _require(math.isfinite(value) and value >= 0, key, "a finite number >= 0", value)


def _unit_interval(key: str, value: float) -> None:
    _require(0 <= value < 1, key, "in [0, 1)", value)


_HYPERPARAM_CHECKS = {"positive": _positive, "unit": _unit_interval, "non-negative": _non_negative}


def check(cfg: Config) -> None:
    """Checks what the schema's types cannot; raises `UserError` at the first offence."""
    m = cfg.model
    _require(all(h >= 1 for h in m.hidden), "model.hidden", "a list of positive widths", m.hidden)
    _require((m.width is None) == (m.depth is None), "model.width and model.depth", "both null or both set",
             [m.width, m.depth])
    _require(m.width is None or m.width >= 1, "model.width", "a positive integer", m.width)
    _require(m.depth is None or m.depth >= 0, "model.depth", "a non-negative integer", m.depth)
    _one_of("model.activation", m.activation, model.ACTIVATIONS)
    _one_of("model.output_activation", m.output_activation, model.ACTIVATIONS)
    _one_of("model.init", m.init, (*model.INITIALIZERS, "explicit"))
    _positive("model.init_scale", m.init_scale)
    for key in ("input_size", "output_size"):
        size = getattr(m, key)
        _require(size is None or size >= 1, f"model.{key}", "null or a positive integer", size)
    if m.init == "explicit" and m.weights is None:
        raise UserError("model.init=explicit needs model.weights (one {w, b} a layer); give them, or "
                        "choose another model.init to draw the weights")
    if m.init != "explicit" and m.weights is not None:
        raise UserError(f"model.init={m.init} draws the weights, but model.weights gives them; add "
                        "model.weights=null")

    o = cfg.optimizer
    _one_of("optimizer.name", o.name, optim.OPTIMIZERS)
    for f in optim.REGISTRY[o.name].floats:
        _HYPERPARAM_CHECKS[f.allowed](f"optimizer.{f.key}", getattr(o, f.key))

    _one_of("optimizer.schedule", o.schedule, optim.SCHEDULES)
    _require(o.warmup_steps >= 0, "optimizer.warmup_steps", "an integer >= 0", o.warmup_steps)
    _require(0 <= o.final_lr_fraction <= 1, "optimizer.final_lr_fraction", "in [0, 1]", o.final_lr_fraction)

    check_data(cfg.data)

    t = cfg.trainer
    if t.steps is not None and t.epochs is not None:  # an experiment's epochs meets a steps override, say
        raise UserError(f"trainer.steps={t.steps} and trainer.epochs={t.epochs} are both set; add trainer.steps=null "
                        f"to train for {t.epochs} epochs, or trainer.epochs=null for {t.steps} steps")
    _require(t.steps is None or t.steps >= 1, "trainer.steps", "null or a positive integer", t.steps)
    _require(t.epochs is None or t.epochs >= 1, "trainer.epochs", "null or a positive integer", t.epochs)
    _require(t.batch_size is None or t.batch_size >= 1, "trainer.batch_size", "null or a positive integer",
             t.batch_size)
    _require(t.log_every >= 1, "trainer.log_every", "a positive integer", t.log_every)
    _require(t.steps_per_call is None or t.steps_per_call >= 1, "trainer.steps_per_call",
             "null or a positive integer", t.steps_per_call)
    _require(t.eval_every is None or t.eval_every >= 1, "trainer.eval_every", "null or a positive integer",
             t.eval_every)
    _one_of("trainer.platform", t.platform, devices.PLATFORMS)
    _one_of("trainer.precision", t.precision, PRECISIONS)
    d = cfg.distributed
    _require(d.enabled is True or d.enabled is False or d.enabled == "auto", "distributed.enabled",
             "auto, true or false", d.enabled)
    _require(t.checkpoint_every is None or t.checkpoint_every >= 1, "trainer.checkpoint_every",
             "null or a positive integer", t.checkpoint_every)
    _require(t.keep_checkpoints >= 1, "trainer.keep_checkpoints", "a positive integer", t.keep_checkpoints)
    _require(isinstance(t.resume, bool) or (isinstance(t.resume, str) and t.resume != ""), "trainer.resume",
             "false, true or a checkpoints folder", t.resume)
    _one_of("trainer.loss", t.loss, ("auto", *losses.REGRESSION_LOSSES, "cross_entropy"))
    if (e := early_stopping(t)) is not None:
        _one_of("trainer.early_stopping.mode", e.mode, ("auto", "min", "max"))
        _require(e.patience >= 1, "trainer.early_stopping.patience", "a positive integer", e.patience)
        _require(math.isfinite(e.min_delta) and e.min_delta >= 0, "trainer.early_stopping.min_delta",
                 "a finite number >= 0", e.min_delta)
    _require(0 <= cfg.seed < 2**32, "seed", "an integer in [0, 2**32)", cfg.seed)


def early_stopping(t: TrainerConfig) -> EarlyStoppingConfig | None:
    """``trainer.early_stopping`` read against `EarlyStoppingConfig`; None when off.

    Raises:
      UserError: an unknown key or a value of the wrong type.
    """
    if t.early_stopping is None:
        return None
    if not isinstance(t.early_stopping, (dict, DictConfig)):
        raise UserError(f"trainer.early_stopping must be null or a mapping such as {{patience: 5}}, "
                        f"got {t.early_stopping!r}")
    try:
        node = OmegaConf.merge(OmegaConf.structured(EarlyStoppingConfig), t.early_stopping)
    except OmegaConfBaseException as error:
        raise UserError(f"trainer.early_stopping: {describe_error(error)}") from None
    return OmegaConf.to_object(node)


def check_data(d: DataConfig) -> None:
    """Checks the data config's fractions and source-specific sizes."""
    for key in ("val_fraction", "test_fraction"):
        _require(0 <= getattr(d, key) < 1, f"data.{key}", "in [0, 1)", getattr(d, key))
    _require(d.val_fraction + d.test_fraction < 1, "data.val_fraction + data.test_fraction",
             "below 1 so that training data remain", d.val_fraction + d.test_fraction)
    _require(d.seed is None or 0 <= d.seed < 2**32, "data.seed", "null or an integer in [0, 2**32)", d.seed)
    if hasattr(d, "task"):
        _one_of("data.task", d.task, ("auto", "regression", "classification"))
    if hasattr(d, "num_classes"):
        _require(d.num_classes is None or d.num_classes >= 2, "data.num_classes", "null or at least 2",
                 d.num_classes)
    synthetic = (SineDataConfig, MoonsDataConfig, SpiralsDataConfig, BlobsDataConfig)
    if isinstance(d, synthetic):
        _require(d.n >= 2, "data.n", "an integer >= 2", d.n)
    if isinstance(d, (SineDataConfig, MoonsDataConfig, SpiralsDataConfig)):
        _require(math.isfinite(d.noise) and d.noise >= 0, "data.noise", "a finite number >= 0", d.noise)
    if isinstance(d, (SpiralsDataConfig, BlobsDataConfig)):
        _require(d.classes >= 2, "data.classes", "an integer >= 2", d.classes)
    _one_of("data.missing", d.missing, feature_encoding.MISSING)
    if isinstance(d, TableDataConfig):
        _one_of("data.encoding", d.encoding, feature_encoding.ENCODINGS)
        _one_of("data.unknown_category", d.unknown_category, feature_encoding.UNKNOWN_CATEGORIES)
    if isinstance(d, CsvDataConfig):
        _require(len(csv_delimiter(d.delimiter)) == 1, "data.delimiter", "one character (or \\t, tab)",
                 d.delimiter)
        _require(len(d.decimal) == 1 and d.decimal != csv_delimiter(d.delimiter), "data.decimal",
                 "one character other than data.delimiter", d.decimal)
    if isinstance(d, BlobsDataConfig):
        _require(d.features >= 1, "data.features", "an integer >= 1", d.features)
        _require(math.isfinite(d.cluster_std) and d.cluster_std > 0, "data.cluster_std",
                 "a positive finite number", d.cluster_std)


def hidden_sizes(cfg: ModelConfig) -> tuple[int, ...]:
    """The hidden layers' widths: ``[width] * depth`` when those are set, else `hidden`."""
    return tuple([cfg.width] * cfg.depth) if cfg.width is not None else tuple(cfg.hidden)


def data_seed(cfg: Config) -> int:
    """The seed the data are drawn and split from: ``data.seed``, or the run's seed when null."""
    return cfg.seed if cfg.data.seed is None else cfg.data.seed


# Every optimizer's float hyperparameters, by config key, and their names in Optax.
OPTAX_NAMES = {f.key: f.optax for entry in optim.REGISTRY.values() for f in entry.floats}


def optimizer_hyperparams(cfg: OptimizerConfig) -> dict[str, float]:
    """The optimizer's float hyperparameters by Optax's names (``lr`` becomes ``learning_rate``)."""
    return {f.optax: float(getattr(cfg, f.key)) for f in optim.REGISTRY[cfg.name].floats}


def optimizer_kind(cfg: OptimizerConfig, total_steps: int) -> optim.OptimizerKind:
    """The static `OptimizerKind` of an optimizer config for a run of `total_steps` steps.

    Raises:
      UserError: a warm-up that does not end before the run does.
    """
    if cfg.schedule == "warmup_cosine" and cfg.warmup_steps >= total_steps:
        raise UserError(f"optimizer.warmup_steps={cfg.warmup_steps} must be fewer than the run's {total_steps} "
                        f"steps (optimizer.schedule=warmup_cosine); lower it or train longer")
    switches = {key: getattr(cfg, key) for key, _ in optim.REGISTRY[cfg.name].switches}
    return optim.kind_of(cfg.name, optimizer_hyperparams(cfg), switches,
                         schedule=cfg.schedule, steps=total_steps, warmup_steps=cfg.warmup_steps,
                         final_fraction=cfg.final_lr_fraction)


# Config options that Hydra plugins of the optional extras register, and how to install them.
PLUGIN_EXTRAS = {
    **{f"hydra/launcher/{name}": 'pip install -e ".[launchers]"' for name in ("joblib", "submitit_local",
                                                                               "submitit_slurm")},
    "hydra/sweeper/optuna": 'pip install -e ".[optuna]"',
}


def describe_error(error: BaseException) -> str:
    """One line for a Hydra or OmegaConf composition error: what is wrong and what is allowed."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    if isinstance(error, MissingConfigException):
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        # Hydra lists a group's options when one option was chosen, not a list (logger=[jsonl,wandb]).
        listed = error.options
        if listed is None and group and (CONFIG_DIR / group).is_dir():
            listed = sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))
        if f"{group}/{name}" in PLUGIN_EXTRAS:  # an optional Hydra plugin that is not installed
            return f"{group}={name} is a Hydra plugin that is not installed: {PLUGIN_EXTRAS[f'{group}/{name}']}"
        if listed is not None:
            options = [o for o in listed if not o.startswith(SCHEMA_PREFIX)]
            return f"{group}={name} is not a config option; choose one of {', '.join(options)}"
    if isinstance(error, OverrideParseException):
        key, _, value = str(error.override).partition("=")
        return (f"cannot parse the override {error.override!r}: {error.message.splitlines()[0]}; quote a "
                f"value with special characters, e.g. '{key}=\"{value}\"'")
    appended = re.fullmatch(r"Multiple values for (\S+)\. To override a value use 'override \1: (\S+)'", str(error))
    if appended:  # +group=option on the command line, where config.yaml's defaults list has the group
        group, option = appended.groups()
        return (f"+{group}={option} adds a second {group}, but config.yaml's defaults list has one already; "
                f"choose it with {group}={option} (no +)")
    sweeper = re.match(r"In '(hparams_search/\w+)': Could not override 'hydra/sweeper/", str(error))
    if sweeper:  # the search brings its sweeper, and a hydra/sweeper= on the command line displaced it
        return f"{sweeper[1].replace('/', '=')} brings its own sweeper; drop hydra/sweeper=... from the command line"
    cause = error.__cause__ if error.__cause__ is not None else error
    source = ""
    if isinstance(error, ConfigCompositionException) and isinstance(error.__context__, OmegaConfBaseException):
        # Hydra re-raises OmegaConf's error with the config file it was merging, unchained.
        cause = error.__context__
        named = re.match(r"In '([^']+)'", str(error))
        source = f" (set by {named[1]})" if named else ""
    key = getattr(cause, "full_key", None)
    message = str(getattr(cause, "msg", cause)).strip().splitlines()[0]
    if key and " not in " in message:
        parent = getattr(cause, "parent_node", None)
        allowed = sorted(k for k in parent.keys() if k != "hydra") if parent is not None else []
        return f"unknown config key {key!r}{source}; allowed here: {', '.join(map(str, allowed))}"
    if key and isinstance(cause, MissingMandatoryValue):  # a `???` left in the composed config
        return f"{key} is not set; give it with {key}=VALUE"
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
        # OmegaConf's private node access (tests/test_private_apis.py): the public one resolves
        # interpolations, which may not resolve before the schema check (${now:}, a missing value).
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            _check_known_keys(child, full + ".")
