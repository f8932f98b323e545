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
import os
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from evalsuite.registry import RUNNERS

BUILTIN_CONFIG_DIR = Path(__file__).parent / "builtin"


class ConfigError(ValueError):
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
            raise ConfigError(f"invalid --set {text!r}: value is not valid YAML ({exc})") from None
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


def config_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Folders searched for configuration YAML, in priority order (later wins on a name clash)."""
    dirs = [BUILTIN_CONFIG_DIR]
    dirs += [Path(p) for p in os.environ.get("EVALSUITE_CONFIG_DIRS", "").split(os.pathsep) if p]
    dirs += [Path(d) for d in extra]
    return [d for d in dirs if d.is_dir()]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "runner" not in data:
        raise ConfigError(f"{path}: a configuration must be a mapping with at least 'runner' and 'params'")
    return data


def discover(extra_dirs: Iterable[str | Path] = ()) -> dict[str, tuple[dict[str, Any], Path]]:
    """All YAML configurations by name: ``{name: (raw mapping, path)}``."""
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    for d in config_dirs(extra_dirs):
        for path in sorted(d.glob("*.yaml")):
            data = _read_yaml(path)
            name = str(data.get("name") or path.stem)
            found[name] = (data, path)
    return found


def available(extra_dirs: Iterable[str | Path] = ()) -> list[str]:
    """Names usable as configurations: YAML configurations plus plain registered runners."""
    return sorted(set(discover(extra_dirs)) | set(RUNNERS.names()))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(v, inner, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    return value


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
        kwargs[key] = _coerce(value, hints[key], f"{where}: parameter {key!r}")
    try:
        params = params_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return _validated(params, where)


def _validated(params: Any, where: str) -> Any:
    validate = getattr(params, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
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
        kwargs[key] = _coerce(value, hints[key], f"{where}: parameter {key!r}")
    try:
        new = dataclasses.replace(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
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
