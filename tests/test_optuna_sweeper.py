"""The Optuna sweeper's wrapper (`hydra_plugins.jax_mlp_optuna_sweeper`) finishing a stopped search,
with Hydra's launcher replaced by a stand-in: which trials it trains again and what it tells the study."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from conftest import job_folder

optuna = pytest.importorskip("optuna")
pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
from hydra.core.utils import JobReturn, JobStatus  # noqa: E402

from hydra_plugins.jax_mlp_optuna_sweeper.optuna_sweeper import OptunaSweeper  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # enqueue_trial's


class TrainsOn:
    """Hydra's launcher as the wrapper calls it for the trials it trains again: records the jobs and
    returns each one's objective, 0.25."""

    def __init__(self) -> None:
        self.launched: list[tuple[int, list[tuple[str, ...]]]] = []

    def launch(self, job_overrides, initial_job_idx):
        self.launched.append((initial_job_idx, list(job_overrides)))
        returns = [JobReturn(status=JobStatus.COMPLETED) for _ in job_overrides]
        for ret in returns:
            ret.return_value = 0.25
        return returns


def _running_trial(study, lr: float):
    """A trial of `study` asked with ``optimizer.lr`` = `lr`, left running as a stopped search leaves it."""
    study.enqueue_trial({"optimizer.lr": lr})
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-4, 1.0, log=True)
    return trial


def _job_folder(path, lr: float, status: str | None = None, objective: float | str | None = None):
    """A trial's job folder of ``optimizer.lr`` = `lr`, finished with `status` and `objective` when given."""
    summary = None if status is None else {"status": status, "objective": objective}
    return job_folder(path, [f"optimizer.lr={lr}", "experiment=moons"], summary)


def test_a_resumed_search_tells_the_finished_trials_of_its_stopped_batch_and_trains_the_others(tmp_path):
    # Ctrl-C during a batch of n_jobs=3: job 0 had completed, job 2 diverged, job 1 was training
    # (interrupted). Hydra's sweeper had told none of them: it tells a batch once it returns.
    study = optuna.create_study()
    for lr in (0.1, 0.2, 0.3):
        _running_trial(study, lr)
    jobs = {0: _job_folder(tmp_path / "0", 0.1, "completed", 0.5),
            1: _job_folder(tmp_path / "1", 0.2, "interrupted", "inf"),
            2: _job_folder(tmp_path / "2", 0.3, "diverged", "inf")}
    sweeper = OptunaSweeper.__new__(OptunaSweeper)
    sweeper.hydras = SimpleNamespace(sweeper=SimpleNamespace(launcher=TrainsOn()))
    sweeper._finish_running_trials(study, jobs, ["trainer.resume=true"])
    assert sweeper.hydras.sweeper.launcher.launched == [(1, [("optimizer.lr=0.2", "trainer.resume=True")])]
    assert [(t.number, t.state.name, t.value) for t in study.trials] == [
        (0, "COMPLETE", 0.5), (1, "COMPLETE", 0.25), (2, "COMPLETE", math.inf)]


def test_a_running_trial_is_matched_to_the_newest_folder_of_its_values(tmp_path):
    # Folder 0 holds an earlier trial of the same value, told before the search stopped.
    study = optuna.create_study()
    study.enqueue_trial({"optimizer.lr": 0.1})
    study.optimize(lambda trial: trial.suggest_float("optimizer.lr", 1e-4, 1.0, log=True), n_trials=1)
    _running_trial(study, 0.1)
    jobs = {0: _job_folder(tmp_path / "0", 0.1, "completed", 0.5),
            1: _job_folder(tmp_path / "1", 0.1, "completed", 0.75)}
    sweeper = OptunaSweeper.__new__(OptunaSweeper)
    sweeper.hydras = SimpleNamespace(sweeper=SimpleNamespace(launcher=TrainsOn()))
    sweeper._finish_running_trials(study, jobs, ["trainer.resume=true"])
    assert sweeper.hydras.sweeper.launcher.launched == []
    assert [(t.number, t.state.name, t.value) for t in study.trials] == [(0, "COMPLETE", 0.1), (1, "COMPLETE", 0.75)]
