"""Many runs as one program: `jax.vmap` over the optimizer's float hyperparameters and the seed.

Runs that share their static structure (architecture, data, batch size, step count, dtype, the
optimizer's algorithm and schedule) form a group. A group trains as one jitted, vmapped program:
the initial states are drawn per run (each run's seed), the hyperparameters are stacked into the
optimizer states, and every compiled span advances all runs at once. Each run's folder receives
exactly the files a single run writes, its checkpoints included (`jax_mlp.group_checkpoints`), so
a stopped sweep resumes with ``trainer.resume=true``. With several local devices the run axis is
sharded over them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax_mlp import config, devices, jobs, report, train
from jax_mlp.data import Dataset, Scaling, Split, load_dataset
from jax_mlp.errors import UserError
from jax_mlp.group_checkpoints import GroupCheckpoints, open_group_checkpoints, run_slice, stack_runs
from jax_mlp.interrupts import Interrupts
from jax_mlp.outputs import NOT_STARTED, Outcome, RunOutputs
from jax_mlp.problems import (
    Problem,
    describe_run,
    device_split,
    due_splits,
    eval_interval,
    initial_state_fn,
    prepare,
    start_runtime,
    target_std,
)

log = logging.getLogger("jax_mlp")

FILE_THREADS = 4  # threads writing the runs' folders

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


def check_sweepable(cfg: config.Config) -> None:
    """Raises `UserError` if the run `cfg` asks for what only a run of its own does."""
    t = cfg.trainer
    if t.data_parallel:
        raise UserError("trainer.data_parallel is for single runs; the vmap sweeper shards its "
                        "run axis over the devices instead")
    if isinstance(t.resume, str):
        raise UserError(f"trainer.resume={t.resume}: a path is for single runs; in a sweep, "
                        "trainer.resume=true resumes each job from its own folder")


class DataSets:
    """The data sets of a sweep's groups: a data set (data config, data seed) that the checks before
    training or one group loaded serves the next group too. `keep_only` drops the ones the next
    group does not use, so at most one group's data sets are held, as when each group loaded its own."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], Dataset] = {}

    def load(self, data_cfg: Any, seed: int, scaling: Scaling | None = None) -> Dataset:
        """`load_dataset(data_cfg, seed, scaling)`, loaded once (a given `scaling` is not kept)."""
        if scaling is not None:
            return load_dataset(data_cfg, seed, scaling)
        key = (repr(data_cfg), seed)  # data configs are unhashable dataclasses; their repr shows every field
        if key not in self._loaded:
            self._loaded[key] = load_dataset(data_cfg, seed)
        return self._loaded[key]

    def keep_only(self, cfgs: Iterable[config.Config]) -> None:
        """Drops every loaded data set that none of `cfgs` uses."""
        wanted = {(repr(cfg.data), config.data_seed(cfg)) for cfg in cfgs}
        for key in set(self._loaded) - wanted:
            del self._loaded[key]


def check_groups(firsts: Sequence[config.Config], datasets: DataSets | None = None) -> None:
    """Raises `UserError` before any group trains if a group's runs (each group represented by its
    first run in `firsts`) cannot be swept (`check_sweepable`), ask for a platform that is not here,
    or do not fit their data (sizes, loss, explicit weights, warm-up). With more than one structure
    among the groups, each structure's data are loaded here (through `datasets`, which keeps the
    first group's).
    """
    datasets = datasets or DataSets()
    structures: dict[str, config.Config] = {}
    for cfg in firsts:
        check_sweepable(cfg)
        structures.setdefault(structure_key(cfg), cfg)
    if len(structures) > 1:
        for cfg in structures.values():
            start_runtime(cfg.trainer)  # as `execute_group` does first: float64, the platform
            initial_state_fn(cfg, prepare(cfg, load=datasets.load))
            datasets.keep_only(firsts[:1])  # one structure's data at a time; the first group's stay


