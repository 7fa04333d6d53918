"""The JAX runtime a run needs: precision, the persistent compilation cache, the platform."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax

from jax_mlp.errors import UserError

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
    identical run loads its programs instead of compiling them.
    """
    if x64:
        jax.config.update("jax_enable_x64", True)
    if compilation_cache:
        path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        path.mkdir(parents=True, exist_ok=True)
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


def data_parallel_sharding(batch_size: int | None, num_train: int):
    """The sharding of a batch's first axis over a one-axis mesh ("data") of the default
    platform's local devices (params go to each device whole: see `replicated`).

    Raises:
      UserError: the batch (or, on the full batch, the training set) does not divide evenly.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    default = jax.config.jax_default_device
    local = jax.local_devices(backend=None if default is None else default.platform)
    full_batch = batch_size is None or batch_size >= num_train
    size = num_train if full_batch else batch_size
    if size % len(local):
        what = "the full batch (the training set)" if full_batch else "trainer.batch_size"
        raise UserError(f"{what} of {size} samples does not divide over the {len(local)} devices of "
                        f"trainer.data_parallel; set trainer.batch_size to a multiple of {len(local)}")
    return NamedSharding(Mesh(local, ("data",)), PartitionSpec("data"))


def replicated(sharding):
    """A sharding that puts a whole copy on every device of `sharding`'s mesh."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(sharding.mesh, PartitionSpec())


def describe() -> dict[str, Any]:
    """The platform, devices and JAX version, for `summary.json`."""
    default = jax.config.jax_default_device
    devices = jax.devices(default.platform) if default is not None else jax.devices()
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "jax_version": jax.__version__,
    }
