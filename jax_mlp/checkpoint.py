"""Saving and restoring: the final params as a plain ``.npz`` (no pickles), and the whole train
state through Orbax for resuming: `RunCheckpoints`, one mechanism for a group of R runs (a single
run is a group of one), each run's checkpoints in its own folder."""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jax_mlp import files
from jax_mlp.errors import UserError
from jax_mlp.model import Params
from jax_mlp.report import counted

log = logging.getLogger("jax_mlp")


def save_params(path: Path, params: Params) -> None:
    """Writes params to `path` as ``.npz`` with keys ``layers.{l}.w`` and ``layers.{l}.b``."""
    arrays = {
        f"layers.{layer}.{name}": np.asarray(jax.device_get(value))
        for layer, p in enumerate(params)
        for name, value in p.items()
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.write_atomic(path, buffer.getvalue())


def load_params(path: Path) -> list[dict[str, np.ndarray]]:
    """Reads params written by `save_params`; refuses pickled objects.

    Returns:
      The params pytree with NumPy leaves.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise UserError(f"no params file at {path}") from None
    except ValueError as error:  # pickled data, or not an npz at all
        raise UserError(f"{path} is not a params file of plain arrays ({error})") from None
    layers = sorted({int(key.split(".")[1]) for key in arrays})
    if layers != list(range(len(layers))):
        raise UserError(f"{path} does not hold layers.0 ... layers.N params")
    return [{"w": arrays[f"layers.{l}.w"], "b": arrays[f"layers.{l}.b"]} for l in layers]


def saved_steps(directory: Path) -> list[int]:
    """The steps that have a checkpoint folder in `directory` (none if it does not exist), in
    order. Read from the folder names, without Orbax: importing it takes a second."""
    directory = Path(directory)
    return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit()) if directory.is_dir() else []


def host_tree(state: Any, extras: dict[str, Any] | None = None, fetch: bool = True) -> dict[str, Any]:
    """What a checkpoint holds of a `jax_mlp.train.TrainState`: ``params``, ``opt_state``, ``step``,
    ``active``, the typed PRNG key as its ``key`` data, and the hooks' states in `extras` (by
    name); host copies unless `fetch` is off (the next span donates the state's device buffers)."""
    tree = {"params": state.params, "opt_state": state.opt_state, "step": state.step,
            "key": jax.random.key_data(state.key), "active": state.active, **(extras or {})}
    return jax.device_get(tree) if fetch else tree


def from_host_tree(state_type: type, tree: dict[str, Any]) -> Any:
    """The train state of type `state_type` that `host_tree` gave `tree` (its extras aside)."""
    return state_type(tree["params"], tree["opt_state"], tree["step"], jax.random.wrap_key_data(tree["key"]),
                      tree["active"])


class CheckpointMismatch(UserError):
    """A checkpoint that holds the state of another model, data set, optimizer or precision than
    the run's: leaves of other names, shapes or dtypes."""


def _leaf_name(path: tuple[Any, ...]) -> str:
    """A pytree path as a name: ``params[0].w``, ``opt_state.hyperparams.learning_rate``."""
    name = ""
    for key in path:
        if isinstance(key, jax.tree_util.SequenceKey):
            name += f"[{key.idx}]"
        else:
            name += ("." if name else "") + str(getattr(key, "key", getattr(key, "name", key)))
    return name


def _leaf_types(tree: Any) -> dict[str, str]:
    """Each leaf of `tree` (arrays, or anything with ``shape`` and ``dtype``: Orbax's metadata,
    `jax.ShapeDtypeStruct`) by its name (`_leaf_name`), as ``float32[4, 32]``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_leaf_name(path): f"{np.dtype(leaf.dtype).name}{list(leaf.shape)}" for path, leaf in flat}


def tree_difference(saved: Any, expected: Any) -> str | None:
    """The first difference between a checkpoint's tree (`saved`: Orbax's metadata of it) and the
    tree a run expects (`expected`), in words; None when their leaves' names, shapes and dtypes agree.

    ``params[0].w is float32[4, 32] in the checkpoint and float32[4, 8] in this run``
    """
    there, here = _leaf_types(saved), _leaf_types(expected)

    def params_first(names: set[str]) -> list[str]:  # the difference that says most: the model's, the data's
        return sorted(names, key=lambda name: (not name.startswith("params"), name))

    for name in params_first(here.keys() & there.keys()):
        if here[name] != there[name]:
            return f"{name} is {there[name]} in the checkpoint and {here[name]} in this run"
    if only_here := params_first(here.keys() - there.keys()):
        return f"{only_here[0]} is in this run's state and not in the checkpoint"
    if only_there := params_first(there.keys() - here.keys()):
        return f"{only_there[0]} is in the checkpoint and not in this run's state"
    return None


ROOT_METADATA = "metadata"  # the folder of Orbax's root metadata in a checkpoints folder


class Checkpointer:
    """The train state in ``DIR`` through Orbax's `CheckpointManager`: one folder a step, the
    last `keep` kept, saves asynchronous and atomic (Orbax commits a step's folder when it is
    complete). `close` waits for a pending save.

    The typed PRNG key is stored as its key data; the data-order position is the step itself
    (epoch ``step // steps_per_epoch``, batch ``step % steps_per_epoch``). The config of the run
    whose checkpoints ``DIR`` holds is kept beside them (Orbax's root metadata), so that a run
    killed before it wrote ``summary.json`` still says what it trained (`run_config`).
    """

    def __init__(self, directory: Path, keep: int = 3, run_config: dict[str, Any] | None = None,
                 best: str | None = None) -> None:
        import orbax.checkpoint as ocp  # imported here: it takes a second, and only checkpointing runs need it

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        if run_config is not None and jax.process_index() == 0 and not saved_steps(self.directory):
            # The record of a run that saved nothing here (killed before its first save): Orbax
            # writes this run's only where none is (from process 0, as here).
            shutil.rmtree(self.directory / ROOT_METADATA, ignore_errors=True)
        if best is None:
            options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True)
        else:  # the newest `keep` and the one of the best monitored value (saved as its metrics)
            policies = ocp.checkpoint_managers
            options = ocp.CheckpointManagerOptions(enable_async_checkpointing=True, preservation_policy=(
                policies.AnyPreservationPolicy([policies.LatestN(n=keep), policies.BestN(
                    get_metric_fn=lambda metrics: metrics["monitor"], reverse=best == "min", n=1,
                    keep_checkpoints_without_metrics=False)])))
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler(),
            metadata=None if run_config is None else {"config": run_config})  # written where none is

    def run_config(self) -> dict[str, Any] | None:
        """The config (as ``summary.json`` holds it) that the run whose checkpoints these are gave
        `__init__`; None when it gave none (checkpoints of an earlier jax_mlp, or read by a run
        that resumes from them elsewhere) or it cannot be read (a warning says so)."""
        try:
            metadata = self._manager.metadata()
        except Exception as error:  # a truncated or corrupt file: Orbax's many error types
            log.warning("the run's config kept in %s is unreadable (%s)", self.directory / ROOT_METADATA,
                        " ".join(str(error).split())[:200])
            return None
        return (getattr(metadata, "custom_metadata", None) or {}).get("config")

    def save_tree(self, step: int, tree: dict[str, Any], monitored: float | None = None) -> None:
        """Starts saving a `host_tree` under `step`, with the `monitored` value of a checkpointer
        that keeps the best (None: unknown yet, or not finite)."""
        metrics = None if monitored is None or not np.isfinite(monitored) else {"monitor": float(monitored)}
        self._manager.save(step, args=self._ocp.args.StandardSave(tree), metrics=metrics)

    def wait(self) -> None:
        """Waits until the pending save is committed."""
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def drop_after(self, step: int) -> list[int]:
        """Deletes the checkpoints of the steps after `step`; returns those steps. A run that
        resumes from `step` saves those steps again, and Orbax skips a save at or below its
        newest step."""
        later = [saved for saved in self.steps() if saved > step]
        for saved in later:
            self._manager.delete(saved)
        return later

    def restore_tree(self, like: dict[str, Any], steps: list[int] | None = None) -> tuple[int, dict[str, Any]]:
        """The step and `host_tree` of the newest readable state among `steps` (default: every saved step),
        shaped like the `host_tree` `like`; an unreadable checkpoint is skipped with a warning that
        names it.

        Raises:
          CheckpointMismatch: a checkpoint holds a state of other leaves than `like` (another
            model, data set, optimizer or precision); the earlier ones would too, one run saved them.
          UserError: no checkpoint in the folder, or none readable.
        """
        abstract = jax.tree_util.tree_map(self._ocp.utils.to_shape_dtype_struct, like)
        steps = self.steps() if steps is None else sorted(steps)
        if not steps:
            raise UserError(f"no checkpoint to resume from in {self.directory}")
        for step in reversed(steps):
            if (difference := self._difference(step, abstract)) is not None:
                raise CheckpointMismatch(
                    f"the checkpoint of step {step} in {self.directory} does not fit this run's model, data, "
                    f"optimizer or precision ({difference}); resume with the config that saved it (the "
                    "optimizer's hyperparameters may change), or start afresh in another folder")
            try:
                tree = self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
            except Exception as error:  # a truncated or corrupt checkpoint: Orbax's many error types
                log.warning("checkpoint %s is unreadable (%s); trying the one before",
                            self.directory / str(step), " ".join(str(error).split())[:200])
                continue
            return step, tree
        raise UserError(f"no readable checkpoint in {self.directory} (tried steps {steps})")

    def _difference(self, step: int, abstract: Any) -> str | None:
        """`tree_difference` between the checkpoint of `step` and `abstract`; None too when its
        metadata cannot be read (the restore then finds it unreadable)."""
        try:
            metadata = self._manager.item_metadata(step)
        except Exception:  # a truncated or corrupt checkpoint: Orbax's many error types
            return None
        saved = getattr(metadata, "tree", metadata)  # Orbax 0.12 wraps the tree, 0.11 gives it
        return None if saved is None else tree_difference(saved, abstract)

    def close(self) -> None:
        """Waits for a pending save and releases Orbax's threads."""
        self._manager.wait_until_finished()
        self._manager.close()


def run_slice(tree: Any, index: int) -> Any:
    """Run `index` of a pytree whose leaves have a leading run axis."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def stack_runs(trees: Sequence[Any]) -> Any:
    """One pytree whose leaves stack the runs' `trees` along a new leading run axis (NumPy)."""
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *trees)


class RunCheckpoints:
    """The checkpoints of a group of runs (a single run is a group of one): one `Checkpointer` a
    run, in the run's folder, each keeping its run's config beside its checkpoints; each saves its
    run's slice of the group's state exactly as a lone run saves it, so that any run of a group
    resumes alone and a lone run's checkpoints resume in a group.

    Orbax spends about 40 ms of the host's time on each save, however small the state, so the
    saves of a checkpoint run on a thread of their own while the group trains on. One thread: Orbax's
    saves started from several threads at once time out waiting for each other.
    """

    def __init__(self, directories: Sequence[Path], keep: int,
                 run_configs: Sequence[dict[str, Any] | None] | None = None, best: str | None = None) -> None:
        """`best` ("min" or "max"): keep each run's checkpoint of the best monitored value too."""
        configs = run_configs or [None] * len(directories)
        self.checkpointers = [Checkpointer(d, keep, c, best) for d, c in zip(directories, configs)]
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        self._pending: list[Future] = []

    def save(self, step: int, state: Any, extras: dict[str, Any] | None = None,
             monitored: np.ndarray | None = None) -> None:
        """Starts saving each run's slice of `state` (a `jax_mlp.train.TrainState` whose leaves
        have a leading run axis; the padding runs past the last folder are not saved) and of the
        hooks' `extras` under the group's `step`, with each run's `monitored` value (R,)."""
        tree = host_tree(state, extras)  # now: the next span donates the state's buffers
        self._pending.append(self._saver.submit(self._save_runs, step, tree, monitored))

    def _save_runs(self, step: int, tree: dict[str, Any], monitored: np.ndarray | None) -> None:
        for index, checkpointer in enumerate(self.checkpointers):
            # 0-d arrays, not NumPy scalars: Orbax before 0.12 refuses scalars (the step, counts).
            checkpointer.save_tree(step, jax.tree_util.tree_map(np.asarray, run_slice(tree, index)),
                                   None if monitored is None else monitored[index])
        for checkpointer in self.checkpointers:  # Orbax commits each run's save in the background
            checkpointer.wait()
        # Once every run's save is committed: a run killed after this line resumes from this step.
        log.info("checkpoint at step %d%s", step, "" if len(self.checkpointers) == 1 else
                 f" of {counted(len(self.checkpointers), 'run')}")

    def restore(self, like: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The newest step that every run saved and can read, and the runs' trees at that step
        stacked along a leading run axis (each shaped like the `host_tree` `like`, one run's);
        None when the runs have no such step.

        Raises:
          CheckpointMismatch: a run's checkpoint does not fit `like`.
          UserError: a lone run's folder holds no checkpoint, or none readable.
        """
        if len(self.checkpointers) == 1:  # a lone run: its own errors (no checkpoint, none readable)
            step, tree = self.checkpointers[0].restore_tree(like)
            return step, stack_runs([jax.device_get(tree)])
        saved = set.intersection(*(set(c.steps()) for c in self.checkpointers))
        for step in sorted(saved, reverse=True):
            try:
                trees = [jax.device_get(c.restore_tree(like, [step])[1]) for c in self.checkpointers]
            except CheckpointMismatch:
                raise
            except UserError:  # one run's checkpoint at `step` is unreadable (a warning named it)
                continue
            return step, stack_runs(trees)
        return None

    def drop_after(self, step: int) -> list[tuple[Path, list[int]]]:
        """Deletes every run's checkpoints after `step` (unreadable, or ahead of the group, which
        saves those steps again: Orbax skips a save at or below its newest step); returns each
        folder that had some, with their steps."""
        dropped = [(c.directory, c.drop_after(step)) for c in self.checkpointers]
        return [(folder, steps) for folder, steps in dropped if steps]

    def close(self) -> None:
        """Waits for the pending saves; raises the first one's error."""
        self._saver.shutdown(wait=True)
        for checkpointer in self.checkpointers:
            checkpointer.close()
        for future in self._pending:
            future.result()
