"""``hydra/sweeper=vmap``: a Hydra sweeper that trains the jobs of a sweep as vmapped programs.

It takes the basic sweeper's override grammar (comma lists, ``range()``, ``glob()``, and
``hydra.sweeper.params``), composes every job's config, groups the jobs by static structure
(`jax_mlp.sweep.structure_key`) and trains each group as one program, at most
``hydra.sweeper.max_batch`` runs at once. Every job's folder receives what the basic sweeper
writes there (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) and what a run writes
(``metrics.jsonl``, ``summary.json``, ``params.npz``, ``scaling.json``, and ``checkpoints/`` when
training saves or is stopped); ``multirun.yaml`` goes to the sweep's root.

Composition is exact and cheap: Hydra composes the first job of each combination of config-group
choices; the other jobs differ from it in plain values only, which Hydra's own override machinery
applies to that composed config, after which the job's ``hydra.overrides.task`` and
``override_dirname`` are set as Hydra sets them.

Private APIs, each because Hydra offers no public way (guarded by tests/test_private_apis.py):
``hydra._internal.config_loader_impl.ConfigLoaderImpl._apply_overrides_to_config`` (a job's values
applied as Hydra applies them), ``get_overrides_dirname`` (its ``override_dirname``),
``hydra._internal.core_plugins.basic_sweeper.BasicSweeper.split_arguments`` (the basic sweeper's
grammar) and ``omegaconf._utils.get_omega_conf_dumper`` (YAML as OmegaConf writes it). Hydra is
pinned below 1.4. (No ``from __future__ import annotations`` here:
Hydra loads plugin modules without registering them, and dataclasses then cannot resolve
string annotations.)
"""

import logging
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
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


def _dumper() -> type:
    """The dumper of `OmegaConf.to_yaml`, on libyaml's C emitter where PyYAML has it (about twice
    as fast; `_Template` checks that it writes the same text, and `_yaml` keeps strings of several
    lines from it)."""
    slow = get_omega_conf_dumper()
    if not getattr(yaml, "__with_libyaml__", False):
        return slow

    class FastDumper(yaml.CDumper):  # type: ignore[misc,valid-type]
        yaml_representers = dict(slow.yaml_representers)
        yaml_multi_representers = dict(slow.yaml_multi_representers)
        yaml_implicit_resolvers = slow.yaml_implicit_resolvers

    return FastDumper


_DUMPER = _dumper()
_EXACT_DUMPER = get_omega_conf_dumper()


def _multiline(value: Any) -> bool:
    """Whether a plain container holds a string of several lines."""
    if isinstance(value, str):
        return "\n" in value
    if isinstance(value, dict):
        return any(_multiline(v) for v in value.values())
    return isinstance(value, list) and any(_multiline(v) for v in value)


def _yaml(container: Any) -> str:
    """A plain container as `OmegaConf.to_yaml` writes the config it came from.

    libyaml's emitter folds long quoted strings of several lines (a help template, say) at other
    places than PyYAML's own, so those go through OmegaConf's own dumper.
    """
    dumper = _EXACT_DUMPER if _DUMPER is not _EXACT_DUMPER and _multiline(container) else _DUMPER
    return yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=dumper)


def _plain(node: Any) -> Any:
    """A config container as `OmegaConf.to_yaml` sees it: interpolations unresolved, enums as names."""
    return OmegaConf.to_container(node, resolve=False, enum_to_str=True)


def _replaced(tree: Any, path: Tuple[str, ...], value: Any) -> Any:
    """A copy of the plain `tree` with `value` at `path` (dict keys or list indices); only the
    containers along the path are copied."""
    if not path:
        return value
    head = int(path[0]) if isinstance(tree, list) else path[0]
    copy = list(tree) if isinstance(tree, list) else dict(tree)
    copy[head] = _replaced(tree[head], path[1:], value)
    return copy


# The fields of the Hydra node that differ between the jobs of a sweep, as `_job_fields` sets them.
_JOB_FIELDS = ("overrides.task", "job.override_dirname", "job.id", "job.num", "runtime.output_dir")


