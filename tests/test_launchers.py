"""Where a sweep's jobs run and how they are chosen: Hydra's joblib and submitit launchers
(``launcher=``) and the Optuna sweeper (``hparams_search=optuna``), end to end."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import warnings

import pytest
import yaml
from conftest import ROOT

pytestmark = pytest.mark.slow

JOB_FILES = {".hydra", "metrics.jsonl", "summary.json", "params.npz", "scaling.json", "train.log"}


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_a_two_job_sweep_runs_through_the_launcher(run_script, tmp_path, launcher):
    result = run_script("train.py", "-m", f"launcher={launcher}", f"hydra.sweep.dir={tmp_path}",
                        "optimizer.lr=0.05,0.1", "trainer.steps=50")
    assert result.returncode == 0, result.stderr
    for job, lr in (("0", 0.05), ("1", 0.1)):
        assert JOB_FILES <= {p.name for p in (tmp_path / job).iterdir()}
        summary = json.loads((tmp_path / job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["lr"] == lr and summary["steps"] == 50
    hydra = yaml.safe_load((tmp_path / "0" / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra["launcher"]["_target_"] == {
        "joblib": "hydra_plugins.jax_mlp_joblib_launcher.joblib_launcher.JoblibLauncher",  # Hydra's, wrapped
        "submitit_local": "hydra_plugins.jax_mlp_submitit_launcher.submitit_launcher.LocalLauncher"}[launcher]
    if launcher == "joblib":
        assert hydra["job"]["env_set"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    else:
        assert (tmp_path / ".submitit").is_dir()
    rows = list(csv.DictReader((tmp_path / "sweep_summary.csv").open()))
    assert [r["job"] for r in rows] == ["1", "0"]  # lr 0.1 ends lower after 50 steps


@pytest.mark.parametrize("option, target, kept", [
    ("hydra/launcher=joblib", "hydra_plugins.jax_mlp_joblib_launcher.joblib_launcher.JoblibLauncher",
     {"n_jobs": -1}),
    ("hydra/launcher=submitit_local", "hydra_plugins.jax_mlp_submitit_launcher.submitit_launcher.LocalLauncher",
     {"timeout_min": 60}),
    ("hydra/sweeper=optuna", "hydra_plugins.jax_mlp_optuna_sweeper.optuna_sweeper.OptunaSweeper",
     {"n_trials": 20, "max_failure_rate": 0.0}),
    ("hydra/launcher=submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", {}),
], ids=["joblib", "submitit_local", "optuna", "submitit_slurm"])
def test_hydras_own_option_names_choose_the_wrappers(run_script, option, target, kept):
    result = run_script("train.py", option, "--cfg", "hydra")
    assert result.returncode == 0, result.stderr
    hydra = yaml.safe_load(result.stdout)["hydra"]
    chosen = hydra["sweeper" if option.startswith("hydra/sweeper") else "launcher"]
    assert chosen["_target_"] == target
    assert {key: chosen[key] for key in kept} == kept  # Hydra's defaults of the option


@pytest.mark.parametrize("override, expected", [
    ("optimizer.lr=interval(1,0.1)", "optimizer.lr=interval(1,0.1): The `low` value must be smaller than or equal "
                                     "to the `high` value (low=1.0, high=0.1)."),
    ("hydra.sweeper.direction=up", "Please set either 'minimize' or 'maximize' to direction."),
], ids=["interval", "direction"])
def test_a_search_space_optuna_refuses_is_one_line(run_script, tmp_path, override, expected):
    result = run_script("train.py", "-m", "hparams_search=optuna", f"hydra.sweep.dir={tmp_path}", override)
    assert result.returncode == 2  # Optuna's ValueError ended in a traceback
    assert result.stderr.startswith(f"jax_mlp: error: {expected}") and result.stderr.count("\n") == 1, result.stderr


def test_an_optuna_search_records_its_best_trial(run_script, tmp_path):
    result = run_script("train.py", "-m", "hparams_search=optuna", "experiment=moons", f"hydra.sweep.dir={tmp_path}",
                        "hydra.sweeper.n_trials=6", "trainer.epochs=3")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "optuna.db").is_file()
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    rows = list(csv.DictReader((tmp_path / "sweep_summary.csv").open()))
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"completed", "diverged"}
    assert float(rows[0]["objective"]) == pytest.approx(best["best_value"], rel=1e-5)  # the table has 6 digits
    winner = json.loads((tmp_path / rows[0]["job"] / "summary.json").read_text())["config"]
    assert winner["optimizer"]["lr"] == pytest.approx(best["best_params"]["optimizer.lr"])
    assert [winner["model"]["width"], winner["model"]["depth"]] == \
        [best["best_params"]["model.width"], best["best_params"]["model.depth"]]
    # The sampler is seeded: the same search asks for the same first trial.
    again = run_script("train.py", "-m", "hparams_search=optuna", "experiment=moons",
                       f"hydra.sweep.dir={tmp_path / 'again'}", "hydra.sweeper.n_trials=1", "trainer.epochs=3")
    assert again.returncode == 0, again.stderr
    first = (tmp_path / "0" / ".hydra" / "overrides.yaml").read_text()
    assert (tmp_path / "again" / "0" / ".hydra" / "overrides.yaml").read_text() == first


def _trials(storage: str) -> list:
    """The trials of the study ``jax_mlp`` in `storage`."""
    with warnings.catch_warnings():  # optuna 2 on SQLAlchemy 1.4: "not compatible with SQLAlchemy 2.0"
        warnings.simplefilter("ignore", DeprecationWarning)
        import optuna

        return optuna.load_study(study_name="jax_mlp", storage=storage).trials


def _searched(job_dir) -> list[str]:
    """A job's searched overrides (learning rate, width, depth), sorted."""
    return sorted(o for o in yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
                  if o.startswith(("optimizer.lr=", "model.width=", "model.depth=")))


