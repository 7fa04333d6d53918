"""A run's config made concrete, without Hydra: the data loaded and scaled, the static task
(`train.Task`), the initial state, the data on the device and the evaluator of a split.

Used by the one driver (`jax_mlp.runs`, for a single run and a vmapped group alike) and by the
scripts that read a finished run back.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax_mlp import config, devices, model, optim, train
from jax_mlp.data import Dataset, Scaling, Split, load_dataset
from jax_mlp.data.dataset import CLASSIFICATION
from jax_mlp.data.encoding import FeatureEncoding
from jax_mlp.errors import UserError


@dataclass(frozen=True)
class Problem:
    """A config made concrete: the data, the static task, and the training arrays' dtype."""

    data: Dataset
    task: train.Task
    dtype: Any
    total_steps: int


def named_key(root: jax.Array, name: str) -> jax.Array:
    """The key for one named use of randomness (``init``, ``train``), from the root."""
    return jax.random.fold_in(root, zlib.crc32(name.encode()))


def layer_sizes(cfg: config.ModelConfig, data: Dataset) -> tuple[int, ...]:
    """Input, hidden and output widths; a size the config gives must agree with the data's."""
    for key, given, actual in (("input_size", cfg.input_size, data.input_size),
                               ("output_size", cfg.output_size, data.output_size)):
        if given is not None and given != actual:
            raise UserError(f"model.{key} is {given} but data {data.name!r} has {actual}; "
                            f"set model.{key}=null to take it from the data")
    return (data.input_size, *config.hidden_sizes(cfg), data.output_size)


def loss_name(cfg: config.Config, data: Dataset) -> str:
    """The loss to train with: the config's, or the task's natural one for ``auto``."""
    if data.task == CLASSIFICATION:
        if cfg.trainer.loss not in ("auto", "cross_entropy"):
            raise UserError(f"trainer.loss={cfg.trainer.loss} is a regression loss but data "
                            f"{data.name!r} is classification; use trainer.loss=auto")
        if cfg.model.output_activation != "identity":
            raise UserError(f"model.output_activation must be identity for classification (the loss "
                            f"takes logits), got {cfg.model.output_activation!r}")
        return "sigmoid_cross_entropy" if data.num_classes == 2 else "softmax_cross_entropy"
    if cfg.trainer.loss == "cross_entropy":
        raise UserError(f"trainer.loss=cross_entropy needs classification data; {data.name!r} is regression")
    return "mse" if cfg.trainer.loss == "auto" else cfg.trainer.loss


def prepare(cfg: config.Config, scaling: Scaling | None = None,
            load: Callable[..., Dataset] = load_dataset, encoding: FeatureEncoding | None = None) -> Problem:
    """Loads the data with `load` (scaled by `scaling` and encoded by `encoding`, else by those
    fitted on it) and fixes the static task."""
    dtype = jnp.float64 if cfg.trainer.precision == "float64" else jnp.float32
    data = load(cfg.data, config.data_seed(cfg), scaling, encoding)
    sizes = layer_sizes(cfg.model, data)
    mlp = model.MLP(sizes, cfg.model.activation, cfg.model.output_activation)
    t = cfg.trainer
    compute = "bfloat16" if t.precision == "bfloat16" else None
    shape = train.Task(mlp, loss_name(cfg, data), None, len(data.train), t.batch_size, compute_dtype=compute,
                       matmul_precision=config.MATMUL_PRECISIONS[t.precision])
    total_steps = (t.steps if t.steps is not None else t.epochs * shape.steps_per_epoch if t.epochs is not None
                   else config.DEFAULT_STEPS)
    sharding = devices.data_parallel_sharding(t.batch_size, len(data.train)) if t.data_parallel else None
    task = dataclasses.replace(shape, optimizer=config.optimizer_kind(cfg.optimizer, total_steps),
                               batch_sharding=sharding)
    return Problem(data, task, dtype, total_steps)


def start_runtime(t: config.TrainerConfig) -> None:
    """JAX's switches for a run (precision, compilation cache) and its platform, before any of its
    arrays exists."""
    devices.configure(x64=t.precision == "float64", compilation_cache=t.compilation_cache, cache_dir=t.cache_dir)
    devices.select_platform(t.platform)


def target_std(data: Dataset) -> np.ndarray:
    """The regression targets' scale (n_out,), by which metrics return to the targets' units;
    ones when the targets were not standardised."""
    return np.ones(data.output_size) if data.scaling.y_std is None else data.scaling.y_std


