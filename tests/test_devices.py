"""Platforms and data parallelism over four CPU devices (each run in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import ROOT

from jax_mlp import config, devices, jobs

pytestmark = pytest.mark.slow


def _train(folder: Path, cache_home: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "XDG_CACHE_HOME": str(cache_home)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), f"hydra.run.dir={folder}",
                           *overrides], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_data_parallel_training_equals_one_device(tmp_path, cache_home):
    args = ["experiment=moons", "trainer.epochs=5"]
    single = _train(tmp_path / "one", cache_home, *args)
    parallel = _train(tmp_path / "four", cache_home, *args, "trainer.data_parallel=true")
    assert single.returncode == 0 and parallel.returncode == 0, single.stderr + parallel.stderr
    summary = json.loads((tmp_path / "four" / "summary.json").read_text())
    assert summary["device_count"] == 4 and summary["config"]["trainer"]["data_parallel"] is True
    with np.load(tmp_path / "one" / "params.npz") as a, np.load(tmp_path / "four" / "params.npz") as b:
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("overrides, expected", [
    (["experiment=moons", "trainer.batch_size=30"],
     "trainer.batch_size of 30 samples does not divide over the 4 devices of trainer.data_parallel; "
     "set trainer.batch_size to a multiple of 4"),
    ([], "the full batch (the training set) of 3 samples does not divide over the 4 devices"),
])
def test_a_batch_that_does_not_divide_over_the_devices_is_refused(tmp_path, cache_home, overrides, expected):
    result = _train(tmp_path, cache_home, *overrides, "trainer.data_parallel=true")
    assert result.returncode == 2
    assert result.stderr.startswith("jax_mlp: error: " + expected) and result.stderr.count("\n") == 1


@pytest.mark.parametrize(("enabled", "environ", "expected"), [
    ("auto", {}, False),
    ("auto", {"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, False),
    ("auto", {"SLURM_NTASKS": "4"}, True),
    ("auto", {"JAX_COORDINATOR_ADDRESS": "node0:1234"}, True),
    (False, {"SLURM_NTASKS": "4"}, False),
    (True, {}, True),
])
def test_the_multi_process_runtime_starts_when_a_cluster_asks(enabled, environ, expected):
    assert devices.distributed_wanted(enabled, environ) is expected


def test_the_launch_rank_comes_from_slurm_or_jax():
    assert devices.launch_rank({}) == 0
    assert devices.launch_rank({"SLURM_PROCID": "3", "JAX_PROCESS_ID": "1"}) == 3
    assert devices.launch_rank({"JAX_PROCESS_ID": "2"}) == 2


def test_only_process_zero_writes_the_run_folder(tmp_path, monkeypatch):
    cfg = config.load(config.compose(["trainer.compilation_cache=false", "trainer.steps=20"]))
    monkeypatch.setattr(jax, "process_index", lambda *args, **kwargs: 1)
    outcome = jobs.execute(cfg, tmp_path / "rank1")
    assert outcome.status == "completed" and outcome.objective < 15
    assert not (tmp_path / "rank1").exists()
    monkeypatch.undo()
    jobs.execute(cfg, tmp_path / "rank0")
    assert {p.name for p in (tmp_path / "rank0").iterdir()} == {"scaling.json", "features.json", "metrics.jsonl",
                                                              "params.npz", "summary.json"}


def test_a_second_process_keeps_hydras_files_out_of_the_run_folder(run_script, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "1")
    result = run_script("train.py", f"hydra.run.dir={tmp_path}", "trainer.steps=10")
    assert result.returncode == 0, result.stderr
    assert "step 10 loss" in result.stdout  # its log goes to its stdout
    assert not (tmp_path / ".hydra").exists() and not (tmp_path / "train.log").exists()


def test_asking_for_the_multi_process_runtime_without_a_cluster_is_one_line(train_cli):
    result, _ = train_cli("distributed.enabled=true")
    assert result.returncode == 2
    assert result.stderr.startswith("jax_mlp: error: distributed.enabled=True: jax.distributed.initialize() failed")
    assert result.stderr.count("\n") == 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_as_one_data_parallel_run(tmp_path, cache_home):
    # Two JAX processes on this machine, one CPU device each, joined by jax.distributed (gloo):
    # the same params as one process with two devices, and only process 0 writes.
    common = ["experiment=moons", "trainer.epochs=2", "trainer.data_parallel=true", "trainer.compilation_cache=false"]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("HYDRA_FULL_ERROR", None)
    port = _free_port()
    multi = [subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *common, f"hydra.run.dir={tmp_path / 'multi'}",
         "distributed.enabled=true", f"distributed.coordinator_address=127.0.0.1:{port}",
         "distributed.num_processes=2", f"distributed.process_id={rank}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**env, "JAX_PROCESS_ID": str(rank)})
        for rank in (0, 1)]
    outputs = [p.communicate(timeout=300) for p in multi]
    assert [p.returncode for p in multi] == [0, 0], outputs
    single = _train(tmp_path / "single", cache_home, *common)  # one process, four devices
    assert single.returncode == 0, single.stderr
    summary = json.loads((tmp_path / "multi" / "summary.json").read_text())
    assert summary["process_count"] == 2 and summary["device_count"] == 2
    reference = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert summary["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-4)
    with np.load(tmp_path / "multi" / "params.npz") as a, np.load(tmp_path / "single" / "params.npz") as b:
        for key in b.files:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert " epoch 2 loss " in outputs[1][0]  # process 1 logs to its stdout, writes nothing
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == [
        ".hydra", "features.json", "metrics.jsonl", "params.npz", "scaling.json", "summary.json", "train.log"]


def test_an_unusable_default_cache_folder_leaves_the_run_without_the_cache(tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a read-only home, say
    before = jax.config.jax_compilation_cache_dir
    with caplog.at_level("WARNING", logger="jax_mlp"):
        devices.configure(x64=True, compilation_cache=True, cache_dir=None)
    assert jax.config.jax_compilation_cache_dir == before
    assert caplog.messages == [f"no compilation cache: cannot make {tmp_path}/file/jax_mlp/xla (Not a directory); "
                               "set trainer.cache_dir"]
