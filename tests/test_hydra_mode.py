"""`jax_mlp.hydra_mode`: Hydra's mode probe is skipped only when nothing could set hydra.mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra._internal.hydra import Hydra

from jax_mlp import config, hydra_mode


@pytest.mark.parametrize(("argv", "expected"), [
    ([], False),
    (["optimizer.lr=0.1", "experiment=moons", "model=mlp"], False),
    (["hydra.mode=MULTIRUN"], True),
    (["+hydra.mode=MULTIRUN"], True),
    (["--config-dir", "elsewhere"], True),
    (["-cd=elsewhere"], True),
    (["hydra.searchpath=[file:///tmp]"], True),
])
def test_the_command_line_decides_when_our_configs_do_not(argv, expected):
    assert hydra_mode.can_set_mode(argv, config.CONFIG_DIR) is expected


def test_a_config_file_with_a_mode_key_keeps_the_probe(tmp_path: Path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "config.yaml").write_text("model:\n  hidden: [2]\n")  # "model:" is not "mode:"
    assert not hydra_mode.can_set_mode([], tmp_path)
    (tmp_path / "experiment" / "sweep.yaml").write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n")
    assert hydra_mode.can_set_mode([], tmp_path)


def test_the_probe_is_restored_after_the_block(tmp_path: Path):
    probe = Hydra.get_mode
    with hydra_mode.probe_skipped([], tmp_path):
        assert Hydra.get_mode is not probe and Hydra.get_mode(None, "config", []) is None
    assert Hydra.get_mode is probe
    with hydra_mode.probe_skipped(["hydra.mode=RUN"], tmp_path):
        assert Hydra.get_mode is probe


def test_only_oserrors_raised_in_hydras_code_are_taken_for_its_output_folders(tmp_path: Path):
    from hydra.core.utils import _save_config
    from omegaconf import OmegaConf

    from jax_mlp import run

    (tmp_path / "file").write_text("")
    with pytest.raises(OSError) as hydras:
        _save_config(OmegaConf.create(), "config.yaml", tmp_path / "file" / "run")  # as Hydra makes .hydra/
    with pytest.raises(OSError) as ours:
        (tmp_path / "file" / "run").mkdir()
    assert run._raised_by_hydra(hydras.value) and not run._raised_by_hydra(ours.value)
