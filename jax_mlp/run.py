"""The one task a Hydra job runs: config -> data -> params -> fit -> outputs.

`main` is the command-line edge: it starts Hydra, turns a user's mistake into one line on stderr
and exit status 2, a diverged single run into exit status 3, and SIGINT / SIGTERM into a checkpoint,
an ``interrupted`` summary and exit status 130 / 143. `execute` does the work and knows
nothing of Hydra, so tests and other programs can call it with a loaded config and a folder.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import signal
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

import jax
import jax.numpy as jnp
import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from jax_mlp import checkpoint, config, devices, files, hydra_mode, model, optim, report, train
from jax_mlp.data import Dataset, Scaling, Split, load_dataset
from jax_mlp.data.dataset import CLASSIFICATION
from jax_mlp.errors import UserError
from jax_mlp.logging import CsvWriter, JsonlWriter, Progress, TensorboardWriter, progress_wanted

log = logging.getLogger("jax_mlp")

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3


@dataclass(frozen=True)
class Outcome:
    """What `execute` reports back: the objective and how the run ended."""

    objective: float
    status: str  # "completed", "diverged" or "interrupted"
    message: str = ""
    exit_code: int = 0


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


def initial_state(cfg: config.Config, problem: Problem) -> tuple[train.TrainState, jax.Array]:
    """The run's state at step 0 (params, optimizer state and data-order key, from ``cfg.seed``)
    and the learning rate of its first step.

    Built by one compiled program: op by op, every key split and layer draw would be a program
    of its own to compile or load.
    """
    return initial_state_fn(cfg, problem)(np.uint32(cfg.seed), config.optimizer_hyperparams(cfg.optimizer))


def initial_state_fn(cfg: config.Config, problem: Problem):
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


def prepare(cfg: config.Config, scaling: Scaling | None = None) -> Problem:
    """Loads the data (scaled by `scaling`, else by one fitted on it) and fixes the static task."""
    dtype = jnp.float64 if cfg.trainer.precision == "float64" else jnp.float32
    data = load_dataset(cfg.data, config.data_seed(cfg), scaling)
    sizes = layer_sizes(cfg.model, data)
    mlp = model.MLP(sizes, cfg.model.activation, cfg.model.output_activation)
    t = cfg.trainer
    compute = "bfloat16" if t.precision == "bfloat16" else None
    shape = train.Task(mlp, loss_name(cfg, data), None, len(data.train), t.batch_size, compute_dtype=compute)
    total_steps = t.steps if t.steps is not None else t.epochs * shape.steps_per_epoch
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


def make_evaluator(problem: Problem, arrays: dict[str, tuple[jax.Array, jax.Array]] | None = None,
                   sharding: jax.sharding.Sharding | None = None):
    """``evaluate(params, split_name) -> {metric: float}`` over the whole split.

    `arrays` holds splits already on the device (by name); the others are put there here, on
    `sharding` when given (the params' placement in a data-parallel run).
    """
    evaluate = train.compiled(problem.task).evaluate
    place = jax.device_put if sharding is None else functools.partial(devices.place, sharding=sharding)
    scale = place(np.asarray(target_std(problem.data), problem.dtype))
    arrays = {name: (arrays or {}).get(name) or place(device_split(split, problem))
              for name, split in problem.data.splits().items()}

    def evaluate_split(params: model.Params, name: str) -> dict[str, float]:
        metrics = evaluate(params, *arrays[name], scale)
        return {key: train.shortest_float(value) for key, value in jax.device_get(metrics).items()}

    return evaluate_split


def due_splits(problem: Problem, step: int, eval_every: int | None) -> tuple[str, ...]:
    """The splits to evaluate at `step`: validation every `eval_every` steps (None: at every log
    point) and at the end; test at the end only."""
    data, end = problem.data, problem.total_steps
    val = data.val is not None and (eval_every is None or step % eval_every == 0 or step == end)
    return ("val",) * val + ("test",) * (data.test is not None and step == end)


class RunOutputs:
    """One run's folder: ``scaling.json`` at once, ``metrics.jsonl`` a line a log point, and at the
    end ``params.npz`` and ``summary.json``. Shared by single runs and vmapped sweeps."""

    def __init__(self, cfg: config.Config, problem: Problem, out_dir: Path, resume_step: int | None = None,
                 verbose: bool = True) -> None:
        """Starts the folder afresh, or, resuming from `resume_step`, keeps the metrics lines up
        to that step so that every step appears once. `verbose`: log each record and the end
        (a vmapped sweep logs its group instead)."""
        self.cfg, self.problem, self.out_dir, self.verbose = cfg, problem, Path(out_dir), verbose
        self.started = time.perf_counter()
        self.diverged_at: int | None = None
        self.initial_loss = math.nan
        self.writes = devices.is_writer()  # of a multi-process run, process 0 alone writes
        self.writers: list[Any] = []
        if not self.writes:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "scaling.json").write_text(json.dumps(problem.data.scaling.as_dict()) + "\n")
        loggers = cfg.logger
        if loggers.jsonl is not None:
            self.writers.append(self._jsonl(resume_step))
        if loggers.csv is not None:
            self.writers.append(CsvWriter(self.out_dir / "metrics.csv", metric_columns(problem), resume_step))
        if loggers.tensorboard is not None:
            self.writers.append(TensorboardWriter(self.out_dir / "tensorboard", hparams(cfg), resume_step))

    def _jsonl(self, resume_step: int | None) -> JsonlWriter:
        """``metrics.jsonl``, resuming: its lines up to `resume_step` kept, the initial loss read."""
        path = self.out_dir / "metrics.jsonl"
        if resume_step is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines(keepends=True)
                    if line.endswith("\n") and json.loads(line)["step"] <= resume_step]
            first = json.loads(kept[0]) if kept else {}
            self.initial_loss = first.get("loss", math.nan) if first.get("step") == 0 else math.nan
            files.write_atomic(path, "".join(kept).encode())
        return JsonlWriter(path, truncate=resume_step is None)

    def record(self, step: int, loss: float, lr: float, finite: bool,
               evaluations: dict[str, dict[str, float]]) -> None:
        """Writes the log point `step`: the mean training loss since the last one, the learning
        rate, and each evaluated split's metrics; a first non-finite point marks divergence."""
        if self.diverged_at is not None:
            return  # a diverged run of a vmapped group trains on; its record ends where a lone run's does
        task = self.problem.task
        epoch = {} if task.full_batch else {"epoch": round(step / task.steps_per_epoch, 6)}
        record = {"step": step, **epoch, "loss": loss, "lr": lr,
                  **{f"{split}_{k}": v for split, values in evaluations.items() for k, v in values.items()}}
        if step == 0:
            self.initial_loss = loss
        if not finite:
            self.diverged_at = step
        for writer in self.writers:
            writer.write(record)
        if self.verbose:
            log.info(_describe(record))

    def finish(self, params: model.Params, steps: int, final: dict[str, dict[str, float]],
               signum: int | None = None) -> Outcome:
        """Writes ``params.npz`` and ``summary.json`` from the final params and every split's
        metrics; returns the run's `Outcome`. `signum`: the signal that interrupted training."""
        cfg, data = self.cfg, self.problem.data
        flat = {f"{split}_{k}": v for split, values in final.items() for k, v in values.items()}
        diverged = self.diverged_at is not None or not math.isfinite(flat["train_loss"])
        objective = math.inf if diverged or signum is not None else report.finite_or_inf(
            flat["val_loss" if data.val is not None else "train_loss"])
        for writer in self.writers:
            writer.close({**flat, "objective": objective})
        steps = steps if self.diverged_at is None else self.diverged_at
        status = "diverged" if diverged else "interrupted" if signum is not None else "completed"
        if self.writes:
            self._write_final(params, steps, status, flat, objective)
        if signum is not None and not diverged:
            name = signal.Signals(signum).name
            return Outcome(objective, status, f"{name} at step {steps}: checkpoint saved; continue with "
                           f"trainer.resume=true hydra.run.dir={self.out_dir}", 128 + signum)
        if diverged:
            return Outcome(objective, "diverged", (
                f"training diverged at step {self.diverged_at}: the loss is not finite with "
                f"optimizer.lr={cfg.optimizer.lr:g}; lower optimizer.lr (e.g. "
                f"optimizer.lr={cfg.optimizer.lr / 10:g}) or pick another optimizer"), EXIT_DIVERGED)
        if self.verbose:
            log.info("final metrics:\n%s", textwrap.indent(report.metrics_table(final), "  "))
            log.info("final loss %.6g, objective %.6g; %s; outputs in %s", flat["train_loss"], objective,
                     ", ".join(f"{k} {v:.6g}" for k, v in flat.items() if k != "train_loss"), self.out_dir)
        return Outcome(objective, "completed")

    def _write_final(self, params: model.Params, steps: int, status: str, flat: dict[str, float],
                     objective: float) -> None:
        """``params.npz`` and ``summary.json``."""
        cfg, data, task = self.cfg, self.problem.data, self.problem.task
        checkpoint.save_params(self.out_dir / "params.npz", params)
        report.write_summary(self.out_dir / "summary.json", {
            "status": status,
            "steps": steps,
            "epochs": round(steps / task.steps_per_epoch, 6),
            "initial_loss": self.initial_loss,
            **flat,
            "objective": objective,
            "lr": cfg.optimizer.lr,
            "task": data.task,
            "loss": task.loss,
            "samples": {name: len(split) for name, split in data.splits().items()},
            "classes": list(data.class_names),
            "dtype": jnp.dtype(self.problem.dtype).name,
            "precision": cfg.trainer.precision,
            "wall_seconds": time.perf_counter() - self.started,
            **devices.describe(),
            "config": dataclasses.asdict(cfg),
        })


def metric_columns(problem: Problem) -> list[str]:
    """The columns of a run's metrics table: step (and epoch), loss, lr, then each evaluated
    split's metrics."""
    data, task = problem.data, problem.task
    names = ("loss", "accuracy") if data.task == CLASSIFICATION else ("loss", "rmse", "mae", "r2")
    splits = [split for split in ("val", "test") if getattr(data, split) is not None]
    return ["step", *(["epoch"] if not task.full_batch else []), "loss", "lr",
            *(f"{split}_{name}" for split in splits for name in names)]


def hparams(cfg: config.Config) -> dict[str, bool | int | float | str]:
    """The config's model, data, optimizer and trainer values and the seed, flat (``optimizer.lr``),
    lists and nulls as text: what TensorBoard's hparams view compares runs by."""
    values = dataclasses.asdict(cfg)
    flat = {"seed": values["seed"]}
    for group in ("model", "data", "optimizer", "trainer"):
        for key, value in values[group].items():
            if key != "weights":
                flat[f"{group}.{key}"] = value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
    return flat


def describe_run(problem: Problem, cfg: config.Config) -> str:
    """One line on what is about to train."""
    data, task = problem.data, problem.task
    return (f"model {'-'.join(map(str, task.mlp.sizes))} ({model.num_params(task.mlp.sizes)} params, "
            f"{task.loss}); data {data.name}: {data.task}, {len(data.train)} train / "
            f"{len(data.val or ())} val / {len(data.test or ())} test; {cfg.optimizer.name} "
            f"lr={cfg.optimizer.lr:g}; {problem.total_steps} steps of "
            + ("the full batch" if task.full_batch else f"batch {task.batch_size}"))


def eval_interval(cfg: config.Config, problem: Problem) -> int | None:
    """``trainer.eval_every`` in steps (None: evaluate at every log point)."""
    every = cfg.trainer.eval_every
    return None if every is None else every * problem.task.steps_per_epoch


def checkpoints_dir(cfg: config.Config, out_dir: Path) -> Path:
    """Where the run's checkpoints are (``RUN_DIR/checkpoints``) or, with ``trainer.resume=PATH``,
    where it resumes from (PATH, or PATH/checkpoints when PATH is a run folder)."""
    resume = cfg.trainer.resume
    if isinstance(resume, str):
        path = Path(resume).expanduser()
        return path / "checkpoints" if (path / "checkpoints").is_dir() else path
    return Path(out_dir) / "checkpoints"


def save_checkpoint(checkpointer: checkpoint.Checkpointer, step: int, state: train.TrainState) -> None:
    """Starts an asynchronous save of `state` and says so in the log."""
    checkpointer.save(state)
    log.info("checkpoint at step %d", step)


def execute(cfg: config.Config, out_dir: Path, progress: TextIO | None = None) -> Outcome:
    """Trains the run `cfg` describes and writes its outputs into `out_dir` (see `RunOutputs`),
    showing a progress bar on `progress` when given.

    With ``trainer.checkpoint_every`` it saves Orbax checkpoints on the way and at the end; with
    ``trainer.resume`` it first restores the newest readable one and trains the remaining steps.

    Returns:
      The `Outcome`; its objective is the final validation loss (the training loss when there is
      no validation split), or inf when training diverged.
    """
    t, d = cfg.trainer, cfg.distributed
    devices.start_distributed(d.enabled, d.coordinator_address, d.num_processes, d.process_id)
    start_runtime(t)
    problem = prepare(cfg)
    state, first_lr = initial_state(cfg, problem)
    checkpointer = None
    if t.checkpoint_every is not None or t.resume is not False:
        if isinstance(t.resume, str) and not checkpoints_dir(cfg, out_dir).is_dir():
            raise UserError(f"trainer.resume={t.resume}: no such checkpoints folder")
        checkpointer = checkpoint.Checkpointer(checkpoints_dir(cfg, out_dir), t.keep_checkpoints)
    resume_step = None
    if t.resume is not False:
        state = checkpointer.restore(state)
        resume_step = int(state.step)
        log.info("resuming from step %d of %s", resume_step, checkpointer.directory)
        if isinstance(t.resume, str):  # later checkpoints go to this run's own folder
            checkpointer.close()
            checkpointer = checkpoint.Checkpointer(Path(out_dir) / "checkpoints", t.keep_checkpoints)
    x, y = device_split(problem.data.train, problem)
    batch_sharding = problem.task.batch_sharding
    everywhere = None if batch_sharding is None else devices.replicated(batch_sharding)
    if batch_sharding is not None:  # params replicated; the full batch split over the devices too
        state = devices.place(state, everywhere)
        x, y = devices.place((x, y), batch_sharding if problem.task.full_batch else everywhere)
    evaluate = make_evaluator(problem, {"train": (x, y)}, everywhere)
    eval_every = eval_interval(cfg, problem)
    outputs = RunOutputs(cfg, problem, out_dir, resume_step)
    log.info(describe_run(problem, cfg))

    task = problem.task
    bar = None if progress is None else Progress(
        progress, problem.total_steps, int(state.step), task.num_train if task.full_batch else task.batch_size,
        None if task.full_batch else task.steps_per_epoch)

    def on_log(step: int, point: train.LogPoint, state: train.TrainState) -> None:
        evaluations = {name: evaluate(state.params, name) for name in due_splits(problem, step, eval_every)}
        outputs.record(step, train.shortest_float(point.loss), train.shortest_float(point.lr),
                       bool(point.finite), evaluations)
        if bar is not None:
            bar.update(step, float(point.loss), float(point.lr))

    if resume_step is None:
        initial = evaluate(state.params, "train")
        on_log(0, train.LogPoint(np.asarray(initial["loss"]), first_lr, np.asarray(True)), state)
    try:
        with Interrupts() as interrupts, _logs_beside(bar):
            result = train.fit(state, x, y, problem.task, steps=problem.total_steps - int(state.step),
                               log_every=t.log_every, eval_every=eval_every, steps_per_call=t.steps_per_call,
                               on_log=on_log, checkpoint_every=t.checkpoint_every,
                               on_checkpoint=None if checkpointer is None else functools.partial(
                                   save_checkpoint, checkpointer),
                               should_stop=interrupts.arrived)
        if result.stopped:
            checkpointer = checkpointer or checkpoint.Checkpointer(Path(out_dir) / "checkpoints",
                                                                   t.keep_checkpoints)
            save_checkpoint(checkpointer, int(result.state.step), result.state)
    finally:
        if checkpointer is not None:
            checkpointer.close()
        if bar is not None:
            bar.close()
    final = {name: evaluate(result.state.params, name) for name in problem.data.splits()}
    outcome = outputs.finish(result.state.params, int(result.state.step), final,
                             interrupts.signum if result.stopped else None)
    if t.plots and outputs.writes:
        from jax_mlp import plots

        pictures = plots.run_plots(Path(out_dir), fitted_function(problem, result.state.params))
        log.info("pictures: %s", ", ".join(path.name for path in pictures))
    return outcome


def _logs_beside(bar: Progress | None):
    """A context in which log lines print above the progress bar (when there is one) instead of
    breaking it."""
    if bar is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


class Interrupts:
    """While active, SIGINT and SIGTERM are recorded instead of ending the process, so training
    can stop at the next span's end, save a checkpoint and write its summary."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def arrived(self) -> bool:
        return self.signum is not None

    def _record(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def _describe(record: dict[str, Any]) -> str:
    """A metrics record as one log line: ``step 100 epoch 2 loss 0.1 lr 0.01 val_loss ...``."""
    return " ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())


def restore_run(run_dir: Path) -> tuple[Problem, model.Params]:
    """A finished run's problem (its own config and scaling) and final params.

    Raises:
      UserError: no such run folder or file.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise UserError(f"{run_dir} is not a run folder (it has no summary.json)")
    cfg = config.from_saved(json.loads(summary_path.read_text())["config"])
    start_runtime(cfg.trainer)
    scaling = Scaling.from_dict(json.loads((run_dir / "scaling.json").read_text()))
    problem = prepare(cfg, scaling)
    stored = checkpoint.load_params(run_dir / "params.npz")
    return problem, [{k: jnp.asarray(v, problem.dtype) for k, v in layer.items()} for layer in stored]


def evaluate_run(run_dir: Path, split: str) -> dict[str, float]:
    """Metrics of a finished run's params on one split, with the run's own config and scaling.

    Raises:
      UserError: no such run folder, split or file.
    """
    problem, params = restore_run(run_dir)
    if split not in problem.data.splits():
        raise UserError(f"the run has no {split} split; it has {', '.join(problem.data.splits())}")
    return make_evaluator(problem)(params, split)


def fitted_function(problem: Problem, params: model.Params, points: int = 200) -> dict[str, np.ndarray] | None:
    """For a regression of one input on one output: the training data ``x``, ``y`` (n,) and the
    network's ``prediction`` on a ``grid`` of `points` over the data's range, in the data's own
    units (scaling undone). None for any other task."""
    data = problem.data
    if data.task == CLASSIFICATION or data.input_size != 1 or data.output_size != 1:
        return None
    s = data.scaling
    unscale_x = (lambda v: v) if s.x_std is None else (lambda v: v * s.x_std[0] + s.x_mean[0])
    unscale_y = (lambda v: v) if s.y_std is None else (lambda v: v * s.y_std[0] + s.y_mean[0])
    every_x = np.concatenate([split.x[:, 0] for split in data.splits().values()])
    grid = np.linspace(every_x.min(), every_x.max(), points)
    prediction = train.network(problem.task)(params, jax.device_put(np.asarray(grid[:, None], problem.dtype)))
    return {"x": unscale_x(data.train.x[:, 0]), "y": unscale_y(data.train.y[:, 0]),
            "grid": unscale_x(grid), "prediction": unscale_y(np.asarray(prediction)[:, 0])}


def plot_run(run_dir: Path) -> list[Path]:
    """Draws a finished run's pictures (`jax_mlp.plots.run_plots`), with its learned function
    when it is a regression of one input on one output; returns their paths."""
    from jax_mlp import plots

    problem, params = restore_run(run_dir)
    return plots.run_plots(Path(run_dir), fitted_function(problem, params))


def run(cfg: DictConfig) -> float:
    """The Hydra task: loads and checks `cfg`, trains, and returns the objective to minimise.

    Raises:
      UserError: a bad config or input, before any output is written.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    checked = config.load(cfg)
    out_dir = Path(hydra_cfg.runtime.output_dir)
    log.info("config:\n%s", textwrap.indent(OmegaConf.to_yaml(cfg, resolve=True).rstrip(), "  "))
    log.info("outputs in %s", out_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    shown = sys.stderr if progress_wanted(checked.trainer.progress, sys.stderr, multirun) else None
    outcome = execute(checked, out_dir, progress=shown)
    if outcome.message:
        print(f"jax_mlp: {outcome.message}", file=sys.stderr)
    # A diverged job of a sweep ends normally (objective inf) so the sweep goes on; a signal ends all.
    if outcome.status == "interrupted" or (outcome.status == "diverged" and not multirun):
        sys.exit(outcome.exit_code)
    return outcome.objective


class SweepSummary(Callback):
    """A Hydra callback: at the end of a multirun, the sweep summary table at the sweep's root."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        rows = report.write_sweep_summary(Path(config.hydra.sweep.dir))
        if rows and OmegaConf.select(config, "trainer.plots", default=False):
            from jax_mlp import plots

            plots.sweep_plot(Path(config.hydra.sweep.dir), rows)
        if rows:
            log.info("sweep summary of %d jobs in %s; best: %s (objective %.6g)", len(rows),
                     config.hydra.sweep.dir, rows[0]["overrides"] or "(no overrides)", rows[0]["objective"])


def _task(cfg: DictConfig) -> float:
    try:
        return run(cfg)
    except UserError as error:
        exit_user_error(str(error))


def exit_user_error(message: str) -> None:
    """Prints ``jax_mlp: error: MESSAGE`` on stderr and exits with status 2."""
    print(f"jax_mlp: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def main() -> None:
    """The command line: ``python scripts/train.py [overrides] [-m]``."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # Let composition errors reach us instead of Hydra's multi-line report, so they end as one line.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    config.register()
    if devices.launch_rank(os.environ) > 0:
        # One process of a multi-process run: process 0 writes the run folder, so this one keeps
        # Hydra's .hydra/ files and log file out of it (and logs to its stdout).
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    app = hydra.main(config_path=str(config.CONFIG_DIR), config_name="config", version_base="1.3")(_task)
    try:
        with hydra_mode.probe_skipped(sys.argv[1:], config.CONFIG_DIR):
            app()
    except (HydraException, OmegaConfBaseException) as error:
        exit_user_error(config.describe_error(error))


def exit_after(entry_point: Callable[[], Any]) -> NoReturn:
    """Runs a command-line `entry_point` and ends the process with its exit status, skipping the
    interpreter's teardown of modules.

    Tearing down JAX's and Hydra's modules takes about 0.3 s, a fifth of a short run. Every output
    file is closed (and every checkpoint finished) before `entry_point` returns. What a normal exit
    would still do is done here: threads are joined and their exit hooks run (a joblib launcher's
    worker processes are stopped there), then the `atexit` functions; the log handlers and standard
    streams are flushed. Only for scripts: it never returns to its caller.
    """
    try:
        entry_point()
        status = 0
    except SystemExit as stop:
        status = stop.code
    if not isinstance(status, int):  # sys.exit("message") prints it and exits with 1
        if status is not None:
            print(status, file=sys.stderr)
        status = 0 if status is None else 1
    getattr(threading, "_shutdown", lambda: None)()  # what the interpreter's exit calls first
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
