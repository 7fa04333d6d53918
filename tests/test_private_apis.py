"""The private APIs of other libraries that jax_mlp relies on, each where no public way exists: one
row a name, with what uses it and why, so that a release that moves one fails here, by name,
rather than somewhere deep in a sweep."""

from __future__ import annotations

import importlib
import inspect

import pytest

PRIVATE = [
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl._apply_overrides_to_config",
     "hydra_plugins/jax_mlp_vmap_sweeper applies each job's values to the first job's composed config "
     "with Hydra's own override machinery (composing every job again costs ~20 ms a job)"),
    ("hydra._internal.config_loader_impl", "get_overrides_dirname",
     "hydra_plugins/jax_mlp_vmap_sweeper sets each job's hydra.job.override_dirname as Hydra does"),
    ("hydra._internal.core_plugins.basic_sweeper", "BasicSweeper.split_arguments",
     "hydra_plugins/jax_mlp_vmap_sweeper expands the basic sweeper's grammar (lists, range, glob) as it does"),
    ("omegaconf._utils", "get_omega_conf_dumper",
     "hydra_plugins/jax_mlp_vmap_sweeper writes the jobs' .hydra/*.yaml byte for byte as OmegaConf does"),
    ("hydra_plugins.hydra_optuna_sweeper._impl", "create_params_from_overrides",
     "hydra_plugins/jax_mlp_optuna_sweeper reads a stopped search's parameters as Hydra's sweeper does"),
    ("hydra_plugins.hydra_optuna_sweeper._impl", "create_optuna_distribution_from_override",
     "hydra_plugins/jax_mlp_optuna_sweeper names the parameter whose search space Optuna refuses"),
    ("omegaconf", "DictConfig._get_node",
     "jax_mlp/config.py (_check_known_keys) walks a config's nodes without resolving interpolations"),
    ("omegaconf", "DictConfig._is_none", "jax_mlp/config.py (_check_known_keys), as above"),
    ("omegaconf", "DictConfig._is_missing", "jax_mlp/config.py (_check_known_keys), as above"),
    ("threading", "_shutdown", "jax_mlp/run.py (exit_after) joins threads as the interpreter's exit does"),
    ("atexit", "_run_exitfuncs", "jax_mlp/run.py (exit_after) runs the exit hooks before its fast exit"),
]


@pytest.mark.parametrize("module, name, why", PRIVATE, ids=[f"{m}:{n}" for m, n, _ in PRIVATE])
def test_a_private_api_jax_mlp_uses_is_still_there(module, name, why):
    try:
        found = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{module}.{name} is gone or moved ({error}); {why}")
    assert callable(found), f"{module}.{name} is no longer a function; {why}"


# Hydra's Optuna sweeper keeps its settings on its private implementation object, which
# hydra_plugins/jax_mlp_optuna_sweeper reads and changes before each search: the study's trials
# left to ask (n_trials), the sampler's seed offset (sampler), the first job folder's number
# (job_idx), where the study lives (storage, study_name), and the launcher of a stopped batch.
OPTUNA_ATTRIBUTES = ("n_trials", "params", "storage", "study_name", "sampler", "job_idx", "launcher")


def test_hydras_optuna_sweeper_keeps_the_settings_the_wrapper_reads():
    impl = pytest.importorskip("hydra_plugins.hydra_optuna_sweeper._impl").OptunaSweeperImpl
    assigned = inspect.getsource(impl)
    missing = [name for name in OPTUNA_ATTRIBUTES if f"self.{name} =" not in assigned]
    assert not missing, (f"Hydra's OptunaSweeperImpl no longer sets {missing}; hydra_plugins/jax_mlp_optuna_sweeper "
                         "continues and finishes searches through them")
