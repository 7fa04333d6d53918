"""End to end through `scripts/train.py` in a subprocess, as a user runs it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, read_jsonl

pytestmark = pytest.mark.slow


def test_default_command_trains_the_note(train_cli):
    result, out = train_cli()
    assert result.returncode == 0, result.stderr
    assert "step 0 loss 15.6286" in result.stdout
    assert "step 1000 loss" in result.stdout and "final loss" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 1000
    assert summary["initial_loss"] == pytest.approx(15.628558, abs=1e-5)
    assert summary["objective"] == summary["train_loss"] < 1e-6
    assert summary["wall_seconds"] > 0
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(0, 1001, 100))
    assert all(m["lr"] == 0.1 for m in metrics)
    with np.load(out / "params.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == [f"layers.{l}.{k}" for l in range(3) for k in ("b", "w")]
        assert npz["layers.1.w"].shape == (2, 2)
    assert (out / ".hydra" / "config.yaml").exists() and (out / "train.log").read_text().count("step") >= 11


def test_the_platform_can_be_chosen(train_cli):
    result, out = train_cli("trainer.platform=cpu", "trainer.steps=10")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["platform"] == "cpu" and summary["config"]["trainer"]["platform"] == "cpu"


def test_overrides_reach_the_outputs(train_cli):
    result, out = train_cli("optimizer.lr=0.05", "trainer.steps=10", "trainer.log_every=5")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lr"] == 0.05 and summary["steps"] == 10
    assert summary["config"]["optimizer"]["lr"] == 0.05 and summary["config"]["trainer"]["steps"] == 10
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [0, 5, 10]
    assert all(m["lr"] == 0.05 for m in metrics)


def test_an_mlp_from_the_command_line_trains(train_cli):
    result, out = train_cli("model=mlp", "model.hidden=[8,8]", "model.activation=tanh", "trainer.steps=300")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["model"]["hidden"] == [8, 8]
    assert summary["train_loss"] < 0.5 * summary["initial_loss"]
    with np.load(out / "params.npz", allow_pickle=False) as npz:
        assert npz["layers.0.w"].shape == (1, 8) and npz["layers.2.w"].shape == (8, 1)


@pytest.mark.parametrize("overrides, expected", [
    (["optimizer.lr=-1"], "optimizer.lr must be a positive finite number"),
    (["optimizer.lr=abc"], "optimizer.lr must be a number, got 'abc'"),
    (["model.hidden=[0]"], "model.hidden must be a list of positive widths"),
    (["foo=1"], "unknown config key 'foo'; allowed here: data, distributed, logger, model, optimizer, seed, trainer"),
    (["model.activation=swish"], "model.activation must be one of elu, gelu"),
    (["model=resnet"], "model=resnet is not a config option; choose one of mlp, seed_note"),
    (["data=csv", "data.path=/no/such.csv", "data.target=y"], "data.path: no file at /no/such.csv"),
    (["data=csv", "data.path=/no/such.csv"], "data.target is not set; give it with data.target=VALUE"),
    (["experiment=iris", "model.output_size=4"], "model.output_size is 4 but data 'iris' has 3"),
    (["trainer.platform=tpu"], "trainer.platform=tpu: no tpu device here; available: cpu (or auto)"),
    (["hydra/sweeper=vmap", "hparams_search=optuna"],
     "hparams_search=optuna brings its own sweeper; drop hydra/sweeper=... from the command line"),
    (["data=moons", "model=seed_note"], "model.weights[0] has w [1, 2] and b [2], but the sizes [2, 2, 2, 1] need w [2, 2] and "
                     "b [2]; model=mlp draws weights of any size"),
    (["experiment=sine", "trainer.steps=50"], "optimizer.warmup_steps=100 must be fewer than the run's 50 steps"),
    (["+experiment=moons"], "+experiment=moons adds a second experiment, but config.yaml's defaults list has one "
                            "already; choose it with experiment=moons (no +)"),
    # Hydra's checks of its own flags raise ValueError, which ended in a traceback.
    (["-m", "--cfg", "job"], "Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified"),
    (["--resolve"], "The --resolve flag can only be used in conjunction with --cfg or --help"),
    (["-sc"], "Expecting one subcommand from ['install', 'uninstall', 'query'] to be set"),
])
def test_bad_command_lines_exit_2_with_one_line(train_cli, overrides, expected):
    result, out = train_cli(*overrides)
    assert result.returncode == 2
    assert result.stderr.startswith("jax_mlp: error: " + expected)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (out / "summary.json").exists()


def test_a_diverging_run_exits_3_and_says_so(train_cli, run_script):
    result, out = train_cli("optimizer.lr=1000")
    assert result.returncode == 3
    assert "training diverged at step 100" in result.stderr and "optimizer.lr=1000" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["objective"] == "inf"
    evaluated = run_script("evaluate.py", str(out), "--split", "train")  # its params are not finite
    assert evaluated.returncode == 0, evaluated.stderr
    assert "train_loss nan" in evaluated.stdout
    assert json.loads((out / "eval.json").read_text())["loss"] == "nan"


@pytest.mark.parametrize("args, expected", [
    (["hydra.run.dir={blocked}"], "cannot make Hydra's output folder {blocked} (Not a directory)"),
    (["-m", "hydra.sweep.dir={blocked}", "seed=0,1"], "cannot make Hydra's output folder {blocked} (Not a directory)"),
    (["-m", "hydra.sweep.dir={blocked}", "hydra/sweeper=vmap", "seed=0,1"],
     "hydra.sweep.dir={blocked}: cannot make that folder (Not a directory); give another"),
    (["hydra.run.dir={tmp}/run", "trainer.cache_dir={blocked}"],
     "trainer.cache_dir={blocked}: cannot make that folder (Not a directory); give another"),
])
def test_a_folder_that_cannot_be_made_exits_2_with_one_line(run_script, tmp_path, args, expected):
    (tmp_path / "file").write_text("")
    blocked = tmp_path / "file" / "run"  # under a file: no user, not even root, can make it
    result = run_script("train.py", *(arg.format(blocked=blocked, tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert result.stderr.startswith("jax_mlp: error: " + expected.format(blocked=blocked))
    assert result.stderr.count("\n") == 1, result.stderr


def test_multirun_writes_a_folder_per_job_and_a_sweep_summary(run_script, tmp_path):
    result = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path}", "optimizer.lr=0.05,1000,0.1",
                        "seed=0,1", "trainer.steps=200")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("training diverged at step 100") == 2  # lr=1000, both seeds
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert jobs == [str(i) for i in range(6)]
    for job in jobs:
        assert {"metrics.jsonl", "summary.json", "params.npz", ".hydra"} <= {p.name for p in (tmp_path / job).iterdir()}
    first = json.loads((tmp_path / "0" / "summary.json").read_text())
    assert first["lr"] == 0.05 and first["config"]["seed"] == 0
    rows = list(csv.DictReader((tmp_path / "sweep_summary.csv").open()))
    assert [r["job"] for r in rows][-2:] == ["2", "3"]  # the diverged jobs, last
    assert [r["status"] for r in rows] == ["completed"] * 4 + ["diverged"] * 2
    assert [r["overrides"] for r in rows[-2:]] == ["optimizer.lr=1000 seed=0 trainer.steps=200",
                                                 "optimizer.lr=1000 seed=1 trainer.steps=200"]
    assert rows[-1]["objective"] == "inf"
    objectives = [float(r["objective"]) for r in rows[:4]]
    assert objectives == sorted(objectives)
    assert objectives[0] == pytest.approx(json.loads((tmp_path / rows[0]["job"] / "summary.json").read_text())["objective"], rel=1e-5)
    markdown = (tmp_path / "sweep_summary.md").read_text().splitlines()
    assert markdown[0].startswith("| job | overrides | status | objective |") and len(markdown) == 8


def test_hydra_mode_multirun_without_dash_m_still_sweeps(run_script, tmp_path):
    # The override names hydra.mode: Hydra's mode probe finds it and the run sweeps.
    result = run_script("train.py", "hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}",
                        "optimizer.lr=0.05,0.1", "trainer.steps=10")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1"]
    assert json.loads((tmp_path / "1" / "summary.json").read_text())["lr"] == 0.1


def test_a_sweep_without_dash_m_is_hydras_one_line_error(train_cli):
    result, _ = train_cli("optimizer.lr=0.05,0.1")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--multirun" in result.stderr, result.stderr


def test_ctrl_c_outside_training_ends_as_one_line_and_status_130():
    """Training turns Ctrl-C into a checkpoint (test_resume); anywhere else (composing, compiling)
    it is a KeyboardInterrupt, which must not end as a traceback."""
    code = "from jax_mlp import run\ndef interrupted():\n    raise KeyboardInterrupt\nrun.exit_after(interrupted)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert (result.returncode, result.stderr) == (130, "jax_mlp: interrupted (SIGINT)\n")


def test_sigterm_outside_training_ends_as_one_line_and_status_143():
    code = ("import os, signal\nfrom jax_mlp import interrupts, run\ninterrupts.terminate_as_interrupt()\n"
            "def terminated():\n    os.kill(os.getpid(), signal.SIGTERM)\nrun.exit_after(terminated)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert (result.returncode, result.stderr) == (143, "jax_mlp: interrupted (SIGTERM)\n")


@pytest.mark.slow
def test_sigterm_between_a_sweeps_jobs_still_tables_them(tmp_path, cache_home):
    # The basic sweeper runs its jobs in this process: a SIGTERM while job 1 starts (composing,
    # compiling) ended the process at once (status -15, no table, no line). The jobs are long
    # (about three seconds each here), so the signal cannot come after job 1's end however late a
    # loaded machine lets this process read the line; should it come once job 1 trains, job 1
    # stops and saves instead.
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), "-m", f"hydra.sweep.dir={tmp_path}",
                             "seed=0,1,2", "trainer.steps=5000000", "trainer.log_every=500000"],
                            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:
        if f"outputs in {tmp_path / '1'}" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table["0"] == "completed" and table["1"] in ("not started", "unfinished", "interrupted"), (table, err)
    assert "2" not in table, (table, err)


@pytest.mark.slow
def test_sigterm_while_jit_compares_a_jobs_task_ends_the_sweep_as_any_sigterm(tmp_path, cache_home):
    # JAX turned the SIGTERM into a ValueError, which Hydra keeps until the batch's end: job 2 trained,
    # then a traceback and status 1. Here the signal comes exactly there, job 1's first jit call.
    code = ("import sys\nfrom jax_mlp import interrupts, run, train\n"
            "def compared(self, other):\n    raise interrupts.Terminated\n"
            "train.Task.__eq__, train.Task.__hash__ = compared, lambda self: 0\n"
            f"sys.argv = ['train.py', '-m', 'hydra.sweep.dir={tmp_path}', 'seed=0,1,2', 'trainer.steps=100']\n"
            "run.exit_after(run.main)\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=120)
    assert result.returncode == 143 and result.stderr.endswith(
        f"jax_mlp: to finish the sweep, run the same command with trainer.resume=true hydra.sweep.dir={tmp_path}\n"
        "jax_mlp: interrupted (SIGTERM)\n"), result.stderr
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "completed", "1": "not started"}


def test_help_lists_each_groups_options_as_conf_holds_them(run_script):
    result = run_script("train.py", "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("== Groups")[1].split("== Keys")[0].strip().splitlines()[1:]
    listed = {line.split(":")[0].split(" (")[0]: line.split(": ", 1)[1].split(" (")[0].split(", ") for line in lines}
    conf = ROOT / "conf"
    expected = {group.name: {path.stem for path in group.glob("*.yaml")} for group in conf.iterdir()
                if group.is_dir() and group.name != "hydra"}  # conf/hydra/: options of Hydra's own groups
    assert {group: set(options) for group, options in listed.items() if group != "hydra/sweeper"} == expected
    assert listed["hydra/sweeper"] == ["basic", "vmap"]
    defaults = {"model": "seed_note", "data": "seed_note", "optimizer": "sgd", "trainer": "default", "logger": "jsonl"}
    assert all(listed[group][0] == default for group, default in defaults.items())
    assert "schema" not in result.stdout.split("== Keys")[0]
    assert "activation: sigmoid" in result.stdout  # the composed config follows


def test_relative_paths_mean_the_commands_folder_when_hydra_changes_into_the_jobs(run_script, tmp_path):
    # hydra.job.chdir=true runs the job in its output folder: data.path, trainer.resume=PATH and
    # trainer.cache_dir, given relative to where the command ran, are read from there.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    np.savetxt(tmp_path / "data.csv", np.c_[x, x @ [1.0, -1.0]], delimiter=",", header="a,b,y", comments="")
    common = ["hydra.job.chdir=true", "model=mlp", "data=csv", "data.path=data.csv", "data.target=y",
              "trainer.steps=20", "trainer.log_every=10"]
    first = run_script("train.py", *common, "hydra.run.dir=runs/first", "trainer.checkpoint_every=10",
                       "trainer.cache_dir=xla", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "runs" / "first" / "checkpoints" / "20").is_dir() and any((tmp_path / "xla").iterdir())
    second = run_script("train.py", *common, "hydra.run.dir=runs/second", "trainer.steps=30",
                        "trainer.resume=runs/first", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"resuming from step 20 of {tmp_path / 'runs' / 'first' / 'checkpoints'}" in second.stdout
    assert json.loads((tmp_path / "runs" / "second" / "summary.json").read_text())["steps"] == 30
