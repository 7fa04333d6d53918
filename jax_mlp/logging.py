"""Metric writers: one JSON object a logged step in ``metrics.jsonl``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class JsonlWriter:
    """Appends one JSON line per `write`.

    A line is written with a single unbuffered `os.write`, so a kill leaves complete lines only
    (no fsync: see `jax_mlp.files.write_atomic`).
    """

    def __init__(self, path: Path, truncate: bool = False) -> None:
        """Opens `path` for appending, made if need be; `truncate`: emptied first."""
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        self._fd = os.open(self.path, flags, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, allow_nan=True) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
