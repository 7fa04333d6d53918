"""The one task a Hydra job runs: config -> data -> params -> fit -> outputs.

`main` is the command-line edge: it starts Hydra, turns a user's mistake into one line on stderr
and exit status 2, and a diverged single run into exit status 3. `execute` does the work and knows
nothing of Hydra, so tests and other programs can call it with a loaded config and a folder.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from jax_mlp import checkpoint, config, devices, model, optim, report, train
from jax_mlp.data import Dataset, load_dataset
from jax_mlp.errors import UserError
from jax_mlp.logging import JsonlWriter

log = logging.getLogger("jax_mlp")

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3


@dataclass(frozen=True)
class Outcome:
    """What `execute` reports back: the objective and how the run ended."""

    objective: float
    status: str  # "completed" or "diverged"
    message: str = ""


def named_key(root: jax.Array, name: str) -> jax.Array:
    """The key for one named use of randomness (``init``, ``data``, ``train``), from the root."""
    return jax.random.fold_in(root, zlib.crc32(name.encode()))


def layer_sizes(cfg: config.ModelConfig, data: Dataset) -> tuple[int, ...]:
    """Input, hidden and output widths; a size the config gives must agree with the data's."""
    for key, given, actual in (("input_size", cfg.input_size, data.input_size),
                               ("output_size", cfg.output_size, data.output_size)):
        if given is not None and given != actual:
            raise UserError(f"model.{key} is {given} but data {data.name!r} has {actual}; "
                            f"set model.{key}=null to take it from the data")
    return (data.input_size, *cfg.hidden, data.output_size)


def build_params(cfg: config.ModelConfig, sizes: tuple[int, ...], key: jax.Array, dtype: Any) -> model.Params:
    """The initial params: the config's explicit weights, or drawn by the named initializer."""
    if cfg.init == "explicit":
        return model.explicit_params(cfg.weights, sizes, dtype=dtype)
    return model.init_params(key, sizes, init=cfg.init, scale=cfg.init_scale, dtype=dtype)


def execute(cfg: config.Config, out_dir: Path) -> Outcome:
    """Trains the run `cfg` describes and writes its outputs into `out_dir`.

    Writes ``metrics.jsonl`` (one line a log point, step 0 first), ``summary.json`` and
    ``params.npz``.

    Returns:
      The `Outcome`; its objective is the final training loss, or inf when training diverged.
    """
    started = time.perf_counter()
    t = cfg.trainer
    devices.configure(x64=t.x64, compilation_cache=t.compilation_cache, cache_dir=t.cache_dir)
    dtype = jnp.float64 if t.x64 else jnp.float32
    root = jax.random.key(cfg.seed)

    data = load_dataset(cfg.data, named_key(root, "data"))
    sizes = layer_sizes(cfg.model, data)
    params = build_params(cfg.model, sizes, named_key(root, "init"), dtype)
    hyperparams = config.optimizer_hyperparams(cfg.optimizer)
    kind = optim.kind_of(cfg.optimizer.name, hyperparams, getattr(cfg.optimizer, "nesterov", False))
    task = train.Task(model.MLP(sizes, cfg.model.activation, cfg.model.output_activation), t.loss, kind)
    state = train.init_state(params, optim.make_optimizer(kind, hyperparams, dtype=dtype),
                             named_key(root, "train"))
    x, y = jax.device_put((np.asarray(data.train.x, dtype), np.asarray(data.train.y, dtype)))

    out_dir.mkdir(parents=True, exist_ok=True)
    loss_of = train.compiled(task).loss
    initial_loss = train.shortest_float(loss_of(state.params, x, y))
    log.info("model %s, %d params; data %s: %d samples; %s lr=%g; %d steps",
             "-".join(map(str, sizes)), model.num_params(sizes), data.name, len(data.train),
             cfg.optimizer.name, cfg.optimizer.lr, t.steps)
    log.info("step %d loss %.6g", 0, initial_loss)
    with JsonlWriter(out_dir / "metrics.jsonl") as metrics:
        metrics.write({"step": 0, "loss": initial_loss, "lr": cfg.optimizer.lr})

        def on_log(step: int, values: dict[str, float]) -> None:
            metrics.write({"step": step, **values})
            log.info("step %d loss %.6g lr %g", step, values["loss"], values["lr"])

        result = train.fit(state, x, y, task, steps=t.steps, log_every=t.log_every, on_log=on_log)

    final_loss = train.shortest_float(loss_of(result.state.params, x, y))
    status = "completed" if result.diverged_at is None and np.isfinite(final_loss) else "diverged"
    objective = report.finite_or_inf(final_loss) if status == "completed" else float("inf")
    checkpoint.save_params(out_dir / "params.npz", result.state.params)
    report.write_summary(out_dir / "summary.json", {
        "status": status,
        "steps": int(result.state.step),
        "initial_loss": initial_loss,
        "train_loss": final_loss,
        "objective": objective,
        "lr": cfg.optimizer.lr,
        "dtype": jnp.dtype(dtype).name,
        "wall_seconds": time.perf_counter() - started,
        **devices.describe(),
        "config": dataclasses.asdict(cfg),
    })
    if status == "diverged":
        message = (f"training diverged at step {result.diverged_at}: the loss is not finite with "
                   f"optimizer.lr={cfg.optimizer.lr:g}; lower optimizer.lr (e.g. "
                   f"optimizer.lr={cfg.optimizer.lr / 10:g}) or pick another optimizer")
        return Outcome(objective, status, message)
    log.info("final loss %.6g after %d steps; outputs in %s", final_loss, int(result.state.step), out_dir)
    return Outcome(objective, status)


def run(cfg: DictConfig) -> float:
    """The Hydra task: loads and checks `cfg`, trains, and returns the objective to minimise.

    Raises:
      UserError: a bad config or input, before any output is written.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    outcome = execute(config.load(cfg), Path(hydra_cfg.runtime.output_dir))
    if outcome.status == "diverged":
        print(f"jax_mlp: {outcome.message}", file=sys.stderr)
        if hydra_cfg.mode != RunMode.MULTIRUN:  # in a sweep the job ends normally, objective inf
            sys.exit(EXIT_DIVERGED)
    return outcome.objective


def _task(cfg: DictConfig) -> float:
    try:
        return run(cfg)
    except UserError as error:
        _exit_user_error(str(error))


def _exit_user_error(message: str) -> None:
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
    app = hydra.main(config_path=str(config.CONFIG_DIR), config_name="config", version_base="1.3")(_task)
    try:
        app()
    except (HydraException, OmegaConfBaseException) as error:
        _exit_user_error(config.describe_error(error))
