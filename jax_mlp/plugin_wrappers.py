"""The common part of jax_mlp's wrappers of Hydra's plugins (``hydra_plugins/jax_mlp_*``): each
holds Hydra's own plugin, built from the same settings, as ``hydras``, and sets it up with the
same config; the launchers launch through it under `jax_mlp.interrupts.launch_until_stopped`.

Imported whenever Hydra looks for plugins (the wrappers import it), so it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from jax_mlp.interrupts import launch_until_stopped


class Wrapping:
    """A wrapper of one of Hydra's plugins, `hydras` (the subclass builds it), which it sets up
    with its own config; `config` is None until then."""

    hydras: Any
    config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydras.setup(hydra_context=hydra_context, task_function=task_function, config=config)


class SavingLauncher(Wrapping, Launcher):
    """A wrapper of one of Hydra's launchers whose Ctrl-C lets the jobs save (see
    `jax_mlp.interrupts.launch_until_stopped`); the subclass's `launch` calls `launch_through`."""

    def launch_through(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
                       blocked_signals: Collection[int],
                       failure_after_signal: Callable[[int, Exception], str] | None = None) -> Sequence[JobReturn]:
        """Hydra's launcher's ``launch(job_overrides, initial_job_idx)`` under `launch_until_stopped`,
        with the stop file in the sweep's folder; the processes it starts inherit `blocked_signals`
        blocked."""
        assert self.config is not None
        return launch_until_stopped(Path(str(self.config.hydra.sweep.dir)),
                                    lambda: self.hydras.launch(job_overrides, initial_job_idx),
                                    blocked_signals, failure_after_signal)
