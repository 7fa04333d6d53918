"""``hydra/sweeper=vmap``: a Hydra sweeper that trains the jobs of a sweep as vmapped programs.

It takes the basic sweeper's override grammar (comma lists, ``range()``, ``glob()``, and
``hydra.sweeper.params``), composes every job's config, groups the jobs by static structure
(`jax_mlp.sweep.structure_key`) and trains each group as one program, at most
``hydra.sweeper.max_batch`` runs at once. Every job's folder receives what the basic sweeper
writes there (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) and what a run writes
(``metrics.jsonl``, ``summary.json``, ``params.npz``, ``scaling.json``); ``multirun.yaml`` goes to
the sweep's root.

Composition is exact and cheap: Hydra composes the first job of each combination of config-group
choices; the other jobs differ from it in plain values only, which Hydra's own override machinery
applies to that composed config, after which the job's ``hydra.overrides.task`` and
``override_dirname`` are set as Hydra sets them. (No ``from __future__ import annotations`` here:
Hydra loads plugin modules without registering them, and dataclasses then cannot resolve
string annotations.)
"""

import logging
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import yaml
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf._utils import get_omega_conf_dumper

log = logging.getLogger(__name__)


def _fast_dumper() -> Optional[type]:
    """OmegaConf's YAML dumper on libyaml's C emitter, where PyYAML has it (about twice as fast)."""
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    slow = get_omega_conf_dumper()

    class FastDumper(yaml.CDumper):  # type: ignore[misc,valid-type]
        yaml_representers = dict(slow.yaml_representers)
        yaml_multi_representers = dict(slow.yaml_multi_representers)
        yaml_implicit_resolvers = slow.yaml_implicit_resolvers

    return FastDumper


class _Yaml:
    """`OmegaConf.to_yaml`, through the C emitter once it has written the same text for a node."""

    def __init__(self) -> None:
        self.dumper = _fast_dumper()
        self.checked: Dict[str, bool] = {}

    def __call__(self, node: Any, kind: str) -> str:
        """`node` as YAML; nodes of one `kind` share a structure, so one comparison vouches for all."""
        if self.dumper is None or self.checked.get(kind) is False:
            return OmegaConf.to_yaml(node)
        container = OmegaConf.to_container(node, resolve=False, enum_to_str=True)
        text = yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False,
                         Dumper=self.dumper)
        if kind not in self.checked:
            self.checked[kind] = text == OmegaConf.to_yaml(node)
            if not self.checked[kind]:
                return OmegaConf.to_yaml(node)
        return text


@dataclass
class VmapSweeperConf:
    _target_: str = "hydra_plugins.jax_mlp_vmap_sweeper.vmap_sweeper.VmapSweeper"
    max_batch: Optional[int] = None  # most runs one program trains; null: a whole group
    params: Optional[Dict[str, str]] = None  # sweep definitions, as the basic sweeper's


ConfigStore.instance().store(group="hydra/sweeper", name="vmap", node=VmapSweeperConf, provider="jax_mlp")


