"""Many runs as one program: `jax.vmap` over the optimizer's float hyperparameters and the seed.

Runs that share their static structure (architecture, data, batch size, step count, dtype, the
optimizer's algorithm and schedule) form a group. A group trains as one jitted, vmapped program:
the initial states are drawn per run (each run's seed), the hyperparameters are stacked into the
optimizer states, and every compiled span advances all runs at once. Each run's folder receives
exactly the files a single run writes. With several local devices the run axis is sharded over
them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax_mlp import config, devices, run, train

log = logging.getLogger("jax_mlp")

# What may differ between the runs of one group.
VARYING_OPTIMIZER_FIELDS = ("lr", "momentum", "b1", "b2", "eps", "weight_decay")


def structure_key(cfg: config.Config) -> str:
    """What the runs of one group share: the config without the seed and the optimizer's float
    hyperparameters (but with whether SGD keeps a momentum buffer)."""
    values = dataclasses.asdict(cfg)
    values.pop("seed")
    if values["data"]["seed"] is None:
        values["data"]["seed"] = "per run"  # drawn from each run's seed, stacked along the run axis
    optimizer = values["optimizer"]
    optimizer["momentum_buffer"] = bool(optimizer.get("momentum", 0.0))
    for key in VARYING_OPTIMIZER_FIELDS:
        optimizer.pop(key, None)
    return json.dumps(values, sort_keys=True)


def group_runs(cfgs: Sequence[config.Config], max_batch: int | None = None) -> list[list[int]]:
    """Indices of `cfgs` grouped by `structure_key`, in order of first appearance, each group
    cut into pieces of at most `max_batch` runs."""
    groups: dict[str, list[int]] = {}
    for index, cfg in enumerate(cfgs):
        groups.setdefault(structure_key(cfg), []).append(index)
    size = max_batch or max(len(cfgs), 1)
    return [members[i:i + size] for members in groups.values() for i in range(0, len(members), size)]


def _stack(trees: list) -> object:
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *trees)


def _run_sharding() -> NamedSharding | None:
    """A sharding of the leading (run) axis over the local devices, when there are several."""
    default = jax.config.jax_default_device
    local = jax.local_devices(backend=None if default is None else default.platform)
    if len(local) < 2:
        return None
    return NamedSharding(Mesh(np.asarray(local), ("runs",)), PartitionSpec("runs"))


def execute_group(cfgs: Sequence[config.Config], out_dirs: Sequence[Path]) -> list[run.Outcome]:
    """Trains runs that share `structure_key` as one vmapped program; writes each run's folder.

    Returns:
      One `run.Outcome` per run, in order.
    """
    if len({structure_key(c) for c in cfgs}) != 1:
        raise ValueError("execute_group takes runs of one structure; split them with group_runs")
    t = cfgs[0].trainer
    if t.data_parallel:
        raise run.UserError("trainer.data_parallel is for single runs; the vmap sweeper shards its "
                            "run axis over the devices instead")
    if t.checkpoint_every is not None or t.resume is not False:
        raise run.UserError("trainer.checkpoint_every and trainer.resume are for single runs; the vmap "
                            "sweeper does not checkpoint (use Hydra's basic sweeper for that)")
    devices.configure(x64=t.x64, compilation_cache=t.compilation_cache, cache_dir=t.cache_dir)
    devices.select_platform(t.platform)
    count = len(cfgs)
    sharding = _run_sharding()
    padded = count if sharding is None else -(-count // sharding.mesh.size) * sharding.mesh.size
    members = list(cfgs) + [cfgs[-1]] * (padded - count)  # padding runs repeat the last one

    problems: dict[int, run.Problem] = {}  # by data seed: runs drawing the same data share it
    for cfg in members:
        if config.data_seed(cfg) not in problems:
            problems[config.data_seed(cfg)] = run.prepare(cfg)

    def problem_of(cfg: config.Config) -> run.Problem:
        return problems[config.data_seed(cfg)]

    problem = problem_of(members[0])
    task = problem.task
    shared_data = len(problems) == 1
    data_axis = None if shared_data else 0

    def stacked(name: str):
        splits = [run.device_split(problem_of(c).data.splits()[name], problem) for c in members]
        return splits[0] if shared_data else jax.tree_util.tree_map(lambda *a: jnp.stack(a), *splits)

    arrays = {name: stacked(name) for name in problem.data.splits()}
    scale = [problem_of(c).data.scaling.y_std for c in members]
    target_std = np.stack([np.ones(problem.data.output_size) if s is None else s for s in scale])
    target_std = jax.device_put(np.asarray(target_std[0] if shared_data else target_std, problem.dtype))

    seeds = np.asarray([c.seed for c in members], np.uint32)
    hyperparams = _stack([config.optimizer_hyperparams(c.optimizer) for c in members])
    init = jax.jit(jax.vmap(run.initial_state_fn(members[0], problem)))
    if sharding is not None:
        seeds, hyperparams = jax.device_put((seeds, hyperparams), sharding)
    state, first_lr = init(seeds, hyperparams)

    span = jax.jit(jax.vmap(train.make_train_span(task), in_axes=(0, data_axis, data_axis, None)),
                   donate_argnums=0)
    evaluate_all = jax.jit(jax.vmap(train.make_evaluate(task), in_axes=(0, data_axis, data_axis, data_axis)))
    outputs = [run.RunOutputs(cfg, problem_of(cfg), out_dir) for cfg, out_dir in zip(cfgs, out_dirs)]
    eval_every = run.eval_interval(cfgs[0], problem)
    log.info("%d runs as one program: %s", count, run.describe_run(problem, cfgs[0]))

    def evaluate(params, name: str) -> list[dict[str, float]]:
        metrics = jax.device_get(evaluate_all(params, *arrays[name], target_std))
        return [{k: train.shortest_float(v[i]) for k, v in metrics.items()} for i in range(count)]

    def on_log(step: int, point: train.LogPoint, state: train.TrainState) -> None:
        evaluations = {name: evaluate(state.params, name) for name in run.due_splits(problem, step, eval_every)}
        for i, out in enumerate(outputs):
            out.record(step, train.shortest_float(point.loss[i]), train.shortest_float(point.lr[i]),
                       bool(point.finite[i]), {name: values[i] for name, values in evaluations.items()})

    initial = evaluate(state.params, "train")
    on_log(0, train.LogPoint(np.asarray([m["loss"] for m in initial]), jax.device_get(first_lr),
                             np.ones(count, bool)), state)
    x, y = arrays["train"]
    result = train.fit(state, x, y, task, steps=problem.total_steps, log_every=t.log_every,
                       eval_every=eval_every, steps_per_call=t.steps_per_call, on_log=on_log,
                       train_span=span, stop_when_diverged=False)
    final = {name: evaluate(result.state.params, name) for name in problem.data.splits()}
    params = jax.device_get(result.state.params)
    steps = int(np.asarray(result.state.step)[0])
    return [out.finish(run_slice(params, i), steps, {name: values[i] for name, values in final.items()})
            for i, out in enumerate(outputs)]


def run_slice(tree, index: int):
    """Run `index` of a pytree whose leaves have a leading run axis."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def execute_all(cfgs: Sequence[config.Config], out_dirs: Sequence[Path],
                max_batch: int | None = None) -> list[run.Outcome]:
    """Trains every run, group by group (see `group_runs`); returns their outcomes in order."""
    outcomes: list[run.Outcome | None] = [None] * len(cfgs)
    for members in group_runs(cfgs, max_batch):
        for index, outcome in zip(members, execute_group([cfgs[i] for i in members],
                                                         [out_dirs[i] for i in members])):
            outcomes[index] = outcome
    return outcomes  # type: ignore[return-value]
