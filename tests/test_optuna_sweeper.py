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


def _sweeper_in(sweep_dir, resume: bool, storage: str | None = None, study_name: str | None = None,
                params: dict | None = None):
    """The wrapper over a stand-in of Hydra's sweeper that records the arguments it sweeps."""
    from omegaconf import OmegaConf

    sweeper = OptunaSweeper.__new__(OptunaSweeper)
    impl = SimpleNamespace(storage=storage, study_name=study_name, n_trials=3, job_idx=0, sampler=None, params=params)
    sweeper.hydras = SimpleNamespace(sweeper=impl, swept=[], sweep=lambda arguments: sweeper.hydras.swept.append(arguments))
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "sweeper": {"sampler": {"seed": 0}}},
                                       "trainer": {"resume": resume}})
    return sweeper


@pytest.mark.parametrize("storage, study_name, why", [
    (None, None, "its study was kept in memory (hydra.sweeper.storage=null), and with it the trials' parameters"),
    ("sqlite:///{tmp}/optuna.db", None, "its study has no name (hydra.sweeper.study_name=null), so it cannot be "
                                        "found again"),
    ("sqlite:///{tmp}/optuna.db", "other", "sqlite:///{tmp}/optuna.db holds no trials of a study named 'other'"),
], ids=["in_memory", "unnamed", "not_stored"])
def test_a_search_without_its_stored_study_is_not_resumed_over_its_job_folders(tmp_path, capsys, storage,
                                                                                study_name, why):
    # Hydra's sweeper drew new trials and resumed job 1's checkpoint with another trial's parameters.
    _job_folder(tmp_path / "0", 0.1, "completed", 0.5)
    _job_folder(tmp_path / "1", 0.2, "interrupted", "inf")
    storage = storage and storage.format(tmp=tmp_path)
    sweeper = _sweeper_in(tmp_path, resume=True, storage=storage, study_name=study_name)
    with pytest.raises(SystemExit) as stop:
        sweeper.sweep(["hydra.sweeper.n_trials=3"])
    assert stop.value.code == 2 and sweeper.hydras.swept == []
    assert capsys.readouterr().err == (
        f"jax_mlp: error: trainer.resume=true cannot finish the Optuna search in {tmp_path}: {why.format(tmp=tmp_path)}; "
        "a search resumes from a stored, named study (hparams_search=optuna keeps one in the sweep folder), or start "
        "another in a new hydra.sweep.dir\n")


def test_a_new_study_in_a_searched_folder_numbers_its_jobs_after_the_last(tmp_path):
    # Hydra's sweeper numbered them from 0, over the earlier search's folders.
    _job_folder(tmp_path / "0", 0.1, "completed", 0.5)
    _job_folder(tmp_path / "3", 0.2, "completed", 0.25)
    sweeper = _sweeper_in(tmp_path, resume=False)
    sweeper.sweep(["optimizer.lr=interval(0.01,0.5)"])
    assert sweeper.hydras.swept == [["optimizer.lr=interval(0.01,0.5)"]] and sweeper.hydras.sweeper.job_idx == 4


def test_a_stopped_search_is_offered_a_finish_only_with_a_stored_named_study(tmp_path):
    from omegaconf import OmegaConf

    from jax_mlp import run

    sweeper = {"_target_": "hydra_plugins.jax_mlp_optuna_sweeper.optuna_sweeper.OptunaSweeper",
               "storage": None, "study_name": "jax_mlp"}
    config = OmegaConf.create({"hydra": {"sweeper": sweeper}})
    assert run._how_to_finish(config, tmp_path) == (
        "jax_mlp: this Optuna search cannot be finished: its study is not stored under a name "
        "(hydra.sweeper.storage and study_name; hparams_search=optuna sets both)")
    config.hydra.sweeper.storage = f"sqlite:///{tmp_path}/optuna.db"
    assert run._how_to_finish(config, tmp_path) == (
        f"jax_mlp: to finish the sweep, run the same command with trainer.resume=true hydra.sweep.dir={tmp_path}")


@pytest.mark.parametrize("params, arguments, refused", [
    ({"optimizer.lr": "tag(log, interval(0, 0.1))"}, [],
     "optimizer.lr=tag(log, interval(0, 0.1)): The `low` value must be larger than 0 for a log distribution "
     "(low=0.0, high=0.1)."),
    ({"optimizer.lr": "interval(0.01, 0.1)"}, ["model.hidden=range(8,2)", "seed=0"],
     "model.hidden=range(8,2): The `low` value must be smaller than or equal to the `high` value (low=8, high=2)."),
], ids=["config", "command"])
def test_a_distribution_optuna_refuses_is_named_in_one_line(tmp_path, capsys, params, arguments, refused):
    # Optuna's ValueError named neither the parameter nor where it was set (hydra.sweeper.params or the command).
    sweeper = _sweeper_in(tmp_path, resume=False, params=params)
    with pytest.raises(SystemExit) as stop:
        sweeper.sweep(arguments)
    assert stop.value.code == 2 and sweeper.hydras.swept == []
    assert capsys.readouterr().err == f"jax_mlp: error: {refused}\n"
    sweeper.hydras.sweeper.params = {"optimizer.lr": "tag(log, interval(1e-4, 0.1))", "model.hidden": "choice([8],[16])"}
    sweeper.sweep(["seed=range(0,3)", "trainer.epochs=2"])
    assert sweeper.hydras.swept == [["seed=range(0,3)", "trainer.epochs=2"]]


def test_a_search_of_no_trials_is_one_line(tmp_path, capsys):
    sweeper = _sweeper_in(tmp_path, resume=False)
    sweeper.hydras.sweeper.n_trials = 0
    with pytest.raises(SystemExit) as stop:  # Hydra's sweeper failed on the best of no trials
        sweeper.sweep([])
    assert stop.value.code == 2 and sweeper.hydras.swept == []
    assert capsys.readouterr().err == "jax_mlp: error: hydra.sweeper.n_trials must be a positive integer, got 0\n"
