"""The one driver: a group of R runs that share one compiled program, from their configs to their
folders. A single run is a group of one; a vmap sweep's group stacks R configurations.

`train_runs` loads the data once, builds the R initial states, restores their checkpoints, runs
`jax_mlp.loop.fit` with the hooks below (evaluation, divergence, early stopping, records,
progress, checkpoints, stop requests), evaluates, and finishes each run's folder.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax_mlp import checkpoint, config, devices, early_stopping, loop, optim, report, train
from jax_mlp.data import Dataset, Scaling, Split, load_dataset
from jax_mlp.data.encoding import FeatureEncoding
from jax_mlp.errors import UserError
from jax_mlp.interrupts import Interrupts
from jax_mlp.logging import Progress
from jax_mlp.outputs import Outcome, RunEnd, RunOutputs, metric_names
from jax_mlp.problems import (
    Problem,
    describe_run,
    device_split,
    due_splits,
    eval_interval,
    initial_state_fn,
    prepare,
    target_std,
)

log = logging.getLogger("jax_mlp")

FILE_THREADS = 4  # threads writing the runs' folders


class DataSets:
    """The data sets of a sweep's groups: a data set (data config, data seed) that the checks before
    training or one group loaded serves the next group too. `keep_only` drops the ones the next
    group does not use, so at most one group's data sets are held, as when each group loaded its own."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], Dataset] = {}

    def load(self, data_cfg: Any, seed: int, scaling: Scaling | None = None,
             encoding: FeatureEncoding | None = None) -> Dataset:
        """`load_dataset(data_cfg, seed, scaling, encoding)`, loaded once (unless given a
        `scaling` or `encoding`: that is not kept)."""
        if scaling is not None or encoding is not None:
            return load_dataset(data_cfg, seed, scaling, encoding)
        key = (repr(data_cfg), seed)  # data configs are unhashable dataclasses; their repr shows every field
        if key not in self._loaded:
            self._loaded[key] = load_dataset(data_cfg, seed)
        return self._loaded[key]

    def keep_only(self, cfgs: Iterable[config.Config]) -> None:
        """Drops every loaded data set that none of `cfgs` uses."""
        wanted = {(repr(cfg.data), config.data_seed(cfg)) for cfg in cfgs}
        for key in set(self._loaded) - wanted:
            del self._loaded[key]


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
    group's splits on the device; a data-parallel run's training split is split over the devices
    (`devices.data_parallel_sharding`), everything else replicated on them."""
    load = (datasets or DataSets()).load
    by_seed: dict[int, Problem] = {}
    for cfg in members:
        if config.data_seed(cfg) not in by_seed:
            by_seed[config.data_seed(cfg)] = prepare(cfg, load=load)
    problems = [by_seed[config.data_seed(cfg)] for cfg in members]
    first = problems[0]
    scales = [target_std(p.data) for p in problems]
    if len(by_seed) > 1:
        arrays = {}
        for name in first.data.splits():
            splits = [p.data.splits()[name] for p in problems]
            arrays[name] = device_split(Split(np.stack([s.x for s in splits]), np.stack([s.y for s in splits])), first)
        return GroupData(problems, arrays, jax.device_put(np.asarray(np.stack(scales), first.dtype)), 0)
    arrays = {name: device_split(split, first) for name, split in first.data.splits().items()}
    scale = jax.device_put(np.asarray(scales[0], first.dtype))
    batch_sharding = first.task.batch_sharding
    if batch_sharding is not None:  # params replicated; the full batch split over the devices too
        everywhere = devices.replicated(batch_sharding)
        arrays = {name: devices.place(split, batch_sharding if name == "train" and first.task.full_batch
                                      else everywhere) for name, split in arrays.items()}
        scale = devices.place(scale, everywhere)
    return GroupData(problems, arrays, scale, None)


def run_sharding(count: int) -> NamedSharding | None:
    """For a group of `count` > 1 runs, a sharding of the leading (run) axis over the local
    devices, when there are several."""
    local = jax.local_devices(backend=devices.default_platform())
    if count < 2 or len(local) < 2:
        return None
    return NamedSharding(Mesh(np.asarray(local), ("runs",)), PartitionSpec("runs"))


def train_runs(cfgs: Sequence[config.Config], out_dirs: Sequence[Path], interrupts: Interrupts | None = None,
               datasets: DataSets | None = None, progress: TextIO | None = None,
               start_unsaved: bool = False) -> list[Outcome]:
    """Trains runs that share their structure (a single run, or a group of `jax_mlp.sweep.group_runs`)
    as one program and writes each run's folder; returns one `Outcome` a run, in order.

    With ``trainer.checkpoint_every`` the runs save Orbax checkpoints on the way and at the end;
    with ``trainer.resume`` they first restore their newest common readable checkpoint
    (`open_checkpoints`). A SIGINT or SIGTERM (recorded by `interrupts`, an active `Interrupts`,
    or by one of the group's own) stops training at the end of the current span; each run saves a
    checkpoint and is written as ``interrupted``. `datasets`: where the data come from (loaded
    afresh when None); `progress`: a stream for a lone run's progress bar; `start_unsaved`: the
    runs, resumed (``trainer.resume=true``), saved no checkpoint and start from step 0 (a sweep's
    group: `jax_mlp.sweep.execute_group` looked).
    """
    # Creating a file takes up to a millisecond on some file systems: threads start the runs'
    # folders while the group compiles, and write their final files side by side.
    with ThreadPoolExecutor(max_workers=FILE_THREADS, thread_name_prefix="run-files") as files:
        return _train(list(cfgs), list(out_dirs), files, interrupts, datasets or DataSets(), progress, start_unsaved)


def _train(cfgs: list[config.Config], out_dirs: list[Path], files: ThreadPoolExecutor, interrupts: Interrupts | None,
           datasets: DataSets, progress: TextIO | None, start_unsaved: bool) -> list[Outcome]:
    count, t = len(cfgs), cfgs[0].trainer
    sharding = run_sharding(count)
    padded = count if sharding is None else -(-count // sharding.mesh.size) * sharding.mesh.size
    members = cfgs + [cfgs[-1]] * (padded - count)  # padding runs repeat the last one
    data = group_data(members, datasets)
    problem, task = data.problems[0], data.problems[0].task
    rule = early_stopping_rule(t, problem)
    state, first_lr = initial_states(members, problem, sharding)
    kept = Kept(padded, problem.dtype, None if rule is None else early_stopping.EarlyStopping(rule, state.params,
                                                                                              problem.dtype))
    best = None if rule is None else "max" if rule.maximise else "min"
    checkpoints, state, restored, resume_step = open_checkpoints(cfgs, out_dirs, state, kept.tree(),
                                                                 problem.total_steps, start_unsaved, best)
    kept.load(restored)
    outputs = files.map(lambda cfg, out_dir, problem: RunOutputs(cfg, problem, out_dir, resume_step, count == 1),
                        cfgs, out_dirs, data.problems)  # while the group compiles
    broadcast = task.full_batch and padded * data.arrays["train"][0].nbytes <= train.BROADCAST_BYTES
    program = train.group_program(task, padded, data.axis, data.axis is None and padded > 1 and broadcast)
    eval_every = eval_interval(cfgs[0], problem)
    log.info("%s", describe_run(problem, cfgs))

    def evaluate(params: Any, name: str) -> dict[str, np.ndarray]:
        return jax.device_get(program.evaluate(params, *data.arrays[name], data.target_std))

    first = None
    if resume_step is None:
        kept.initial_loss = evaluate(state.params, "train")["loss"]
        first = loop.Point(0, kept.initial_loss, jax.device_get(first_lr), np.ones(padded, bool), np.ones(padded, bool))
    bar = None if progress is None or count > 1 else Progress(
        progress, problem.total_steps, resume_step or 0, task.num_train if task.full_batch else task.batch_size,
        None if task.full_batch else task.steps_per_epoch)
    outputs = list(outputs)
    saves = Checkpoints(checkpoints, kept)
    hooks = [Evaluation(evaluate, functools.partial(due_splits, problem, eval_every=eval_every)), loop.Divergence(),
             *([kept.stopper] if kept.stopper is not None else []), Records(outputs, bar), saves]
    own = contextlib.nullcontext(interrupts) if interrupts is not None else Interrupts()
    try:
        with own as stops, _logs_beside(bar):
            hooks.append(StopRequests(stops))
            x, y = data.arrays["train"]
            result = loop.fit(state, x, y, program.span, start=resume_step or 0, end=problem.total_steps,
                              steps_per_epoch=None if task.full_batch else task.steps_per_epoch,
                              log_every=t.log_every, eval_every=eval_every, steps_per_call=t.steps_per_call,
                              checkpoint_every=t.checkpoint_every, hooks=hooks, first=first,
                              diverged_at=kept.diverged_at, stopped_at=kept.stopped_at)
        # Any recorded signal stops the runs, one after fit's last look (during its final span's
        # end) too, so that a sweep this group is part of stops.
        if stops.signum is not None:  # a checkpoint to resume from, asked for or not
            saves.checkpoints = saves.checkpoints or checkpoint.RunCheckpoints(
                [Path(d) / "checkpoints" for d in out_dirs], t.keep_checkpoints, [config.as_saved(c) for c in cfgs],
                best)
            saves.save(result.step, result.state, result)
    finally:
        if saves.checkpoints is not None:
            saves.checkpoints.close()
        if bar is not None:
            bar.close()
    params = kept.final_params(result)
    outcomes = _finish(outputs, result, params, stops.signum, kept, evaluate, files)
    if t.plots and count == 1 and outputs[0].writes:
        from jax_mlp import jobs, plots

        pictures = plots.run_plots(Path(out_dirs[0]), jobs.fitted_function(problem, checkpoint.run_slice(params, 0)))
        log.info("pictures: %s", ", ".join(path.name for path in pictures))
    if count > 1:
        best_run = min(range(count), key=lambda i: outcomes[i].objective)
        warned = sum(o.status == "completed" and bool(o.message) for o in outcomes)
        log.info("%s done: %d completed%s, %d diverged; best objective %.6g in %s", report.counted(count, "run"),
                 sum(o.status == "completed" for o in outcomes),
                 f" ({warned} no better than a constant: the warning in their summary.json)" if warned else "",
                 sum(o.status == "diverged" for o in outcomes), outcomes[best_run].objective, out_dirs[best_run])
    return outcomes


class Kept:
    """What a group's checkpoints keep beside its state, per run (R,): where the loop stopped it
    (diverged, or stopped early) and its initial loss, with the early stopping hook's state."""

    def __init__(self, runs: int, dtype: Any, stopper: early_stopping.EarlyStopping | None) -> None:
        self.diverged_at = np.full(runs, loop.NOT_YET, np.int32)
        self.stopped_at = np.full(runs, loop.NOT_YET, np.int32)
        self.initial_loss = np.full(runs, np.nan, dtype)
        self.stopper = stopper

    def tree(self, ended: loop.Loop | None = None) -> dict[str, Any]:
        """The tree a checkpoint holds, with the record of `ended` when given."""
        if ended is not None:
            self.diverged_at, self.stopped_at = ended.diverged_at.astype(np.int32), ended.stopped_at.astype(np.int32)
        record = {"diverged_at": self.diverged_at, "stopped_at": self.stopped_at, "initial_loss": self.initial_loss}
        return {"loop": record, **({self.stopper.name: self.stopper.tree} if self.stopper is not None else {})}

    def load(self, tree: dict[str, Any]) -> None:
        """Takes what a checkpoint kept (`tree` as `tree` gave it)."""
        for name, value in tree["loop"].items():
            setattr(self, name, np.asarray(value))
        if self.stopper is not None:
            self.stopper.load(tree[self.stopper.name])

    def final_params(self, result: loop.Loop) -> Any:
        """The runs' final params: early stopping's best where it keeps them (a diverged run's own)."""
        if self.stopper is None:
            return result.state.params
        return self.stopper.final_params(result.state.params, result.diverged_at != loop.NOT_YET)


def _finish(outputs: Sequence[RunOutputs], result: loop.Loop, params: Any, signum: int | None, kept: Kept,
            evaluate: Callable[[Any, str], dict[str, np.ndarray]], files: ThreadPoolExecutor) -> list[Outcome]:
    """Evaluates the runs' final `params` on every split and writes each run's folder, side by side."""
    final = {name: evaluate(params, name) for name in outputs[0].problem.data.splits()}
    params, steps = jax.device_get(params), np.asarray(jax.device_get(result.state.step))

    def finish(i: int) -> Outcome:
        stopping = None if kept.stopper is None else kept.stopper.summary(i, int(result.stopped_at[i]))
        diverged_at = None if result.diverged_at[i] == loop.NOT_YET else int(result.diverged_at[i])
        end = RunEnd(int(steps[i]), train.shortest_float(kept.initial_loss[i]), diverged_at, signum, stopping)
        metrics = {split: {k: train.shortest_float(v[i]) for k, v in values.items()} for split, values in final.items()}
        return outputs[i].finish(checkpoint.run_slice(params, i), end, metrics)

    return list(files.map(finish, range(len(outputs))))


def initial_states(members: Sequence[config.Config], problem: Problem, sharding: NamedSharding | None
                   ) -> tuple[train.TrainState, jax.Array]:
    """The runs' states at step 0 and the learning rates of their first steps, with a leading run
    axis, drawn by one program from each run's seed and hyperparameters; a data-parallel run's
    replicated over the devices."""
    seeds = np.asarray([c.seed for c in members], np.uint32)
    hyperparams = checkpoint.stack_runs([config.optimizer_hyperparams(c.optimizer) for c in members])
    if sharding is not None:
        seeds, hyperparams = jax.device_put((seeds, hyperparams), sharding)
    state, first_lr = jax.jit(jax.vmap(initial_state_fn(members[0], problem)))(seeds, hyperparams)
    if problem.task.batch_sharding is not None:
        state = devices.place(state, devices.replicated(problem.task.batch_sharding))
    return state, first_lr


def early_stopping_rule(t: config.TrainerConfig, problem: Problem) -> early_stopping.Rule | None:
    """``trainer.early_stopping`` as a `early_stopping.Rule` (None when off), checked against the
    metrics the run records."""
    if (given := config.early_stopping(t)) is None:
        return None
    rule = early_stopping.Rule(**vars(given))
    recorded = {"val": metric_names(problem)} if problem.data.val is not None else {}
    early_stopping.check(rule, recorded)
    return rule


def checkpoints_dir(cfg: config.Config, out_dir: Path) -> Path:
    """Where the run's checkpoints are (``RUN_DIR/checkpoints``) or, with ``trainer.resume=PATH``,
    where it resumes from (PATH, or PATH/checkpoints when PATH is a run folder)."""
    resume = cfg.trainer.resume
    if isinstance(resume, str):
        path = Path(resume).expanduser()
        return path / "checkpoints" if (path / "checkpoints").is_dir() else path
    return Path(out_dir) / "checkpoints"


def refuse_earlier_checkpoints(out_dirs: Sequence[Path]) -> None:
    """For runs that start from step 0 in `out_dirs`: refuses a folder whose ``checkpoints/``
    holds an earlier run's. Orbax would skip every save at or below the earlier run's newest step,
    and a later ``trainer.resume`` would continue the earlier run.

    Raises:
      UserError: naming the first such folder and how many others there are.
    """
    holding = [(folder, steps) for folder in map(Path, out_dirs)
               if (steps := checkpoint.saved_steps(folder / "checkpoints"))]
    if not holding:
        return
    (folder, steps), others = holding[0], len(holding) - 1
    also = f" ({others} other job folder{'s' * (others > 1)} too)" if others else ""
    raise UserError(f"{folder / 'checkpoints'} holds the checkpoints of an earlier run, the newest at step "
                    f"{steps[-1]}{also}; continue it with trainer.resume=true, or remove them to start afresh")


def open_checkpoints(cfgs: Sequence[config.Config], out_dirs: Sequence[Path], state: train.TrainState,
                     extras: dict[str, Any], total_steps: int, start_unsaved: bool = False, best: str | None = None
                     ) -> tuple[checkpoint.RunCheckpoints | None, train.TrainState, dict[str, Any], int | None]:
    """The runs' checkpoints (None without ``trainer.checkpoint_every`` or ``trainer.resume``), their
    state and what the hooks keep (`extras`), and the step they resume from (None for a fresh start).

    `state` and `extras` are the group's initial ones (leaves with a leading run axis, padding
    runs included). With ``trainer.resume`` they are replaced by the runs' newest common readable
    checkpoint, the optimizer holding the hyperparameters each run's config gives now, placed as
    `state` is (sharded over the run axis, or replicated for a data-parallel run), unless
    `start_unsaved` says none saved one; in the runs' own folders
    the checkpoints after that step are deleted (unreadable, or ahead of the group: the group saves
    those steps again). ``trainer.resume=PATH`` (one run) reads PATH and saves in its own folder.
    `best` ("min", "max"): each run keeps its checkpoint of the best monitored value too.

    Raises:
      UserError: nothing to resume from, the runs have no readable step in common, it is past
        their `total_steps`, or a checkpoint does not fit the runs' model, data, optimizer or
        precision (`checkpoint.CheckpointMismatch`); or an earlier run's checkpoints where a
        fresh run saves its own (`refuse_earlier_checkpoints`).
    """
    t, count = cfgs[0].trainer, len(cfgs)
    own = [(Path(d) / "checkpoints").absolute() for d in out_dirs]
    sources = [checkpoints_dir(cfg, d).absolute() for cfg, d in zip(cfgs, out_dirs)]
    if t.resume is False or sources != own:  # this run's own saves start in `own`
        refuse_earlier_checkpoints(out_dirs)
    if t.checkpoint_every is None and t.resume is False:
        return None, state, extras, None
    if isinstance(t.resume, str) and not sources[0].is_dir():
        raise UserError(f"trainer.resume={t.resume}: no such checkpoints folder")
    checkpoints = checkpoint.RunCheckpoints(own, t.keep_checkpoints, [config.as_saved(c) for c in cfgs], best)
    if t.resume is False or start_unsaved:
        return checkpoints, state, extras, None
    reader = checkpoints if sources == own else checkpoint.RunCheckpoints(sources, t.keep_checkpoints)
    like = checkpoint.host_tree(checkpoint.run_slice(state, 0), checkpoint.run_slice(extras, 0), fetch=False)
    like = jax.tree_util.tree_map(lambda leaf: leaf if isinstance(leaf, jax.Array) else np.asarray(leaf), like)
    group = f"the group of {out_dirs[0]} ({report.counted(count, 'run')})"
    try:
        found = reader.restore(like)
        if found is None:
            raise UserError(f"{group} has no checkpoint step that every run saved and can read; remove the "
                            "checkpoints folder of each run that a warning above calls unreadable, and those runs "
                            "start afresh")
        step, tree = found
        if step > total_steps:
            where = (f"the newest checkpoint in {sources[0]} is at step {step}, past this run's" if count == 1 else
                     f"{group} would resume from step {step}, past its")
            raise UserError(f"{where} {total_steps} steps; train for more (trainer.steps or trainer.epochs), or "
                            "start afresh in another folder")
    except UserError:
        checkpoints.close()
        raise
    finally:
        if reader is not checkpoints:
            reader.close()
    if sources == own and (dropped := checkpoints.drop_after(step)):
        if count == 1:
            log.warning("removed the unreadable checkpoints of steps %s: this run saves them again",
                        ", ".join(map(str, dropped[0][1])))
        else:
            log.warning("removed the checkpoints after step %d of %s (%s): unreadable, or past the step the group "
                        "resumes from; the group saves them again", step, report.counted(len(dropped), "run"),
                        ", ".join(str(folder) for folder, _ in dropped[:3]) + (", ..." if len(dropped) > 3 else ""))
    log.info("resuming %sfrom step %d%s", "" if count == 1 else f"{report.counted(count, 'run')} ", step,
             f" of {sources[0]}" if count == 1 else "")
    tree = _padded(tree, len(state.step))
    restored = checkpoint.from_host_tree(type(state), devices.place(tree, state.active.sharding))
    if count == 1:
        name = {optax_name: key for key, optax_name in config.OPTAX_NAMES.items()}
        for hyperparam, (old, new) in optim.changed_hyperparams(checkpoint.run_slice(restored.opt_state, 0),
                                                                checkpoint.run_slice(state.opt_state, 0)).items():
            log.info("optimizer.%s=%g from here on (the checkpoint's was %g)", name[hyperparam], new, old)
    state = restored._replace(opt_state=optim.with_hyperparams_of(restored.opt_state, state.opt_state))
    return checkpoints, state, {name: tree[name] for name in extras}, step


def _padded(tree: Any, rows: int) -> Any:
    """`tree` (leaves with a leading run axis) with its last run repeated up to `rows` runs."""
    return jax.tree_util.tree_map(
        lambda leaf: np.concatenate([leaf, np.repeat(leaf[-1:], rows - len(leaf), axis=0)]), tree)


class Evaluation(loop.Hook):
    """Evaluates the splits `due(step)` names at each point (``point.evaluations``)."""

    def __init__(self, evaluate: Callable[[Any, str], dict[str, np.ndarray]],
                 due: Callable[[int], Sequence[str]]) -> None:
        self.evaluate, self.due = evaluate, due

    def at_point(self, loop_: loop.Loop, point: loop.Point) -> None:
        for name in self.due(point.step):
            point.evaluations[name] = self.evaluate(loop_.state.params, name)


class Records(loop.Hook):
    """Each training run's metrics line at each point (`RunOutputs.record`), the group's log line,
    and a lone run's progress bar."""

    def __init__(self, outputs: Sequence[RunOutputs], bar: Progress | None) -> None:
        self.outputs, self.bar = outputs, bar

    def at_point(self, loop_: loop.Loop, point: loop.Point) -> None:
        for i, out in enumerate(self.outputs):
            if point.training[i]:
                out.record(point.step, train.shortest_float(point.loss[i]), train.shortest_float(point.lr[i]),
                           {split: {k: train.shortest_float(v[i]) for k, v in values.items()}
                            for split, values in point.evaluations.items()})
        count = len(self.outputs)
        if count > 1:
            log.info("step %d: %s", point.step, group_line(point.loss[:count], loop_.active[:count],
                                                           loop_.diverged_at[:count] != loop.NOT_YET))
        if self.bar is not None:
            self.bar.update(point.step, float(point.loss[0]), float(point.lr[0]))


def group_line(losses: np.ndarray, active: np.ndarray, diverged: np.ndarray) -> str:
    """A log line for a group's point: the spread of its training runs' losses, and how many
    stopped early and diverged."""
    alive = np.asarray(losses[active], np.float64)
    spread = (f"loss min {alive.min():.6g} median {np.median(alive):.6g} max {alive.max():.6g}"
              if alive.size else "no run left")
    stopped = int(np.sum(~active & ~diverged))
    return (f"{report.counted(len(losses), 'run')}, {spread}, " + (f"{stopped} stopped early, " if stopped else "")
            + f"{int(np.sum(diverged))} diverged")


class Checkpoints(loop.Hook):
    """Saves the group's state and what it keeps (`Kept`) at each checkpoint point, unless every
    run has diverged; with early stopping, each run's latest monitored value goes with it (by which
    each run's best checkpoint is kept)."""

    def __init__(self, checkpoints: checkpoint.RunCheckpoints | None, kept: Kept) -> None:
        self.checkpoints, self.kept = checkpoints, kept

    def at_checkpoint(self, loop_: loop.Loop) -> None:
        if self.checkpoints is not None and not np.all(loop_.diverged_at != loop.NOT_YET):
            self.save(loop_.step, loop_.state, loop_)

    def save(self, step: int, state: train.TrainState, ended: loop.Loop) -> None:
        stopper = self.kept.stopper
        self.checkpoints.save(step, state, self.kept.tree(ended), None if stopper is None else stopper.tree["latest"])


class StopRequests(loop.Hook):
    """Stops the whole group after the span in which a signal arrived."""

    def __init__(self, interrupts: Interrupts) -> None:
        self.interrupts = interrupts

    def after_span(self, loop_: loop.Loop) -> None:
        if self.interrupts.arrived():
            loop_.interrupt(self.interrupts.signum)


def _logs_beside(bar: Progress | None):
    """A context in which log lines print above the progress bar (when there is one) instead of
    breaking it."""
    if bar is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()
