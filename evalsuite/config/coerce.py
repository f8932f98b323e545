"""The one typed-value coercer of evalsuite (light: no torch).

Every typed parameter a user sets goes through :func:`coerce`: a configuration's runner parameters
(YAML files and ``--set``, :func:`evalsuite.config.configuration.build_params`) and metric options
(``--metric-option``, :func:`evalsuite.metrics.base.parse_options`). Values arrive typed (YAML,
JSON) or as strings (a JSON-less ``--metric-option``, a quoted YAML value); both are read the same
way:

========================  ====================================================================
annotation                accepted
========================  ====================================================================
``bool``                  ``True``/``False``; the strings ``true``/``false``/``1``/``0`` (any case)
``int``                   an integer (not a bool); a float with no fraction; a string of an integer
``float``                 an integer or float (not a bool); a string of a number
``str``                   a string; a path-like object (its path)
``pathlib.Path``          a string or path-like object
``None``                  ``None``; the strings ``null``/``none`` (any case)
``Literal[...]``          one of the values (a string also matches a non-string value it spells)
``X | Y``, ``Optional``   the first member that accepts the value
``list[X]``, ``tuple``    a list or tuple (each item coerced); a string: comma-separated items
``dict[K, V]``            a mapping (keys and values coerced)
``Any``                   anything, unchanged
========================  ====================================================================

A value that does not fit raises a usage error (exit 2) naming where, the value and the expected
type; an annotation outside this table raises ``TypeError`` (a bug in the parameter class: the
value is never passed through unchecked).
"""

from __future__ import annotations

import collections.abc
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

from evalsuite.errors import UsageError

__all__ = ["CoercionError", "coerce", "describe", "supported"]

_NULL = ("null", "none")
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_SEQUENCES = (list, tuple, collections.abc.Sequence)
_MAPPINGS = (dict, collections.abc.Mapping)


class CoercionError(UsageError, ValueError):
    """A value that does not fit its parameter's type; the message names where, the value and the
    expected type."""


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def describe(tp: Any) -> str:
    """The expected type in words, for messages (``an integer``, ``one of a, b``, ``a list of …``)."""
    if tp is Any:
        return "any value"
    if tp is type(None) or tp is None:
        return "null"
    if _is_union(tp):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if tp in _SEQUENCES or origin in _SEQUENCES:
        inner = [a for a in args if a is not Ellipsis]
        return "a list" + (f" of {' and '.join(describe(a) for a in inner)}" if inner else "")
    if tp in _MAPPINGS or origin in _MAPPINGS:
        return "a mapping"
    words = {bool: "true/false", int: "an integer", float: "a number", str: "a string", Path: "a path"}
    return words.get(tp, repr(tp))


def supported(tp: Any) -> bool:
    """Whether :func:`coerce` knows the annotation ``tp`` (and every type inside it)."""
    if tp is Any or tp in (bool, int, float, str, Path, type(None), None):
        return True
    if tp in _SEQUENCES or tp in _MAPPINGS:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return True
    if _is_union(tp) or origin in _SEQUENCES or origin in _MAPPINGS:
        return all(a is Ellipsis or supported(a) for a in args)
    return False


def coerce(value: Any, tp: Any, where: str, error: type[UsageError] = CoercionError) -> Any:
    """``value`` as the annotated type ``tp`` (see the module docstring for what is accepted).

    Args:
        value: the value as given (typed, or a string from the command line).
        tp: the annotation (resolved: use :func:`typing.get_type_hints`).
        where: what the value is for, e.g. ``configuration 'flux-dev' (…): parameter 'steps'`` or
            ``fid.mode``; messages start with it.
        error: the usage error raised for a value that does not fit (a subclass of
            :class:`~evalsuite.errors.UsageError`, e.g. ``ConfigError``, ``MetricOptionError``).

    Raises:
        ``error``: ``{where}: expected {type}, got {value!r}``.
        TypeError: ``tp`` is an annotation the coercer does not know (a bug in the parameter class).
    """
    if not supported(tp):
        raise TypeError(
            f"{where}: the parameter is annotated {tp!r}, a type evalsuite's coercer does not know "
            "(bool, int, float, str, Path, None, Literal, unions, lists, tuples, dicts, Any)"
        )
    return _coerce(value, tp, where, error)


def _coerce(value: Any, tp: Any, where: str, error: type[UsageError]) -> Any:
    def bad() -> UsageError:
        return error(f"{where}: expected {describe(tp)}, got {value!r}")

    if tp is Any:
        return value
    if tp is type(None) or tp is None:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULL):
            return None
        raise bad()
    if _is_union(tp):
        args = typing.get_args(tp)
        if type(None) in args and (
            value is None or (isinstance(value, str) and value.strip().lower() in _NULL)
        ):
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where, error)
            except UsageError:
                continue
        raise bad()
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and not any(a is value for a in args)):
            return value
        if isinstance(value, str):
            for a in args:
                if not isinstance(a, str) and str(a).lower() == value.strip().lower():
                    return a
        raise bad()
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad()
    if tp is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError as exc:
                raise bad() from exc
        raise bad()
    if tp is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError as exc:
                raise bad() from exc
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise bad()
    if tp is Path:
        if isinstance(value, str | os.PathLike) and str(value):
            return Path(value)
        raise bad()
    if tp in _SEQUENCES or origin in _SEQUENCES:
        if isinstance(value, str):
            items: list[Any] = [s.strip() for s in value.split(",") if s.strip()]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise bad()
        if args and not (len(args) == 2 and args[1] is Ellipsis) and origin is tuple:
            if len(items) != len(args):
                raise bad()
            return tuple(
                _coerce(v, a, f"{where}[{i}]", error)
                for i, (v, a) in enumerate(zip(items, args, strict=True))
            )
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]", error) for i, v in enumerate(items)]
        return tuple(out) if tp is tuple or origin is tuple else out
    if tp in _MAPPINGS or origin in _MAPPINGS:
        if not isinstance(value, collections.abc.Mapping):
            raise bad()
        kt, vt = args if args else (Any, Any)
        return {
            _coerce(k, kt, where, error): _coerce(v, vt, f"{where}[{k!r}]", error) for k, v in value.items()
        }
    raise TypeError(f"{where}: unsupported annotation {tp!r}")  # unreachable: supported() checked it
