"""The Hydra task and the command line: config -> `jax_mlp.jobs.execute` -> objective.

`main` is the command-line edge: it starts Hydra, turns a user's mistake into one line on stderr
and exit status 2, a diverged single run into exit status 3, and SIGINT / SIGTERM into a checkpoint,
an ``interrupted`` summary and exit status 130 / 143. This is the one module that knows Hydra's
runtime; the work is done by `jax_mlp.jobs`, which knows nothing of Hydra.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import math
import os
import shutil
import signal
import sys
import sysconfig
import textwrap
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from jax_mlp import config, devices, interrupts, report
from jax_mlp.errors import UserError, exit_user_error
from jax_mlp.jobs import execute, finished_run, newest_checkpoint_step, refuse_renumbered_jobs
from jax_mlp.logging import progress_wanted
from jax_mlp.outputs import NOT_STARTED, UNFINISHED

log = logging.getLogger("jax_mlp")
INTERRUPTED_EXIT_CODES = (128 + signal.SIGINT, 128 + signal.SIGTERM)
# The sweepers whose rerun with trainer.resume=true finishes a stopped sweep (Hydra's own Optuna
# sweeper would ask for other trials).
RESUMABLE_SWEEPERS = (".BasicSweeper", ".VmapSweeper", "jax_mlp_optuna_sweeper.optuna_sweeper.OptunaSweeper")


def run(cfg: DictConfig) -> float:
    """The Hydra task: loads and checks `cfg`, trains, and returns the objective to minimise.

    Raises:
      UserError: a bad config or input, before any output is written.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    checked = config.load(cfg)
    if Path.cwd() != Path(hydra_cfg.runtime.cwd):  # hydra.job.chdir=true: relative paths meant the command's folder
        checked = config.with_paths_from(checked, Path(hydra_cfg.runtime.cwd))
    out_dir = Path(hydra_cfg.runtime.output_dir)
    log.info("config:\n%s", textwrap.indent(OmegaConf.to_yaml(cfg, resolve=True).rstrip(), "  "))
    log.info("outputs in %s", out_dir)
    worker = interrupts.stop_file() is not None  # a job in a launcher's worker process
    if worker:
        # The parent process takes Ctrl-C and tells the workers (interrupts.StopRequests): a
        # worker that raised or died would make joblib kill the others while they save.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if interrupts.requested_stop() is not None:
            log.info("not started: the sweep is stopping")
            return math.inf
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if multirun and (finished := finished_run(checked, out_dir)) is not None:
        log.info("this job of the sweep completed before it stopped (objective %g); not trained again",
                 finished.objective)
        return finished.objective
    if multirun:
        checked = _resumed_in_sweep(checked, out_dir)
    shown = sys.stderr if progress_wanted(checked.trainer.progress, sys.stderr, multirun) else None
    with interrupts.worker_job() if worker else contextlib.nullcontext():
        outcome = execute(checked, out_dir, progress=shown)
    if outcome.message:
        # A sweep's job leaves the advice to the sweep: "to finish the sweep, run the same command...".
        hint = "" if multirun or outcome.status != "interrupted" else \
            f"; continue with trainer.resume=true hydra.run.dir={out_dir}"
        print(f"jax_mlp: {outcome.message}{hint}", file=sys.stderr)
    # A diverged job of a sweep ends normally (objective inf) so the sweep goes on; a signal ends
    # all (in a worker, the parent ends the sweep once every worker has returned).
    if (outcome.status == "interrupted" and not worker) or (outcome.status == "diverged" and not multirun):
        sys.exit(outcome.exit_code)
    return outcome.objective


def _resumed_in_sweep(checked: config.Config, out_dir: Path) -> config.Config:
    """A sweep's job: with ``trainer.resume=true`` and no checkpoint in `out_dir`, the config
    without it (the job starts from step 0), so that rerunning a stopped sweep finishes it; else
    `checked` as it is. A single run without a checkpoint is refused instead, and so is a job whose
    checkpoints a run of other values saved (`refuse_renumbered_jobs`)."""
    if checked.trainer.resume is not True:
        return checked
    if newest_checkpoint_step(checked, out_dir) is not None:
        refuse_renumbered_jobs([checked], [out_dir])
        return checked
    log.info("trainer.resume: no checkpoint in %s; this job of the sweep starts from step 0", out_dir)
    return dataclasses.replace(checked, trainer=dataclasses.replace(checked.trainer, resume=False))


