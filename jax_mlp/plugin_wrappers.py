"""The common part of jax_mlp's wrappers of Hydra's plugins (``hydra_plugins/jax_mlp_*``): each
holds Hydra's own plugin, built from the same settings, as ``hydras``, and sets it up with the
same config; the launchers launch through it under `jax_mlp.interrupts.launch_until_stopped`.

Imported whenever Hydra looks for plugins (the wrappers import it), so it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from jax_mlp.interrupts import launch_until_stopped

#: Hydra's own options that name a plugin jax_mlp wraps, and the wrapper each one chooses instead.
WRAPPED_OPTIONS: dict[str, str] = {
    "hydra/launcher/joblib": "hydra_plugins.jax_mlp_joblib_launcher.joblib_launcher.JoblibLauncher",
    "hydra/launcher/submitit_local": "hydra_plugins.jax_mlp_submitit_launcher.submitit_launcher.LocalLauncher",
    "hydra/sweeper/optuna": "hydra_plugins.jax_mlp_optuna_sweeper.optuna_sweeper.OptunaSweeper",
}


def choose_wrappers() -> None:
    """Points Hydra's own options of the wrapped plugins (`WRAPPED_OPTIONS`: ``hydra/launcher=joblib``
    and ``submitit_local``, ``hydra/sweeper=optuna``) at jax_mlp's wrappers, keeping each option's
    settings and defaults, so Hydra's spelling and ``launcher=joblib`` launch alike.

    Call before composing. Options of plugins that are not installed are left out.
    """
    from hydra.core.plugins import Plugins
    from hydra.plugins.config_source import ConfigLoadError

    # Hydra's first look for plugins runs each plugin's module, which stores Hydra's option again.
    Plugins.instance()
    store = ConfigStore.instance()
    for option, wrapper in WRAPPED_OPTIONS.items():
        group, name = option.rsplit("/", 1)
        try:
            settings = store.load(f"{option}.yaml").node
        except ConfigLoadError:
            continue
        settings._target_ = wrapper
        store.store(group=group, name=name, node=settings, provider="jax_mlp")


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
