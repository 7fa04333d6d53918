"""A run's folder as it trains: the metric writers a log point goes to, and at the end
``params.npz`` and ``summary.json``, with the `Outcome` the run reports back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from jax_mlp import checkpoint, config, devices, files, model, report
from jax_mlp.data.dataset import CLASSIFICATION, Dataset
from jax_mlp.errors import EXIT_DIVERGED
from jax_mlp.logging import CsvWriter, JsonlWriter, TensorboardWriter
from jax_mlp.problems import Problem

log = logging.getLogger("jax_mlp")

NOT_STARTED = "not started"  # the status of a sweep's job that a signal stopped before it trained
# ... and of one that began training but had written no summary when the sweep's process ended
# (a second Ctrl-C: its worker may still be saving)
UNFINISHED = "unfinished"


@dataclass(frozen=True)
class Outcome:
    """What `execute` reports back: the objective and how the run ended."""

    objective: float
    status: str  # "completed", "diverged", "interrupted" or NOT_STARTED
    message: str = ""
    exit_code: int = 0


@dataclass(frozen=True)
class RunEnd:
    """How one run's training ended, as the loop recorded it (`jax_mlp.loop.Loop`).

    Attributes:
      steps: the steps the run trained (where it stopped, diverged or was interrupted).
      initial_loss: its training loss before the first step.
      diverged_at: the step at whose point it diverged, else None.
      signal: the signal that interrupted it, else None.
      early_stopping: what `jax_mlp.early_stopping.EarlyStopping.summary` says of it, else None.
    """

    steps: int
    initial_loss: float
    diverged_at: int | None = None
    signal: int | None = None
    early_stopping: dict[str, Any] | None = None


class RunOutputs:
    """One run's folder: ``scaling.json`` and ``features.json`` at once, ``metrics.jsonl`` a line a
    log point, and at the end ``params.npz`` and ``summary.json``. Shared by single runs and vmapped sweeps."""

    def __init__(self, cfg: config.Config, problem: Problem, out_dir: Path, resume_step: int | None = None,
                 verbose: bool = True) -> None:
        """Starts the folder afresh, or, resuming from `resume_step`, keeps the metrics lines up
        to that step so that every step appears once. `verbose`: log each record and the end
        (a vmapped sweep logs its group instead)."""
        self.cfg, self.problem, self.out_dir, self.verbose = cfg, problem, Path(out_dir), verbose
        self.started = time.perf_counter()
        self.writes = devices.is_writer()  # of a multi-process run, process 0 alone writes
        self.writers: list[Any] = []
        if not self.writes:
            return
        if cfg.logger.tensorboard is not None:
            TensorboardWriter.check_installed()  # before the folder is touched
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "scaling.json").write_text(json.dumps(problem.data.scaling.as_dict()) + "\n")
        (self.out_dir / "features.json").write_text(json.dumps(problem.data.encoding.as_dict(), indent=1) + "\n")
        loggers = cfg.logger
        if loggers.jsonl is not None:
            self.writers.append(self._jsonl(resume_step))
        if loggers.csv is not None:
            self.writers.append(CsvWriter(self.out_dir / "metrics.csv", metric_columns(problem), resume_step))
        if loggers.tensorboard is not None:
            self.writers.append(TensorboardWriter(self.out_dir / "tensorboard", hparams(cfg), resume_step))

    def _jsonl(self, resume_step: int | None) -> JsonlWriter:
        """``metrics.jsonl``; resuming, its lines up to `resume_step` kept."""
        path = self.out_dir / "metrics.jsonl"
        if resume_step is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines(keepends=True)
                    if line.endswith("\n") and json.loads(line)["step"] <= resume_step]
            files.write_atomic(path, "".join(kept).encode())
        return JsonlWriter(path, truncate=resume_step is None)

    def record(self, step: int, loss: float, lr: float, evaluations: dict[str, dict[str, float]]) -> None:
        """Writes the log point `step`: the mean training loss since the last one, the learning
        rate, and each evaluated split's metrics."""
        task = self.problem.task
        epoch = {} if task.full_batch else {"epoch": round(step / task.steps_per_epoch, 6)}
        record = {"step": step, **epoch, "loss": loss, "lr": lr,
                  **{f"{split}_{k}": v for split, values in evaluations.items() for k, v in values.items()}}
        for writer in self.writers:
            writer.write(record)
        if self.verbose:
            log.info(_describe(record))

    def finish(self, params: model.Params, end: RunEnd, final: dict[str, dict[str, float]]) -> Outcome:
        """Writes ``params.npz`` and ``summary.json`` from the final params and every split's
        metrics; returns the run's `Outcome`."""
        cfg, data = self.cfg, self.problem.data
        flat = {f"{split}_{k}": v for split, values in final.items() for k, v in values.items()}
        diverged = end.diverged_at is not None or not math.isfinite(flat["train_loss"])
        objective = math.inf if diverged or end.signal is not None else report.finite_or_inf(
            flat["val_loss" if data.val is not None else "train_loss"])
        for writer in self.writers:
            writer.close({**flat, "objective": objective})
        status = "diverged" if diverged else "interrupted" if end.signal is not None else "completed"
        warning = no_better_than_constant(data, final) if status == "completed" else None
        if self.writes:
            self._write_final(params, end, status, flat, objective, warning)
        if end.signal is not None and not diverged:
            return Outcome(objective, status, f"{signal.Signals(end.signal).name} at step {end.steps}",
                           128 + end.signal)
        if diverged:
            return Outcome(objective, "diverged", (
                f"training diverged at step {end.steps if end.diverged_at is None else end.diverged_at}: the loss "
                f"is not finite with optimizer.lr={cfg.optimizer.lr:g}; {divergence_advice(cfg, data)}"), EXIT_DIVERGED)
        if self.verbose:
            if warning:
                log.warning("%s", warning)
            if end.early_stopping and end.early_stopping["stopped_early"]:
                log.info("stopped early at step %d: %s best at step %d (%.6g)", end.steps,
                         end.early_stopping["monitor"], end.early_stopping["best_step"],
                         end.early_stopping["best_value"])
            log.info("final metrics:\n%s", textwrap.indent(report.metrics_table(final), "  "))
            log.info("final loss %.6g, objective %.6g; %s; outputs in %s", flat["train_loss"], objective,
                     ", ".join(f"{k} {v:.6g}" for k, v in flat.items() if k != "train_loss"), self.out_dir)
        return Outcome(objective, "completed", f"warning: {warning}" if warning else "")

    def _write_final(self, params: model.Params, end: RunEnd, status: str, flat: dict[str, float],
                     objective: float, warning: str | None) -> None:
        """``params.npz`` and ``summary.json``."""
        cfg, data, task = self.cfg, self.problem.data, self.problem.task
        checkpoint.save_params(self.out_dir / "params.npz", params)
        report.write_record(self.out_dir / "summary.json", {
            "status": status,
            "steps": end.steps,
            "epochs": round(end.steps / task.steps_per_epoch, 6),
            "initial_loss": end.initial_loss,
            **flat,
            "objective": objective,
            **({"early_stopping": end.early_stopping} if end.early_stopping else {}),
            **({"warning": warning} if warning else {}),
            "lr": cfg.optimizer.lr,
            "task": data.task,
            "loss": task.loss,
            "samples": {name: len(split) for name, split in data.splits().items()},
            "data_files": list(data.files),  # evaluation refuses a file that changed since
            "classes": list(data.class_names),
            "dtype": jnp.dtype(self.problem.dtype).name,
            "precision": cfg.trainer.precision,
            "wall_seconds": time.perf_counter() - self.started,
            "working_dir": str(Path.cwd()),  # where relative paths of the config (data.path) start
            **devices.describe(),
            "config": dataclasses.asdict(cfg),
        })