def test_an_optuna_search_run_again_asks_for_new_trials_in_new_folders(run_script, tmp_path):
    search = ["train.py", "-m", "hparams_search=optuna", "experiment=moons", f"hydra.sweep.dir={tmp_path}",
              "trainer.epochs=1"]
    assert run_script(*search, "hydra.sweeper.n_trials=3").returncode == 0
    first = [_searched(tmp_path / str(job)) for job in range(3)]
    again = run_script(*search, "hydra.sweeper.n_trials=2")
    assert again.returncode == 0, again.stderr
    # Hydra's sweeper drew trials 3 and 4 from a sampler seeded as before: trials 0 and 1 again,
    # into folders 0 and 1.
    assert [_searched(tmp_path / str(job)) for job in range(3)] == first
    trials = _trials(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert len({t.params["optimizer.lr"] for t in trials}) == 5
    for trial in trials:
        assert _searched(tmp_path / str(trial.number)) == sorted(f"{k}={v}" for k, v in trial.params.items())
    assert len(list(csv.DictReader((tmp_path / "sweep_summary.csv").open()))) == 5


def test_a_stopped_optuna_search_finishes_with_trainer_resume(run_script, tmp_path, cache_home):
    search = ["hparams_search=optuna", "experiment=moons", "hydra.sweeper.n_trials=3", "trainer.epochs=1000",
              "trainer.log_every=1900"]
    proc = _sweep_in_a_session(tmp_path, cache_home, *search, note=False)
    in_job_1 = False
    for line in proc.stdout:
        in_job_1 = in_job_1 or f"outputs in {tmp_path / '1'}" in line
        if in_job_1 and "step 3800 epoch 200 loss" in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == _finish_line(tmp_path)
    assert "hydra.run.dir" not in err  # the job's own line leaves the advice to the sweep's
    stopped_at = json.loads((tmp_path / "1" / "summary.json").read_text())["steps"]
    assert 3800 <= stopped_at < 19000 and not (tmp_path / "2").exists()

    resumed = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path}", *search, "trainer.resume=true")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {stopped_at} of {tmp_path / '1' / 'checkpoints'}" in resumed.stdout
    trials = _trials(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    table = {row["job"]: row for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert sorted(table) == ["0", "1", "2"]
    for trial in trials:
        assert _searched(tmp_path / str(trial.number)) == sorted(f"{k}={v}" for k, v in trial.params.items())
        assert trial.value == pytest.approx(float(table[str(trial.number)]["objective"]), rel=1e-5)
    steps = [json.loads(line)["step"] for line in (tmp_path / "1" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps)) and steps[-1] == 19000
    # The resumed trial's params equal those of its run never stopped, bit for bit.
    alone = run_script("train.py", "experiment=moons", "trainer.epochs=1000", "trainer.log_every=1900",
                       f"hydra.run.dir={tmp_path / 'alone'}", *_searched(tmp_path / "1"))
    assert alone.returncode == 0, alone.stderr
    assert (tmp_path / "1" / "params.npz").read_bytes() == (tmp_path / "alone" / "params.npz").read_bytes()


def _sweep_in_a_session(tmp_path, cache_home, *args: str, note: bool = True) -> subprocess.Popen:
    """``train.py -m hydra.sweep.dir=TMP_PATH args...`` (with `note`, of the note for 30M steps,
    logging every 100,000) in a process group of its own: `os.killpg` then stands for a terminal's
    Ctrl-C."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("HYDRA_FULL_ERROR", None)
    long_note = ["trainer.steps=30000000", "trainer.log_every=100000"] if note else []
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), "-m", f"hydra.sweep.dir={tmp_path}",
                             *args, *long_note], cwd=ROOT, env=env,
                            text=True, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish_line(sweep_dir) -> str:
    """The last line of a stopped sweep that its rerun can finish."""
    return f"jax_mlp: to finish the sweep, run the same command with trainer.resume=true hydra.sweep.dir={sweep_dir}"


def _until_both_workers_train(proc: subprocess.Popen) -> None:
    """Reads a two-worker joblib sweep's output until both workers' jobs are in training."""
    training = 0
    for line in proc.stdout:
        training += "step 200000 loss" in line
        if training == 2:
            return


def test_ctrl_c_lets_the_joblib_jobs_in_training_save_and_starts_no_more(tmp_path, cache_home):
    # Ctrl-C in a terminal signals the whole process group: the parent and its joblib workers.
    proc = _sweep_in_a_session(tmp_path, cache_home, "launcher=joblib", "seed=0,1,2")
    _until_both_workers_train(proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.splitlines()[-2:] == [
        "jax_mlp: SIGINT: the sweep stopped; its jobs in training saved a checkpoint (status interrupted in "
        "sweep_summary.md), later jobs did not start",
        _finish_line(tmp_path)]
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "interrupted", "1": "interrupted", "2": "not started"}
    for job in ("0", "1"):
        steps = json.loads((tmp_path / job / "summary.json").read_text())["steps"]
        assert 200000 <= steps < 30000000 and (tmp_path / job / "checkpoints" / str(steps)).is_dir()
    assert not (tmp_path / "2" / "metrics.jsonl").exists() and not (tmp_path / ".jax_mlp_stop").exists()


def test_joblib_workers_save_and_end_soon_after_their_sweep_is_killed_outright(tmp_path, cache_home):
    # kill -9 of the sweep's process left its loky workers idle for good, holding the command's
    # output open: a script reading it to its end hung.
    proc = _sweep_in_a_session(tmp_path, cache_home, "launcher=joblib", "seed=0,1,2")
    _until_both_workers_train(proc)
    proc.kill()
    proc.communicate(timeout=60)  # returns once every process holding the output has ended
    assert proc.returncode == -signal.SIGKILL
    for job in ("0", "1"):  # each job in training stopped at its span's end and saved
        summary = json.loads((tmp_path / job / "summary.json").read_text())
        assert summary["status"] == "interrupted" and (tmp_path / job / "checkpoints" / str(summary["steps"])).is_dir()
    assert not (tmp_path / "2" / "metrics.jsonl").exists()


def _when_jobs_reach(folders: list, step: int) -> None:
    """A ``tail -F`` of the jobs' ``metrics.jsonl``, read until every job has logged `step` (at most
    two minutes, should a job never log): the jobs of submitit's launcher log to files, not to the
    parent's output."""
    paths = [str(folder / "metrics.jsonl") for folder in folders]
    tail = subprocess.Popen(["timeout", "120", "tail", "-F", "-v", "-n", "+1", *paths], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    current, reached = None, set()
    for line in tail.stdout:
        if line.startswith("==> "):
            current = line[4:].rstrip().removesuffix(" <==")
        elif line.strip() and json.loads(line)["step"] >= step:
            reached.add(current)
            if reached == set(paths):
                break
    tail.terminate()  # `timeout` passes SIGTERM on to tail
    tail.communicate()


def test_ctrl_c_lets_the_submitit_local_jobs_save_without_tracebacks(tmp_path, cache_home):
    proc = _sweep_in_a_session(tmp_path, cache_home, "launcher=submitit_local", "seed=0,1")
    _when_jobs_reach([tmp_path / "0", tmp_path / "1"], 200000)
    os.killpg(proc.pid, signal.SIGINT)  # the parent, the submitit controllers and the jobs
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-2:] == [
        "jax_mlp: SIGINT: the sweep stopped; its jobs in training saved a checkpoint (status interrupted in "
        "sweep_summary.md), later jobs did not start",
        _finish_line(tmp_path)]
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "interrupted", "1": "interrupted"}
    for job in ("0", "1"):
        steps = json.loads((tmp_path / job / "summary.json").read_text())["steps"]
        assert 200000 <= steps < 30000000 and (tmp_path / job / "checkpoints" / str(steps)).is_dir()
    job_errors = "".join(path.read_text() for path in (tmp_path / ".submitit").rglob("*_log.err"))
    assert "Traceback" not in job_errors and not (tmp_path / ".jax_mlp_stop").exists()


def test_ctrl_c_with_one_joblib_job_at_a_time_stops_it_as_a_basic_sweep(tmp_path, cache_home):
    # With n_jobs=1 joblib runs the jobs in the parent process, which must still take Ctrl-C.
    proc = _sweep_in_a_session(tmp_path, cache_home, "launcher=joblib", "hydra.launcher.n_jobs=1", "seed=0,1")
    for line in proc.stdout:
        if "step 200000 loss" in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == _finish_line(tmp_path)
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "interrupted"}
