"""The submitit local launcher's wrapper (`hydra_plugins.jax_mlp_submitit_launcher`) with Hydra's
launcher replaced by a stand-in that submits through submitit itself: what its jobs inherit."""

from __future__ import annotations

import signal

import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
submitit = pytest.importorskip("submitit")
from hydra_plugins.jax_mlp_submitit_launcher.submitit_launcher import LocalLauncher  # noqa: E402


class SubmitsOneJob:
    """Hydra's launcher as far as signals go: submitit's local executor, started from the thread
    that calls `launch`, runs a controller process that runs the job; the job says which of SIGINT
    and SIGTERM it has blocked."""

    def __init__(self, folder) -> None:
        self.folder = folder

    def launch(self, job_overrides, initial_job_idx):
        def blocked() -> tuple[bool, bool]:
            import signal

            mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            return signal.SIGINT in mask, signal.SIGTERM in mask

        return submitit.LocalExecutor(folder=self.folder).submit(blocked).result()


def test_submitit_jobs_start_with_sigint_and_sigterm_blocked(tmp_path):
    # A SIGTERM to the process group (a cluster's time limit) killed a job still starting, and the
    # sweep ended in submitit's UncompletedJobError traceback; a job unblocks SIGTERM while it trains.
    launcher = LocalLauncher.__new__(LocalLauncher)
    launcher.hydras = SubmitsOneJob(tmp_path / "jobs")
    launcher.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert launcher.launch([["seed=0"]], 0) == (True, True)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # this thread's own is left alone
