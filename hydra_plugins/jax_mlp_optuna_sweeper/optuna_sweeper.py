"""``hparams_search=optuna``: Hydra's Optuna sweeper (hydra-optuna-sweeper) with the same settings,
whose study continues without repeating itself and whose stopped search finishes.

Two things Hydra's sweeper does not do:

- **Continuing a stored study.** Run again on a study that holds trials (the same sweep folder,
  whose ``optuna.db`` holds it, or ``hydra.sweeper.storage`` pointing at another), Hydra's sweeper
  draws from a sampler seeded as before, so a seeded search asks for its first trials all over
  again, and numbers the job folders from 0 over the earlier ones. Here the seed is offset by the
  number of trials the study holds, and the folders are numbered after the sweep folder's last (so
  are a new study's, one kept in memory for instance, in a folder that holds an earlier search).
- **Finishing a stopped search.** Ctrl-C stops a search with its trial in training saved
  (``interrupted``) and its study's trial left running; so are the trials of its batch that had
  finished (``hydra.sweeper.n_jobs`` > 1), since the sweeper tells a batch only once it has
  returned. With ``trainer.resume=true`` and the same sweep folder, the running trials whose job
  finished are told their objectives from its ``summary.json``, the others are trained again in
  their own folders, resuming from their checkpoints, and told; then the search asks for the trials
  it still lacks: ``hydra.sweeper.n_trials`` counts every job folder of the sweep. A search whose
  study was not stored (``hydra.sweeper.storage=null``) cannot be finished: its job folders are
  refused with one line, rather than trained on with another trial's parameters.

A running trial's folder is found by its overrides: the folder whose ``.hydra/overrides.yaml``
holds each of the trial's parameter values, one without a finished ``summary.json`` first, else
the newest.

Private APIs of hydra-optuna-sweeper, which has no public ones for this (guarded by
tests/test_private_apis.py): its implementation object's settings (``n_trials``, ``params``,
``storage``, ``study_name``, ``sampler``, ``job_idx``, ``launcher``), read and set before a search,
and ``_impl.create_params_from_overrides`` and ``create_optuna_distribution_from_override``, which
read a search's parameters as it does.

This module is imported whenever Hydra looks for plugins, so it imports nothing heavy at the top.
"""

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from jax_mlp.plugin_wrappers import Wrapping
from jax_mlp.report import read_summary

log = logging.getLogger(__name__)
FINISHED = ("completed", "diverged")  # summary.json statuses of a job whose trial was told


class OptunaSweeper(Wrapping, Sweeper):
    """Hydra's `OptunaSweeper` with the same settings, sweeping through it (see the module's text)."""

    def __init__(self, **kwargs: Any) -> None:
        from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as HydrasOptunaSweeper

        self.hydras = HydrasOptunaSweeper(**kwargs)

    def sweep(self, arguments: List[str]) -> None:
        assert self.config is not None
        impl = self.hydras.sweeper
        if impl.n_trials < 1:  # Hydra's sweeper then failed on the best of no trials: "Record does not exist."
            from jax_mlp.errors import exit_user_error

            exit_user_error(f"hydra.sweeper.n_trials must be a positive integer, got {impl.n_trials}")
        _check_search_space([*(f"{k}={v}" for k, v in (impl.params or {}).items()), *arguments])
        study = _stored_study(impl.storage, impl.study_name)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        jobs = _job_folders(sweep_dir)
        resume = OmegaConf.select(self.config, "trainer.resume") is True
        if study is not None and study.trials:
            if resume:
                self._finish_running_trials(study, jobs, arguments)
                impl.n_trials = max(0, impl.n_trials - len(jobs))
                log.info("Optuna: %d of the sweep's trials are done; %d to go", len(jobs), impl.n_trials)
            impl.sampler = _offset_seed(impl.sampler, self.config.hydra.sweeper.sampler, len(study.trials))
        elif jobs and resume:
            from jax_mlp.errors import exit_user_error

            exit_user_error(_no_study_to_finish(sweep_dir, impl.storage, impl.study_name))
        # Job folders numbered after the sweep folder's last: Hydra's sweeper numbers them from 0,
        # over an earlier search's (a study in memory, or another study, in the same folder).
        impl.job_idx = max(jobs, default=-1) + 1
        return self.hydras.sweep(arguments)

    def _finish_running_trials(self, study: Any, jobs: Dict[int, Path], arguments: List[str]) -> None:
        """Tells `study` the objective of each of its running trials: from the ``summary.json`` of
        its job folder among `jobs` when the job finished, else by training it again there (it
        resumes from its checkpoint)."""
        from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

        fixed = create_params_from_overrides(arguments)[1]  # this command's plain values: trainer.resume=true
        stopped = []
        for job, trial in _running_jobs(study, jobs):
            objective = _finished_objective(jobs[job])
            if objective is None:
                stopped.append((job, trial))
                continue
            study.tell(trial.number, values=[objective])
            log.info("Optuna: trial %d finished in job folder %d before the search stopped; objective %g",
                     trial.number, job, objective)
        for start, block in _consecutive(stopped):
            overrides = [_trial_overrides(trial, fixed) for _, trial in block]
            for job, trial in block:
                log.info("Optuna: trial %d trains on in job folder %d", trial.number, job)
            returns = self.hydras.sweeper.launcher.launch(overrides, initial_job_idx=start)
            for (_, trial), ret in zip(block, returns):
                _tell(study, trial, ret)


