"""The joblib launcher's wrapper (`hydra_plugins.jax_mlp_joblib_launcher`) with Hydra's launcher
replaced by a stand-in, for what no end-to-end run can time: a signal while a worker starts."""

from __future__ import annotations

import os
import signal

import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
from hydra_plugins.jax_mlp_joblib_launcher.joblib_launcher import JoblibLauncher  # noqa: E402


class WorkerDiesOfTheSignal:
    """Hydra's launcher as it behaves when Ctrl-C reaches a worker that is still starting: the
    parent gets the signal too, then joblib raises for the dead worker."""

    def launch(self, job_overrides, initial_job_idx):
        os.kill(os.getpid(), signal.SIGINT)
        raise RuntimeError("A worker process managed by the executor was unexpectedly terminated")


class Fails:
    def launch(self, job_overrides, initial_job_idx):
        raise RuntimeError("a bug")


def _launcher(inner, tmp_path) -> JoblibLauncher:
    launcher = JoblibLauncher(n_jobs=2)
    launcher.hydras, launcher.config = inner, OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    return launcher


def test_a_worker_that_dies_of_ctrl_c_while_starting_ends_the_sweep_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _launcher(WorkerDiesOfTheSignal(), tmp_path).launch([["seed=0"]], 0)
    assert stop.value.code == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "jax_mlp: SIGINT: the sweep stopped; a worker that was still starting died of it (RuntimeError), and "
        "joblib ended the others without letting them save")
    assert not (tmp_path / ".jax_mlp_stop").exists()


def test_an_error_without_a_signal_is_raised_as_it_is(tmp_path):
    with pytest.raises(RuntimeError, match="a bug"):
        _launcher(Fails(), tmp_path).launch([["seed=0"]], 0)
