"""Many runs as one program: a sweep's jobs grouped by their structure, each group trained by the
one driver (`jax_mlp.runs.train_runs`), `jax.vmap` over the seed and the optimizer's floats.

Runs that share their static structure (architecture, data, batch size, step count, dtype, the
optimizer's algorithm and schedule) form a group. A group trains as one jitted, vmapped program:
the initial states are drawn per run (each run's seed), the hyperparameters are stacked into the
optimizer states, and every compiled span advances all runs at once. Each run's folder receives
exactly the files a single run writes, its checkpoints included, so a stopped sweep resumes with
``trainer.resume=true``. With several local devices the run axis is sharded over them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
from collections.abc import Sequence
from pathlib import Path

from jax_mlp import config, jobs, optim, report
from jax_mlp.errors import UserError
from jax_mlp.interrupts import Interrupts
from jax_mlp.outputs import NOT_STARTED, Outcome
from jax_mlp.problems import initial_state_fn, prepare, start_runtime
from jax_mlp.runs import DataSets, refuse_earlier_checkpoints, train_runs

log = logging.getLogger("jax_mlp")

FILE_THREADS = 4  # threads writing the runs' folders

def structure_key(cfg: config.Config) -> str:
    """What the runs of one group share: the config without the seed and the optimizer's float
    hyperparameters (`jax_mlp.optim.REGISTRY`; but with whether a state that a 0 drops is kept,
    SGD's momentum buffer)."""
    values = dataclasses.asdict(cfg)
    values.pop("seed")
    if values["data"]["seed"] is None:
        values["data"]["seed"] = "per run"  # drawn from each run's seed, stacked along the run axis
    optimizer = values["optimizer"]
    for f in optim.REGISTRY[optimizer["name"]].floats:  # the floats vary within a group (the optimizer's state)
        value = optimizer.pop(f.key)
        if f.drops_state_at_zero:
            optimizer[f"{f.key}_state"] = value != 0
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


def execute_group(cfgs: Sequence[config.Config], out_dirs: Sequence[Path],
                  interrupts: Interrupts | None = None, datasets: DataSets | None = None) -> list[Outcome]:
    """Trains runs that share `structure_key` as one vmapped program (`jax_mlp.runs.train_runs`);
    with ``trainer.resume=true`` and no checkpoint in any of their folders they start from step 0
    (and save a checkpoint at their end, as a resumed run does).

    Returns:
      One `Outcome` per run, in order.
    """
    if len({structure_key(c) for c in cfgs}) != 1:
        raise ValueError("execute_group takes runs of one structure; split them with group_runs")
    check_sweepable(cfgs[0])
    start_runtime(cfgs[0].trainer)
    unsaved = cfgs[0].trainer.resume is True and all(jobs.newest_checkpoint_step(c, d) is None
                                                       for c, d in zip(cfgs, out_dirs))
    if unsaved:
        log.info("trainer.resume: no checkpoint for %s of the sweep; starting from step 0",
                 report.counted(len(cfgs), "run"))
    return train_runs(cfgs, out_dirs, interrupts, datasets, start_unsaved=unsaved)


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
        in its folder (`refuse_earlier_checkpoints`), or one that resumes would continue the
        checkpoints of a run of other values (`jobs.refuse_renumbered_jobs`).
    """
    outcomes: list[Outcome | None] = [jobs.finished_run(cfg, out_dir) for cfg, out_dir in zip(cfgs, out_dirs)]
    if any(outcomes):
        log.info("%s of the sweep completed before it stopped; not trained again",
                 report.counted(sum(map(bool, outcomes)), "job"))
    todo = [i for i, outcome in enumerate(outcomes) if outcome is None]
    resume_steps = [jobs.newest_checkpoint_step(cfgs[i], out_dirs[i]) if cfgs[i].trainer.resume is True else None
                    for i in todo]
    refuse_earlier_checkpoints([out_dirs[i] for i, step in zip(todo, resume_steps) if step is None])
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
