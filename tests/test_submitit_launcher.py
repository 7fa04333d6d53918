"""The submitit launcher's wrapper (`hydra_plugins.jax_mlp_submitit_launcher`): the processes it
starts do not see a terminal's Ctrl-C, and what it runs comes back as it was."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from hydra_plugins.jax_mlp_submitit_launcher.submitit_launcher import run_with_sigint_blocked

BLOCKED = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"


def _child_blocks_sigint() -> str:
    return subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, check=True).stdout.strip()


def test_processes_started_through_it_inherit_sigint_blocked_and_this_thread_is_left_alone():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert run_with_sigint_blocked(_child_blocks_sigint) == "True"
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert _child_blocks_sigint() == str(signal.SIGINT in before)  # "False", unless pytest started blocked


def test_an_error_comes_back_as_it_is():
    def fails() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_with_sigint_blocked(fails)
