"""Writing files so that a reader (or a kill) never sees half of one."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jax_mlp.errors import UserError


def _umask() -> int:
    """The process's umask (read by setting it, as the only way, and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file and `os.replace`.

    A process killed at any moment leaves either the old complete file or the new one. There is
    no fsync (it cost half a millisecond a file, a quarter of a 256-job sweep's writing): a crash
    of the machine itself may lose the newest files; Orbax checkpoints make their own guarantees.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's file is private (0600); outputs follow the umask as open's do
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """Writes `value` as indented JSON, atomically."""
    write_atomic(path, (json.dumps(value, indent=2, allow_nan=False) + "\n").encode())


def output_file(path: Path, option: str) -> Path:
    """`path`, checked before the work whose results it will hold: its folder is made if need be
    and can be written in, and it is not itself a folder; `option` names the option that gave it.

    Raises:
      UserError: any of these fails, so that a long job does not fail at its end.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise UserError(f"{option} {path}: that is a folder; give a file's name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{option} {path}: cannot make its folder {folder} ({error.strerror}); give another") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{option} {path}: cannot write in {folder}; give another")
    return path


def make_folder(path: Path, setting: str) -> None:
    """Makes the folder `path` (and its parents) if need be; `setting` names the option that gave
    it, for the message.

    Raises:
      UserError: it cannot be made (a file of that name, no permission, a read-only disk).
    """
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{setting}={path}: cannot make that folder ({error.strerror}); give another") from None


def fingerprint(path: Path, watch: Callable[[bytes], None] | None = None) -> dict[str, Any]:
    """What identifies a data file's contents: its absolute path, size and SHA-256 (hex);
    `watch` sees each block of the file as it is read (a reader's own scan, in the same pass)."""
    path = Path(path).absolute()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
            if watch is not None:
                watch(block)
    return {"path": str(path), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def changed_files(recorded: list[dict[str, Any]]) -> list[str]:
    """The recorded data files (`fingerprint`s) that are gone or whose contents changed since,
    each in words (``PATH (changed)``, ``PATH (gone)``)."""
    changed = []
    for record in recorded:
        path = Path(record["path"])
        if not path.is_file():
            changed.append(f"{path} (gone)")
        elif path.stat().st_size != record["size"] or fingerprint(path)["sha256"] != record["sha256"]:
            changed.append(f"{path} (changed)")
    return changed
