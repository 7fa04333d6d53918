"""One run without Hydra: `execute` trains a loaded config into a folder (through the one driver,
`jax_mlp.runs`); the checks of a resumed sweep's jobs; `restore_run`, `evaluate_run` and
`plot_run` read a finished run back. Tests and other programs call these with a config and a folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import jax
import jax.numpy as jnp
import numpy as np

from jax_mlp import checkpoint, config, devices, files, model, report, train
from jax_mlp.data import Scaling
from jax_mlp.data.dataset import CLASSIFICATION
from jax_mlp.data.encoding import FeatureEncoding
from jax_mlp.errors import UserError
from jax_mlp.outputs import Outcome
from jax_mlp.problems import Problem, device_split, prepare, start_runtime, target_std
from jax_mlp.runs import checkpoints_dir, train_runs

log = logging.getLogger("jax_mlp")


def newest_checkpoint_step(cfg: config.Config, out_dir: Path) -> int | None:
    """The step of the newest checkpoint in the run's checkpoints folder (`checkpoints_dir`), or None."""
    return max(checkpoint.saved_steps(checkpoints_dir(cfg, out_dir)), default=None)


#: What a sweep's job may change when it resumes: how long it trains and how it logs and saves,
#: not what it trains (see `refuse_renumbered_jobs`).
RESUME_MAY_CHANGE = ("trainer.resume", "trainer.steps", "trainer.epochs", "trainer.log_every", "trainer.eval_every",
                     "trainer.steps_per_call", "trainer.checkpoint_every", "trainer.keep_checkpoints",
                     "trainer.progress", "trainer.plots", "trainer.compilation_cache", "trainer.cache_dir",
                     "trainer.platform", "logger", "distributed")
LENGTH = ("trainer.steps", "trainer.epochs")


def refuse_renumbered_jobs(cfgs: Sequence[config.Config], out_dirs: Sequence[Path]) -> None:
    """For a resumed sweep's jobs that continue the checkpoints in `out_dirs`: refuses one whose
    folder records a run of other values (beyond `RESUME_MAY_CHANGE`) in its ``summary.json`` or,
    when the run was killed before it wrote one, beside its checkpoints
    (`checkpoint.Checkpointer.run_config`). A value added inside a sweep's list renumbers the jobs
    after it, and each would train on from another job's checkpoint.

    Raises:
      UserError: naming the folder and the first value that differs.
    """
    for cfg, out_dir in zip(cfgs, out_dirs):
        saved = _saved_config(out_dir)
        changed = _changed_values(saved, cfg, RESUME_MAY_CHANGE) if saved else []
        if changed:
            key, before, now = changed[0]
            raise UserError(
                f"{out_dir} holds the checkpoints of a run with {key}={before}, but this sweep's job there has "
                f"{key}={now}; resume a sweep with the values that saved it (a value added inside a list "
                "renumbers the jobs after it: add new ones at the end), or sweep in a new hydra.sweep.dir")


def finished_run(cfg: config.Config, out_dir: Path) -> Outcome | None:
    """For a job of a sweep resumed with ``trainer.resume=true``: the `Outcome` that its folder's
    ``summary.json`` records when a run of the same values and length (beyond how it logs and
    saves) completed there, so that finishing a stopped sweep does not train its completed jobs
    again; else None. A diverged run resumes as before: a stopped vmap group saved it at the stop,
    and it trains on with its group to the params an unstopped sweep leaves."""
    summary = report.read_summary(out_dir) if cfg.trainer.resume is True else None
    if not summary or summary.get("status") != "completed":
        return None
    may_change = tuple(key for key in RESUME_MAY_CHANGE if key not in LENGTH)
    if _changed_values(summary["config"], cfg, may_change):
        return None
    return Outcome(float(summary["objective"]), summary["status"])


def _saved_config(out_dir: Path) -> dict | None:
    """The config of the run that trained in `out_dir`, as ``summary.json`` holds it: from its
    summary, else from its checkpoints' metadata (a killed run's); None when neither has it."""
    if (summary := report.read_summary(out_dir)) is not None:
        return summary["config"]
    if not checkpoint.saved_steps(Path(out_dir) / "checkpoints"):
        return None
    checkpointer = checkpoint.Checkpointer(Path(out_dir) / "checkpoints")
    try:
        return checkpointer.run_config()
    finally:
        checkpointer.close()


def _changed_values(saved: dict, cfg: config.Config, may_change: Sequence[str]) -> list[tuple[str, str, str]]:
    """(key, value in the `saved` config, value in `cfg`) of each value that differs, keys under
    `may_change` aside; values as an override writes them."""
    before, now = _flat(saved), _flat(config.as_saved(cfg))
    if not now.keys() <= before.keys():  # a config of an older schema: read it as today's (about 20 ms)
        before = _flat(config.as_saved(config.from_saved(saved)))
    return [(key, _value(before.get(key)), _value(value)) for key, value in now.items()
            if before.get(key) != value and not any(key == k or key.startswith(k + ".") for k in may_change)]


