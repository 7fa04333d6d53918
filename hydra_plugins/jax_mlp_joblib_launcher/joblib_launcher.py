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

            # Started now, on this thread: starting it unblocks SIGINT on the calling thread (the
            # standard library's SIG_UNBLOCK, not a restore), which would let the workers take Ctrl-C.
            resource_tracker.ensure_running()
        # Workers started with SIGINT blocked: one still starting cannot die of Ctrl-C.
        return self.launch_through(job_overrides, initial_job_idx, block_sigint=in_workers,
                                   failure_after_signal=_worker_died)


def _worker_died(signum: int, error: Exception) -> str:
    """The line for a sweep whose worker, still starting, died of the signal (SIGTERM to the whole
    process group, say), after which joblib stopped the others."""
    import signal

    return (f"jax_mlp: {signal.Signals(signum).name}: the sweep stopped; a worker that was still starting died "
            f"of it ({type(error).__name__}), and joblib ended the others without letting them save")