def _nested(path: Tuple[str, ...], value: Any) -> Dict[str, Any]:
    """``{path[0]: {path[1]: ... value}}``."""
    for key in reversed(path):
        value = {key: value}
    return value


class _BlockYaml:
    """The YAML text of plain mappings that differ from each other only at known paths.

    A block mapping's text is the concatenation of its entries' texts, and an entry whose value is
    a non-empty mapping is its ``key:`` line and then its own entries'. The text of an entry with
    no changing path beneath it is written once and kept.
    """

    def __init__(self) -> None:
        self.kept: Dict[Tuple[str, ...], str] = {}

    def text(self, doc: Dict[str, Any], changing: List[Tuple[str, ...]]) -> str:
        """`doc` as `OmegaConf.to_yaml` writes it; only the values at `changing` paths (and at
        the paths these are under) may differ from those of earlier calls."""
        return "".join(self._entry((key,), value, changing) for key, value in doc.items())

    def _entry(self, path: Tuple[str, ...], value: Any, changing: List[Tuple[str, ...]]) -> str:
        beneath = [c for c in changing if c[:len(path)] == path]
        if not beneath and path in self.kept:
            return self.kept[path]
        if isinstance(value, dict) and value and all(len(c) > len(path) for c in beneath):
            header = _yaml(_nested(path, {"_": None})).splitlines(keepends=True)[len(path) - 1]
            text = header + "".join(self._entry(path + (key,), v, changing) for key, v in value.items())
        else:  # the entry's lines, below the lines of the mappings it sits in
            text = "".join(_yaml(_nested(path, value)).splitlines(keepends=True)[len(path) - 1:])
        if not beneath:
            self.kept[path] = text
        return text


class _Template:
    """The composed config of one combination of non-value overrides, and its jobs' files.

    Its first job is written the exact way (`VmapSweeper._exact`: Hydra's nodes, OmegaConf's
    YAML, `jax_mlp.config.load`). The other jobs differ from it only in the values of the sweep's
    plain overrides and in the Hydra fields of `_JOB_FIELDS`: `render` reads those values back from
    the config (after Hydra's machinery has applied them, with its conversions), puts them into
    plain copies of the first job's containers, and writes the YAML of what they change
    (`_BlockYaml`). `fast` says whether rendering the first job gave exactly the exact way's texts
    and config; if not, every job of the template takes the exact way.
    """

    def __init__(self, full: DictConfig, task: DictConfig, cfg: Any) -> None:
        self.full = full
        self.task = _plain(task)
        self.hydra = _plain(full.hydra)
        self.task_yaml, self.hydra_yaml = _BlockYaml(), _BlockYaml()
        self.cfg = cfg
        self.fast = False

    def render(self, values: List[Override], job: Dict[str, Any]) -> Tuple[Tuple[str, str, str], Any]:
        """The three ``.hydra`` texts and the checked `jax_mlp.config.Config` of a job whose
        `values` overrides have been applied to `self.full`, with Hydra fields `job`."""
        from jax_mlp import config as jax_mlp_config

        task = self.task
        for override in values:
            parent = override.key_or_group.rpartition(".")[0]
            if parent:
                task = _replaced(task, tuple(parent.split(".")), _plain(OmegaConf.select(self.full, parent)))
            else:
                task = {**task, **_plain(OmegaConf.masked_copy(self.full, [override.key_or_group]))}
        hydra = self.hydra
        for field, value in job.items():
            hydra = _replaced(hydra, tuple(field.split(".")), value)
        texts = (
            self.task_yaml.text(task, [tuple(o.key_or_group.split(".")) for o in values]),
            self.hydra_yaml.text({"hydra": hydra}, [("hydra", *field.split(".")) for field in job]),
            _yaml(job["overrides.task"]),
        )
        changed = {override.key_or_group.split(".")[0] for override in values}
        return texts, jax_mlp_config.reload(self.cfg, self.full, changed)


