"""What a run shows while it runs: the progress bar (on a terminal only), the config at the start
and the table of final metrics at the end."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest
from conftest import ROOT

from jax_mlp import report
from jax_mlp.logging import progress_wanted


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("enabled", "stream", "multirun", "expected"), [
    (True, _Terminal(), False, True),
    (True, io.StringIO(), False, False),   # stderr piped or redirected to a file
    (True, _Terminal(), True, False),      # a job of a multirun
    (False, _Terminal(), False, False),    # trainer.progress=false
])
def test_the_bar_shows_on_a_terminal_only(enabled, stream, multirun, expected):
    assert progress_wanted(enabled, stream, multirun) is expected


def test_the_final_metrics_table_has_a_row_a_split():
    table = report.metrics_table({"train": {"loss": 0.25, "accuracy": 0.875},
                                  "val": {"loss": 0.5, "accuracy": 1.0}, "test": {"loss": 1.5}})
    assert table.splitlines() == ["split  loss  accuracy",
                                  "train  0.25  0.875",
                                  "val    0.5   1",
                                  "test   1.5"]


def _stderr_on_a_terminal(cache_home, *overrides: str) -> tuple[int, str]:
    """Runs the train script with its stderr on a pseudo-terminal of 120 columns."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *overrides],
                               stdout=subprocess.DEVNULL, stderr=slave, cwd=ROOT, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return process.wait(timeout=300), seen.decode(errors="replace")


@pytest.mark.slow
def test_a_terminal_shows_the_bar_unless_switched_off(cache_home, tmp_path):
    status, shown = _stderr_on_a_terminal(cache_home, f"hydra.run.dir={tmp_path / 'on'}", "experiment=moons",
                                          "trainer.epochs=4", "trainer.log_every=19")
    assert status == 0
    assert "76/76" in shown and "step/s" in shown and "epoch=4.00" in shown and "samples/s=" in shown
    status, shown = _stderr_on_a_terminal(cache_home, f"hydra.run.dir={tmp_path / 'off'}", "experiment=moons",
                                          "trainer.epochs=4", "trainer.progress=false")
    assert status == 0 and "step/s" not in shown


@pytest.mark.slow
def test_a_run_prints_its_config_and_final_table_also_into_its_log(train_cli):
    result, out = train_cli("trainer.steps=10")
    assert result.returncode == 0, result.stderr
    assert "step/s" not in result.stderr  # stderr is a pipe here: no bar
    for text in (result.stdout, (out / "train.log").read_text()):
        assert "config:\n  model:\n    hidden:\n    - 2\n    - 2\n" in text
        assert f"outputs in {out}" in text
        assert "final metrics:\n  split  loss" in text and "\n  train  " in text
