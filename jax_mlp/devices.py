"""The JAX runtime a run needs: precision, the persistent compilation cache, the platform, and
JAX's multi-process runtime on clusters."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from jax_mlp import files
from jax_mlp.errors import UserError

log = logging.getLogger("jax_mlp")

PLATFORMS = ("auto", "cpu", "gpu", "tpu")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/jax_mlp/xla``, or ``~/.cache/jax_mlp/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jax_mlp" / "xla"


def configure(*, x64: bool, compilation_cache: bool, cache_dir: str | None) -> None:
    """Sets JAX's global switches before any array of the run exists.

    float64 is switched on when asked and never switched off here: code keeps its dtypes explicit,
    so a float32 run gives the same numbers in a process that has float64 enabled.
    The persistent cache keeps every compiled program (no minimum compile time), so a second
    identical run loads its programs instead of compiling them. When the default cache folder
    cannot be made (a read-only home), the run goes on without the cache and says so.

    Raises:
      UserError: `cache_dir` is given and cannot be made.
    """
    if x64:
        jax.config.update("jax_enable_x64", True)
    if compilation_cache:
        path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        if cache_dir:
            files.make_folder(path, "trainer.cache_dir")
        else:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                log.warning("no compilation cache: cannot make %s (%s); set trainer.cache_dir", path,
                            error.strerror)
                return
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def available_platforms() -> list[str]:
    """The platforms JAX can run on here, of ``cpu``, ``gpu`` and ``tpu``."""
    found = []
    for name in PLATFORMS[1:]:
        try:
            jax.devices(name)
        except RuntimeError:
            continue
        found.append(name)
    return found


def select_platform(name: str) -> None:
    """Makes `name`'s first device the default for every array and computation (``auto``: JAX's
    own choice, a GPU or TPU when there is one).

    Raises:
      UserError: the platform is not available here; the message lists those that are.
    """
    if name == "auto":
        return
    try:
        device = jax.devices(name)[0]
    except RuntimeError:
        raise UserError(f"trainer.platform={name}: no {name} device here; available: "
                        f"{', '.join(available_platforms())} (or auto)") from None
    jax.config.update("jax_default_device", device)


def default_platform() -> str | None:
    """The platform `select_platform` chose, or None for JAX's own default."""
    default = jax.config.jax_default_device
    return None if default is None else default.platform


def distributed_wanted(enabled: bool | str, environ: Mapping[str, str]) -> bool:
    """Whether to start JAX's multi-process runtime: always (True), never (False), or (``auto``)
    when SLURM runs this process as one of several tasks or ``JAX_COORDINATOR_ADDRESS`` is set."""
    if enabled != "auto":
        return bool(enabled)
    return int(environ.get("SLURM_NTASKS") or 1) > 1 or "JAX_COORDINATOR_ADDRESS" in environ


def start_distributed(enabled: bool | str, coordinator_address: str | None = None,
                      num_processes: int | None = None, process_id: int | None = None) -> None:
    """Calls `jax.distributed.initialize` once per process when `distributed_wanted`; the
    arguments left None come from the cluster (SLURM, Open MPI, a TPU pod) or JAX's variables.

    Raises:
      UserError: the runtime could not start (no cluster found, the coordinator unreachable).
    """
    if not distributed_wanted(enabled, os.environ) or jax.distributed.is_initialized():
        return
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
    except (RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"distributed.enabled={enabled}: jax.distributed.initialize() failed: {reason}; "
                        "run it under SLURM (srun) or give distributed.coordinator_address, "
                        "num_processes and process_id") from None


def launch_rank(environ: Mapping[str, str]) -> int:
    """This process's rank among the processes a cluster started for one run (SLURM's
    ``SLURM_PROCID``, else ``JAX_PROCESS_ID``), read before JAX starts; 0 when alone."""
    return int(environ.get("SLURM_PROCID") or environ.get("JAX_PROCESS_ID") or 0)


def is_writer() -> bool:
    """Whether this process writes outputs: process 0 of a multi-process run, or the only one."""
    return jax.process_index() == 0


def place(tree: Any, sharding) -> Any:
    """`tree` on `sharding`'s devices. Across processes, each leaf becomes one global array whose
    shards every process fills from its own (identical) copy of the data."""
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)
    import numpy as np

    def global_array(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):  # keys travel as their data
            return jax.random.wrap_key_data(global_array(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(global_array, tree)


def data_parallel_sharding(batch_size: int | None, num_train: int):
    """The sharding of a batch's first axis over a one-axis mesh ("data") of the default
    platform's devices, those of every process (params go to each device whole: see `replicated`).

    Raises:
      UserError: the batch (or, on the full batch, the training set) does not divide evenly.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    every = jax.devices(default_platform())
    full_batch = batch_size is None or batch_size >= num_train
    size = num_train if full_batch else batch_size
    if size % len(every):
        what = "the full batch (the training set)" if full_batch else "trainer.batch_size"
        raise UserError(f"{what} of {size} samples does not divide over the {len(every)} devices of "
                        f"trainer.data_parallel; set trainer.batch_size to a multiple of {len(every)}")
    return NamedSharding(Mesh(every, ("data",)), PartitionSpec("data"))


def replicated(sharding):
    """A sharding that puts a whole copy on every device of `sharding`'s mesh."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(sharding.mesh, PartitionSpec())


def describe() -> dict[str, Any]:
    """The platform, devices and JAX version, for `summary.json`."""
    devices = jax.devices(default_platform())
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "jax_version": jax.__version__,
    }
