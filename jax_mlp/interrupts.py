"""Ctrl-C and SIGTERM as requests to stop training at the end of the current compiled span,
rather than as an end of the process in the middle of writing a run's files."""

from __future__ import annotations

import signal
import threading
from typing import Any


class Interrupts:
    """While active, SIGINT and SIGTERM are recorded instead of ending the process, so training
    can stop at the next span's end, save a checkpoint and write its summary."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def arrived(self) -> bool:
        return self.signum is not None

    def _record(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