class VmapSweeper(Sweeper):
    """Composes every job as the basic sweeper's launcher would, writes its folder, and hands the
    jobs to `jax_mlp.sweep.execute_all`; returns one `JobReturn` a job with its objective."""

    def __init__(self, max_batch: Optional[int] = None, params: Optional[Dict[str, str]] = None) -> None:
        self.max_batch = max_batch
        self.params = params or {}
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self._groups: Dict[str, bool] = {}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context

    def job_overrides(self, arguments: List[str]) -> List[List[Override]]:
        """Every job's parsed overrides, in the basic sweeper's order."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = [f"{key}={value}" for key, value in self.params.items()]
        batches = BasicSweeper.split_arguments(parser.parse_overrides(params + arguments), None)
        lines = [list(job) for batch in batches for job in batch]
        return [parser.parse_overrides(job) for job in lines]

    def _is_value(self, override: Override) -> bool:
        """A plain ``key=value`` on a key of the task's config that is not a config group."""
        if override.is_add() or override.is_force_add() or override.is_delete() or override.is_hydra_override():
            return False
        key = override.key_or_group
        if key not in self._groups:  # Hydra builds a config repository for each look-up: cache it
            self._groups[key] = bool(self.hydra_context.config_loader.get_group_options(key))
        return not self._groups[key]

    def job_folders(self, jobs: List[List[Override]]) -> Iterator[Tuple[Any, Path]]:
        """Each job's checked `jax_mlp.config.Config` and output folder, the folder holding
        ``.hydra/`` as Hydra's `run_job` writes it.

        Hydra composes the first job of each combination of non-value overrides (config-group
        choices, additions, deletions, Hydra's own keys). The other jobs of a combination override
        the same keys with other values: Hydra's override machinery applies them to that composed
        config in place, and the job's overrides, number and folder are set in its Hydra node as
        Hydra sets them; then its files are written and its config checked, before the next job.
        """
        from jax_mlp import config as jax_mlp_config

        loader = self.hydra_context.config_loader
        to_yaml = _Yaml()
        templates: Dict[tuple, DictConfig] = {}
        for num, overrides in enumerate(jobs):
            shape = tuple(o.key_or_group if self._is_value(o) else o.input_line for o in overrides)
            if shape not in templates:
                templates[shape] = loader.load_sweep_config(self.config, [o.input_line for o in overrides])
            full = templates[shape]
            with read_write(full), open_dict(full):
                ConfigLoaderImpl._apply_overrides_to_config([o for o in overrides if self._is_value(o)], full)
            app = [o for o in overrides if not o.is_hydra_override()]
            hydra = full.hydra
            with read_write(hydra), open_dict(hydra):
                hydra.overrides.task = [o.input_line for o in app]
                hydra.job.override_dirname = get_overrides_dirname(
                    overrides=app, kv_sep=hydra.job.config.override_dirname.kv_sep,
                    item_sep=hydra.job.config.override_dirname.item_sep,
                    exclude_keys=hydra.job.config.override_dirname.exclude_keys)
                hydra.job.id = num
                hydra.job.num = num
                out = os.path.abspath(os.path.join(str(hydra.sweep.dir), str(hydra.sweep.subdir)))
                hydra.runtime.output_dir = out
            task = OmegaConf.masked_copy(full, [key for key in full if key != "hydra"])
            if hydra.output_subdir is not None:
                hydra_dir = Path(out) / str(hydra.output_subdir)
                hydra_dir.mkdir(parents=True, exist_ok=True)
                (hydra_dir / "config.yaml").write_text(to_yaml(task, f"task {shape}"))
                # What OmegaConf.to_yaml({"hydra": ...}) writes, without copying the Hydra node.
                hydra_text = to_yaml(hydra, f"hydra {shape}")
                (hydra_dir / "hydra.yaml").write_text("hydra:\n" + textwrap.indent(hydra_text, "  "))
                (hydra_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(hydra.overrides.task))
            yield jax_mlp_config.load(full), Path(out)

    def sweep(self, arguments: List[str]) -> Any:
        from jax_mlp import sweep as jax_mlp_sweep
        from jax_mlp.run import UserError, exit_user_error

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if self.max_batch is not None and self.max_batch < 1:
            exit_user_error(f"hydra.sweeper.max_batch must be null or a positive integer, got {self.max_batch}")
        jobs = self.job_overrides(arguments)
        log.info("vmap sweeper: %d jobs", len(jobs))
        try:
            configs, out_dirs = map(list, zip(*self.job_folders(jobs))) if jobs else ([], [])
            outcomes = jax_mlp_sweep.execute_all(configs, out_dirs, self.max_batch)
        except UserError as error:
            exit_user_error(str(error))
        returns = []
        for outcome in outcomes:
            ret = JobReturn(status=JobStatus.COMPLETED)
            ret.return_value = outcome.objective
            returns.append(ret)
        return [returns]