def device_split(split: Split, problem: Problem) -> tuple[jax.Array, jax.Array]:
    """A split's arrays on the default device: x in the training dtype, y likewise or int32 labels."""
    y_dtype = jnp.int32 if problem.data.task == CLASSIFICATION else problem.dtype
    return jax.device_put((np.asarray(split.x, problem.dtype), np.asarray(split.y, y_dtype)))


def initial_state(cfg: config.Config, problem: Problem) -> tuple[train.TrainState, jax.Array]:
    """The run's state at step 0 (params, optimizer state and data-order key, from ``cfg.seed``)
    and the learning rate of its first step.

    Built by one compiled program: op by op, every key split and layer draw would be a program
    of its own to compile or load.
    """
    return initial_state_fn(cfg, problem)(np.uint32(cfg.seed), config.optimizer_hyperparams(cfg.optimizer))


def initial_state_fn(
    cfg: config.Config, problem: Problem
) -> Callable[[jax.Array, dict[str, jax.Array]], tuple[train.TrainState, jax.Array]]:
    """``(seed, hyperparams) -> (state, first learning rate)`` for runs shaped like `cfg`: the
    model's explicit weights or initializer are fixed, the seed and hyperparameters are inputs
    (so `jax_mlp.sweep` can vmap over them)."""
    explicit = (model.explicit_params(cfg.model.weights, problem.task.mlp.sizes, dtype=problem.dtype)
                if cfg.model.init == "explicit" else None)
    return functools.partial(_initial_state, explicit=explicit, task=problem.task, init=cfg.model.init,
                             scale=cfg.model.init_scale, dtype=problem.dtype)


@functools.partial(jax.jit, static_argnames=("task", "init", "scale", "dtype"))
def _initial_state(seed: jax.Array, hyperparams: dict[str, jax.Array], explicit: model.Params | None,
                   *, task: train.Task, init: str, scale: float, dtype: Any):
    """See `initial_state_fn`; `explicit` params, when given, replace the drawn ones."""
    root = jax.random.key(seed)
    params = explicit if explicit is not None else model.init_params(
        named_key(root, "init"), task.mlp.sizes, init=init, scale=scale, dtype=dtype)
    optimizer = optim.make_optimizer(task.optimizer, hyperparams, dtype=dtype)
    state = train.init_state(params, optimizer, named_key(root, "train"))
    return state, optim.learning_rate(task.optimizer, state.opt_state)


def due_splits(problem: Problem, step: int, eval_every: int | None) -> tuple[str, ...]:
    """The splits to evaluate at `step`: validation every `eval_every` steps (None: at every log
    point) and at the end; test at the end only."""
    data, end = problem.data, problem.total_steps
    val = data.val is not None and (eval_every is None or step % eval_every == 0 or step == end)
    return ("val",) * val + ("test",) * (data.test is not None and step == end)


def eval_interval(cfg: config.Config, problem: Problem) -> int | None:
    """``trainer.eval_every`` in steps (None: evaluate at every log point)."""
    every = cfg.trainer.eval_every
    return None if every is None else every * problem.task.steps_per_epoch


def describe_run(problem: Problem, cfgs: Sequence[config.Config]) -> str:
    """One line on what is about to train: one run, or a group of runs (with the range of each
    optimizer hyperparameter and the count of seeds they vary over)."""
    data, task, first = problem.data, problem.task, cfgs[0]
    varying = []
    for key in ("seed", *config.OPTAX_NAMES):
        values = sorted({getattr(c, key) if key == "seed" else getattr(c.optimizer, key, None) for c in cfgs} - {None})
        if key == "lr" or len(values) > 1:
            varying.append(f"{key}={values[0]:g}" if len(values) == 1 else
                           f"{len(values)} seeds" if key == "seed" else f"{key}={values[0]:g}..{values[-1]:g}")
    runs = "" if len(cfgs) == 1 else f"{len(cfgs)} runs as one program: "
    return (f"{runs}model {'-'.join(map(str, task.mlp.sizes))} ({model.num_params(task.mlp.sizes)} params, "
            f"{task.loss}); data {data.name}: {data.task}, {len(data.train)} train / "
            f"{len(data.val or ())} val / {len(data.test or ())} test; {first.optimizer.name} "
            f"{' '.join(varying)}; {problem.total_steps} steps of "
            + ("the full batch" if task.full_batch else f"batch {task.batch_size}"))
