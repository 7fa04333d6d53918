"""Saving and loading params. For now: the final params as a plain ``.npz`` (no pickles)."""

from __future__ import annotations

import io
from pathlib import Path

import jax
import numpy as np

from jax_mlp import files
from jax_mlp.errors import UserError
from jax_mlp.model import Params


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
