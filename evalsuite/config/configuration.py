"""Named configurations: data (YAML) that name a runner and its parameters.

A configuration file looks like::

    name: flux-dev
    runner: flux-t2i            # a name in evalsuite.registry.RUNNERS
    description: FLUX.1-dev text-to-image baseline
    params:                     # fields of the runner's Params dataclass
      model: black-forest-labs/FLUX.1-dev
      steps: 28
      guidance: 3.5

Configurations are read from ``evalsuite/config/builtin/*.yaml`` (shipped), the folders in
``$EVALSUITE_CONFIG_DIRS`` (``os.pathsep``-separated) and any folder passed as ``config_dirs``
(``--config-dir``); nothing is picked up from the current directory. A registered runner name that
no YAML file uses as a configuration name also works as a configuration with its default
parameters (this is how an entry-point plugin runs with no YAML at all).

Overrides (``--set``) are ``[CONFIG.]FIELD=VALUE``; the value is parsed as YAML (``20``,
``3.5``, ``true``, ``[1, 2]``, ``null``). Without a configuration prefix an override applies to
every selected configuration whose runner has that field.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from evalsuite.config.coerce import coerce
from evalsuite.errors import UsageError
from evalsuite.paths import is_folder_name, search_folders
from evalsuite.registry import RUNNERS

log = logging.getLogger(__name__)

BUILTIN_CONFIG_DIR = Path(__file__).parent / "builtin"


class ConfigError(UsageError, ValueError):
    """An unknown configuration, an invalid YAML file or an invalid override."""


@dataclass(frozen=True)
class Override:
    """One ``--set`` override: ``config`` is ``None`` for "every configuration"."""

    config: str | None
    key: str
    value: Any

    @classmethod
    def parse(cls, text: str) -> Override:
        """Parse ``[CONFIG.]FIELD=VALUE``.

        Raises:
            ConfigError: when ``=`` or the field name is missing, or the value is not YAML.
        """
        if "=" not in text:
            raise ConfigError(
                f"invalid --set {text!r}: expected [CONFIG.]FIELD=VALUE, e.g. flux-cn-beta.steps=20"
            )
        lhs, _, rhs = text.partition("=")
        lhs = lhs.strip()
        config, _, key = lhs.rpartition(".")
        if not key:
            raise ConfigError(f"invalid --set {text!r}: no field name before '='")
        try:
            value = yaml.safe_load(rhs) if rhs.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid --set {text!r}: value is not valid YAML ({exc})") from exc
        return cls(config or None, key, value)


@dataclass
class Configuration:
    """A resolved configuration.

    Attributes:
        name: configuration name (``flux-dev``...).
        runner: registered runner name.
        params: the runner's Params dataclass instance with every value resolved.
        description: one line shown by ``evalsuite runners``.
        source: file it came from (or ``runner default``).
    """

    name: str
    runner: str
    params: Any
    description: str = ""
    source: str = ""
    overrides: list[str] = field(default_factory=list)

    def params_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON/YAML-serialisable)."""
        return dataclasses.asdict(self.params)

    def runner_class(self) -> type:
        """The registered runner class."""
        return RUNNERS.get(self.runner)


#: The top-level keys of a configuration file.
CONFIG_KEYS = ("name", "runner", "description", "params")
#: A configuration file whose YAML aliases would expand to more nodes than this is refused (an alias
#: bomb: a few lines that expand to gigabytes); no real configuration comes near it.
MAX_YAML_NODES = 10_000
#: The longest description copied into ``run.json`` and listed by ``evalsuite runners``.
MAX_DESCRIPTION = 1_000
#: File name endings read as configuration files.
CONFIG_SUFFIXES = (".yaml", ".yml")


def check_config_name(name: Any, where: str) -> str:
    """A configuration name is a folder name (images go to ``images/<name>/``): the rule of run ids
    (:func:`evalsuite.paths.is_folder_name`).

    Raises:
        ConfigError: naming ``where`` (the file) and the rule.
    """
    if not is_folder_name(name):
        raise ConfigError(
            f"{where}: configuration name {name!r} is not a name: a configuration name is used as a folder "
            "name (no path separators, not '.' or '..', not empty)"
        )
    return str(name)


