"""Pictures of runs and sweeps, drawn headless with matplotlib from the files a run leaves.

`run_plots` draws ``loss.png`` (training loss at each log point and validation loss where it was
computed, against the step), ``metrics.png`` (validation and test accuracy, for classification)
and, when given the learned function of a 1-D regression, ``fit.png``; `sweep_plot` draws
``sweep.png`` at a sweep's root: the objective against each swept number, seeds averaged, their
spread shaded. matplotlib is imported only here, when a picture is asked for (it costs about half a
second).
"""

from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from jax_mlp.errors import UserError


def pyplot():
    """matplotlib's pyplot on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: files only, no window
    import matplotlib.pyplot as plt

    return plt


def _records(run_dir: Path) -> list[dict[str, Any]]:
    """The run's log points, from ``metrics.jsonl``, else ``metrics.csv``."""
    jsonl, table = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
    if jsonl.is_file():
        return [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    if table.is_file():
        import csv

        rows = csv.DictReader(io.StringIO(table.read_text()))
        return [{k: float(v) for k, v in row.items() if v != ""} for row in rows]
    raise UserError(f"{run_dir} has neither metrics.jsonl nor metrics.csv to plot")


def _log_scale_helps(values: list[float]) -> bool:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return len(positive) == len(values) and len(values) > 1 and max(positive) / min(positive) > 30


def run_plots(run_dir: Path, fitted: dict[str, np.ndarray] | None = None) -> list[Path]:
    """Writes the run's pictures into `run_dir`; returns their paths.

    `fitted`: for ``fit.png``, the training inputs ``x`` and targets ``y`` (n,) and the learned
    function on a ``grid`` (m,) as ``prediction`` (m,), in the data's own units.
    """
    plt = pyplot()
    run_dir = Path(run_dir)
    records = _records(run_dir)
    written = []
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    axes.plot(steps, losses, marker=".", label="training (mean since the previous point)")
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    if val:
        axes.plot(*zip(*val), marker="o", label="validation")
    if _log_scale_helps(losses + [v for _, v in val]):
        axes.set_yscale("log")
    axes.set(xlabel="step", ylabel="loss", title=f"loss: {run_dir.name}")
    axes.legend()
    written.append(save(figure, run_dir / "loss.png"))
    accuracy = {split: [(r["step"], r[f"{split}_accuracy"]) for r in records if f"{split}_accuracy" in r]
                for split in ("val", "test")}
    if any(accuracy.values()):
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        for split, points in accuracy.items():
            if points:
                axes.plot(*zip(*points), marker="o", label={"val": "validation", "test": "test"}[split])
        axes.set(xlabel="step", ylabel="accuracy", ylim=(0, 1.02), title=f"accuracy: {run_dir.name}")
        axes.legend(loc="lower right")
        written.append(save(figure, run_dir / "metrics.png"))
    if fitted is not None:
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        axes.scatter(fitted["x"], fitted["y"], s=10, color="black", alpha=0.4, label="training data", zorder=3)
        axes.plot(fitted["grid"], fitted["prediction"], color="tab:red", linewidth=2, label="the trained network",
                  zorder=4)
        axes.set(xlabel="x", ylabel="y", title=f"fit: {run_dir.name}")
        axes.legend()
        written.append(save(figure, run_dir / "fit.png"))
    return written


def save(figure, path: Path) -> Path:
    """Writes `figure` to `path` (layout tightened) and closes it; returns `path`."""
    figure.tight_layout()
    figure.savefig(path)
    pyplot().close(figure)
    return path


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sweep_plot(sweep_dir: Path, rows: list[dict[str, Any]]) -> Path | None:
    """Writes ``sweep.png``: for each swept key with finite numeric values (but ``seed``), the mean
    objective of the jobs at each value, their min-max range shaded (over seeds and the other
    keys). `rows`: the sweep summary's rows. Returns the path, or None when nothing was swept."""
    swept: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for override in row["overrides"].split():
            key, _, value = override.partition("=")
            number = _number(value)
            if (number is not None and math.isfinite(number) and key != "seed"
                    and math.isfinite(row["objective"])):
                swept[key][number].append(row["objective"])
    swept = {key: values for key, values in swept.items() if len(values) > 1}
    if not swept:
        return None
    plt = pyplot()
    figure, axes_row = plt.subplots(1, len(swept), figsize=(5 * len(swept), 4), dpi=100, squeeze=False)
    for axes, (key, by_value) in zip(axes_row[0], sorted(swept.items())):
        xs = sorted(by_value)
        mean = [float(np.mean(by_value[x])) for x in xs]
        axes.fill_between(xs, [min(by_value[x]) for x in xs], [max(by_value[x]) for x in xs], alpha=0.3,
                          label="range over the other jobs")
        axes.plot(xs, mean, marker="o", label="mean objective")
        if _log_scale_helps(xs):
            axes.set_xscale("log")
        if _log_scale_helps([v for x in xs for v in by_value[x]]):
            axes.set_yscale("log")
        axes.set(xlabel=key, ylabel="objective", title=f"objective against {key}")
        axes.legend()
    return save(figure, Path(sweep_dir) / "sweep.png")
