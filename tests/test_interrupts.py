"""`jax_mlp.interrupts`: signals and a sweep parent's stop file as requests to stop training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import pytest

from jax_mlp import interrupts
from jax_mlp.interrupts import Interrupts, StopRequests, run_with_signals_blocked


def test_a_signal_is_recorded_and_a_workers_sigint_is_left_to_its_parent(tmp_path, monkeypatch):
    monkeypatch.delenv(interrupts.STOP_FILE_ENV, raising=False)
    with Interrupts() as caught:
        os.kill(os.getpid(), signal.SIGTERM)
        assert caught.arrived() and caught.signum == signal.SIGTERM
    monkeypatch.setenv(interrupts.STOP_FILE_ENV, f"{os.getppid()}:{tmp_path / 'stop'}")  # a worker's
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `run.run` sets it in a worker
    try:
        with Interrupts() as caught:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            assert caught.signum == signal.SIGTERM
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_worker_stops_when_its_parent_writes_the_stop_file(tmp_path, monkeypatch):
    stop_file = tmp_path / "stop"
    monkeypatch.setenv(interrupts.STOP_FILE_ENV, f"{os.getppid()}:{stop_file}")
    with Interrupts() as caught:
        assert not caught.arrived() and interrupts.requested_stop() is None
        stop_file.write_text("")  # caught half-written: not yet a request
        assert not caught.arrived()
        stop_file.write_text(str(int(signal.SIGTERM)))
        assert caught.arrived() and caught.signum == signal.SIGTERM


def test_the_parent_writes_the_first_signal_and_stops_at_once_on_the_second(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(interrupts.STOP_FILE_ENV, raising=False)
    with StopRequests(tmp_path / "stop") as stops:
        assert os.environ[interrupts.STOP_FILE_ENV] == f"{os.getpid()}:{tmp_path / 'stop'}"
        assert interrupts.stop_file() is None  # the parent is no worker, even when it runs jobs (n_jobs=1)
        os.kill(os.getpid(), signal.SIGINT)
        assert stops.signum == signal.SIGINT and (tmp_path / "stop").read_text() == str(int(signal.SIGINT))
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert interrupts.STOP_FILE_ENV not in os.environ and not (tmp_path / "stop").exists()
    assert capsys.readouterr().err == ("jax_mlp: SIGINT: the jobs in training stop at the end of their compiled "
                                       "span and save; Ctrl-C again to stop at once\n")


def test_a_second_signal_that_ends_the_parent_leaves_the_stop_file_for_workers_that_outlive_it(tmp_path, monkeypatch):
    monkeypatch.delenv(interrupts.STOP_FILE_ENV, raising=False)
    with pytest.raises(KeyboardInterrupt), StopRequests(tmp_path / "stop"):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert (tmp_path / "stop").read_text() == str(int(signal.SIGTERM))
    assert interrupts.STOP_FILE_ENV not in os.environ
    # A second SIGTERM ends it as `Terminated`, which the command's line names: "interrupted (SIGTERM)".
    with pytest.raises(interrupts.Terminated), StopRequests(tmp_path / "again"):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert (tmp_path / "again").read_text() == str(int(signal.SIGINT))


def test_a_sigterm_that_reached_a_worker_blocked_is_recorded_when_training_starts(tmp_path, monkeypatch):
    # A joblib worker starts with SIGTERM blocked: one sent to the process group while it started
    # waits, and the job's `Interrupts` takes it (then blocks it again for the idle worker).
    monkeypatch.setenv(interrupts.STOP_FILE_ENV, f"{os.getppid()}:{tmp_path / 'stop'}")  # a worker's
    outside = signal.signal(signal.SIGTERM, lambda *_: None)  # should it fail: not pytest's end
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    try:
        # To this thread: another one of this process (pytest's, JAX's) that does not block SIGTERM
        # would take a signal sent to the process and die of it.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        assert signal.SIGTERM in signal.sigpending()
        with Interrupts() as caught:
            assert caught.arrived() and caught.signum == signal.SIGTERM
            assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert signal.SIGTERM not in signal.sigpending()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        signal.signal(signal.SIGTERM, outside)


BLOCKED = ("import signal; mask = signal.pthread_sigmask(signal.SIG_BLOCK, []); "
           "print(signal.SIGINT in mask, signal.SIGTERM in mask)")


def _child_blocks() -> str:
    """Which of SIGINT and SIGTERM a process started now has blocked: "True False" for SIGINT only."""
    return subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("signals, blocked", [((signal.SIGINT,), "True False"),
                                              ((signal.SIGINT, signal.SIGTERM), "True True")])
def test_processes_started_with_signals_blocked_inherit_them_and_this_thread_is_left_alone(signals, blocked):
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert run_with_signals_blocked(_child_blocks, signals) == blocked
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert _child_blocks() == f"{signal.SIGINT in before} {signal.SIGTERM in before}"  # "False False", as a rule


def test_an_error_of_what_runs_with_signals_blocked_comes_back_as_it_is():
    def fails() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_with_signals_blocked(fails, Interrupts.SIGNALS)


class _Static:
    """A static argument of ``jax.jit`` (or a pytree's metadata) whose comparison a signal
    interrupts once `interruption` is set: its __eq__ then raises it."""

    interruption: type[BaseException] | None = None

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        if _Static.interruption is not None:
            raise _Static.interruption
        return isinstance(other, _Static)


@jax.tree_util.register_pytree_node_class
class _Box:
    """A pytree of one array leaf, `x`, and metadata, `meta`."""

    def __init__(self, x, meta) -> None:
        self.x, self.meta = x, meta

    def tree_flatten(self):
        return (self.x,), self.meta

    @classmethod
    def tree_unflatten(cls, meta, leaves):
        return cls(leaves[0], meta)


@pytest.mark.parametrize("where", ["static_argument", "pytree_metadata"])
@pytest.mark.parametrize("interruption", [KeyboardInterrupt, interrupts.Terminated])
def test_an_interrupt_that_jax_turned_into_a_value_error_is_raised_as_itself(interruption, where):
    # JAX wraps whatever such a comparison raises, a Ctrl-C too, in a ValueError that names it; for a
    # pytree's metadata JAX 0.10 chains it to one, JAX 0.6 raises it as itself.
    if where == "static_argument":
        double = jax.jit(lambda x, _: 2 * x, static_argnums=1)
        call = lambda: double(jnp.ones(2), _Static())  # noqa: E731
    else:
        double = jax.jit(lambda box: 2 * box.x)
        call = lambda: double(_Box(jnp.ones(2), _Static()))  # noqa: E731
    call()  # compiles; the next call compares a new instance with the cached one
    _Static.interruption = interruption
    try:
        with pytest.raises((ValueError, interruption)) as raised:
            call()
    finally:
        _Static.interruption = None
    if isinstance(raised.value, ValueError):
        assert type(interrupts.hidden_interrupt(raised.value)) is interruption
    else:  # an interrupt JAX raised as itself needs no unwrapping
        assert where == "pytree_metadata" and interrupts.hidden_interrupt(raised.value) is None
    with pytest.raises(interruption), interrupts.unhidden():
        raise raised.value
    other = ValueError("static arguments should be comparable using __eq__ ... The error was:\nTypeError: Terminated")
    assert interrupts.hidden_interrupt(other) is None and interrupts.hidden_interrupt(KeyError("x")) is None
    with pytest.raises(ValueError, match="TypeError"), interrupts.unhidden():
        raise other
