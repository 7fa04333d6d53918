"""The joblib launcher's wrapper (`hydra_plugins.jax_mlp_joblib_launcher`) with Hydra's launcher
replaced by a stand-in, for what no end-to-end run can time: a signal while a worker starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
from hydra_plugins.jax_mlp_joblib_launcher.joblib_launcher import JoblibLauncher  # noqa: E402


class WorkerDiesOfTheSignal:
    """Hydra's launcher as it behaves when, after the parent took a signal, a worker dies (killed
    outright): joblib raises for the dead worker."""

    joblib = {"n_jobs": 2}

    def launch(self, job_overrides, initial_job_idx):
        os.kill(os.getpid(), signal.SIGINT)
        raise RuntimeError("A worker process managed by the executor was unexpectedly terminated")


class Fails:
    joblib = {"n_jobs": 2}

    def launch(self, job_overrides, initial_job_idx):
        raise RuntimeError("a bug")


class RecordsBlockedSignals:
    """Says whether the jobs' processes would start with SIGINT and SIGTERM blocked: joblib starts
    its workers from the thread that calls `launch`."""

    def __init__(self, n_jobs) -> None:
        self.joblib = {"n_jobs": n_jobs}

    def launch(self, job_overrides, initial_job_idx):
        return {signal.SIGINT, signal.SIGTERM} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])


def _launcher(inner, tmp_path) -> JoblibLauncher:
    launcher = JoblibLauncher(n_jobs=2)
    launcher.hydras, launcher.config = inner, OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    return launcher


def test_a_worker_that_dies_after_ctrl_c_ends_the_sweep_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _launcher(WorkerDiesOfTheSignal(), tmp_path).launch([["seed=0"]], 0)
    assert stop.value.code == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "jax_mlp: SIGINT: the sweep stopped; a worker died (RuntimeError), and joblib ended the others without "
        "letting them save")
    assert not (tmp_path / ".jax_mlp_stop").exists()


def test_an_error_without_a_signal_is_raised_as_it_is(tmp_path):
    with pytest.raises(RuntimeError, match="a bug"):
        _launcher(Fails(), tmp_path).launch([["seed=0"]], 0)


@pytest.mark.parametrize("n_jobs, in_workers", [(2, True), (-1, True), (1, False), (None, False)])
def test_workers_start_with_sigint_and_sigterm_blocked_and_jobs_run_here_do_not(tmp_path, n_jobs, in_workers):
    # With one job at a time joblib runs the jobs in the calling thread, which must take Ctrl-C itself.
    here = {signal.SIGINT, signal.SIGTERM} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])  # False, as a rule
    assert _launcher(RecordsBlockedSignals(n_jobs), tmp_path).launch([["seed=0"]], 0) is (in_workers or here)


WORKERS_MASK = """
import os, signal, sys
from joblib import Parallel, delayed
from omegaconf import OmegaConf
from hydra_plugins.jax_mlp_joblib_launcher.joblib_launcher import JoblibLauncher
from jax_mlp.interrupts import Interrupts

def job():
    blocked = {signal.SIGINT, signal.SIGTERM} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
    os.kill(os.getpid(), signal.SIGTERM)  # as if sent to the process group while this worker started
    with Interrupts() as caught:
        return blocked, caught.signum

class Runs:
    joblib = {"n_jobs": 2}
    def launch(self, job_overrides, initial_job_idx):
        return Parallel(n_jobs=2, backend="loky")(delayed(job)() for _ in range(4))

launcher = JoblibLauncher(n_jobs=2)
launcher.hydras, launcher.config = Runs(), OmegaConf.create({"hydra": {"sweep": {"dir": sys.argv[1]}}})
print(launcher.launch([["seed=0"]], 0))
"""


def test_real_joblib_workers_start_with_signals_blocked_and_a_job_takes_a_sigterm_that_waited(tmp_path):
    # A fresh process: the standard library's resource tracker, started for the first workers,
    # unblocks SIGINT and SIGTERM on the thread that starts it unless the wrapper started it before.
    # Each job finds SIGTERM pending: it would have killed the worker, had it not been blocked.
    result = subprocess.run([sys.executable, "-c", WORKERS_MASK, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([(True, int(signal.SIGTERM))] * 4)
