"""``launcher=joblib``: Hydra's joblib launcher (hydra-joblib-launcher), whose Ctrl-C saves.

Ctrl-C in a terminal signals every process of the sweep. Under Hydra's own launcher the parent
process ends at once and joblib kills its workers, so the jobs in training lose the checkpoint
and summary that a single run's Ctrl-C writes. Here the parent takes the signal
(`jax_mlp.interrupts.StopRequests`): the jobs in training stop at the end of their compiled span,
save a checkpoint and write ``summary.json`` (``interrupted``), jobs not yet started do not train,
and once every worker has returned the sweep exits 130 (SIGTERM: 143). A second Ctrl-C ends the
parent at once; the workers still stop at their span's end and save. The workers start with SIGINT
and SIGTERM blocked (`jax_mlp.interrupts.run_with_signals_blocked`), so a Ctrl-C, or a SIGTERM to
the whole process group (a cluster's time limit), cannot kill one that is still starting (joblib
would then end the others unsaved); a job unblocks SIGTERM while it trains
(`jax_mlp.interrupts.Interrupts`), and one that it reached while the worker started does not train.

This module is imported whenever Hydra looks for plugins, so it imports nothing heavy at the top.
"""

import signal
from typing import Any, Sequence

from hydra.core.utils import JobReturn

from jax_mlp.plugin_wrappers import SavingLauncher


class JoblibLauncher(SavingLauncher):
    """Hydra's `JoblibLauncher` with the same settings (``n_jobs``, ``backend``...), launching
    through it; only the handling of SIGINT and SIGTERM in the parent process differs."""

    def __init__(self, **kwargs: Any) -> None:
        from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as HydrasJoblibLauncher

        self.hydras = HydrasJoblibLauncher(**kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        in_workers = self.hydras.joblib.get("n_jobs") not in (1, None)  # else joblib runs the jobs right here
        if in_workers:
            from multiprocessing import resource_tracker

            # Started now, on this thread: starting it unblocks SIGINT and SIGTERM on the calling
            # thread (the standard library's SIG_UNBLOCK, not a restore), which would let them
            # reach the workers.
            resource_tracker.ensure_running()
        # Workers started with SIGINT and SIGTERM blocked: one still starting cannot die of them.
        blocked = (signal.SIGINT, signal.SIGTERM) if in_workers else ()
        return self.launch_through(job_overrides, initial_job_idx, blocked_signals=blocked,
                                   failure_after_signal=_worker_died)


def _worker_died(signum: int, error: Exception) -> str:
    """The line for a sweep in which a worker died after the signal (killed outright: the signals
    the workers block cannot kill them), after which joblib ended the others."""
    return (f"jax_mlp: {signal.Signals(signum).name}: the sweep stopped; a worker died ({type(error).__name__}), "
            "and joblib ended the others without letting them save")