# Targets whose standard deviation exceeds this, trained unscaled, get the advice to standardise
# them when the run diverges.
LARGE_TARGETS = 10.0


def divergence_advice(cfg: config.Config, data: Dataset) -> str:
    """What to change after a divergence: standardise large unscaled regression targets, else a
    lower learning rate or another optimizer."""
    lower = f"lower optimizer.lr (e.g. optimizer.lr={cfg.optimizer.lr / 10:g}) or pick another optimizer"
    if data.task == CLASSIFICATION or data.scaling.y_std is not None:
        return lower
    spread = float(np.max(np.std(data.train.y, axis=0)))
    if spread <= LARGE_TARGETS:
        return lower
    return (f"the targets are unscaled and spread widely (std {spread:.4g}): standardise them with "
            f"data.standardize_targets=true (metrics stay in their units), or {lower}")


def no_better_than_constant(data: Dataset, final: dict[str, dict[str, float]]) -> str | None:
    """A warning for a completed run whose final model predicts no better than a constant on its
    validation split (its training split without one): R2 at most 0, or an accuracy at most that
    of always predicting the most frequent class; None otherwise (NaN metrics included)."""
    split = "val" if "val" in final else "train"
    metrics = final[split]
    if data.task == CLASSIFICATION:
        labels = data.splits()[split].y
        majority = float(np.bincount(labels).max() / len(labels))
        if not metrics["accuracy"] <= majority:
            return None
        what = (f"{split} accuracy {metrics['accuracy']:.4g} is no better than always predicting the most "
                f"frequent class ({majority:.4g})")
        fix = "train longer (trainer.steps or trainer.epochs) or change optimizer.lr"
    else:
        if not metrics["r2"] <= 0:
            return None
        what = f"{split} R2 {metrics['r2']:.4g} <= 0: the model predicts no better than the mean"
        fix = ("standardise the targets (data.standardize_targets=true)" if data.scaling.y_std is None else
               "train longer (trainer.steps or trainer.epochs) or change optimizer.lr")
    return f"the run learned nothing useful: {what}; {fix}"


def metric_names(problem: Problem) -> tuple[str, ...]:
    """The metrics an evaluation of a split of `problem` gives."""
    return ("loss", "accuracy") if problem.data.task == CLASSIFICATION else ("loss", "rmse", "mae", "r2")


def metric_columns(problem: Problem) -> list[str]:
    """The columns of a run's metrics table: step (and epoch), loss, lr, then each evaluated
    split's metrics."""
    data, task = problem.data, problem.task
    names = metric_names(problem)
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


def _describe(record: dict[str, Any]) -> str:
    """A metrics record as one log line: ``step 100 epoch 2 loss 0.1 lr 0.01 val_loss ...``."""
    return " ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
