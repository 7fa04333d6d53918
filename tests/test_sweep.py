"""Sweeps as one program (`jax_mlp.sweep`) and the `hydra/sweeper=vmap` plugin."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import ROOT, corrupt_checkpoint, job_folder, read_jsonl, steps_saved

from jax_mlp import config, jobs, report, run, runs, sweep
from jax_mlp.data import load_dataset
from jax_mlp.errors import UserError
from jax_mlp.outputs import Outcome


def _cfg(*overrides: str) -> config.Config:
    return config.load(config.compose(["trainer.compilation_cache=false", *overrides]))


def test_runs_group_by_static_structure():
    cfgs = [_cfg("optimizer.lr=0.1"), _cfg("optimizer.lr=0.5", "seed=3"), _cfg("optimizer=momentum"),
            _cfg("optimizer=momentum", "optimizer.momentum=0.5"), _cfg("optimizer=adam"),
            _cfg("trainer.steps=10"), _cfg("optimizer.momentum=0.9")]
    assert sweep.group_runs(cfgs) == [[0, 1], [2, 3], [4], [5], [6]]
    assert sweep.group_runs(cfgs[:2] * 3, max_batch=4) == [[0, 1, 2, 3], [4, 5]]
    # Resuming, a group also shares the step its runs' newest checkpoints are at.
    assert sweep.group_runs(cfgs[:2] * 2, resume_steps=[20, None, 20, 10]) == [[0, 2], [1], [3]]


@pytest.mark.parametrize("overrides, expected", [
    (["trainer.resume=runs/elsewhere"], "trainer.resume=runs/elsewhere: a path is for single runs; in a sweep, "
                                        "trainer.resume=true resumes each job from its own folder"),
    (["trainer.data_parallel=true"], "trainer.data_parallel is for single runs"),
    (["model.hidden=[4,4]"], r"model.weights\[0\] has w \[1, 2\] and b \[2\], but the sizes \[1, 4, 4, 1\] need"),
    (["optimizer.schedule=warmup_cosine", "optimizer.warmup_steps=10"],
     "optimizer.warmup_steps=10 must be fewer than the run's 10 steps"),
    (["trainer.platform=tpu"], "trainer.platform=tpu: no tpu device here"),
])
def test_a_run_that_cannot_be_swept_stops_the_sweep_before_any_training(tmp_path, overrides, expected):
    cfgs = [_cfg("trainer.steps=10"), _cfg("trainer.steps=10", *overrides)]  # two groups, the bad one last
    with pytest.raises(UserError, match=expected):
        sweep.execute_all(cfgs, [tmp_path / "fine", tmp_path / "bad"])
    assert not (tmp_path / "fine").exists()


def _params(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "params.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_a_group_matches_each_run_trained_alone_in_float64(tmp_path):
    overrides = ["experiment=moons", "trainer.epochs=3", "trainer.precision=float64"]
    cfgs = [_cfg(*overrides, f"optimizer.lr={lr}", f"seed={seed}", f"optimizer.momentum={m}")
            for lr, m in ((0.05, 0.9), (0.1, 0.5)) for seed in (0, 1)]
    outcomes = sweep.execute_all(cfgs, [tmp_path / f"group{i}" for i in range(4)])
    assert [o.status for o in outcomes] == ["completed"] * 4
    for i, cfg in enumerate(cfgs):
        alone = jobs.execute(cfg, tmp_path / f"alone{i}")
        assert outcomes[i].objective == pytest.approx(alone.objective, rel=1e-6)
        grouped, single = _params(tmp_path / f"group{i}"), _params(tmp_path / f"alone{i}")
        for key in single:
            np.testing.assert_allclose(grouped[key], single[key], rtol=1e-6, atol=1e-9)
        assert [l["step"] for l in read_jsonl(tmp_path / f"group{i}" / "metrics.jsonl")] == \
            [l["step"] for l in read_jsonl(tmp_path / f"alone{i}" / "metrics.jsonl")]
    # Seeds draw different data and initial params; learning rates differ too.
    assert not np.array_equal(_params(tmp_path / "group0")["layers.0.w"], _params(tmp_path / "group1")["layers.0.w"])


def test_a_float32_group_after_a_float64_one_trains_in_float32(tmp_path):
    # The float64 group switches x64 on for the process; the float32 group's stacked momentum and
    # learning rate must still enter its optimizer state as float32 (they once stayed float64).
    overrides = ["experiment=moons", "trainer.epochs=2"]
    cfgs = [_cfg(*overrides, "trainer.precision=float64"), _cfg(*overrides)]
    outcomes = sweep.execute_all(cfgs, [tmp_path / "f64", tmp_path / "f32"])
    assert [o.status for o in outcomes] == ["completed", "completed"]
    alone = jobs.execute(cfgs[1], tmp_path / "alone")
    assert outcomes[1].objective == pytest.approx(alone.objective, rel=1e-5)
    grouped, single = _params(tmp_path / "f32"), _params(tmp_path / "alone")
    for key in single:
        assert grouped[key].dtype == np.float32
        np.testing.assert_allclose(grouped[key], single[key], rtol=1e-5, atol=1e-6)


def test_a_sweep_shares_data_sets_between_neighbouring_groups_only(tmp_path, monkeypatch):
    loads = []

    def counted(data_cfg, seed, scaling=None):
        loads.append(seed)
        return load_dataset(data_cfg, seed, scaling)

    monkeypatch.setattr(runs, "load_dataset", counted)
    # Two structures (sgd, adam), so `check_groups` loads data (seed 0's) before the groups do;
    # seeds 0 and 1 draw their own data.
    cfgs = [_cfg("trainer.steps=10", f"optimizer={name}", f"seed={seed}") for name in ("sgd", "adam") for seed in (0, 1)]
    outcomes = sweep.execute_all(cfgs, [tmp_path / str(i) for i in range(4)])
    assert [o.status for o in outcomes] == ["completed"] * 4
    assert loads == [0, 1]  # the checks' seed 0 serves both groups, as does the first group's seed 1
    # One run a group: a group keeps only what the next one uses, so no more than one group's data
    # sets are ever held (here: check 0; groups sgd 0 (kept), sgd 1, adam 0, adam 1).
    loads.clear()
    sweep.execute_all(cfgs, [tmp_path / f"b{i}" for i in range(4)], max_batch=1)
    assert loads == [0, 1, 0, 1]


def test_a_diverging_run_leaves_the_rest_of_its_group_alone(tmp_path):
    cfgs = [_cfg("trainer.steps=300", f"optimizer.lr={lr}") for lr in (0.1, 1000.0, 0.05)]
    outcomes = sweep.execute_all(cfgs, [tmp_path / f"g{i}" for i in range(3)])
    assert [o.status for o in outcomes] == ["completed", "diverged", "completed"]
    assert outcomes[1].objective == float("inf")
    summary = json.loads((tmp_path / "g1" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["objective"] == "inf" and summary["steps"] == 100
    assert [l["step"] for l in read_jsonl(tmp_path / "g1" / "metrics.jsonl")] == [0, 100]
    for i in (0, 2):
        alone = jobs.execute(cfgs[i], tmp_path / f"a{i}")
        assert outcomes[i].objective == pytest.approx(alone.objective, rel=1e-4)  # float32 rounding
        for key, value in _params(tmp_path / f"a{i}").items():
            np.testing.assert_allclose(_params(tmp_path / f"g{i}")[key], value, rtol=1e-5, atol=1e-7)


class _StopAfter:
    """Stands for `jax_mlp.interrupts.Interrupts`: a SIGINT arrives after `checks` questions (the
    sweep asks before each group, then `fit` after each log point)."""

    def __init__(self, checks: int) -> None:
        self.checks, self.signum = checks, None

    def arrived(self) -> bool:
        self.checks -= 1
        if self.checks < 0:
            self.signum = signal.SIGINT
        return self.signum is not None


@pytest.mark.parametrize("corrupt", [False, True], ids=["intact", "corrupt-newest-of-one-run"])
def test_a_stopped_group_saves_each_run_and_resumes_to_identical_params(tmp_path, caplog, corrupt):
    common = ["trainer.steps=300", "trainer.log_every=50", "trainer.checkpoint_every=100", "trainer.keep_checkpoints=2"]
    cfgs = [_cfg(*common, f"optimizer.lr={lr}", f"seed={seed}") for lr, seed in ((0.1, 0), (1000.0, 1), (0.05, 2))]
    whole = sweep.execute_all(cfgs, [tmp_path / f"whole{i}" for i in range(3)])
    stopped = sweep.execute_all(cfgs, [tmp_path / f"run{i}" for i in range(3)], interrupts=_StopAfter(3))
    assert [(o.status, o.message) for o in stopped[::2]] == [("interrupted", "SIGINT at step 150")] * 2
    assert stopped[1].status == "diverged"
    for i in range(3):
        assert steps_saved(tmp_path / f"run{i}") == [100, 150]  # keep_checkpoints=2, and the stop's own
        assert steps_saved(tmp_path / f"whole{i}") == [200, 300]
    if corrupt:  # the group then resumes from the step before, which every run can read
        corrupt_checkpoint(tmp_path / "run2" / "checkpoints" / "150")
    resumed_cfgs = [_cfg(*common, f"optimizer.lr={lr}", f"seed={seed}", "trainer.resume=true")
                    for lr, seed in ((0.1, 0), (1000.0, 1), (0.05, 2))]
    caplog.set_level("INFO", logger="jax_mlp")
    resumed = sweep.execute_all(resumed_cfgs, [tmp_path / f"run{i}" for i in range(3)])
    # The diverged run resumes with its group, to the params an unstopped sweep leaves.
    assert "not trained again" not in caplog.text
    assert f"resuming 3 runs from step {100 if corrupt else 150}" in caplog.text
    assert (f"checkpoint {tmp_path / 'run2' / 'checkpoints' / '150'} is unreadable" in caplog.text) == corrupt
    assert [o.status for o in resumed] == [o.status for o in whole] == ["completed", "diverged", "completed"]
    for i in range(3):
        assert (tmp_path / f"run{i}" / "params.npz").read_bytes() == (tmp_path / f"whole{i}" / "params.npz").read_bytes()
        assert read_jsonl(tmp_path / f"run{i}" / "metrics.jsonl") == read_jsonl(tmp_path / f"whole{i}" / "metrics.jsonl")
        a, b = (json.loads((tmp_path / f"{name}{i}" / "summary.json").read_text()) for name in ("run", "whole"))
        assert (a["status"], a["steps"], a["objective"]) == (b["status"], b["steps"], b["objective"])
    assert json.loads((tmp_path / "run1" / "summary.json").read_text())["steps"] == 50  # diverged there, not at 200


def test_a_resumed_sweep_whose_values_moved_to_other_jobs_is_refused_before_training(tmp_path, caplog):
    # optimizer.lr=0.1,0.2 stopped, then resumed as optimizer.lr=0.1,0.15,0.2: job 1 would have trained
    # on from lr 0.2's checkpoint with lr 0.15.
    common = ["trainer.log_every=10", "trainer.checkpoint_every=10", "trainer.steps=20"]
    sweep.execute_all([_cfg(*common, f"optimizer.lr={lr}") for lr in (0.1, 0.2)], [tmp_path / "0", tmp_path / "1"])
    before = (tmp_path / "1" / "params.npz").read_bytes()
    renumbered = [_cfg(*common, f"optimizer.lr={lr}", "trainer.resume=true") for lr in (0.1, 0.15, 0.2)]
    with pytest.raises(UserError) as refused:
        sweep.execute_all(renumbered, [tmp_path / str(i) for i in range(3)])
    assert str(refused.value) == (
        f"{tmp_path / '1'} holds the checkpoints of a run with optimizer.lr=0.2, but this sweep's job there has "
        "optimizer.lr=0.15; resume a sweep with the values that saved it (a value added inside a list renumbers the "
        "jobs after it: add new ones at the end), or sweep in a new hydra.sweep.dir")
    assert (tmp_path / "1" / "params.npz").read_bytes() == before and not (tmp_path / "2").exists()
    with pytest.raises(UserError, match=r"^\S+ holds the checkpoints of a run with optimizer.lr=0.2, but"):
        run._resumed_in_sweep(renumbered[1], tmp_path / "1")  # each job of Hydra's basic sweeper
    # Longer, logged and saved otherwise: the same jobs, which resume.
    longer = [_cfg("trainer.log_every=20", "trainer.checkpoint_every=20", "trainer.steps=40", f"optimizer.lr={lr}",
                   "trainer.resume=true", "logger=[jsonl,csv]") for lr in (0.1, 0.2)]
    assert [o.status for o in sweep.execute_all(longer, [tmp_path / "0", tmp_path / "1"])] == ["completed"] * 2
    # A job whose earlier run was killed left no summary.json: the config kept beside its checkpoints tells.
    (tmp_path / "1" / "summary.json").unlink()
    with pytest.raises(UserError, match=r"^\S+ holds the checkpoints of a run with optimizer.lr=0.2, but"):
        jobs.refuse_renumbered_jobs([renumbered[1]], [tmp_path / "1"])
    jobs.refuse_renumbered_jobs([longer[1]], [tmp_path / "1"])
    # An unreadable record cannot be compared: a warning says so.
    kept = {path: path.read_bytes() for path in (tmp_path / "1" / "checkpoints" / "metadata").iterdir()}
    for path, data in kept.items():
        path.write_bytes(data[:10])
    caplog.set_level("WARNING", logger="jax_mlp")
    jobs.refuse_renumbered_jobs([renumbered[1]], [tmp_path / "1"])
    assert f"the run's config kept in {tmp_path / '1' / 'checkpoints' / 'metadata'} is unreadable" in caplog.text
    # Checkpoints that an earlier jax_mlp saved keep no config (Orbax's root metadata): nothing to compare.
    shutil.rmtree(tmp_path / "1" / "checkpoints" / "metadata")
    jobs.refuse_renumbered_jobs([renumbered[1]], [tmp_path / "1"])


def test_finishing_a_sweep_does_not_train_its_finished_jobs_again(tmp_path, caplog):
    out_dirs = [tmp_path / "0", tmp_path / "1"]
    done = sweep.execute_all([_cfg("trainer.steps=20", f"optimizer.lr={lr}") for lr in (0.1, 1000.0)], out_dirs)
    assert [o.status for o in done] == ["completed", "diverged"]
    written = {path: path.stat().st_mtime_ns for path in out_dirs[0].iterdir()}
    caplog.set_level("INFO", logger="jax_mlp")
    again = sweep.execute_all([_cfg("trainer.steps=20", f"optimizer.lr={lr}", "trainer.resume=true",
                                    "trainer.progress=false") for lr in (0.1, 1000.0)], out_dirs)
    assert [(o.status, o.objective) for o in again] == [(o.status, o.objective) for o in done]
    assert "1 job of the sweep completed before it stopped; not trained again" in caplog.text
    assert {path: path.stat().st_mtime_ns for path in out_dirs[0].iterdir()} == written  # the diverged one trained
    # A longer run has steps left: without a checkpoint it starts again from step 0.
    longer = sweep.execute_all([_cfg("trainer.steps=30", "optimizer.lr=0.1", "trainer.resume=true")], out_dirs[:1])
    assert longer[0].status == "completed" and json.loads((out_dirs[0] / "summary.json").read_text())["steps"] == 30


def test_a_summary_of_an_older_schema_is_compared_as_todays(tmp_path):
    cfg = _cfg("optimizer.lr=0.1", "trainer.resume=true")
    saved = json.loads(json.dumps(dataclasses.asdict(cfg)))
    del saved["trainer"]["precision"]  # runs saved before trainer.precision said trainer.x64
    for x64, expected in ((False, Outcome(0.5, "completed")), (True, None)):
        saved["trainer"]["x64"] = x64
        (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "objective": 0.5, "config": saved}))
        assert jobs.finished_run(cfg, tmp_path) == expected


def test_a_job_of_a_vmap_sweep_resumes_alone_from_its_checkpoint(tmp_path, caplog):
    common = ["trainer.precision=float64", "trainer.log_every=10", "trainer.checkpoint_every=10"]
    sweep.execute_all([_cfg(*common, "trainer.steps=20", f"seed={s}") for s in (0, 1)],
                      [tmp_path / "g0", tmp_path / "g1"])
    caplog.set_level("INFO", logger="jax_mlp")
    jobs.execute(_cfg(*common, "trainer.steps=40", "seed=1", "trainer.resume=true"), tmp_path / "g1")
    assert f"resuming from step 20 of {tmp_path / 'g1' / 'checkpoints'}" in caplog.text
    jobs.execute(_cfg(*common, "trainer.steps=40", "seed=1"), tmp_path / "alone")
    for key, value in _params(tmp_path / "alone").items():
        np.testing.assert_allclose(_params(tmp_path / "g1")[key], value, rtol=1e-12, atol=1e-12)


def test_a_group_checkpoint_past_the_runs_length_is_refused(tmp_path):
    sweep.execute_all([_cfg("trainer.steps=20", "trainer.checkpoint_every=10", f"seed={s}") for s in (0, 1)],
                      [tmp_path / "0", tmp_path / "1"])
    with pytest.raises(UserError, match=rf"the group of {tmp_path / '0'} \(2 runs\) would resume from step 20, "
                                        "past its 10 steps"):
        sweep.execute_all([_cfg("trainer.steps=10", "trainer.resume=true", f"seed={s}") for s in (0, 1)],
                          [tmp_path / "0", tmp_path / "1"])
    assert json.loads((tmp_path / "1" / "summary.json").read_text())["steps"] == 20  # the folders left alone


def test_a_resumed_sweep_with_new_jobs_continues_the_old_and_starts_the_new(tmp_path, caplog):
    common = ["trainer.log_every=10", "trainer.checkpoint_every=10"]
    sweep.execute_all([_cfg(*common, "trainer.steps=20", f"seed={s}") for s in (0, 1)], [tmp_path / "0", tmp_path / "1"])
    caplog.set_level("INFO", logger="jax_mlp")
    cfgs = [_cfg("trainer.steps=40", "trainer.log_every=10", "trainer.resume=true", f"seed={s}") for s in (0, 1, 2)]
    outcomes = sweep.execute_all(cfgs, [tmp_path / str(job) for job in range(3)])
    assert [o.status for o in outcomes] == ["completed"] * 3
    assert "resuming 2 runs from step 20" in caplog.text
    assert "trainer.resume: no checkpoint for 1 run of the sweep; starting from step 0" in caplog.text
    for job in range(3):
        assert [line["step"] for line in read_jsonl(tmp_path / str(job) / "metrics.jsonl")] == [0, 10, 20, 30, 40]
        assert steps_saved(tmp_path / str(job)) == ([10, 20, 40] if job < 2 else [40])  # a resumed run saves at its end


def test_a_resumed_group_saves_again_the_steps_after_the_one_it_resumes_from(tmp_path, caplog):
    def group(steps: int, *extra: str) -> list[config.Config]:
        return [_cfg(f"trainer.steps={steps}", "trainer.log_every=10", "trainer.checkpoint_every=10",
                     "trainer.keep_checkpoints=5", f"seed={s}", *extra) for s in (0, 1)]

    dirs = [tmp_path / "0", tmp_path / "1"]
    sweep.execute_all(group(30), dirs)
    corrupt_checkpoint(dirs[1] / "checkpoints" / "30")
    caplog.set_level("INFO", logger="jax_mlp")
    sweep.execute_all(group(40, "trainer.resume=true"), dirs)
    assert "resuming 2 runs from step 20" in caplog.text
    assert (f"removed the checkpoints after step 20 of 2 runs ({dirs[0] / 'checkpoints'}, {dirs[1] / 'checkpoints'}): "
            "unreadable, or past the step the group resumes from; the group saves them again") in caplog.messages
    assert steps_saved(dirs[0]) == steps_saved(dirs[1]) == [10, 20, 30, 40]
    corrupt_checkpoint(dirs[1] / "checkpoints" / "40")
    caplog.clear()
    sweep.execute_all(group(50, "trainer.resume=true"), dirs)
    assert "resuming 2 runs from step 30" in caplog.text  # Orbax had skipped run 1's save at 30: from 20
    sweep.execute_all(group(50), [tmp_path / "s0", tmp_path / "s1"])
    for i in range(2):
        assert (dirs[i] / "params.npz").read_bytes() == (tmp_path / f"s{i}" / "params.npz").read_bytes()


def test_a_group_without_a_readable_step_in_common_is_refused(tmp_path):
    dirs = [tmp_path / "0", tmp_path / "1"]
    sweep.execute_all([_cfg("trainer.steps=20", "trainer.checkpoint_every=10", "trainer.keep_checkpoints=1",
                            f"seed={s}") for s in (0, 1)], dirs)
    corrupt_checkpoint(dirs[1] / "checkpoints" / "20")
    with pytest.raises(UserError, match=rf"^the group of {dirs[0]} \(2 runs\) has no checkpoint step that every run "
                                        "saved and can read; remove the checkpoints folder of each run that a warning "
                                        "above calls unreadable, and those runs start afresh$"):
        sweep.execute_all([_cfg("trainer.steps=30", "trainer.resume=true", f"seed={s}") for s in (0, 1)], dirs)


def test_a_fresh_sweep_over_an_earlier_ones_checkpoints_is_refused_before_any_training(tmp_path):
    dirs = [tmp_path / str(job) for job in range(3)]
    sweep.execute_all([_cfg("trainer.steps=20", "trainer.checkpoint_every=10", f"seed={s}") for s in (0, 1)], dirs[1:])
    metrics = (dirs[1] / "metrics.jsonl").read_bytes()
    with pytest.raises(UserError, match=rf"^{dirs[1] / 'checkpoints'} holds the checkpoints of an earlier run, the "
                                        r"newest at step 20 \(1 other job folder too\); continue it with "
                                        "trainer.resume=true, or remove them to start afresh$"):
        sweep.execute_all([_cfg("trainer.steps=20", f"seed={s}") for s in (0, 1, 2)], dirs)
    assert not dirs[0].exists() and (dirs[1] / "metrics.jsonl").read_bytes() == metrics


SHARDED = """
import json, signal, sys
from pathlib import Path
import jax, numpy as np
from jax_mlp import config, jobs, report, run, runs, sweep
from test_sweep import _StopAfter
def group(*extra):
    return [config.load(config.compose(["trainer.compilation_cache=false", "trainer.precision=float64",
            "trainer.steps=200", "trainer.log_every=50", f"optimizer.lr={lr}", f"seed={s}", *extra]))
            for lr in (0.05, 0.1, 0.2) for s in (0, 1)]