class SweepSummary(Callback):
    """A Hydra callback: at the end of a multirun, the sweep summary table at the sweep's root.

    A multirun that a signal or a job's error ends never reaches Hydra's end of multirun; `main`
    then calls `write_for_stopped_sweep`, so the jobs that ran are still tabled.
    """

    in_progress: DictConfig | None = None  # the config of the multirun between its start and end

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        SweepSummary.in_progress = config

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        SweepSummary.in_progress = None
        _write_sweep_summary(config, missing="failed")

    @classmethod
    def write_for_stopped_sweep(cls, interrupted: bool) -> None:
        """Writes the summary of a multirun that stopped before its end, if one was in progress and
        has job folders: after a signal, always (jobs without ``summary.json`` are ``not started``,
        or ``unfinished`` if they began training); after an error, if a job wrote ``summary.json``
        (the others are ``failed``). After a signal, a resumable sweep's line
        (`RESUMABLE_SWEEPERS`) says how to finish it."""
        config, cls.in_progress = cls.in_progress, None
        if config is None:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = report.sweep_rows(sweep_dir, missing="")
        if not rows or not interrupted and not any(row["status"] for row in rows):
            return
        if interrupted:
            _write_sweep_summary(config, missing=NOT_STARTED, started=UNFINISHED)
        else:
            _write_sweep_summary(config, missing="failed")
        if interrupted and str(OmegaConf.select(config, "hydra.sweeper._target_")).endswith(RESUMABLE_SWEEPERS):
            print(_how_to_finish(config, sweep_dir), file=sys.stderr)


def _how_to_finish(config: DictConfig, sweep_dir: Path) -> str:
    """The last line of a resumable sweep that a signal stopped."""
    sweeper = config.hydra.sweeper
    if str(sweeper._target_).endswith("OptunaSweeper") and None in (sweeper.storage, sweeper.study_name):
        return ("jax_mlp: this Optuna search cannot be finished: its study is not stored under a name "
                "(hydra.sweeper.storage and study_name; hparams_search=optuna sets both)")
    return f"jax_mlp: to finish the sweep, run the same command with trainer.resume=true hydra.sweep.dir={sweep_dir}"


def _write_sweep_summary(config: DictConfig, missing: str, started: str | None = None) -> None:
    """`report.write_sweep_summary` for the multirun of `config`, and its picture if asked for."""
    sweep_dir = Path(config.hydra.sweep.dir)
    rows = report.write_sweep_summary(sweep_dir, missing, started)
    if rows and OmegaConf.select(config, "trainer.plots", default=False):
        from jax_mlp import plots

        plots.sweep_plot(sweep_dir, rows)
    if rows and math.isfinite(rows[0]["objective"]):
        log.info("sweep summary of %s in %s; best: %s (objective %.6g)", report.counted(len(rows), "job"),
                 sweep_dir, rows[0]["overrides"] or "(no overrides)", rows[0]["objective"])
    elif rows:
        log.info("sweep summary of %s in %s; none has a finite objective", report.counted(len(rows), "job"),
                 sweep_dir)


def _task(cfg: DictConfig) -> float:
    try:
        # Hydra keeps a job's ValueError until its batch of jobs has run; an interrupt ends the sweep now.
        with interrupts.unhidden():
            return run(cfg)
    except UserError as error:
        _remove_unused_run_folder()
        exit_user_error(str(error))


