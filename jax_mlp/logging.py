"""What a run shows and leaves as it goes: its metric writers (``logger=[jsonl,csv,tensorboard]``)
and a progress bar on a terminal."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from jax_mlp.errors import UserError


class CsvWriter:
    """``metrics.csv``: a row a log point, a column a metric (empty where a metric was not
    computed at that point), the columns fixed when the file is started."""

    def __init__(self, path: Path, columns: Sequence[str], resume_step: int | None = None) -> None:
        """Starts `path` with a header row, or, resuming, keeps its rows up to `resume_step`."""
        self.path, self.columns = Path(path), list(columns)
        kept = []
        if resume_step is not None and self.path.is_file():
            rows = list(csv.reader(io.StringIO(self.path.read_text())))
            kept = [row for row in rows[1:] if row and int(row[0]) <= resume_step] if rows[:1] == [self.columns] else []
        self.file = self.path.open("w", newline="", buffering=1)
        self.writer = csv.writer(self.file)
        self.writer.writerows([self.columns, *kept])

    def write(self, record: dict[str, Any]) -> None:
        self.writer.writerow([record.get(column, "") for column in self.columns])

    def close(self, final: dict[str, Any] | None = None) -> None:
        self.file.close()


class TensorboardWriter:
    """TensorBoard event files in a folder (through tensorboardX): every metric of a log point as
    a scalar (``train/loss``, ``val/accuracy``, ``lr``, ...), and at the end the run's
    hyperparameters with its final metrics in TensorBoard's hparams view."""

    @staticmethod
    def check_installed() -> None:
        """Raises `UserError` when tensorboardX, an optional dependency, is not installed."""
        if importlib.util.find_spec("tensorboardX") is None:
            raise UserError('logger=[...,tensorboard] needs tensorboardX: pip install -e ".[tensorboard]" '
                            "(or pip install tensorboardX)")

    def __init__(self, folder: Path, hparams: dict[str, Any], resume_step: int | None = None) -> None:
        from tensorboardX import SummaryWriter

        self.hparams = hparams
        self.writer = SummaryWriter(str(folder), purge_step=None if resume_step is None else resume_step + 1)

    @staticmethod
    def tag(key: str) -> str:
        """``loss`` -> ``train/loss``, ``val_loss`` -> ``val/loss``; others as they are."""
        split, _, name = key.partition("_")
        if split in ("val", "test", "train") and name:
            return f"{split}/{name}"
        return "train/loss" if key == "loss" else key

    def write(self, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(self.tag(key), value, record["step"])

    def close(self, final: dict[str, Any] | None = None) -> None:
        """Writes the hparams view (with the finite numbers of `final`) and closes the file."""
        if final is not None:
            from tensorboardX.summary import hparams

            metrics = {f"hparam/{k}": float(v) for k, v in final.items()
                       if isinstance(v, (int, float)) and math.isfinite(v)}
            # Into this writer's file: `SummaryWriter.add_hparams` opens a second writer, whose file,
            # named by the second, overwrote this one when both opened within the same second.
            for summary in hparams(self.hparams, metrics):
                self.writer.file_writer.add_summary(summary)
            for key, value in metrics.items():
                self.writer.add_scalar(key, value)
        self.writer.close()


class JsonlWriter:
    """Appends one JSON line per `write`.

    A line is written with a single unbuffered `os.write`, so a kill leaves complete lines only
    (no fsync: see `jax_mlp.files.write_atomic`).
    """

    def __init__(self, path: Path, truncate: bool = False) -> None:
        """Opens `path` for appending, made if need be; `truncate`: emptied first."""
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        self._fd = os.open(self.path, flags, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, allow_nan=True) + "\n").encode())

    def close(self, final: dict[str, Any] | None = None) -> None:
        os.close(self._fd)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_wanted(enabled: bool, stream: TextIO, multirun: bool) -> bool:
    """Whether a run shows a progress bar on `stream`: when `enabled` (``trainer.progress``), the
    stream is a terminal, and the run is not a job of a multirun."""
    return enabled and not multirun and stream.isatty()


class Progress:
    """A tqdm bar over a run's steps: epoch, loss, learning rate, samples/s and the time left.

    It moves at log points only, with values already fetched for the log, so it never waits on
    the device.
    """

    def __init__(self, stream: TextIO, total: int, done: int, samples_per_step: int,
                 steps_per_epoch: int | None) -> None:
        """A bar on `stream` for a run of `total` steps, `done` of them already (a resume)."""
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="step", file=stream, dynamic_ncols=True,
                        smoothing=0.3)
        self.samples_per_step, self.steps_per_epoch = samples_per_step, steps_per_epoch
        self.last = (time.perf_counter(), done)

    def update(self, step: int, loss: float, lr: float) -> None:
        """Moves the bar to `step`, showing the loss and learning rate logged there."""
        now = time.perf_counter()
        then, before = self.last
        rate = (step - before) * self.samples_per_step / max(now - then, 1e-9)
        self.last = (now, step)
        shown = {"loss": f"{loss:.4g}", "lr": f"{lr:.3g}"}
        if step > before:
            shown["samples/s"] = f"{rate:,.0f}"
        if self.steps_per_epoch is not None:
            shown = {"epoch": f"{step / self.steps_per_epoch:.2f}", **shown}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.bar.close()