class _Writer:
    """Writes the jobs' ``.hydra`` files on threads of their own: the file system's latency (up to
    a millisecond a file on some machines) overlaps composing, training and itself."""

    NAMES = ("config.yaml", "hydra.yaml", "overrides.yaml")

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vmap-sweeper-files")
        self.pending: List[Future] = []

    def write(self, folder: Path, texts: Tuple[str, str, str]) -> None:
        """Schedules `folder` (made if need be) and its three files, in `NAMES` order."""
        self.pending.append(self.pool.submit(self._write, folder, texts))

    @classmethod
    def _write(cls, folder: Path, texts: Tuple[str, str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in zip(cls.NAMES, texts):
            (folder / name).write_text(text)

    def close(self) -> None:
        """Waits for every write; raises the first one's error."""
        self.pool.shutdown(wait=True)
        for future in self.pending:
            future.result()


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
        # The jobs run in this process, whose logging Hydra configured from hydra_logging; the
        # levels job_logging gives to loggers (JAX's start-up notes, Orbax's) apply to them too.
        loggers = OmegaConf.select(config, "hydra.job_logging.loggers", default=None) or {}
        for name, spec in loggers.items():
            if spec is not None and "level" in spec:
                logging.getLogger(name).setLevel(spec.level)

    def job_overrides(self, arguments: List[str]) -> List[List[Override]]:
        """Every job's parsed overrides, in the basic sweeper's order."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = [f"{key}={value}" for key, value in self.params.items()]
        batches = BasicSweeper.split_arguments(parser.parse_overrides(params + arguments), None)
        # Each distinct line is parsed once: the jobs of a sweep repeat each other's lines.
        lines = list(dict.fromkeys(line for batch in batches for job in batch for line in job))
        parsed = dict(zip(lines, parser.parse_overrides(lines)))
        return [[parsed[line] for line in job] for batch in batches for job in batch]

    def _is_value(self, override: Override) -> bool:
        """A plain ``key=value`` on a key of the task's config that is not a config group."""
        if override.is_add() or override.is_force_add() or override.is_delete() or override.is_hydra_override():
            return False
        key = override.key_or_group
        if key not in self._groups:  # Hydra builds a config repository for each look-up: cache it
            self._groups[key] = bool(self.hydra_context.config_loader.get_group_options(key))
        return not self._groups[key]

    def job_folders(self, jobs: List[List[Override]], writer: "_Writer") -> Iterator[Tuple[Any, Path]]:
        """Each job's checked `jax_mlp.config.Config` and output folder, the folder holding
        ``.hydra/`` as Hydra's `run_job` writes it.

        Hydra composes the first job of each combination of non-value overrides (config-group
        choices, additions, deletions, Hydra's own keys). The other jobs of a combination override
        the same keys with other values: Hydra's override machinery applies them to that composed
        config in place, and `_Template.render` writes their texts; `writer` puts them in the
        folder while the next job is composed.
        """
        loader = self.hydra_context.config_loader
        templates: Dict[tuple, _Template] = {}
        for num, overrides in enumerate(jobs):
            values = [o for o in overrides if self._is_value(o)]
            shape = tuple(o.key_or_group if self._is_value(o) else o.input_line for o in overrides)
            template = templates.get(shape)
            lines = [o.input_line for o in overrides]
            full = template.full if template else loader.load_sweep_config(self.config, lines)
            with read_write(full), open_dict(full):
                ConfigLoaderImpl._apply_overrides_to_config(values, full)
            job = self._job_fields(full.hydra, [o for o in overrides if not o.is_hydra_override()], num)
            if template is None:
                texts, task, cfg = self._exact(full, job)
                template = templates[shape] = _Template(full, task, cfg)
                template.fast = template.render(values, job) == (texts, cfg)
                if not template.fast:  # a bug of ours, or a Hydra that writes differently: slower, still exact
                    log.warning("vmap sweeper: composing every job like %s one by one (slower)", shape)
            elif template.fast:
                texts, cfg = template.render(values, job)
            else:
                texts, _, cfg = self._exact(full, job)
            out = Path(job["runtime.output_dir"])
            if full.hydra.output_subdir is not None:
                writer.write(out / str(full.hydra.output_subdir), texts)
            yield cfg, out

    @staticmethod
    def _job_fields(hydra: DictConfig, app: List[Override], num: int) -> Dict[str, Any]:
        """The values of `_JOB_FIELDS` for job `num` with task overrides `app`, as Hydra sets them
        (``job.id`` is a string by its schema). ``job.id`` and ``job.num`` are set on the node here
        too: the output folder's ``hydra.sweep.subdir`` usually interpolates the number."""
        with read_write(hydra), open_dict(hydra):
            hydra.job.id = num
            hydra.job.num = num
        dirname = hydra.job.config.override_dirname
        return {
            "overrides.task": [o.input_line for o in app],
            "job.override_dirname": get_overrides_dirname(
                overrides=app, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys),
            "job.id": hydra.job.id,
            "job.num": num,
            "runtime.output_dir": os.path.abspath(os.path.join(str(hydra.sweep.dir), str(hydra.sweep.subdir))),
        }

    @staticmethod
    def _exact(full: DictConfig, job: Dict[str, Any]) -> Tuple[Tuple[str, str, str], DictConfig, Any]:
        """A job's ``.hydra`` texts the way Hydra writes them (its fields set on the Hydra node,
        then `OmegaConf.to_yaml`), its task config, and `jax_mlp.config.load` of it."""
        from jax_mlp import config as jax_mlp_config

        hydra = full.hydra
        with read_write(hydra), open_dict(hydra):
            for field, value in job.items():
                OmegaConf.update(hydra, field, value)
        task = OmegaConf.masked_copy(full, [key for key in full if key != "hydra"])
        texts = (OmegaConf.to_yaml(task), OmegaConf.to_yaml(OmegaConf.masked_copy(full, ["hydra"])),
                 OmegaConf.to_yaml(hydra.overrides.task))
        return texts, task, jax_mlp_config.load(full)

    def sweep(self, arguments: List[str]) -> Any:
        from jax_mlp import files
        from jax_mlp import sweep as jax_mlp_sweep
        from jax_mlp.errors import UserError, exit_user_error
        from jax_mlp.interrupts import Interrupts
        from jax_mlp.report import counted

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            files.make_folder(sweep_dir, "hydra.sweep.dir")
        except UserError as error:
            exit_user_error(str(error))
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if self.max_batch is not None and self.max_batch < 1:
            exit_user_error(f"hydra.sweeper.max_batch must be null or a positive integer, got {self.max_batch}")
        jobs = self.job_overrides(arguments)
        log.info("vmap sweeper: %s", counted(len(jobs), "job"))
        launcher = str(OmegaConf.select(self.config, "hydra.launcher._target_", default=""))
        if launcher and not launcher.endswith(".BasicLauncher"):
            log.warning("the vmap sweeper trains its jobs in this process, as vmapped programs; the launcher "
                        "(%s) is not used", launcher.rsplit(".", 1)[-1])
        writer = _Writer()
        with Interrupts() as interrupts:  # Ctrl-C stops the group in training, as it stops a single run
            try:
                configs, out_dirs = map(list, zip(*self.job_folders(jobs, writer))) if jobs else ([], [])
                outcomes = jax_mlp_sweep.execute_all(configs, out_dirs, self.max_batch, interrupts)
            except UserError as error:
                exit_user_error(str(error))
            finally:
                writer.close()
        stopped = jax_mlp_sweep.interruption(outcomes)
        if stopped is not None:
            print(f"jax_mlp: {stopped.message}", file=sys.stderr)
            sys.exit(stopped.exit_code)
        returns = []
        for outcome in outcomes:
            ret = JobReturn(status=JobStatus.COMPLETED)
            ret.return_value = outcome.objective
            returns.append(ret)
        return [returns]
