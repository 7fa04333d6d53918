"""Metric writers: one JSON object a logged step in ``metrics.jsonl``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class JsonlWriter:
    """Appends one JSON line per `write`, each flushed and fsynced whole.

    A line is written with a single `os.write`, so a kill leaves complete lines only.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, allow_nan=True) + "\n").encode())

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
