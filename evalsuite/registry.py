"""One generic registry for runners, metrics and datasets.

Every entry is a name → object table row. An entry can be *lazy*: its object is named by a
``"module:attribute"`` string, an entry point, or just ``"module"`` (a module that registers the
name by decorator when imported), and is imported the first time :meth:`Registry.get` asks for
it — so listing names (``evalsuite --help``, ``evalsuite runners``) imports no model code.

Two ways in, one table:

* **Decorator** — ``@RUNNERS.register("name")`` on the class (or :meth:`Registry.add`). The built-in
  runners and metrics are decorated in their modules *and* listed in the lazy tables below
  (``BUILTIN_RUNNERS``, ``BUILTIN_METRICS``, ``BUILTIN_DATASETS``), which say where to find them
  without importing them; importing the module resolves the lazy entry.
* **Entry points** — a third-party package declares ``name = "package.module:Class"`` in the group
  ``evalsuite.runners``, ``evalsuite.metrics`` or ``evalsuite.datasets``; the entry point's name is
  the registered name and it is loaded on first use.

A name registered twice (by two different objects) is an error naming both origins; an unknown
name is an error with "did you mean" suggestions. A loaded object must be a subclass of the
registry's base class (:class:`~evalsuite.runners.base.Runner` for runners,
:class:`~evalsuite.metrics.base.Metric` for metrics; a callable for datasets), otherwise
:class:`RegistryError` says what it is and what it should be.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from evalsuite.errors import UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Built-in runners: registered name → the module whose ``@RUNNERS.register`` decorator registers it
#: (imported on first use).
BUILTIN_RUNNERS: dict[str, str] = {
    "flux-t2i": "evalsuite.runners.flux",
    "flux-inpaint": "evalsuite.runners.inpaint",
    "flux-fill": "evalsuite.runners.inpaint",
    "flux-cn-inpaint": "evalsuite.runners.flux_controlnet",
    "sdxl-inpaint": "evalsuite.runners.sdxl",
}

#: Built-in metrics: registered name → the module whose ``@METRICS.register`` decorator registers it.
BUILTIN_METRICS: dict[str, str] = {
    "latency": "evalsuite.metrics.latency",
    **{
        n: "evalsuite.metrics.quality"
        for n in (
            "fid",
            "clip_score",
            "clip_score_masked",
            "clip_score_mlperf",
            "unmasked_mse",
            "unmasked_mse_brushbench",
            "unmasked_psnr_brushbench",
            "unmasked_psnr",
            "unmasked_ssim",
            "unmasked_lpips",
            "lpips_pair",
        )
    },
    **{
        n: "evalsuite.metrics.preference"
        for n in (
            "aesthetic",
            "aesthetic_masked",
            "pickscore",
            "pickscore_masked",
            "hpsv21",
            "hpsv21_masked",
            "imagereward",
            "imagereward_masked",
        )
    },
    "ocr_sentence_accuracy": "evalsuite.metrics.ocr",
    "ocr_ned": "evalsuite.metrics.ocr",
    **{n: "evalsuite.metrics.distribution" for n in ("cmmd", "fd_dinov2", "prdc", "prdc_dinov2")},
}

#: Built-in dataset loaders: registered name → ``"module:function"`` (a ``:`` names the object itself).
BUILTIN_DATASETS: dict[str, str] = {
    "brushbench": "evalsuite.data.loaders.brushbench:load_brushbench",
    "coco2014": "evalsuite.data.loaders.coco:load_coco2014",
    "csv": "evalsuite.data.loaders.folder:load_csv",
    "folder": "evalsuite.data.loaders.folder:load_folder",
}


class RegistryError(UsageError, KeyError):
    """Raised for an unknown, duplicate, unloadable or wrong-type registry entry; the message says why."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def lazy_attribute(package: str, exports: Mapping[str, str], namespace: dict[str, Any], name: str) -> Any:
    """The body of a package's PEP 562 ``__getattr__``: ``exports`` maps each public name to the
    module that defines it; the value is imported on first access and kept in ``namespace`` (the
    package's ``globals()``), so later accesses skip ``__getattr__``.

    Raises:
        AttributeError: ``name`` is not one of ``exports``.
    """
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def import_target(target: str) -> Any:
    """The object named by ``"package.module:attr.sub"`` (the entry-point syntax)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def _names_object(target: str | EntryPoint, obj: Any) -> bool:
    """Whether the lazy ``target`` is where ``obj`` lives (``module:qualname``, or just ``module``)."""
    text = target.value if isinstance(target, EntryPoint) else target
    module, _, attr = text.partition(":")
    if getattr(obj, "__module__", None) != module.strip():
        return False
    return not attr or getattr(obj, "__qualname__", None) == attr.strip()


class Registry(Generic[T]):
    """A name → object table of one kind (``runner``, ``metric``, ``dataset``).

    Args:
        kind: human name used in error messages.
        group: entry-point group scanned (names only, nothing imported) the first time the
            registry is read.
        base: ``"module:Class"`` every registered object must subclass (checked when the object
            is registered or loaded), or ``None``.
        require_callable: without ``base``, whether objects must at least be callable.
        builtins: lazy entries registered from the start, origin ``evalsuite``.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        base: str | None = None,
        require_callable: bool = False,
        builtins: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.base = base
        self.require_callable = require_callable
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str | EntryPoint] = {}
        self._origin: dict[str, str] = {}
        self._entry_points_loaded = False
        for name, target in (builtins or {}).items():
            self.add_lazy(name, target)

    # ------------------------------------------------------------------ registering
    def register(self, name: str, *, origin: str = "evalsuite") -> Callable[[T], T]:
        """Decorator registering the decorated class (or function) under ``name``.

        Raises:
            RegistryError: if ``name`` is taken by another object, or the object has the wrong type.
        """

        def deco(obj: T) -> T:
            self.add(name, obj, origin=origin)
            return obj

        return deco

    def add(self, name: str, obj: T, *, origin: str = "evalsuite") -> None:
        """Register ``obj`` under ``name``.

        A lazy entry whose target names this very object (the module of a built-in being imported)
        is resolved to it; anything else already under ``name`` makes this a duplicate.
        """
        if name in self._lazy:
            if not _names_object(self._lazy[name], obj):
                self._duplicate(name, origin)
            del self._lazy[name]
            origin = self._origin[name]
        elif name in self._items and self._items[name] is not obj:
            self._duplicate(name, origin)
        self._check_type(name, obj, origin)
        self._items[name] = obj
        self._origin[name] = origin

    def add_lazy(self, name: str, target: str | EntryPoint, *, origin: str = "evalsuite") -> None:
        """Register ``name`` as ``"module:attr"`` (or an entry point), imported on first :meth:`get`."""
        if name in self._items or name in self._lazy:
            self._duplicate(name, origin)
        self._lazy[name] = target
        self._origin[name] = origin

    def _duplicate(self, name: str, origin: str) -> None:
        raise RegistryError(
            f"{self.kind} {name!r} is already registered (by {self._origin[name]}); "
            f"a second registration from {origin} was refused — rename one of them"
        )

    def _check_type(self, name: str, obj: Any, origin: str) -> None:
        if self.base is None:
            if not self.require_callable:
                return
            ok, want = callable(obj), "a callable"
        else:
            base = import_target(self.base)
            ok = isinstance(obj, type) and issubclass(obj, base)
            want = f"a subclass of {base.__module__}.{base.__qualname__}"
        if not ok:
            what = f"class {obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else repr(obj)
            raise RegistryError(
                f"{self.kind} {name!r} from {origin} is {what}, not {want}; "
                f"a {self.kind} plugin must be {want}"
            )

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            origin = f"entry point {ep.value}" + (f" ({dist.name})" if dist is not None else "")
            try:
                self.add_lazy(ep.name, ep, origin=origin)
            except RegistryError as exc:  # a clashing plugin must not hide the built-ins
                log.error("%s", exc)

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing it if it is lazy.

        Raises:
            RegistryError: for an unknown ``name`` (with close matches: "did you mean"), or an
                entry that cannot be imported or has the wrong type.
        """
        self._load_entry_points()
        if name in self._items:
            return self._items[name]
        if name not in self._lazy:
            raise RegistryError(self.unknown_message(name))
        target, origin = self._lazy[name], self._origin[name]
        where = target.value if isinstance(target, EntryPoint) else target
        try:
            obj = target.load() if isinstance(target, EntryPoint) else import_target(target)
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() at import must not end evalsuite
            raise RegistryError(
                f"{self.kind} {name!r} ({origin}) could not be loaded from {where}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if name in self._lazy:  # importing the module did not register it by decorator
            if ":" not in where:
                raise RegistryError(
                    f"{self.kind} {name!r} ({origin}): module {where} was imported but registers no "
                    f"{self.kind} of that name (is its @register decorator named differently?)"
                )
            self._check_type(name, obj, origin)
            del self._lazy[name]
            self._items[name] = obj
        return self._items[name]

    def unknown_message(self, name: str, extra: list[str] | None = None) -> str:
        """The error text for an unknown ``name`` (with "did you mean" suggestions)."""
        known = sorted(set(self.names()) | set(extra or []))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}"

    def names(self) -> list[str]:
        """All registered names, built-in and plugin, sorted (nothing is imported)."""
        self._load_entry_points()
        return sorted(set(self._items) | set(self._lazy))

    def origin(self, name: str) -> str:
        """Where ``name`` was registered from (``evalsuite`` or the plugin's entry point)."""
        self._load_entry_points()
        return self._origin[name]

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


RUNNERS: Registry = Registry(
    "runner", "evalsuite.runners", base="evalsuite.runners.base:Runner", builtins=BUILTIN_RUNNERS
)
METRICS: Registry = Registry(
    "metric", "evalsuite.metrics", base="evalsuite.metrics.base:Metric", builtins=BUILTIN_METRICS
)
DATASETS: Registry = Registry(
    "dataset", "evalsuite.datasets", require_callable=True, builtins=BUILTIN_DATASETS
)