def _flat(values: dict, prefix: str = "") -> dict[str, object]:
    """Nested dicts as one dict of dotted keys (``{"optimizer": {"lr": 0.1}}`` -> ``optimizer.lr``)."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _value(value: object) -> str:
    """A config value as an override writes it."""
    return value if isinstance(value, str) else json.dumps(value).replace(" ", "")


def execute(cfg: config.Config, out_dir: Path, progress: TextIO | None = None) -> Outcome:
    """Trains the run `cfg` describes, a group of one (`jax_mlp.runs.train_runs`), and writes its
    outputs into `out_dir` (see `RunOutputs`), showing a progress bar on `progress` when given;
    starts JAX's multi-process runtime first when the config or the cluster asks for it.

    Returns:
      The `Outcome`; its objective is the final validation loss (the training loss when there is
      no validation split), or inf when training diverged.
    """
    d = cfg.distributed
    devices.start_distributed(d.enabled, d.coordinator_address, d.num_processes, d.process_id)
    start_runtime(cfg.trainer)
    outcome = train_runs([cfg], [out_dir], progress=progress)[0]
    if outcome.status == "interrupted":
        outcome = dataclasses.replace(outcome, message=f"{outcome.message}: checkpoint saved")
    return outcome


def restore_run(run_dir: Path, allow_changed_data: bool = False) -> tuple[Problem, model.Params]:
    """A finished run's problem (its own config, encoding and scaling) and final params.

    Raises:
      UserError: no such run folder or file; or a data file the run read that changed since (its
        splits would not be the run's), unless `allow_changed_data` (a warning then says so).
    """
    run_dir = Path(run_dir)
    summary = report.read_summary(run_dir)
    if summary is None:
        if (run_dir / "multirun.yaml").is_file():
            raise UserError(f"{run_dir} is a sweep's folder; give one of its jobs' folders ({run_dir / '0'}, ...); "
                            "its sweep_summary.md holds every job's final metrics")
        if run_dir.is_file():
            raise UserError(f"{run_dir} is a file; give the run's folder ({run_dir.parent})")
        raise UserError(f"{run_dir} is not a run folder (it has no summary.json)")
    if changed := files.changed_files(summary.get("data_files", [])):
        if not allow_changed_data:
            raise UserError(f"the data the run trained on changed since: {', '.join(changed)}; its splits and "
                            "metrics would not be the run's: restore the file, or evaluate anyway with "
                            "--allow-changed-data")
        log.warning("the data the run trained on changed since (%s); evaluating on them anyway", ", ".join(changed))
    cfg = on_this_machine(config.from_saved(summary["config"]), summary.get("working_dir"))
    start_runtime(cfg.trainer)
    scaling_path = run_dir / "scaling.json"
    if not scaling_path.is_file():
        raise UserError(f"{run_dir} lacks scaling.json, the standardisation its params expect")
    scaling = Scaling.from_dict(json.loads(scaling_path.read_text()))
    features_path = run_dir / "features.json"  # none in the folders of runs before it
    encoding = FeatureEncoding.from_dict(json.loads(features_path.read_text())) if features_path.is_file() else None
    problem = prepare(cfg, scaling, encoding=encoding)
    stored = checkpoint.load_params(run_dir / "params.npz")
    return problem, [{k: jnp.asarray(v, problem.dtype) for k, v in layer.items()} for layer in stored]


def on_this_machine(cfg: config.Config, working_dir: str | None) -> config.Config:
    """A saved run's config made to restore it here, where it may not have trained: a relative
    ``data.path`` is read from the folder the run started in (`working_dir`, recorded in
    ``summary.json``), the run's platform is used only when this machine has it (else JAX's
    default, with a warning), and the compilation cache is this machine's default one."""
    if working_dir:
        cfg = config.with_paths_from(cfg, Path(working_dir))
    platform = cfg.trainer.platform
    if platform != "auto" and platform not in devices.available_platforms():
        log.warning("the run trained with trainer.platform=%s, which this machine lacks; using %s",
                    platform, jax.default_backend())
        platform = "auto"
    return dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, platform=platform, cache_dir=None))


def evaluate_run(run_dir: Path, split: str, allow_changed_data: bool = False) -> dict[str, float]:
    """Metrics of a finished run's params on one split, with the run's own config and scaling.

    Raises:
      UserError: no such run folder, split or file, or changed data (`restore_run`).
    """
    problem, params = restore_run(run_dir, allow_changed_data)
    if split not in problem.data.splits():
        raise UserError(f"the run has no {split} split; it has {', '.join(problem.data.splits())}")
    scale = np.asarray(target_std(problem.data), problem.dtype)
    metrics = train.compiled(problem.task).evaluate(params, *device_split(problem.data.splits()[split], problem), scale)
    return {key: train.shortest_float(value) for key, value in jax.device_get(metrics).items()}


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
