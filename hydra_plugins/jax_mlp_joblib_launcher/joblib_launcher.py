"""``launcher=joblib``: Hydra's joblib launcher (hydra-joblib-launcher), whose Ctrl-C saves.

Ctrl-C in a terminal signals every process of the sweep. Under Hydra's own launcher the parent
process ends at once and joblib kills its workers, so the jobs in training lose the checkpoint
and summary that a single run's Ctrl-C writes. Here the parent takes the signal
(`jax_mlp.interrupts.StopRequests`): the jobs in training stop at the end of their compiled span,
save a checkpoint and write ``summary.json`` (``interrupted``), jobs not yet started do not train,
and once every worker has returned the sweep exits 130 (SIGTERM: 143). A second Ctrl-C ends the
parent at once; the workers still stop at their span's end and save. The workers start with SIGINT
blocked (`jax_mlp.interrupts.run_with_sigint_blocked`), so a Ctrl-C while one is still starting
cannot kill it (joblib would then end the others unsaved).

This module is imported whenever Hydra looks for plugins, so it imports nothing heavy at the top.
"""

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class JoblibLauncher(Launcher):
    """Hydra's `JoblibLauncher` with the same settings (``n_jobs``, ``backend``...), launching
    through it; only the handling of SIGINT and SIGTERM in the parent process differs."""

    def __init__(self, **kwargs: Any) -> None:
        from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as HydrasJoblibLauncher

        self.hydras = HydrasJoblibLauncher(**kwargs)
        self.config: Optional[DictConfig] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydras.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import signal

        from jax_mlp.interrupts import STOP_FILE_NAME, StopRequests, run_with_sigint_blocked, stopped_sweep_line

        def launch() -> Sequence[JobReturn]:
            return self.hydras.launch(job_overrides, initial_job_idx)

        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        in_workers = self.hydras.joblib.get("n_jobs") not in (1, None)  # else joblib runs the jobs right here
        if in_workers:
            from multiprocessing import resource_tracker

            # Started now, on this thread: starting it unblocks SIGINT on the calling thread (the
            # standard library's SIG_UNBLOCK, not a restore), which would let the workers take Ctrl-C.
            resource_tracker.ensure_running()
        with StopRequests(sweep_dir / STOP_FILE_NAME) as stops:
            try:
                # Workers started with SIGINT blocked: one still starting cannot die of Ctrl-C.
                returns = run_with_sigint_blocked(launch) if in_workers else launch()
            except Exception as error:
                if stops.signum is None:
                    raise
                # A worker still starting died of the signal (SIGTERM to the whole process group,
                # say), and joblib then stopped the others.
                returns, died = [], type(error).__name__
            else:
                died = None
        if stops.signum is not None:  # `jax_mlp.run.main` then writes the sweep's table
            if died is None:
                print(stopped_sweep_line(stops.signum), file=sys.stderr)
            else:
                print(f"jax_mlp: {signal.Signals(stops.signum).name}: the sweep stopped; a worker that was still "
                      f"starting died of it ({died}), and joblib ended the others without letting them save",
                      file=sys.stderr)
            sys.exit(128 + stops.signum)
        return returns
