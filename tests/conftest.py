"""Test-wide JAX settings and helpers.

float64 is on for every test (code under test keeps dtypes explicit, so float32 paths stay
float32), and implicit rank promotion raises so that shape mistakes surface.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An XDG cache folder shared by the subprocesses of one test session."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def run_script(cache_home: Path):
    """Runs ``python scripts/<name> args...`` in a subprocess; returns the CompletedProcess."""

    def run(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
        env.pop("HYDRA_FULL_ERROR", None)
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / name), *args],
            capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=300,
        )

    return run


@pytest.fixture
def train_cli(run_script, tmp_path: Path):
    """Runs ``scripts/train.py`` with its run folder in tmp_path; returns (process, folder)."""

    def train(*overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
        out = tmp_path / "run"
        return run_script("train.py", f"hydra.run.dir={out}", *overrides), out

    return train


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def steps_saved(run_dir: Path) -> list[int]:
    """The steps of the checkpoints in a run folder's ``checkpoints/``, in order."""
    return sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())


def corrupt_checkpoint(step_dir: Path) -> None:
    """Halves every data file of one step's checkpoint folder (Orbax's metadata left whole)."""
    for file in step_dir.rglob("*"):
        if file.is_file() and file.stat().st_size > 0 and "metadata" not in file.name.lower():
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def job_folder(folder: Path, overrides: list[str], summary: dict | None = None, began: bool = False) -> Path:
    """A sweep's job folder as Hydra and a run leave it: ``.hydra/overrides.yaml``, then
    ``metrics.jsonl`` once it began training, ``summary.json`` once it ended; returns `folder`."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if began:
        (folder / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuses test names built from binary data or object addresses.

    pytest-xdist's workers collect separately and must agree on every name; bytes with a time stamp
    in them (gzip) or an object's repr differ between processes, and CI then stops at collection.
    Give such parameters ``ids=``.
    """
    unstable = [item.nodeid for item in items if "\\x" in item.nodeid or " at 0x" in item.nodeid]
    if unstable:
        raise pytest.UsageError(f"give these parameters ids= (their names differ between processes): {unstable}")
