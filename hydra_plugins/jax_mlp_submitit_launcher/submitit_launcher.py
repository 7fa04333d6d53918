"""``launcher=submitit_local``: Hydra's submitit local launcher (hydra-submitit-launcher), whose
Ctrl-C saves and prints no traceback.

Ctrl-C in a terminal reaches every process of the sweep. Under Hydra's own launcher each job's
submitit controller process dies of it with a traceback and kills its job a second later, whether
the job has saved or not, and the parent ends before the jobs have written their summaries. Here
the processes that submitit starts inherit SIGINT and SIGTERM blocked (they are started from a
thread that blocks them), and the parent takes the signal (`jax_mlp.interrupts.StopRequests`): the
jobs stop at the end of their compiled span, save a checkpoint and write ``summary.json``
(``interrupted``), and once every job has returned the sweep exits 130 (SIGTERM: 143). A second
Ctrl-C ends the parent at once; the jobs still save. A job unblocks SIGTERM while it trains
(`jax_mlp.interrupts.Interrupts`); one still starting is not killed by a SIGTERM to the whole
process group (which ended the sweep in submitit's UncompletedJobError traceback), and does not
train. The controllers no longer pass a SIGTERM of their own on to their jobs.

This module is imported whenever Hydra looks for plugins, so it imports nothing heavy at the top.
"""

import signal
from typing import Any, Sequence

from hydra.core.utils import JobReturn

from jax_mlp.plugin_wrappers import SavingLauncher


class LocalLauncher(SavingLauncher):
    """Hydra's submitit `LocalLauncher` with the same settings (``timeout_min``, ``cpus_per_task``...),
    launching through it; only the handling of SIGINT and SIGTERM differs."""

    def __init__(self, **kwargs: Any) -> None:
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher as HydrasLocalLauncher

        self.hydras = HydrasLocalLauncher(**kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.launch_through(job_overrides, initial_job_idx, blocked_signals=(signal.SIGINT, signal.SIGTERM))
