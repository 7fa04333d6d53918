"""Checkpoints and exact resume: SIGKILL at several points, corrupt checkpoints, bad requests."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, corrupt_checkpoint, read_jsonl, steps_saved

pytestmark = pytest.mark.slow

ARGS = ["experiment=moons", "trainer.epochs=60", "trainer.checkpoint_every=190", "trainer.log_every=190",
        "trainer.eval_every=10", "trainer.keep_checkpoints=2"]  # 19 steps an epoch: a checkpoint each 10 epochs


def _train(folder: Path, cache_home: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *ARGS,
                             f"hydra.run.dir={folder}", *extra], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_after_lines(proc: subprocess.Popen, count: int, after: str = "checkpoint at step 190") -> None:
    """Reads the run's log until `count` lines have followed the line holding `after`, then SIGKILLs
    it: anywhere between log points, checkpoint saves (asynchronous, maybe unfinished) included."""
    seen = None
    for line in proc.stdout:
        seen = 0 if seen is None and after in line else seen
        if seen is not None:
            if seen == count:
                proc.send_signal(signal.SIGKILL)
                break
            seen += 1
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _kill_after_checkpoint(proc: subprocess.Popen, step: int) -> None:
    """SIGKILLs the run as soon as it announces the checkpoint at `step`."""
    _kill_after_lines(proc, 0, f"checkpoint at step {step}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_home) -> Path:
    folder = tmp_path_factory.mktemp("reference")
    proc = _train(folder, cache_home)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    return folder


# How many log lines after the first checkpoint the kill comes: three random points of the run.
@pytest.mark.parametrize("lines", sorted(random.Random(7).sample(range(0, 12), 3)))
def test_a_killed_run_resumes_to_bit_identical_params(reference, tmp_path, cache_home, lines):
    _kill_after_lines(_train(tmp_path, cache_home), lines)
    proc = _train(tmp_path, cache_home, "trainer.resume=true")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "resuming from step" in out
    assert (tmp_path / "params.npz").read_bytes() == (reference / "params.npz").read_bytes()
    steps = [line["step"] for line in read_jsonl(tmp_path / "metrics.jsonl")]
    assert steps == [line["step"] for line in read_jsonl(reference / "metrics.jsonl")]
    assert len(steps) == len(set(steps))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 1140
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1140", "950", "metadata"]


def test_a_corrupt_newest_checkpoint_is_skipped_with_a_warning(reference, tmp_path, cache_home):
    _kill_after_checkpoint(_train(tmp_path, cache_home), 570)
    steps = steps_saved(tmp_path)
    newest = tmp_path / "checkpoints" / str(steps[-1])
    corrupt_checkpoint(newest)
    proc = _train(tmp_path, cache_home, "trainer.resume=true")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert f"checkpoint {newest} is unreadable" in out + err
    assert f"resuming from step {steps[-2]}" in out
    assert (tmp_path / "params.npz").read_bytes() == (reference / "params.npz").read_bytes()


def test_resuming_where_there_is_no_checkpoint_is_a_clear_error(run_script, tmp_path):
    result = run_script("train.py", f"hydra.run.dir={tmp_path}", "trainer.resume=true")
    assert result.returncode == 2
    assert result.stderr.strip() == f"jax_mlp: error: no checkpoint to resume from in {tmp_path / 'checkpoints'}"
    result = run_script("train.py", f"hydra.run.dir={tmp_path}", f"trainer.resume={tmp_path}/nope")
    assert result.returncode == 2 and "no such checkpoints folder" in result.stderr


def test_a_checkpoint_past_the_runs_length_is_refused_and_the_folder_left_alone(reference, tmp_path, cache_home):
    _kill_after_checkpoint(_train(tmp_path, cache_home), 380)
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    proc = _train(tmp_path, cache_home, "trainer.resume=true", "trainer.epochs=5")  # 95 steps
    _, err = proc.communicate()
    assert proc.returncode == 2
    # The kill may come before the save at 380 is complete; the one at 190 is then the newest.
    assert re.fullmatch(
        f"jax_mlp: error: the newest checkpoint in {re.escape(str(tmp_path / 'checkpoints'))} is at step "
        "(190|380), past this run's 95 steps; train for more \\(trainer.steps or trainer.epochs\\), or start "
        "afresh in another folder", err.strip().splitlines()[-1])
    assert (tmp_path / "metrics.jsonl").read_bytes() == metrics and not (tmp_path / "summary.json").exists()


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path, cache_home):
    _kill_after_checkpoint(_train(tmp_path, cache_home), 380)
    saved = steps_saved(tmp_path)
    proc = _train(tmp_path, cache_home, "trainer.resume=true", "model.hidden=[8]")
    _, err = proc.communicate()
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (
        f"jax_mlp: error: the checkpoint of step {saved[-1]} in {tmp_path / 'checkpoints'} does not fit this run's "
        "model, data, optimizer or precision (params[0].b is float32[32] in the checkpoint and float32[8] in this "
        "run); resume with the config that saved it (the optimizer's hyperparameters may change), or start afresh "
        "in another folder")
    assert "unreadable" not in err and steps_saved(tmp_path) == saved  # they were: each one, in a warning


@pytest.mark.parametrize("change, difference", [
    ("data=wine", "params[0].w is float32[2, 16] in the checkpoint and float32[13, 16] in this run"),
    ("optimizer=adam", "opt_state[0].hyperparams.b1 is in this run's state and not in the checkpoint"),
    ("trainer.precision=float64", "params[0].b is float32[16] in the checkpoint and float64[16] in this run"),
], ids=["data", "optimizer", "precision"])
def test_a_sweep_resumed_with_another_data_set_optimizer_or_precision_is_refused(tmp_path, change, difference):
    # A vmap group that finds no step it can read says which run's checkpoint does not fit, rather
    # than calling every checkpoint unreadable and advising to remove them.
    from jax_mlp import config, sweep
    from jax_mlp.errors import UserError

    def cfgs(*extra: str) -> list[config.Config]:
        return [config.load(config.compose(["trainer.compilation_cache=false", "experiment=moons", "model.hidden=[16]",
                                            "trainer.epochs=1", "trainer.checkpoint_every=10", f"seed={seed}",
                                            *extra])) for seed in (0, 1)]

    out_dirs = [tmp_path / "0", tmp_path / "1"]
    sweep.execute_all(cfgs(), out_dirs)
    saved = steps_saved(out_dirs[0])
    key, _, value = change.partition("=")
    with pytest.raises(UserError, match=rf"holds the checkpoints of a run with {key}\S*=\S+, but this sweep's job "
                                        rf"there has {key}\S*={value}; resume a sweep with the values that saved it"):
        sweep.execute_all(cfgs(change, "trainer.resume=true"), out_dirs)  # from the jobs' summary.json
    for out_dir in out_dirs:  # killed runs write none: the config kept beside their checkpoints tells
        (out_dir / "summary.json").unlink()
    with pytest.raises(UserError, match=rf"holds the checkpoints of a run with {key}\S*=\S+, but this sweep's job "):
        sweep.execute_all(cfgs(change, "trainer.resume=true"), out_dirs)
    for out_dir in out_dirs:  # an earlier jax_mlp kept none: the checkpoints' own metadata tell
        shutil.rmtree(out_dir / "checkpoints" / "metadata")
    with pytest.raises(UserError) as refused:
        sweep.execute_all(cfgs(change, "trainer.resume=true"), out_dirs)
    assert str(refused.value) == (
        f"the checkpoint of step {saved[-1]} in {out_dirs[0] / 'checkpoints'} does not fit this run's model, data, "
        f"optimizer or precision ({difference}); resume with the config that saved it (the optimizer's "
        "hyperparameters may change), or start afresh in another folder")
    assert [steps_saved(d) for d in out_dirs] == [saved, saved]


NOTE_ARGS = ["trainer.steps=1500000", "trainer.log_every=20000"]


def _note(folder: Path, cache_home: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *NOTE_ARGS,
                             f"hydra.run.dir={folder}", *extra], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_checkpoints_folder_keeps_the_config_of_the_run_that_saved_there(tmp_path):
    import numpy as np

    from jax_mlp import checkpoint

    def run(lr: float, saves: bool) -> checkpoint.Checkpointer:
        started = checkpoint.Checkpointer(tmp_path / "checkpoints", 3, {"optimizer": {"lr": lr}})
        if saves:
            started.save_tree(5, {"step": np.asarray(5), "params": np.ones(2)})
        started.close()
        return started

    run(0.1, saves=False)  # killed before its first save: its record would have stayed the next run's
    run(0.2, saves=True)
    assert run(0.3, saves=False).run_config() == {"optimizer": {"lr": 0.2}}  # resuming keeps the saver's
    reader = checkpoint.Checkpointer(tmp_path / "checkpoints")  # recording nothing
    assert reader.run_config() == {"optimizer": {"lr": 0.2}} and checkpoint.saved_steps(tmp_path / "checkpoints") == [5]
    reader.close()


def test_a_signal_stops_a_sweep_and_its_summary_tables_the_jobs_that_ran(tmp_path, cache_home):
    proc = _note(tmp_path / "unused", cache_home, "hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}", "seed=0,1,2")
    for line in proc.stdout:
        if "step 100000 loss" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == ("jax_mlp: to finish the sweep, run the same command with trainer.resume=true "
                                    f"hydra.sweep.dir={tmp_path}")
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "interrupted"}


def test_a_resumed_sweep_continues_the_jobs_that_saved_and_starts_the_others(run_script, tmp_path):
    first = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path}", "seed=0", "trainer.steps=20",
                       "trainer.checkpoint_every=10")
    assert first.returncode == 0, first.stderr
    resumed = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path}", "seed=0,1", "trainer.steps=40",
                         "trainer.checkpoint_every=10", "trainer.resume=true")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step 20 of {tmp_path / '0' / 'checkpoints'}" in resumed.stdout
    assert f"trainer.resume: no checkpoint in {tmp_path / '1'}; this job of the sweep starts from step 0" in resumed.stdout
    steps = [[line["step"] for line in read_jsonl(tmp_path / job / "metrics.jsonl")] for job in ("0", "1")]
    assert steps[0][0] == 0 and steps[0][-1] == 40 and steps[1][0] == 0 and steps[1][-1] == 40


def test_a_job_error_stops_a_sweep_and_its_summary_tables_the_jobs_that_ran(run_script, tmp_path):
    result = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path}", "optimizer.lr=0.1,-1,0.2", "trainer.steps=10")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "jax_mlp: error: optimizer.lr must be a positive finite number, got -1.0"
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "completed", "1": "failed"}


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_and_the_run_resumes(tmp_path, cache_home, signum, status):
    proc = _note(tmp_path / "run", cache_home)
    for line in proc.stdout:
        if "step 100000 loss" in line:
            proc.send_signal(signum)
            break
    out, err = proc.communicate()
    assert proc.returncode == status, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["objective"] == "inf"
    stopped = summary["steps"]
    assert 100000 <= stopped < 1500000
    assert err.strip().splitlines()[-1] == (f"jax_mlp: {signal.Signals(signum).name} at step {stopped}: checkpoint "
                                            f"saved; continue with trainer.resume=true hydra.run.dir={tmp_path / 'run'}")
    assert (tmp_path / "run" / "checkpoints" / str(stopped)).is_dir()
    if signum == signal.SIGINT:
        resumed = _note(tmp_path / "run", cache_home, "trainer.resume=true")
        reference = _note(tmp_path / "reference", cache_home)
        for p in (resumed, reference):
            _, err = p.communicate()
            assert p.returncode == 0, err
        assert (tmp_path / "run" / "params.npz").read_bytes() == (tmp_path / "reference" / "params.npz").read_bytes()
        steps = [line["step"] for line in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
        assert len(steps) == len(set(steps)) and steps[-1] == 1500000


def test_a_resumed_run_trains_at_the_hyperparameters_its_config_gives(tmp_path, caplog):
    from jax_mlp import config, jobs

    common = ["trainer.compilation_cache=false", "experiment=moons", "trainer.checkpoint_every=19",
              "trainer.log_every=19", "optimizer.schedule=constant", "trainer.eval_every=100"]
    jobs.execute(config.load(config.compose([*common, "trainer.epochs=2"])), tmp_path)
    resumed = config.load(config.compose([*common, "trainer.epochs=4", "optimizer.lr=0.5", "trainer.resume=true"]))
    with caplog.at_level("INFO", logger="jax_mlp"):
        jobs.execute(resumed, tmp_path)
    assert "optimizer.lr=0.5 from here on (the checkpoint's was 0.05)" in caplog.messages
    assert [(m["step"], m["lr"]) for m in read_jsonl(tmp_path / "metrics.jsonl")] == [
        (0, 0.05), (19, 0.05), (38, 0.05), (57, 0.5), (76, 0.5)]


def test_a_fresh_run_in_a_folder_with_an_earlier_runs_checkpoints_is_refused(run_script, tmp_path):
    first = run_script("train.py", f"hydra.run.dir={tmp_path}", "trainer.steps=20", "trainer.checkpoint_every=10")
    assert first.returncode == 0, first.stderr
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    expected = (f"jax_mlp: error: {tmp_path / 'checkpoints'} holds the checkpoints of an earlier run, the newest at "
                "step 20; continue it with trainer.resume=true, or remove them to start afresh")
    # Without checkpoint_every too: a Ctrl-C would save, and Orbax would skip a step at or below 20.
    for extra in (["trainer.checkpoint_every=5"], []):
        again = run_script("train.py", f"hydra.run.dir={tmp_path}", "trainer.steps=30", *extra)
        assert (again.returncode, again.stderr.strip()) == (2, expected)
    assert (tmp_path / "metrics.jsonl").read_bytes() == metrics
    # Resuming another run's checkpoint: this run's own saves would still start in its folder.
    other = run_script("train.py", f"hydra.run.dir={tmp_path / 'other'}", "trainer.steps=10", "trainer.checkpoint_every=10")
    assert other.returncode == 0, other.stderr
    again = run_script("train.py", f"hydra.run.dir={tmp_path}", "trainer.steps=30", f"trainer.resume={tmp_path / 'other'}")
    assert (again.returncode, again.stderr.strip()) == (2, expected)


def test_a_resumed_run_saves_again_the_steps_of_its_unreadable_checkpoints(tmp_path, caplog):
    from jax_mlp import config, jobs

    def cfg(steps: int, *extra: str) -> config.Config:
        return config.load(config.compose(["trainer.compilation_cache=false", f"trainer.steps={steps}",
                                           "trainer.log_every=10", "trainer.checkpoint_every=10",
                                           "trainer.keep_checkpoints=5", *extra]))

    jobs.execute(cfg(20), tmp_path / "run")
    corrupt_checkpoint(tmp_path / "run" / "checkpoints" / "20")
    caplog.set_level("INFO", logger="jax_mlp")
    jobs.execute(cfg(30, "trainer.resume=true"), tmp_path / "run")
    assert "resuming from step 10 of" in caplog.text
    assert "removed the unreadable checkpoints of steps 20: this run saves them again" in caplog.messages
    assert steps_saved(tmp_path / "run") == [10, 20, 30]
    corrupt_checkpoint(tmp_path / "run" / "checkpoints" / "30")
    caplog.clear()
    jobs.execute(cfg(40, "trainer.resume=true"), tmp_path / "run")
    assert "resuming from step 20 of" in caplog.text  # Orbax had skipped the save at 20: it resumed from 10
    jobs.execute(cfg(40), tmp_path / "straight")
    assert (tmp_path / "run" / "params.npz").read_bytes() == (tmp_path / "straight" / "params.npz").read_bytes()


def test_a_sweep_in_folders_named_by_overrides_resumes_in_them(run_script, tmp_path):
    sweep = ["train.py", "-m", f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.override_dirname}",
             "seed=0,1", "trainer.steps=20", "trainer.checkpoint_every=10"]
    assert run_script(*sweep).returncode == 0
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert folders == [f"seed={s},trainer.checkpoint_every=10,trainer.steps=20" for s in (0, 1)]
    resumed = run_script(*sweep, "trainer.resume=true")  # trainer.resume stays out of the folder names
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == folders
    for folder in folders:  # each found its finished run again (before, new folders started from step 0)
        assert "this job of the sweep completed before it stopped (objective" in (tmp_path / folder / "train.log").read_text()


def test_tree_difference_names_the_first_leaf_that_differs_params_first():
    import jax
    import numpy as np

    from jax_mlp.checkpoint import tree_difference

    def tree(width: int, dtype=np.float32, **opt_state) -> dict:
        leaf = jax.ShapeDtypeStruct
        return {"key": leaf((2,), np.uint32), "opt_state": (opt_state,),
                "params": [{"b": leaf((width,), dtype), "w": leaf((3, width), dtype)}]}

    lr, b1 = jax.ShapeDtypeStruct((), np.float32), jax.ShapeDtypeStruct((), np.float32)
    assert tree_difference(tree(4, lr=lr), tree(4, lr=lr)) is None
    assert tree_difference(tree(4, lr=lr), tree(8, lr=lr, b1=b1)) == (
        "params[0].b is float32[4] in the checkpoint and float32[8] in this run")
    assert tree_difference(tree(4, lr=lr), tree(4, np.float64, lr=lr)) == (
        "params[0].b is float32[4] in the checkpoint and float64[4] in this run")
    assert tree_difference(tree(4, lr=lr), tree(4, lr=lr, b1=b1)) == (
        "opt_state[0].b1 is in this run's state and not in the checkpoint")
    assert tree_difference(tree(4, lr=lr, b1=b1), tree(4, lr=lr)) == (
        "opt_state[0].b1 is in the checkpoint and not in this run's state")


def test_a_signal_after_the_last_look_of_fit_still_stops_the_run(tmp_path, monkeypatch):
    # The signal comes once fit has asked its stop requests (its final span done), before the
    # job's `Interrupts` ends: the run is `interrupted` at its last step, so a sweep in this process
    # stops after it, rather than losing the signal and going on.
    import signal
    import threading

    from jax_mlp import config, jobs, loop

    fit = loop.fit

    def fit_then_signal(*args, **kwargs):
        result = fit(*args, **kwargs)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
        return result

    monkeypatch.setattr(loop, "fit", fit_then_signal)
    cfg = config.load(config.compose(["trainer.compilation_cache=false", "trainer.steps=20", "trainer.log_every=10"]))
    outcome = jobs.execute(cfg, tmp_path)
    assert (outcome.status, outcome.exit_code, outcome.message) == ("interrupted", 143,
                                                                     "SIGTERM at step 20: checkpoint saved")
    assert steps_saved(tmp_path) == [20]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["status"], summary["steps"]) == ("interrupted", 20)


def test_a_resumed_run_keeps_its_initial_loss_without_metrics_jsonl(tmp_path):
    # They were read back from metrics.jsonl: with logger=[csv] summary.json said initial_loss NaN.
    from jax_mlp import config, jobs

    def cfg(*extra: str):
        return config.load(config.compose(["trainer.compilation_cache=false", "logger=[csv]", "trainer.log_every=10",
                                           "trainer.checkpoint_every=10", *extra]))

    jobs.execute(cfg("trainer.steps=20"), tmp_path / "run")
    jobs.execute(cfg("trainer.steps=40", "trainer.resume=true"), tmp_path / "run")
    jobs.execute(cfg("trainer.steps=40"), tmp_path / "alone")
    resumed, alone = (json.loads((tmp_path / f / "summary.json").read_text()) for f in ("run", "alone"))
    assert resumed["initial_loss"] == alone["initial_loss"] == pytest.approx(15.628558, abs=1e-5)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
