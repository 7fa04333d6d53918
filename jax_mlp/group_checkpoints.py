"""The checkpoints of a vmapped group (`jax_mlp.sweep`): each run's state in its own folder's
``checkpoints/``, exactly as a single run saves it, so that a stopped vmap sweep resumes with
``trainer.resume=true`` (and any of its jobs resumes alone, or under Hydra's basic sweeper).

A group trains as one program, so its runs resume from one step: the newest step that every run
saved and can read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Sharding

from jax_mlp import checkpoint, config, optim, train
from jax_mlp.errors import UserError
from jax_mlp.report import counted

log = logging.getLogger("jax_mlp")


def run_slice(tree: Any, index: int) -> Any:
    """Run `index` of a pytree whose leaves have a leading run axis."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def stack_runs(trees: Sequence[Any]) -> Any:
    """One pytree whose leaves stack the runs' `trees` along a new leading run axis (NumPy)."""
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *trees)


def padded(tree: Any, rows: int) -> Any:
    """`tree` (leaves with a leading run axis) with its last run repeated up to `rows` runs."""
    return jax.tree_util.tree_map(
        lambda leaf: np.concatenate([leaf, np.repeat(leaf[-1:], rows - len(leaf), axis=0)]), tree)


class GroupCheckpoints:
    """The Orbax checkpoints of a group's runs, one `checkpoint.Checkpointer` a run folder (each
    keeping its run's config beside its checkpoints).

    Orbax spends about 40 ms of the host's time on each save, however small the state, so the
    saves of a checkpoint run on a thread of their own while the group trains on. One thread: Orbax's
    saves started from several threads at once time out waiting for each other.
    """

    def __init__(self, cfgs: Sequence[config.Config], out_dirs: Sequence[Path], keep: int) -> None:
        self.checkpointers = [checkpoint.Checkpointer(Path(d) / "checkpoints", keep, config.as_saved(cfg))
                              for cfg, d in zip(cfgs, out_dirs)]
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-checkpoints")
        self._pending: list[Future] = []

    def save(self, step: int, state: train.TrainState) -> None:
        """Starts saving each run's slice of `state` (leaves with a leading run axis; the padding
        runs past the last folder are not saved) under `step`."""
        tree = checkpoint.host_tree(state)  # now: the next span donates the state's buffers
        self._pending.append(self._saver.submit(self._save_runs, tree))
        log.info("checkpoint at step %d of %s", step, counted(len(self.checkpointers), "run"))

    def _save_runs(self, tree: dict[str, Any]) -> None:
        for index, checkpointer in enumerate(self.checkpointers):
            # 0-d arrays, not NumPy scalars: Orbax before 0.12 refuses scalars (the step, counts).
            checkpointer.save_tree(jax.tree_util.tree_map(np.asarray, run_slice(tree, index)))

    def restore(self, like: train.TrainState) -> tuple[int, dict[str, Any]] | None:
        """The newest step that every run saved and can read, and the runs' `checkpoint.host_tree`
        at that step stacked along a leading run axis (each shaped like `like`, one run's state);
        None when the runs have no such step.

        Raises:
          checkpoint.CheckpointMismatch: a run's checkpoint does not fit `like`.
        """
        saved = set.intersection(*(set(c.steps()) for c in self.checkpointers))
        for step in sorted(saved, reverse=True):
            try:
                trees = [jax.device_get(c.restore_tree(like, [step])) for c in self.checkpointers]
            except checkpoint.CheckpointMismatch:
                raise
            except UserError:  # one run's checkpoint at `step` is unreadable (a warning named it)
                continue
            return step, stack_runs(trees)
        return None

    def close(self) -> None:
        """Waits for the pending saves; raises the first one's error."""
        self._saver.shutdown(wait=True)
        for checkpointer in self.checkpointers:
            checkpointer.close()
        for future in self._pending:
            future.result()


def open_group_checkpoints(cfgs: Sequence[config.Config], out_dirs: Sequence[Path], state: train.TrainState,
                           total_steps: int, sharding: Sharding | None, saved: bool
                           ) -> tuple[GroupCheckpoints | None, train.TrainState, int | None]:
    """A group's checkpoints (None without ``trainer.checkpoint_every`` or ``trainer.resume``), its
    state and the step it resumes from (None for a fresh start).

    `state` is the group's initial state (leaves with a leading run axis, padding runs included);
    with ``trainer.resume=true`` and `saved` (a run's folder holds a checkpoint: `jobs.has_checkpoint`)
    it is replaced by the runs' newest common checkpoint, holding the hyperparameters each run's
    config gives, and placed by `sharding`; the runs' checkpoints after that step are deleted (they
    are unreadable, or ahead of the group, and the group saves those steps again).

    Raises:
      UserError: the runs have no readable step in common, or it is past their `total_steps`, or
        a checkpoint does not fit the runs' model, data, optimizer or precision
        (`checkpoint.CheckpointMismatch`).
    """
    t = cfgs[0].trainer
    if t.checkpoint_every is None and t.resume is False:
        return None, state, None
    checkpoints = GroupCheckpoints(cfgs, out_dirs, t.keep_checkpoints)
    if t.resume is False:
        return checkpoints, state, None
    if not saved:
        log.info("trainer.resume: no checkpoint for %s of the sweep; starting from step 0", counted(len(cfgs), "run"))
        return checkpoints, state, None
    try:
        found = checkpoints.restore(run_slice(state, 0))
    except UserError:  # a checkpoint that does not fit the runs (`checkpoint.CheckpointMismatch`)
        checkpoints.close()
        raise
    if found is None:
        checkpoints.close()
        raise UserError(f"the group of {out_dirs[0]} ({counted(len(cfgs), 'run')}) has no checkpoint step that "
                        "every run saved and can read; remove the checkpoints folder of each run that a warning above "
                        "calls unreadable, and those runs start afresh")
    step, tree = found
    if step > total_steps:
        checkpoints.close()
        raise UserError(f"the group of {out_dirs[0]} ({counted(len(cfgs), 'run')}) would resume from step {step}, past "
                        f"its {total_steps} steps; train for more (trainer.steps or trainer.epochs), or start "
                        "afresh in another folder")
    dropped = [c.directory for c in checkpoints.checkpointers if c.drop_after(step)]
    if dropped:
        log.warning("removed the checkpoints after step %d of %s (%s): unreadable, or past the step the "
                    "group resumes from; the group saves them again", step, counted(len(dropped), "run"),
                    ", ".join(map(str, dropped[:3])) + (", ..." if len(dropped) > 3 else ""))
    tree = padded(tree, len(state.step))
    restored = checkpoint.from_host_tree(type(state), jax.device_put(tree, sharding))
    log.info("resuming %s from step %d", counted(len(cfgs), "run"), step)
    opt_state = optim.with_hyperparams_of(restored.opt_state, state.opt_state)
    return checkpoints, restored._replace(opt_state=opt_state), step
