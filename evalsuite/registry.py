"""One generic registry for runners, metrics and datasets.

Built-in entries register with the :meth:`Registry.register` decorator; third-party packages
register through Python entry points in the groups ``evalsuite.runners``, ``evalsuite.metrics``
and ``evalsuite.datasets`` (the entry point's name is the registered name, its object the
registered object). Both routes end in the same table, and a name registered twice is an error.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class RegistryError(KeyError):
    """Raised for an unknown or duplicate registry name; the message carries suggestions."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A name → object table of one kind (``runner``, ``metric``, ``dataset``).

    Args:
        kind: human name used in error messages.
        group: entry-point group scanned lazily the first time the registry is read.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, *, origin: str = "evalsuite") -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``.

        Raises:
            RegistryError: if ``name`` is already registered.
        """

        def deco(obj: T) -> T:
            self.add(name, obj, origin=origin)
            return obj

        return deco

    def add(self, name: str, obj: T, *, origin: str = "evalsuite") -> None:
        """Register ``obj`` under ``name``; raises :class:`RegistryError` on a duplicate."""
        if name in self._items and self._items[name] is not obj:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered (by {self._origin[name]}); "
                f"a second registration from {origin} was refused — rename one of them"
            )
        self._items[name] = obj
        self._origin[name] = origin

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            origin = f"entry point {ep.value}" + (f" ({dist.name})" if dist is not None else "")
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not hide the built-ins
                log.error("could not load %s plugin %r from %s: %s", self.kind, ep.name, ep.value, exc)
                continue
            self.add(ep.name, obj, origin=origin)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``.

        Raises:
            RegistryError: naming the unknown ``name`` with close matches ("did you mean").
        """
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: str, extra: list[str] | None = None) -> str:
        """The error text for an unknown ``name`` (with "did you mean" suggestions)."""
        known = sorted(set(self.names()) | set(extra or []))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}"

    def names(self) -> list[str]:
        """All registered names, built-in and plugin, sorted."""
        self._load_entry_points()
        return sorted(self._items)

    def origin(self, name: str) -> str:
        """Where ``name`` was registered from (``evalsuite`` or the plugin's entry point)."""
        self._load_entry_points()
        return self._origin[name]

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


RUNNERS: Registry = Registry("runner", "evalsuite.runners")
METRICS: Registry = Registry("metric", "evalsuite.metrics")
DATASETS: Registry = Registry("dataset", "evalsuite.datasets")