def _check_search_space(overrides: List[str]) -> None:
    """Ends the process with one line naming the first parameter of the search (``hydra.sweeper.params``
    and the command's sweep overrides) whose distribution Optuna refuses, and why: a reversed or
    empty interval, a log scale from zero or below. Optuna's own message names no parameter."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    for override in OverridesParser.create().parse_overrides(overrides):
        try:
            create_optuna_distribution_from_override(override)
        except ValueError as error:
            from jax_mlp.errors import exit_user_error

            exit_user_error(f"{override.input_line}: {error}")


def _stored_study(storage: Optional[str], name: Optional[str]) -> Any:
    """The study `name` in `storage`, or None (no storage, or no such study)."""
    if storage is None or name is None:
        return None
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # optuna's "no such study"
        return None


def _no_study_to_finish(sweep_dir: Path, storage: Optional[str], name: Optional[str]) -> str:
    """Why ``trainer.resume=true`` cannot finish the search in `sweep_dir`, which holds job folders
    but no stored study of trials to match them to."""
    if storage is None:
        why = "its study was kept in memory (hydra.sweeper.storage=null), and with it the trials' parameters"
    elif name is None:
        why = "its study has no name (hydra.sweeper.study_name=null), so it cannot be found again"
    else:
        why = f"{storage} holds no trials of a study named {name!r}"
    return (f"trainer.resume=true cannot finish the Optuna search in {sweep_dir}: {why}; a search resumes "
            "from a stored, named study (hparams_search=optuna keeps one in the sweep folder), or start "
            "another in a new hydra.sweep.dir")


def _job_folders(sweep_dir: Path) -> Dict[int, Path]:
    """The sweep's job folders by job number (folders named by a number and holding ``.hydra/``)."""
    if not sweep_dir.is_dir():
        return {}
    return {int(p.name): p for p in sweep_dir.iterdir() if p.name.isdigit() and (p / ".hydra").is_dir()}


def _finished_objective(job_dir: Path) -> Optional[float]:
    """The objective of a job that finished (``completed``, or ``diverged``: inf), else None."""
    summary = read_summary(job_dir) or {}
    return float(summary["objective"]) if summary.get("status") in FINISHED else None


def _running_jobs(study: Any, jobs: Dict[int, Path]) -> List[Tuple[int, Any]]:
    """(job number, trial) of each running trial of `study` and its job folder among `jobs`: one
    whose overrides hold the trial's parameter values, preferring an unfinished one, else the
    newest (an earlier folder of equal values holds an earlier trial); by job number."""
    import yaml
    from optuna.trial import TrialState

    overrides = {job: set(yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or [])
                 for job, folder in jobs.items()}
    unfinished = {job for job, folder in jobs.items() if _finished_objective(folder) is None}
    matched: Dict[int, Any] = {}
    for trial in (t for t in study.trials if t.state == TrialState.RUNNING):
        values = {f"{k}={v}" for k, v in trial.params.items()}
        candidates = [job for job in jobs if job not in matched and values <= overrides[job]]
        if candidates:
            matched[max(candidates, key=lambda job: (job in unfinished, job))] = trial
    return sorted(matched.items(), key=lambda item: item[0])


def _consecutive(jobs: Sequence[Tuple[int, Any]]) -> List[Tuple[int, List[Tuple[int, Any]]]]:
    """`jobs` (sorted by job number) cut into runs of consecutive numbers: (first number, run)."""
    blocks: List[Tuple[int, List[Tuple[int, Any]]]] = []
    for job, trial in jobs:
        if blocks and job == blocks[-1][0] + len(blocks[-1][1]):
            blocks[-1][1].append((job, trial))
        else:
            blocks.append((job, [(job, trial)]))
    return blocks


def _trial_overrides(trial: Any, fixed: Dict[str, Any]) -> Tuple[str, ...]:
    """A running trial's overrides as Hydra's sweeper makes them: its parameters, then the plain
    values it ran with (its user attributes) as this command sets them."""
    values = {**trial.params, **trial.user_attrs, **fixed}
    return tuple(f"{name}={value}" for name, value in values.items())


def _tell(study: Any, trial: Any, ret: Any) -> None:
    """Tells `study` the objective of `trial` from its job's return, or that it failed."""
    from optuna.trial import TrialState

    try:
        study.tell(trial.number, values=[float(ret.return_value)])
    except Exception as error:  # the job raised (JobReturn re-raises it), as Hydra's sweeper counts it
        study.tell(trial.number, state=TrialState.FAIL)
        log.warning("Failed experiment: %s", error)


def _offset_seed(sampler: Any, sampler_config: DictConfig, offset: int) -> Any:
    """The sampler of `sampler_config` seeded with its seed + `offset` (a continued study draws
    anew); `sampler` itself when the config sets no seed."""
    seed = OmegaConf.select(sampler_config, "seed")
    if seed is None:
        return sampler
    from hydra.utils import instantiate

    log.info("Optuna: the study holds %d trials; its sampler is seeded with %d + %d", offset, seed, offset)
    return instantiate(sampler_config, seed=seed + offset)