def group_runs(cfgs: Sequence[config.Config], max_batch: int | None = None,
               resume_steps: Sequence[int | None] | None = None) -> list[list[int]]:
    """Indices of `cfgs` grouped by `structure_key` (and by `resume_steps`, each run's newest
    checkpoint step when resuming: a group trains from one step), in order of first appearance,
    each group cut into pieces of at most `max_batch` runs."""
    steps = resume_steps or [None] * len(cfgs)
    groups: dict[tuple[str, int | None], list[int]] = {}
    for index, cfg in enumerate(cfgs):
        groups.setdefault((structure_key(cfg), steps[index]), []).append(index)
    size = max_batch or max(len(cfgs), 1)
    return [members[i:i + size] for members in groups.values() for i in range(0, len(members), size)]


def _run_sharding() -> NamedSharding | None:
    """A sharding of the leading (run) axis over the local devices, when there are several."""
    local = jax.local_devices(backend=devices.default_platform())
    if len(local) < 2:
        return None
    return NamedSharding(Mesh(np.asarray(local), ("runs",)), PartitionSpec("runs"))


def execute_group(cfgs: Sequence[config.Config], out_dirs: Sequence[Path],
                  interrupts: Interrupts | None = None, datasets: DataSets | None = None) -> list[Outcome]:
    """Trains runs that share `structure_key` as one vmapped program; writes each run's folder.
    When `interrupts` records a signal, training stops at the end of the current compiled span,
    each run saves a checkpoint and is written as ``interrupted``. With ``trainer.checkpoint_every``
    the runs save on the way too; with ``trainer.resume=true`` they resume from their newest common
    checkpoint (`open_group_checkpoints`). `datasets`: where the data come from (loaded
    afresh when None).

    Returns:
      One `Outcome` per run, in order.
    """
    if len({structure_key(c) for c in cfgs}) != 1:
        raise ValueError("execute_group takes runs of one structure; split them with group_runs")
    check_sweepable(cfgs[0])
    start_runtime(cfgs[0].trainer)
    # Creating a file takes up to a millisecond on some file systems: threads start the runs'
    # folders while the group compiles, and write their final files side by side.
    with ThreadPoolExecutor(max_workers=FILE_THREADS, thread_name_prefix="sweep-files") as files:
        return _train_group(list(cfgs), list(out_dirs), files, interrupts, datasets or DataSets())


@dataclass(frozen=True)
class GroupData:
    """The data of a group's runs (padding runs included) on the device.

    Attributes:
      problems: each run's `Problem`; runs with the same data seed share one.
      arrays: each split's ``(x, y)``: one copy when all runs share their data, else stacked
        along a leading run axis.
      target_std: the regression targets' scale, (n_out,) or stacked likewise.
      axis: the run axis of `arrays` and `target_std` for `jax.vmap`: None (shared) or 0.
    """

    problems: list[Problem]
    arrays: dict[str, tuple[jax.Array, jax.Array]]
    target_std: jax.Array
    axis: int | None


def group_data(members: Sequence[config.Config], datasets: DataSets | None = None) -> GroupData:
    """Loads each distinct data seed's data once (from `datasets`, when given) and puts the
    group's splits on the device."""
    load = (datasets or DataSets()).load
    by_seed: dict[int, Problem] = {}
    for cfg in members:
        if config.data_seed(cfg) not in by_seed:
            by_seed[config.data_seed(cfg)] = prepare(cfg, load=load)
    problems = [by_seed[config.data_seed(cfg)] for cfg in members]
    first = problems[0]
    scales = [target_std(p.data) for p in problems]
    if len(by_seed) == 1:
        arrays = {name: device_split(split, first) for name, split in first.data.splits().items()}
        return GroupData(problems, arrays, jax.device_put(np.asarray(scales[0], first.dtype)), None)
    arrays = {}
    for name in first.data.splits():
        splits = [p.data.splits()[name] for p in problems]
        arrays[name] = device_split(Split(np.stack([s.x for s in splits]), np.stack([s.y for s in splits])), first)
    return GroupData(problems, arrays, jax.device_put(np.asarray(np.stack(scales), first.dtype)), 0)