def _remove_unused_run_folder() -> None:
    """After a user error in a single run: removes the run folder (and the empty folders Hydra made
    above it in this one) when it holds only what Hydra wrote there for this command, its
    ``.hydra/`` and the job's log, so that a refused run leaves no folder behind."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN or not out.is_dir():
        return
    written = list(out.iterdir())
    hydra_own = {str(hydra_cfg.output_subdir), f"{hydra_cfg.job.name}.log"}
    if not {path.name for path in written} <= hydra_own or any(path.stat().st_mtime < _STARTED for path in written):
        return
    shutil.rmtree(out, ignore_errors=True)
    here = Path.cwd()
    for parent in out.parents:
        if parent == here or not parent.is_relative_to(here) or any(parent.iterdir()):
            break
        parent.rmdir()


_STARTED = time.time() - 1  # before Hydra makes the run folder (its files' times have a coarse clock)
def main() -> None:
    """The command line: ``python scripts/train.py [overrides] [-m]``."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # Let composition errors reach us instead of Hydra's multi-line report, so they end as one line
    # (whatever the user's environment says: HYDRA_FULL_ERROR=0 would print Hydra's report, status 1).
    os.environ["HYDRA_FULL_ERROR"] = "1"
    interrupts.terminate_as_interrupt()
    config.register()
    if {"--help", "-h"} & set(sys.argv[1:]) and not any(a.startswith("hydra/help=") for a in sys.argv[1:]):
        sys.argv.append("hydra/help=jax_mlp")  # conf/hydra/help/jax_mlp.yaml, parsed for --help only
    if devices.launch_rank(os.environ) > 0:
        # One process of a multi-process run: process 0 writes the run folder, so this one keeps
        # Hydra's .hydra/ files and log file out of it (and logs to its stdout).
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    app = hydra.main(config_path=str(config.CONFIG_DIR), config_name="config", version_base="1.3")(_task)
    try:
        try:
            with interrupts.unhidden():  # a sweeper's own training (hydra/sweeper=vmap)
                app()
        except (SystemExit, KeyboardInterrupt) as stop:
            SweepSummary.write_for_stopped_sweep(interrupted=isinstance(stop, KeyboardInterrupt)
                                                 or stop.code in INTERRUPTED_EXIT_CODES)
            raise
    except (HydraException, OmegaConfBaseException) as error:
        exit_user_error(config.describe_error(error))
    except ValueError as error:  # Hydra's checks of its flags (`-m --cfg job`), Optuna's of a search's space
        if not _raised_by_hydra(error, also=("optuna",)):
            raise
        exit_user_error(config.describe_error(error))
    except OSError as error:
        if error.filename is None or not _raised_by_hydra(error):
            raise
        exit_user_error(f"cannot make Hydra's output folder {error.filename} ({error.strerror}); choose "
                        "another with hydra.run.dir=PATH (a sweep: hydra.sweep.dir=PATH)")


def _raised_by_hydra(error: BaseException, also: tuple[str, ...] = ()) -> bool:
    """Whether `error` was raised in Hydra's code or one of its plugins' (making a run's or a
    sweep's folder), or in one of the packages named in `also` that is imported (``optuna``: a
    search's space), rather than in ours: the innermost frame outside the standard library decides."""
    import hydra

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    outside = [Path(frame.f_code.co_filename) for frame, _ in traceback.walk_tb(error.__traceback__)
               if not Path(frame.f_code.co_filename).is_relative_to(stdlib)]
    if not outside:
        return False
    innermost = outside[-1]
    packages = [hydra, *(sys.modules[name] for name in also if name in sys.modules)]
    return (any(innermost.is_relative_to(Path(package.__file__).parent) for package in packages)
            or any(part.startswith("hydra_") and parent == "hydra_plugins"
                   for parent, part in zip(innermost.parts, innermost.parts[1:])))


def exit_after(entry_point: Callable[[], Any]) -> NoReturn:
    """Runs a command-line `entry_point` and ends the process with its exit status, skipping the
    interpreter's teardown of modules.

    Tearing down JAX's and Hydra's modules takes about 0.3 s, a fifth of a short run. Every output
    file is closed (and every checkpoint finished) before `entry_point` returns. What a normal exit
    would still do is done here: threads are joined and their exit hooks run (a joblib launcher's
    worker processes are stopped there), then the `atexit` functions; the log handlers and standard
    streams are flushed. Only for scripts: it never returns to its caller.
    """
    try:
        entry_point()
        status = 0
    except SystemExit as stop:
        status = stop.code
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM outside training (which stops at a span's end and saves)
        signum = getattr(stop, "signum", signal.SIGINT)  # interrupts.Terminated's: SIGTERM
        print(f"jax_mlp: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        status = 128 + signum
    if not isinstance(status, int):  # sys.exit("message") prints it and exits with 1
        if status is not None:
            print(status, file=sys.stderr)
        status = 0 if status is None else 1
    # The standard library's private exit steps (tests/test_private_apis.py): no public call runs them.
    getattr(threading, "_shutdown", lambda: None)()  # what the interpreter's exit calls first
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
