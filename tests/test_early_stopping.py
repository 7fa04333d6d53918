"""Early stopping (`trainer.early_stopping`): where a run stops, the params it keeps, the same in a
vmapped group and across a resume; the best checkpoint kept beside the newest."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, read_jsonl, steps_saved

from jax_mlp import config, jobs, report, sweep
from jax_mlp.errors import UserError

# 40 noisy points of a sine and a wide net: the validation loss falls, then turns up.
OVERFIT = ["trainer.compilation_cache=false", "data=sine", "data.n=40", "data.noise=0.3", "model=mlp",
           "model.hidden=[64,64]", "optimizer=adam", "optimizer.lr=0.01", "trainer.steps=1000", "trainer.log_every=20"]
PATIENCE = "trainer.early_stopping={patience:4}"


def _cfg(*overrides: str) -> config.Config:
    return config.load(config.compose([*OVERFIT, *overrides]))


def _expected_stop(records: list[dict], patience: int) -> tuple[int, int]:
    """(best step, stop step) of a run whose val_loss records these are, by the rule's own words."""
    best, best_step, waited = np.inf, None, 0
    for record in records:
        if "val_loss" not in record:
            continue
        if record["val_loss"] < best:
            best, best_step, waited = record["val_loss"], record["step"], 0
        else:
            waited += 1
            if waited == patience:
                return best_step, record["step"]
    raise AssertionError("the run never stalled for patience evaluations")


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_a_run_stops_where_patience_says_with_the_params_of_its_best_evaluation(tmp_path):
    outcome = jobs.execute(_cfg(PATIENCE), tmp_path / "stopped")
    records = read_jsonl(tmp_path / "stopped" / "metrics.jsonl")
    best_step, stop_step = _expected_stop(records, 4)
    assert 0 < best_step < stop_step < 1000 and records[-1]["step"] == stop_step
    summary = _summary(tmp_path / "stopped")
    best_value = next(r["val_loss"] for r in records if r["step"] == best_step)
    assert summary["early_stopping"] == {"monitor": "val_loss", "mode": "min", "best_step": best_step,
                                         "best_value": best_value, "stopped_early": True, "stopped_at": stop_step,
                                         "restored_best": True}
    assert (outcome.status, summary["steps"], summary["val_loss"]) == ("completed", stop_step, best_value)
    # The params of the best evaluation: those of the same run trained for best_step steps alone.
    jobs.execute(_cfg(f"trainer.steps={best_step}"), tmp_path / "best")
    assert (tmp_path / "stopped" / "params.npz").read_bytes() == (tmp_path / "best" / "params.npz").read_bytes()
    assert summary["test_loss"] == _summary(tmp_path / "best")["test_loss"]
    # restore_best=false keeps the params of the step it stopped at.
    jobs.execute(_cfg("trainer.early_stopping={patience:4,restore_best:false}"), tmp_path / "last")
    jobs.execute(_cfg(f"trainer.steps={stop_step}"), tmp_path / "at_stop")
    assert (tmp_path / "last" / "params.npz").read_bytes() == (tmp_path / "at_stop" / "params.npz").read_bytes()