cfgs = group()
out = Path(sys.argv[1])
sweep.execute_all(cfgs, [out / f"g{i}" for i in range(6)])
worst = 0.0
for i, cfg in enumerate(cfgs):
    jobs.execute(cfg, out / f"a{i}")
    a, b = np.load(out / f"g{i}" / "params.npz"), np.load(out / f"a{i}" / "params.npz")
    worst = max(worst, max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files))
sweep.execute_all(cfgs, [out / f"r{i}" for i in range(6)], interrupts=_StopAfter(2))  # stops at step 100
sweep.execute_all(group("trainer.resume=true"), [out / f"r{i}" for i in range(6)])
resumed = [(out / f"r{i}" / "params.npz").read_bytes() == (out / f"g{i}" / "params.npz").read_bytes() for i in range(6)]
print(json.dumps({"devices": jax.device_count(), "mesh": runs.run_sharding(6).mesh.size, "worst": worst,
                  "resumed": resumed}))
"""


@pytest.mark.slow
def test_the_run_axis_is_sharded_over_four_cpu_devices_and_resumes(tmp_path, cache_home):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", SHARDED, str(tmp_path)], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4 and report["mesh"] == 4  # 6 runs padded to 8, two a device
    assert report["worst"] < 1e-9
    assert report["resumed"] == [True] * 6  # stopped and resumed, padding runs included: bit for bit


def _hydra_yaml_without_sweeper(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    sweeper_lines = ("_target_: hydra", "max_batch", "hydra/sweeper")
    return [l.replace(str(path.parents[2]), "SWEEP") for l in lines if not any(s in l for s in sweeper_lines)]


@pytest.mark.slow
def test_vmap_sweeper_writes_what_the_basic_sweeper_writes(run_script, tmp_path):
    sweep_args = ["optimizer=sgd,adam", "optimizer.lr=0.01,0.1", "seed=range(2)", "trainer.steps=50",
                  "trainer.log_every=25"]
    basic = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path / 'basic'}", *sweep_args)
    assert basic.returncode == 0, basic.stderr
    vmap = run_script("train.py", "-m", "hydra/sweeper=vmap", f"hydra.sweep.dir={tmp_path / 'vmap'}",
                      "hydra.sweeper.max_batch=3", *sweep_args)
    assert vmap.returncode == 0, vmap.stderr
    assert (tmp_path / "vmap" / "multirun.yaml").is_file()
    _same_folders(tmp_path / "basic", tmp_path / "vmap", 8)
    for job in range(8):
        b, v = tmp_path / "basic" / str(job), tmp_path / "vmap" / str(job)
        lines_b, lines_v = read_jsonl(b / "metrics.jsonl"), read_jsonl(v / "metrics.jsonl")
        assert [l["step"] for l in lines_v] == [l["step"] for l in lines_b] == [0, 25, 50]
        for lb, lv in zip(lines_b, lines_v):
            assert lv["loss"] == pytest.approx(lb["loss"], rel=1e-5) and lv["lr"] == lb["lr"]
        sb, sv = json.loads((b / "summary.json").read_text()), json.loads((v / "summary.json").read_text())
        assert sv["status"] == sb["status"] and sv["objective"] == pytest.approx(sb["objective"], rel=1e-5)
        for key, value in _params(b).items():
            np.testing.assert_allclose(_params(v)[key], value, rtol=1e-4, atol=1e-6)
    rows = list(csv.DictReader((tmp_path / "vmap" / "sweep_summary.csv").open()))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"completed"}


def _same_folders(basic: Path, vmap: Path, jobs: int) -> None:
    """The two sweepers' ``.hydra`` files agree (up to the sweeper's own lines) in every job."""
    for job in range(jobs):
        b, v = basic / str(job), vmap / str(job)
        for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "scaling.json"):
            assert (v / name).read_text() == (b / name).read_text(), (job, name)
        assert _hydra_yaml_without_sweeper(v / ".hydra" / "hydra.yaml") == \
            _hydra_yaml_without_sweeper(b / ".hydra" / "hydra.yaml"), job


@pytest.mark.slow
def test_vmap_sweeper_folders_are_exact_for_lists_strings_and_groups(run_script, tmp_path):
    # Jobs differing in a list (model.hidden: the parent node changes), a string, and the data
    # group's options (a template each) exercise every way the sweeper writes a job's files.
    sweep_args = ["model=mlp", "data=moons,spirals", "model.hidden=[4],[3,3]", "model.activation=tanh,relu",
                  "trainer.steps=5", "trainer.log_every=5"]
    basic = run_script("train.py", "-m", f"hydra.sweep.dir={tmp_path / 'basic'}", *sweep_args)
    assert basic.returncode == 0, basic.stderr
    vmap = run_script("train.py", "-m", "hydra/sweeper=vmap", f"hydra.sweep.dir={tmp_path / 'vmap'}", *sweep_args)
    assert vmap.returncode == 0, vmap.stderr
    assert "one by one" not in vmap.stdout + vmap.stderr  # each template's other jobs took the fast way
    _same_folders(tmp_path / "basic", tmp_path / "vmap", 8)
    last = (tmp_path / "vmap" / "7" / ".hydra" / "config.yaml").read_text()
    assert "  hidden:\n  - 3\n  - 3\n" in last and "  activation: relu\n" in last


@pytest.mark.slow
def test_vmap_sweeper_says_that_it_leaves_a_launcher_unused(run_script, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    result = run_script("train.py", "-m", "hydra/sweeper=vmap", "launcher=joblib", f"hydra.sweep.dir={tmp_path}",
                        "seed=0,1", "trainer.steps=5", "trainer.log_every=5")
    assert result.returncode == 0, result.stderr
    assert ("the vmap sweeper trains its jobs in this process, as vmapped programs; the launcher (JoblibLauncher) "
            "is not used") in result.stdout + result.stderr
    assert all((tmp_path / job / "summary.json").is_file() for job in ("0", "1"))
    plain = run_script("train.py", "-m", "hydra/sweeper=vmap", f"hydra.sweep.dir={tmp_path / 'plain'}", "seed=0,1",
                       "trainer.steps=5", "trainer.log_every=5")
    assert plain.returncode == 0 and "is not used" not in plain.stdout + plain.stderr


@pytest.mark.slow
def test_vmap_sweeper_reports_bad_values_in_one_line(run_script, tmp_path):
    result = run_script("train.py", "-m", "hydra/sweeper=vmap", f"hydra.sweep.dir={tmp_path}",
                        "optimizer.lr=0.1,-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "jax_mlp: error: optimizer.lr must be a positive finite number, got -1.0"
    result = run_script("train.py", "-m", "hydra/sweeper=vmap", f"hydra.sweep.dir={tmp_path}",
                        "hydra.sweeper.max_batch=0", "optimizer.lr=0.1,0.2")
    assert result.returncode == 2
    assert result.stderr.strip() == "jax_mlp: error: hydra.sweeper.max_batch must be null or a positive integer, got 0"
    assert not (tmp_path / "sweep_summary.csv").exists()  # no job trained: no table


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_vmap_sweep_and_the_same_command_finishes_it(tmp_path, cache_home, signum):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "hydra/sweeper=vmap",
               f"hydra.sweep.dir={tmp_path}", "optimizer=sgd,adam", "seed=0,1", "trainer.steps=1500000",
               "trainer.log_every=20000"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:  # the first group (sgd) trains while the second waits
        if "step 100000: 2 runs" in line:
            proc.send_signal(signum)
            break
    _, err = proc.communicate()
    assert proc.returncode == 128 + signum, err
    summaries = [json.loads((tmp_path / job / "summary.json").read_text()) for job in ("0", "1")]
    stopped = summaries[0]["steps"]
    assert 100000 <= stopped < 1500000
    assert err.splitlines()[-2:] == [
        f"jax_mlp: {signal.Signals(signum).name} at step {stopped}: the sweep stopped; 2 jobs interrupted (each "
        "saved a checkpoint, and its summary.json says so), 2 not started",
        f"jax_mlp: to finish the sweep, run the same command with trainer.resume=true hydra.sweep.dir={tmp_path}"]
    for job, summary in enumerate(summaries):
        assert (summary["status"], summary["steps"], summary["objective"]) == ("interrupted", stopped, "inf")
        assert steps_saved(tmp_path / str(job)) == [stopped]
    assert (tmp_path / "1" / "params.npz").is_file()
    assert not (tmp_path / "2" / "summary.json").exists() and (tmp_path / "3" / ".hydra" / "config.yaml").is_file()
    table = {row["job"]: row["status"] for row in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert table == {"0": "interrupted", "1": "interrupted", "2": "not started", "3": "not started"}
    if signum == signal.SIGINT:
        finished = subprocess.run(command + ["trainer.resume=true"], cwd=ROOT, env=env, text=True,
                                  capture_output=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        assert f"resuming 2 runs from step {stopped}" in finished.stdout
        assert "trainer.resume: no checkpoint for 2 runs of the sweep; starting from step 0" in finished.stdout
        for job in range(4):
            summary = json.loads((tmp_path / str(job) / "summary.json").read_text())
            assert (summary["status"], summary["steps"]) == ("completed", 1500000)
            steps = [line["step"] for line in read_jsonl(tmp_path / str(job) / "metrics.jsonl")]
            assert steps == list(range(0, 1500001, 20000))


def test_a_sweep_stopped_before_any_group_trained_says_so():
    outcomes = [Outcome(float("inf"), sweep.NOT_STARTED, exit_code=143)] * 3
    stopped = sweep.interruption(outcomes)
    assert (stopped.status, stopped.exit_code) == ("interrupted", 143)
    assert stopped.message == ("SIGTERM before training: the sweep stopped; 0 jobs interrupted (each saved a "
                               "checkpoint, and its summary.json says so), 3 not started")
    assert sweep.interruption([Outcome(0.5, "completed"), Outcome(float("inf"), "diverged")]) is None
    one = sweep.interruption([Outcome(float("inf"), "interrupted", "SIGINT at step 40", 130), outcomes[0]])
    assert one.message == ("SIGINT at step 40: the sweep stopped; 1 job interrupted (each saved a checkpoint, and "
                           "its summary.json says so), 1 not started")


def _stopped_sweep(sweep_dir: Path, interrupted: bool) -> dict[str, str] | None:
    """`run.SweepSummary.write_for_stopped_sweep` for a basic sweep in `sweep_dir`: the statuses of
    its table, or None when it wrote none."""
    from omegaconf import OmegaConf

    from jax_mlp import run

    run.SweepSummary.in_progress = OmegaConf.create({
        "hydra": {"sweep": {"dir": str(sweep_dir)},
                  "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}},
        "trainer": {"plots": False}})
    run.SweepSummary.write_for_stopped_sweep(interrupted)
    table = sweep_dir / "sweep_summary.csv"
    return {row["job"]: row["status"] for row in csv.DictReader(table.open())} if table.exists() else None


def test_a_stopped_sweeps_table_tells_jobs_that_began_from_jobs_that_did_not(tmp_path, capsys):
    # A second Ctrl-C ends the sweep's process while its workers save: job 1 began and has no summary yet.
    job_folder(tmp_path / "0", ["seed=0"], {"status": "interrupted", "objective": "inf"}, began=True)
    job_folder(tmp_path / "1", ["seed=1"], began=True)
    job_folder(tmp_path / "2", ["seed=2"])
    assert _stopped_sweep(tmp_path, interrupted=True) == {"0": "interrupted", "1": "unfinished", "2": "not started"}
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"jax_mlp: to finish the sweep, run the same command with trainer.resume=true hydra.sweep.dir={tmp_path}")
    # After an error (a job's bug), a job without a summary failed, begun or not.
    (tmp_path / "sweep_summary.csv").unlink()
    assert _stopped_sweep(tmp_path, interrupted=False) == {"0": "interrupted", "1": "failed", "2": "failed"}


def test_a_resumed_sweeps_table_leaves_out_the_resume_switch(tmp_path):
    job_folder(tmp_path / "0", ["optimizer.lr=0.1", "trainer.resume=true"], {"status": "completed", "objective": 0.5})
    job_folder(tmp_path / "1", ["optimizer.lr=0.2", "trainer.resume=True", "trainer.resume_note=x"],
               {"status": "completed", "objective": 0.25})
    job_folder(tmp_path / "2", ["optimizer.lr=0.3", "trainer.resume=runs/x"], {"status": "completed", "objective": 1.0})
    assert [(row["job"], row["overrides"]) for row in report.sweep_rows(tmp_path)] == [
        ("1", "optimizer.lr=0.2 trainer.resume_note=x"), ("0", "optimizer.lr=0.1"),
        ("2", "optimizer.lr=0.3 trainer.resume=runs/x")]  # a checkpoint to start from is what the job tried


def test_a_sweep_stopped_before_any_job_trained_still_tables_its_jobs(tmp_path, capsys):
    # A SIGTERM to the process group as joblib's workers started: no job trained, every one is tabled.
    job_folder(tmp_path / "0", ["seed=0"])
    job_folder(tmp_path / "1", ["seed=1"])
    assert _stopped_sweep(tmp_path, interrupted=True) == {"0": "not started", "1": "not started"}
    assert "to finish the sweep" in capsys.readouterr().err
    # A sweep that an error stopped before any job wrote a summary (a bad config) gets no table.
    (tmp_path / "sweep_summary.csv").unlink()
    assert _stopped_sweep(tmp_path, interrupted=False) is None
    assert _stopped_sweep(tmp_path / "none", interrupted=True) is None  # no job folder: nothing to table


def test_a_full_batch_groups_runs_are_bit_identical_to_the_runs_alone(tmp_path):
    # Where a group's data are shared, each run's gradient is computed on its own copy, as alone:
    # a shared operand would fold the run axis into the products (float32 rounding apart, which a
    # large learning rate amplifies; this CPU's kernels then agree bit for bit up to 8 runs).
    if tuple(map(int, jax.__version__.split(".")[:2])) < (0, 10):
        pytest.skip("measured with JAX 0.10; JAX 0.6.1's CPU kernels round a group's products otherwise (3e-4 "
                    "apart after these 300 steps; the float64 test above bounds a group against its runs alone)")
    common = ["model=mlp", "data=diabetes", "model.hidden=[64,64]", "trainer.steps=300", "data.standardize_targets=true"]
    cfgs = [_cfg(*common, f"optimizer.lr={lr}") for lr in (0.05, 0.1, 0.3)]
    sweep.execute_all(cfgs, [tmp_path / f"g{i}" for i in range(3)])
    for i, cfg in enumerate(cfgs):
        jobs.execute(cfg, tmp_path / f"a{i}")
        assert (tmp_path / f"g{i}" / "params.npz").read_bytes() == (tmp_path / f"a{i}" / "params.npz").read_bytes()


def test_a_groups_log_header_names_the_range_of_its_runs_values():
    from jax_mlp import problems

    cfgs = [_cfg("experiment=moons", f"optimizer.lr={lr}", f"seed={s}") for lr in (0.003, 0.1, 1) for s in (0, 1)]
    line = problems.describe_run(problems.prepare(cfgs[0]), cfgs)
    assert line.startswith("6 runs as one program: model 2-32-32-1 ")
    assert "; sgd 2 seeds lr=0.003..1; 1900 steps of batch 32" in line  # one run's lr was said for all
    assert "; sgd lr=0.003; 1900 steps" in problems.describe_run(problems.prepare(cfgs[0]), cfgs[:1])