def _train_group(cfgs: list[config.Config], out_dirs: list[Path], files: ThreadPoolExecutor,
                 interrupts: Interrupts | None, datasets: DataSets) -> list[Outcome]:
    """`execute_group` once the group is checked; `files` writes the runs' folders."""
    count, t = len(cfgs), cfgs[0].trainer
    sharding = _run_sharding()
    padded = count if sharding is None else -(-count // sharding.mesh.size) * sharding.mesh.size
    members = cfgs + [cfgs[-1]] * (padded - count)  # padding runs repeat the last one
    data = group_data(members, datasets)
    problem, task, axis = data.problems[0], data.problems[0].task, data.axis

    def start_outputs(resume_step: int | None):
        return files.map(lambda cfg, out_dir, problem: RunOutputs(cfg, problem, out_dir, resume_step, verbose=False),
                         cfgs, out_dirs, data.problems)

    # The folders start while the group compiles, unless a checkpoint may set where their metrics resume.
    saved = t.resume is True and any(jobs.has_checkpoint(cfg, out_dir) for cfg, out_dir in zip(cfgs, out_dirs))
    outputs = None if saved else start_outputs(None)
    seeds = np.asarray([c.seed for c in members], np.uint32)
    hyperparams = stack_runs([config.optimizer_hyperparams(c.optimizer) for c in members])
    if sharding is not None:
        seeds, hyperparams = jax.device_put((seeds, hyperparams), sharding)
    state, first_lr = jax.jit(jax.vmap(initial_state_fn(members[0], problem)))(seeds, hyperparams)
    checkpoints, state, resume_step = open_group_checkpoints(cfgs, out_dirs, state, problem.total_steps, sharding,
                                                             saved)
    outputs = list(outputs if outputs is not None else start_outputs(resume_step))
    span = jax.jit(jax.vmap(train.make_train_span(task), in_axes=(0, axis, axis, None)), donate_argnums=0)
    evaluate_all = jax.jit(jax.vmap(train.make_evaluate(task), in_axes=(0, axis, axis, axis)))
    eval_every = eval_interval(cfgs[0], problem)
    log.info("%s as one program: %s", report.counted(count, "run"), describe_run(problem, cfgs[0]))

    def evaluate(params, name: str) -> list[dict[str, float]]:
        metrics = jax.device_get(evaluate_all(params, *data.arrays[name], data.target_std))
        return [{k: train.shortest_float(v[i]) for k, v in metrics.items()} for i in range(count)]

    def on_log(step: int, point: train.LogPoint, state: train.TrainState) -> None:
        evaluations = {name: evaluate(state.params, name) for name in due_splits(problem, step, eval_every)}
        for i, out in enumerate(outputs):
            out.record(step, train.shortest_float(point.loss[i]), train.shortest_float(point.lr[i]),
                       bool(point.finite[i]), {name: values[i] for name, values in evaluations.items()})
        log.info("step %d: %s", step, group_line(point.loss[:count], [o.diverged_at is not None for o in outputs]))

    if resume_step is None:
        initial = evaluate(state.params, "train")
        on_log(0, train.LogPoint(np.asarray([m["loss"] for m in initial]), jax.device_get(first_lr),
                                 np.ones(count, bool)), state)
    x, y = data.arrays["train"]
    try:
        result = train.fit(state, x, y, task, steps=problem.total_steps - (resume_step or 0), log_every=t.log_every,
                           eval_every=eval_every, steps_per_call=t.steps_per_call, on_log=on_log,
                           checkpoint_every=t.checkpoint_every,
                           on_checkpoint=None if checkpoints is None else checkpoints.save,
                           train_span=span, stop_when_diverged=False,
                           should_stop=None if interrupts is None else interrupts.arrived)
        steps = int(np.asarray(result.state.step)[0])
        if result.stopped:  # as a single run does: a checkpoint to resume from, asked for or not
            checkpoints = checkpoints or GroupCheckpoints(cfgs, out_dirs, t.keep_checkpoints)
            checkpoints.save(steps, result.state)
    finally:
        if checkpoints is not None:
            checkpoints.close()
    final = {name: evaluate(result.state.params, name) for name in problem.data.splits()}
    params = jax.device_get(result.state.params)
    signum = interrupts.signum if result.stopped else None
    outcomes = list(files.map(
        lambda i: outputs[i].finish(run_slice(params, i), steps, {k: v[i] for k, v in final.items()}, signum),
        range(count)))
    best = min(range(count), key=lambda i: outcomes[i].objective)
    log.info("%s done: %d completed, %d diverged; best objective %.6g in %s", report.counted(count, "run"),
             sum(o.status == "completed" for o in outcomes), sum(o.status == "diverged" for o in outcomes),
             outcomes[best].objective, out_dirs[best])
    return outcomes


def group_line(losses: np.ndarray, diverged: Sequence[bool]) -> str:
    """A log line for a group's log point: the spread of its runs' losses and how many diverged."""
    alive = np.asarray([loss for loss, gone in zip(losses, diverged) if not gone], np.float64)
    spread = (f"loss min {alive.min():.6g} median {np.median(alive):.6g} max {alive.max():.6g}"
              if alive.size else "no run left")
    return f"{report.counted(len(losses), 'run')}, {spread}, {sum(diverged)} diverged"


def execute_all(cfgs: Sequence[config.Config], out_dirs: Sequence[Path], max_batch: int | None = None,
                interrupts: Interrupts | None = None) -> list[Outcome]:
    """Trains every run, group by group (see `group_runs`); returns their outcomes in order.

    Resuming (``trainer.resume=true``), a job that completed before is not trained again: its
    outcome is read back (`jobs.finished_run`).

    Once `interrupts` records a signal, the group in training stops at the end of its current
    compiled span (its runs save a checkpoint and are ``interrupted``) and no later group starts
    (theirs ``not started``, with nothing written beyond their folders' ``.hydra/``).

    Raises:
      UserError: before any training, if a group's runs cannot be swept or do not fit their data
        (`check_groups`), a run that starts from step 0 would find an earlier run's checkpoints
        in its folder (`jobs.refuse_earlier_checkpoints`), or one that resumes would continue the
        checkpoints of a run of other values (`jobs.refuse_renumbered_jobs`).
    """
    outcomes: list[Outcome | None] = [jobs.finished_run(cfg, out_dir) for cfg, out_dir in zip(cfgs, out_dirs)]
    if any(outcomes):
        log.info("%s of the sweep completed before it stopped; not trained again",
                 report.counted(sum(map(bool, outcomes)), "job"))
    todo = [i for i, outcome in enumerate(outcomes) if outcome is None]
    resume_steps = [jobs.newest_checkpoint_step(cfgs[i], out_dirs[i]) if cfgs[i].trainer.resume is True else None
                    for i in todo]
    jobs.refuse_earlier_checkpoints([out_dirs[i] for i, step in zip(todo, resume_steps) if step is None])
    resumed = [i for i, step in zip(todo, resume_steps) if step is not None]
    jobs.refuse_renumbered_jobs([cfgs[i] for i in resumed], [out_dirs[i] for i in resumed])
    groups = [[todo[k] for k in members] for members in group_runs([cfgs[i] for i in todo], max_batch, resume_steps)]
    datasets = DataSets()
    check_groups([cfgs[members[0]] for members in groups], datasets)
    for members in groups:
        datasets.keep_only(cfgs[i] for i in members)
        if interrupts is not None and interrupts.arrived():
            stopped = Outcome(math.inf, NOT_STARTED, exit_code=128 + interrupts.signum)
            group = [stopped] * len(members)
        else:
            group = execute_group([cfgs[i] for i in members], [out_dirs[i] for i in members], interrupts, datasets)
        for index, outcome in zip(members, group):
            outcomes[index] = outcome
    return outcomes  # type: ignore[return-value]


def interruption(outcomes: Sequence[Outcome]) -> Outcome | None:
    """For a sweep a signal stopped: how to end it (the message names the signal, the step and the
    jobs interrupted or never started, and the exit status is 128 + the signal's number); else None."""
    stopped = [o for o in outcomes if o.status == "interrupted"]
    not_started = sum(o.status == NOT_STARTED for o in outcomes)
    if not stopped and not not_started:
        return None
    first = stopped[0] if stopped else next(o for o in outcomes if o.status == NOT_STARTED)
    when = first.message or f"{signal.Signals(first.exit_code - 128).name} before training"  # "SIGINT at step N"
    return Outcome(math.inf, "interrupted", (
        f"{when}: the sweep stopped; {report.counted(len(stopped), 'job')} interrupted (each saved a checkpoint, "
        f"and its summary.json says so), {not_started} not started"), first.exit_code)