def test_every_run_of_a_vmapped_group_stops_where_it_stops_alone(tmp_path):
    rates = [0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05]
    cfgs = [_cfg(PATIENCE, "trainer.precision=float64", f"optimizer.lr={lr}") for lr in rates]
    outcomes = sweep.execute_all(cfgs, [tmp_path / "group" / str(i) for i in range(len(rates))])
    assert [o.status for o in outcomes] == ["completed"] * len(rates)
    stops = []
    for i, cfg in enumerate(cfgs):
        jobs.execute(cfg, tmp_path / "alone" / str(i))
        grouped, alone = _summary(tmp_path / "group" / str(i)), _summary(tmp_path / "alone" / str(i))
        grouped_best, alone_best = grouped["early_stopping"].pop("best_value"), alone["early_stopping"].pop("best_value")
        assert grouped["early_stopping"] == alone["early_stopping"], rates[i]  # the same best and stop steps
        assert grouped["steps"] == alone["steps"] and grouped_best == pytest.approx(alone_best, rel=1e-12)
        with np.load(tmp_path / "group" / str(i) / "params.npz") as g, \
                np.load(tmp_path / "alone" / str(i) / "params.npz") as a:
            for key in a.files:
                np.testing.assert_allclose(g[key], a[key], rtol=1e-9, atol=1e-12)
        stops.append(grouped["steps"])
    assert len(set(stops)) > 1  # the runs stop at their own points, the others going on
    for i, lr in enumerate(rates):  # the sweep tables read the job folders Hydra leaves
        (tmp_path / "group" / str(i) / ".hydra").mkdir()
        (tmp_path / "group" / str(i) / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={lr}\n")
    rows = {row["job"]: row for row in report.write_sweep_summary(tmp_path / "group")}
    for i in range(len(rates)):
        stopping = _summary(tmp_path / "group" / str(i))["early_stopping"]
        assert (rows[str(i)]["best_step"], rows[str(i)]["best_value"], rows[str(i)]["stopped_at"]) == (
            stopping["best_step"], stopping["best_value"], stopping["stopped_at"] or "")
    header = (tmp_path / "group" / "sweep_summary.md").read_text().splitlines()[0]
    assert all(f"| {column} |" in header for column in ("best_step", "best_value", "stopped_at"))


def _killed_at(folder: Path, step: int) -> None:
    """The run folder as a SIGKILL right after the checkpoint at `step` leaves it: no later
    checkpoint, no summary or params (the metrics lines after `step` a resume drops)."""
    for later in (folder / "checkpoints").iterdir():
        if later.name.isdigit() and int(later.name) > step:
            shutil.rmtree(later)
    (folder / "summary.json").unlink()
    (folder / "params.npz").unlink()


@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
def test_a_run_killed_inside_a_patience_window_resumes_bit_identical(tmp_path, group):
    saving = ["trainer.checkpoint_every=20", "trainer.keep_checkpoints=100"]
    rates = [0.01, 0.02] if group else [0.01]
    folders = [tmp_path / str(i) for i in range(len(rates))]

    def train(*extra: str) -> None:
        cfgs = [_cfg(PATIENCE, *saving, f"optimizer.lr={lr}", *extra) for lr in rates]
        if group:
            sweep.execute_all(cfgs, folders)
        else:
            jobs.execute(cfgs[0], folders[0])

    train()
    finished = [((f / "params.npz").read_bytes(), (f / "metrics.jsonl").read_text()) for f in folders]
    best_step, stop_step = _expected_stop(read_jsonl(folders[0] / "metrics.jsonl"), 4)
    inside = best_step + 40  # two evaluations into the window of four
    assert best_step < inside < stop_step and inside in steps_saved(folders[0])
    for folder in folders:
        _killed_at(folder, inside)
    train("trainer.resume=true")
    assert [((f / "params.npz").read_bytes(), (f / "metrics.jsonl").read_text()) for f in folders] == finished


def test_a_monitored_metric_the_run_does_not_record_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"^trainer.early_stopping.monitor=val_accuracy is not a metric this run "
                                        r"records; choose one of val_loss, val_rmse, val_mae, val_r2$"):
        jobs.execute(_cfg("trainer.early_stopping={monitor:val_accuracy}"), tmp_path)
    with pytest.raises(UserError, match=r"^trainer.early_stopping.monitor=val_loss is not a metric this run records; "
                                        r"this run has no validation split \(data.val_fraction=0\); set "
                                        r"data.val_fraction, e.g. 0.2$"):
        jobs.execute(_cfg(PATIENCE, "data.val_fraction=0"), tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_the_best_checkpoint_is_kept_beside_the_newest(tmp_path):
    jobs.execute(_cfg(PATIENCE, "trainer.checkpoint_every=20", "trainer.keep_checkpoints=2"), tmp_path)
    best = _summary(tmp_path)["early_stopping"]["best_step"]
    stop = _summary(tmp_path)["steps"]
    assert best < stop - 40  # not among the two newest
    assert steps_saved(tmp_path) == [best, stop - 20, stop]


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["single", "group"])
def test_a_run_sigkilled_inside_a_patience_window_resumes_bit_identical(tmp_path, cache_home, group):
    args = [sys.executable, str(ROOT / "scripts" / "train.py"), *(["-m", "hydra/sweeper=vmap"] if group else []),
            *OVERFIT[1:], PATIENCE, "trainer.checkpoint_every=20", "trainer.keep_checkpoints=100",
            *(["optimizer.lr=0.01,0.02"] if group else [])]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}

    def train(folder: Path, *extra: str) -> subprocess.Popen:
        where = f"hydra.sweep.dir={folder}" if group else f"hydra.run.dir={folder}"
        return subprocess.Popen([*args, where, *extra], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    reference = train(tmp_path / "reference")
    assert reference.wait(timeout=300) == 0, reference.stdout.read()
    first = tmp_path / "reference" / "0" if group else tmp_path / "reference"
    best_step, stop_step = _expected_stop(read_jsonl(first / "metrics.jsonl"), 4)
    inside = best_step + 40  # two evaluations into the window of four
    killed = train(tmp_path / "killed")
    for line in killed.stdout:
        if f"checkpoint at step {inside}" in line:
            killed.kill()
            break
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    resumed = train(tmp_path / "killed", "trainer.resume=true")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"from step {inside}" in out or f"from step {inside + 20}" in out  # the kill may follow the next save
    for job in (["0", "1"] if group else [""]):
        for name in ("params.npz", "metrics.jsonl"):
            assert (tmp_path / "killed" / job / name).read_bytes() == (tmp_path / "reference" / job / name).read_bytes()
