"""Ctrl-C and SIGTERM as requests to stop training at the end of the current compiled span,
rather than as an end of the process in the middle of writing a run's files.

A sweep whose jobs run in worker processes (``launcher=joblib``, ``launcher=submitit_local``) has
one more path: its parent process catches the signal (`StopRequests`) and writes a stop file,
which every worker's `Interrupts` reads at each span's end; the workers are started with SIGINT
and SIGTERM blocked (`run_with_signals_blocked`), so a signal to the whole process group cannot
kill a worker still starting, and the parent decides when the sweep ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

STOP_FILE_ENV = "JAX_MLP_STOP_FILE"  # "PID:PATH", set by a launcher's parent process PID for its workers
STOP_FILE_NAME = ".jax_mlp_stop"  # the stop file, in the sweep's folder while the launcher runs it


def stop_file() -> Path | None:
    """The stop file a launcher's parent process named for its workers, or None outside a worker,
    the parent itself included (joblib runs the jobs there when ``n_jobs=1``)."""
    parent, _, name = os.environ.get(STOP_FILE_ENV, "").partition(":")
    return Path(name) if name and parent != str(os.getpid()) else None


def requested_stop() -> int | None:
    """The number of the signal the parent process wrote into the stop file (SIGTERM's once the
    parent is gone: `worker_job`), or None (no file, or not a worker of such a sweep)."""
    if _orphaned is not None:
        return _orphaned
    path = stop_file()
    try:
        return None if path is None else int(path.read_text())
    except (FileNotFoundError, ValueError):  # none yet, or caught half-written
        return None


_orphaned: int | None = None  # SIGTERM once the sweep's process of this worker is gone
_jobs_training = 0  # the jobs this worker process is training (`worker_job`)
_parent_watch: threading.Thread | None = None


@contextlib.contextmanager
def worker_job(poll_seconds: float = 0.5) -> Iterator[None]:
    """A job in a launcher's worker process. A watch (started once a process) sees the worker's
    parent, the sweep's process, end however it ended (kill -9 too): a job in training then stops
    at its span's end and saves as a stop request makes it, and the worker ends once none of its
    jobs trains, rather than waiting, idle and holding the command's output open, for a parent
    that is gone (loky's workers do)."""
    global _jobs_training, _parent_watch
    if _parent_watch is None:
        _parent_watch = threading.Thread(target=_end_with_parent, args=(os.getppid(), poll_seconds),
                                         name="jax-mlp-parent-watch", daemon=True)
        _parent_watch.start()
    _jobs_training += 1
    try:
        yield
    finally:
        _jobs_training -= 1


def _end_with_parent(parent: int, poll_seconds: float) -> None:
    global _orphaned
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    _orphaned = signal.SIGTERM
    while _jobs_training:
        time.sleep(poll_seconds)
    os._exit(128 + signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside training (`terminate_as_interrupt`): it ends the command as Ctrl-C does there."""

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def hidden_interrupt(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (KeyboardInterrupt) or SIGTERM (`Terminated`) that JAX turned into `error`, else
    None. One that lands while ``jax.jit`` compares a static argument (the run's `Task`) with a
    cached one comes out as a ValueError whose last line names it (``static arguments should be
    comparable using __eq__ ... Terminated:``); while it compares a pytree's metadata, as the
    cause of a ValueError."""
    if not isinstance(error, ValueError):
        return None
    if isinstance(error.__cause__, KeyboardInterrupt):
        return error.__cause__
    text = str(error)
    if "static arguments should be comparable" not in text:
        return None
    raised = text.rstrip().rsplit("\n", 1)[-1].split(":")[0]  # "Terminated: " after JAX's traceback
    interruption = {Terminated.__name__: Terminated, KeyboardInterrupt.__name__: KeyboardInterrupt}.get(raised)
    return None if interruption is None else interruption()


@contextlib.contextmanager
def unhidden() -> Iterator[None]:
    """Raises as itself a Ctrl-C or SIGTERM that JAX turned into a ValueError (`hidden_interrupt`)."""
    try:
        yield
    except ValueError as error:
        if (interrupt := hidden_interrupt(error)) is None:
            raise
        raise interrupt from None


def terminate_as_interrupt() -> None:
    """Makes SIGTERM raise `Terminated` (a KeyboardInterrupt) where nothing else takes it, as
    Ctrl-C raises KeyboardInterrupt: a command it stops while composing, loading or compiling
    ends with one line, status 143 and a sweep's table, instead of vanishing. Training (`Interrupts`)
    and a launcher's parent (`StopRequests`) take it in their own way meanwhile."""
    _handle((signal.SIGTERM,), _raise_terminated)


def _handle(signals: tuple[int, ...], handler: Any) -> dict[int, Any]:
    """Sets `handler` for `signals` and returns the handlers it replaced; nothing outside the main
    thread, where Python allows no handler."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in signals}


def _restore(previous: dict[int, Any]) -> None:
    """Puts back the handlers `_handle` replaced."""
    for s, handler in previous.items():
        signal.signal(s, handler)


class Interrupts:
    """While active, SIGINT and SIGTERM are recorded instead of ending the process, so training
    can stop at the next span's end, save a checkpoint and write its summary. In a worker of a
    sweep's parent process (`stop_file` set), SIGINT is left to the parent, and the worker stops
    when the parent requests it (`requested_stop`).

    The signals it records are unblocked while it is active (the mask is restored after): a
    SIGTERM that reached a sweep's worker while it started, blocked then, is recorded on entry."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._mask: set[int] | None = None
        self._watch_stop_file = stop_file() is not None
        self._signals = (signal.SIGTERM,) if self._watch_stop_file else self.SIGNALS

    def arrived(self) -> bool:
        if self.signum is None and self._watch_stop_file:
            self.signum = requested_stop()
        return self.signum is not None

    def _record(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __enter__(self) -> Interrupts:
        self._previous = _handle(self._signals, self._record)
        if self._previous:  # on the main thread; a pending signal is handled before this returns
            self._mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signals)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        _restore(self._previous)


class StopRequests:
    """A launcher's parent process while its workers train a sweep: the first SIGINT or SIGTERM
    writes its number into `path` (the workers' stop file, named to them by `STOP_FILE_ENV`), so
    the jobs in training stop at their span's end and save, and jobs not yet started do not train;
    a second signal raises KeyboardInterrupt (`Terminated` for SIGTERM), to stop this process at
    once (the stop file stays for the workers that outlive it). `signum`: the first signal, or None.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.signum = signum
        self.path.write_text(str(signum))
        print(f"jax_mlp: {signal.Signals(signum).name}: the jobs in training stop at the end of their "
              "compiled span and save; Ctrl-C again to stop at once", file=sys.stderr, flush=True)

    def __enter__(self) -> StopRequests:
        self.path.unlink(missing_ok=True)
        os.environ[STOP_FILE_ENV] = f"{os.getpid()}:{self.path}"
        self._previous = _handle(Interrupts.SIGNALS, self._record)
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        _restore(self._previous)
        os.environ.pop(STOP_FILE_ENV, None)
        # Left after a second signal: workers that outlive this process (submitit's) still stop and save.
        if exc_type is None or not issubclass(exc_type, KeyboardInterrupt):
            self.path.unlink(missing_ok=True)


def stopped_sweep_line(signum: int) -> str:
    """What a launcher's parent prints when a signal (`StopRequests`) stopped its sweep."""
    return (f"jax_mlp: {signal.Signals(signum).name}: the sweep stopped; its jobs in training saved a checkpoint "
            "(status interrupted in sweep_summary.md), later jobs did not start")


def run_with_signals_blocked(function: Callable[[], Any], signals: Collection[int]) -> Any:
    """`function()` run on a thread that blocks `signals`, so the processes it starts inherit the
    block and a terminal's Ctrl-C (or a SIGTERM to the process group) reaches this process's main
    thread only; returns its value or raises its error. The main thread waits for it and runs its
    signal handlers meanwhile. The thread is a daemon: if a handler raises (a second Ctrl-C), the
    process may end without waiting for it."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed to the main thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="jax-mlp-launch", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def launch_until_stopped(sweep_dir: Path, launch: Callable[[], Any], blocked_signals: Collection[int],
                         failure_after_signal: Callable[[int, Exception], str] | None = None) -> Any:
    """A launcher's parent process: runs `launch()` (its jobs) under `StopRequests`, with the stop
    file in `sweep_dir`, on a thread that blocks `blocked_signals` when there are any (the processes
    it starts inherit the block: `run_with_signals_blocked`), and returns what it returns.

    After a signal it prints `stopped_sweep_line` and exits 128 + the signal's number (then
    `jax_mlp.run.main` writes the sweep's table). An error `launch` raises after a signal is
    described by `failure_after_signal(signum, error)`, the line printed instead, when given; any
    other error is raised.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    failure = None
    with StopRequests(sweep_dir / STOP_FILE_NAME) as stops:
        try:
            returns = run_with_signals_blocked(launch, blocked_signals) if blocked_signals else launch()
        except Exception as error:
            if stops.signum is None or failure_after_signal is None:
                raise
            returns, failure = None, failure_after_signal(stops.signum, error)
    if stops.signum is not None:
        print(failure or stopped_sweep_line(stops.signum), file=sys.stderr)
        sys.exit(128 + stops.signum)
    return returns
