"""Early stopping: a `jax_mlp.loop.Hook` that stops each run of a group when its monitored
validation metric has not improved for `patience` evaluations, keeping its best params.

Its state (best params, value, step and the evaluations since, all with a run axis) is saved in
every checkpoint, so a resumed run stops where an uninterrupted one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax_mlp.errors import UserError
from jax_mlp.loop import NOT_YET, Hook, Loop, Point, select_runs
from jax_mlp.train import shortest_float

MAXIMISED = ("accuracy", "r2")  # metrics for which larger is better; the others are minimised


@dataclass(frozen=True)
class Rule:
    """When a run stops: `monitor` ("val_loss", "val_accuracy", ...) has not improved by more
    than `min_delta` for `patience` evaluations; `mode` is "min" or "max"; `restore_best` ends
    the run with the params of its best evaluation."""

    monitor: str = "val_loss"
    mode: str = "auto"
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True

    @property
    def split(self) -> str:
        return self.monitor.split("_", 1)[0]

    @property
    def metric(self) -> str:
        return self.monitor.split("_", 1)[1]

    @property
    def maximise(self) -> bool:
        return self.mode == "max" or (self.mode == "auto" and self.metric in MAXIMISED)


def check(rule: Rule, recorded: dict[str, tuple[str, ...]]) -> None:
    """Refuses a monitored metric that the run never records; `recorded` maps each evaluated
    split to its metrics.

    Raises:
      UserError: naming the metric and those the run records.
    """
    if rule.split == "val" and rule.metric in recorded.get("val", ()):
        return
    choices = ", ".join(f"val_{m}" for m in recorded.get("val", ()))
    why = (f"choose one of {choices}" if choices else
           "this run has no validation split (data.val_fraction=0); set data.val_fraction, e.g. 0.2")
    raise UserError(f"trainer.early_stopping.monitor={rule.monitor} is not a metric this run records; {why}")


class EarlyStopping(Hook):
    """The hook; `tree` is its state (leaves with a run axis), saved with the checkpoints: each
    run's best params, value and step, the evaluations since, and its latest value."""

    name = "early_stopping"

    def __init__(self, rule: Rule, params: Any, dtype: Any) -> None:
        """`params`: the group's initial params (leaves with a run axis)."""
        runs = len(jax.tree_util.tree_leaves(params)[0])
        self.rule = rule
        worst = -np.inf if rule.maximise else np.inf
        self.tree = {"params": jax.tree_util.tree_map(jnp.copy, params),
                     "value": np.full(runs, worst, dtype), "step": np.full(runs, NOT_YET, np.int32),
                     "waited": np.zeros(runs, np.int32),
                     "latest": np.full(runs, np.nan, dtype)}  # each run's value at its latest evaluation

    def load(self, tree: dict[str, Any]) -> None:
        """Takes the state a checkpoint saved (`tree` as saved)."""
        self.tree = {**tree, **{k: np.asarray(tree[k]) for k in ("value", "step", "waited", "latest")}}

    def at_point(self, loop: Loop, point: Point) -> None:
        value = point.evaluations.get(self.rule.split, {}).get(self.rule.metric)
        if value is None:
            return
        best, sign = self.tree["value"], -1.0 if self.rule.maximise else 1.0
        evaluated = point.training & point.finite
        self.tree["latest"] = np.where(evaluated, value, self.tree["latest"]).astype(best.dtype)
        improved = evaluated & (sign * value < sign * best - self.rule.min_delta)
        if improved.any():
            self.tree["params"] = select_runs(improved, loop.state.params, self.tree["params"])
        self.tree["value"] = np.where(improved, value, best).astype(best.dtype)
        self.tree["step"] = np.where(improved, point.step, self.tree["step"]).astype(np.int32)
        self.tree["waited"] = np.where(improved, 0, self.tree["waited"] + evaluated).astype(np.int32)
        loop.stop_runs(evaluated & (self.tree["waited"] >= self.rule.patience))

    def final_params(self, params: Any, keep: np.ndarray) -> Any:
        """The runs' final params: with `Rule.restore_best`, each run's best where it had one and
        `keep` (R,) is false (a diverged run keeps its own)."""
        if not self.rule.restore_best:
            return params
        use_best = (self.tree["step"] != NOT_YET) & ~keep
        return select_runs(use_best, self.tree["params"], params) if use_best.any() else params

    def summary(self, run: int, stopped_at: int) -> dict[str, Any]:
        """What run `run`'s summary.json records."""
        step = int(self.tree["step"][run])
        return {"monitor": self.rule.monitor, "mode": "max" if self.rule.maximise else "min",
                "best_step": None if step == NOT_YET else step,
                "best_value": None if step == NOT_YET else shortest_float(self.tree["value"][run]),
                "stopped_early": stopped_at != NOT_YET, "stopped_at": None if stopped_at == NOT_YET else stopped_at,
                "restored_best": self.rule.restore_best and step != NOT_YET}
