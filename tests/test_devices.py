"""Platforms and data parallelism over four CPU devices (each run in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

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