def config_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Folders searched for configuration YAML, in priority order (later wins on a name clash).

    Raises:
        ConfigError: when a ``--config-dir`` is missing or is a file. A folder of
        ``$EVALSUITE_CONFIG_DIRS`` that does not exist is skipped with a warning naming the variable.
    """
    dirs = [BUILTIN_CONFIG_DIR, *search_folders("EVALSUITE_CONFIG_DIRS", "configurations")]
    for d in extra:
        path = Path(d)
        if path.is_file():
            raise ConfigError(f"--config-dir {path}: is a file, not a folder; pass the folder that holds it")
        if not path.is_dir():
            raise ConfigError(f"--config-dir {path}: no such folder")
        dirs.append(path)
    return dirs


def _expanded_nodes(node: Any, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once every alias is expanded (linear in distinct nodes)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once; the constructor refuses nothing else here
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_nodes(v, memo) for v in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    else:
        n = 1
    memo[id(node)] = n
    return n


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_nodes(node, {}) > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: its YAML aliases expand to more than {MAX_YAML_NODES:,} nodes; a configuration "
                "is a few parameters: write them out instead of nesting aliases"
            )
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "runner" not in data:
        raise ConfigError(f"{path}: a configuration must be a mapping with at least 'runner' and 'params'")
    unknown = [str(k) for k in data if k not in CONFIG_KEYS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, CONFIG_KEYS, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(hints)}; a configuration has {', '.join(CONFIG_KEYS)}"
        )
    description = data.get("description", "")
    if description is not None and not isinstance(description, str):
        raise ConfigError(f"{path}: description must be text, not {type(description).__name__}")
    if description and len(description) > MAX_DESCRIPTION:
        raise ConfigError(
            f"{path}: description is {len(description):,} characters; at most {MAX_DESCRIPTION:,} (one line "
            "for `evalsuite runners` and run.json)"
        )
    if "params" in data and data["params"] is not None and not isinstance(data["params"], dict):
        raise ConfigError(f"{path}: params must be a mapping of parameter: value")
    return data


def discover(extra_dirs: Iterable[str | Path] = ()) -> dict[str, tuple[dict[str, Any], Path]]:
    """All YAML configurations (``*.yaml`` and ``*.yml``) by name: ``{name: (raw mapping, path)}``.

    Raises:
        ConfigError: for an unreadable or invalid file, or a name that is not a name.
    """
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    for d in config_dirs(extra_dirs):
        for path in sorted(p for p in d.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file()):
            data = _read_yaml(path)
            name = check_config_name(data.get("name") or path.stem, str(path))
            found[name] = (data, path)
    return found


def available(extra_dirs: Iterable[str | Path] = ()) -> list[str]:
    """Names usable as configurations: YAML configurations plus plain registered runners."""
    return sorted(set(discover(extra_dirs)) | set(RUNNERS.names()))


def build_params(params_cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate ``params_cls`` from ``values`` with type checking.

    Raises:
        ConfigError: naming ``where``, the field, and close field names for a typo.
    """
    hints = typing.get_type_hints(params_cls)
    names = [f.name for f in fields(params_cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"{where}: unknown parameter {key!r}.{hint} Parameters: {', '.join(names)}")
        kwargs[key] = coerce(value, hints[key], f"{where}: parameter {key!r}", ConfigError)
    try:
        params = params_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return _validated(params, where)


def _validated(params: Any, where: str) -> Any:
    validate = getattr(params, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return params


def replace_params(params: Any, changes: dict[str, Any], where: str) -> Any:
    """A copy of the runner ``params`` with ``changes`` applied, typed and validated the way a
    configuration file's values and ``--set`` are (:func:`build_params`): the one route for every
    parameter a scenario sets (profile flags, frontier and plan points).

    Raises:
        ConfigError: naming ``where`` (e.g. the point), the field and the limit it breaks.
    """
    cls = type(params)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in changes.items():
        if key not in names:
            raise ConfigError(f"{where}: {cls.__name__} has no parameter {key!r}")
        kwargs[key] = coerce(value, hints[key], f"{where}: parameter {key!r}", ConfigError)
    try:
        new = dataclasses.replace(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return _validated(new, where)


def resolve(
    name: str,
    overrides: Sequence[Override] = (),
    extra_dirs: Iterable[str | Path] = (),
) -> Configuration:
    """Resolve configuration ``name`` with ``overrides`` applied.

    Raises:
        ConfigError: unknown configuration (with suggestions), invalid YAML or parameter.
    """
    found = discover(extra_dirs)
    if name in found:
        data, path = found[name]
        runner = str(data["runner"])
        raw = dict(data.get("params") or {})
        description = str(data.get("description", ""))
        source = str(path)
    elif name in RUNNERS:
        check_config_name(name, "registered runner")
        runner, raw, description, source = name, {}, "", "runner default"
    else:
        raise ConfigError(
            RUNNERS.unknown_message(name, extra=list(found)).replace("runner", "configuration", 1)
        )
    if runner not in RUNNERS:
        raise ConfigError(f"{source}: {RUNNERS.unknown_message(runner)}")
    cls = RUNNERS.get(runner)
    if not description:
        description = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    applied = []
    names = {f.name for f in fields(cls.Params)}
    for ov in overrides:
        if ov.config is not None and ov.config != name:
            continue
        if ov.config is None and ov.key not in names:
            continue
        raw[ov.key] = ov.value
        applied.append(f"{ov.key}={ov.value!r}")
    params = build_params(cls.Params, raw, f"configuration {name!r} ({source})")
    return Configuration(name, runner, params, description, source, applied)


def resolve_many(
    names: Sequence[str],
    overrides: Sequence[Override] = (),
    extra_dirs: Iterable[str | Path] = (),
) -> list[Configuration]:
    """Resolve several configurations; ``all`` expands to every YAML configuration.

    Raises:
        ConfigError: for an unknown name, or an override naming a configuration not selected.
    """
    expanded: list[str] = []
    for n in names:
        if n == "all":
            expanded += [c for c in discover(extra_dirs) if c not in expanded]
        elif n not in expanded:
            expanded.append(n)
    configs = [resolve(n, overrides, extra_dirs) for n in expanded]
    for ov in overrides:
        if ov.config is not None and ov.config not in expanded:
            raise ConfigError(
                f"--set {ov.config}.{ov.key}: configuration {ov.config!r} is not among those selected "
                f"({', '.join(expanded)})"
            )
        if ov.config is None and not any(ov.key in {f.name for f in fields(c.params)} for c in configs):
            raise ConfigError(f"--set {ov.key}: no selected configuration has a parameter {ov.key!r}")
    return configs
