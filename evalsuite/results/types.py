"""Typed records of a run directory: ``run.json`` (:class:`RunMeta`, its ``configs.<name>`` entries
:class:`ConfigEntry` and ``summary.<config>`` entries :class:`Summary`) and one journal row (:class:`Row`).

Each record is a dataclass with ``from_dict``/``to_dict``. The fields are the ones docs/run-format.md
documents (``tests/test_results_types.py`` keeps the two in step); every other key — a sweep row's
kind-specific fields, a metric's column, a field a later version adds — is kept in ``extra``, so
``from_dict(d).to_dict()`` gives back ``d`` itself: the same keys, in the same order, with the same
values (``json.dumps`` of both is byte-identical). A record read with ``from_dict`` remembers its key
order; a field assigned afterwards is written after the keys it was read with. A record built in code
writes its fields in declaration order: those in ``ALWAYS`` (written as ``null`` when ``None``), every
other field only when it is not ``None``, then ``extra``.

Nothing here imports anything but the standard library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, cast

__all__ = ["ConfigEntry", "Record", "Row", "RunMeta", "Summary", "record_fields"]


class Record:
    """Base of the typed records (see the module docstring)."""

    #: fields written even when ``None`` by a record built in code
    ALWAYS: ClassVar[frozenset[str]] = frozenset()
    #: fields holding nested records: name → (record class, container: "one" | "dict")
    NESTED: ClassVar[dict[str, tuple[type[Record], str]]] = {}

    extra: dict[str, Any]
    _keys: list[str] | None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The record's typed fields (its JSON keys), in declaration order."""
        return record_fields(cls)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The record of ``data`` (unknown keys into ``extra``; ``data`` is not modified)."""
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict: expected a JSON object, got {type(data).__name__}")
        plan = _plan(cls)
        names, nested = plan.names, cls.NESTED
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in data.items():
            if k in names:
                known[k] = _nested_from(nested.get(k), v) if nested else v
            else:
                extra[k] = v
        if plan.template is None or not plan.required <= known.keys():
            # the dataclass constructor (a subclass with its own __init__; a missing required field
            # raises its TypeError)
            obj: Self = cast(Any, cls)(**known, extra=extra)
            object.__setattr__(obj, "_keys", list(data))
            return obj
        # what the generated __init__ would do, without a __setattr__ call per field: every field in
        # declaration order, the given value or the default (a fresh one from a default factory)
        state = dict(plan.template)
        state.update(known)
        for name, factory in plan.factories:
            if name not in known:
                state[name] = factory()
        state["extra"] = extra
        state["_keys"] = list(data)
        obj = cls.__new__(cls)
        object.__setattr__(obj, "__dict__", state)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object it is stored as (see the module docstring)."""
        names = self.field_names()
        out: dict[str, Any] = {}
        keys = self._keys
        if keys is not None:
            for k in keys:
                if k in names:
                    out[k] = _nested_to(getattr(self, k))
                elif k in self.extra:
                    out[k] = self.extra[k]
        defaults = _defaults(type(self))
        for k in names:
            if k in out:
                continue
            v = getattr(self, k)
            if keys is None:
                write = v is not None or k in self.ALWAYS
            else:  # read from JSON: a field it lacked is written only once it holds something
                write = v is not None and v != defaults.get(k)
            if write:
                out[k] = _nested_to(v)
        for k, v in self.extra.items():
            if k not in out:
                out[k] = v
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """A field or an ``extra`` key by its JSON name (``default`` when absent or ``None``)."""
        v = getattr(self, key) if key in self.field_names() else self.extra.get(key)
        return default if v is None else v

    def unset(self, name: str) -> None:
        """Remove field ``name`` from the JSON object (it becomes ``None`` and is no longer written)."""
        object.__setattr__(self, name, None)
        if self._keys is not None and name in self._keys:
            self._keys.remove(name)

    def __setattr__(self, name: str, value: Any) -> None:
        keys = getattr(self, "_keys", None)
        if keys is not None and name not in keys and name in self.field_names():
            keys.append(name)  # assigned after reading: written after the keys it was read with
        object.__setattr__(self, name, value)


_FIELDS: dict[type, tuple[str, ...]] = {}
_DEFAULTS: dict[type, dict[str, Any]] = {}


@dataclass(frozen=True)
class _Plan:
    """How :meth:`Record.from_dict` builds a record of one class (computed once per class).

    Attributes:
        names: the JSON fields.
        required: fields without a default (the constructor refuses a record without them).
        template: every dataclass field in declaration order → its default (``None`` for required
            fields and those with a default factory), or ``None`` when the class must be built by
            calling it (it defines ``__post_init__`` or inherits its ``__init__``).
        factories: (field, default factory) of the fields whose default is made per record.
    """

    names: frozenset[str]
    required: frozenset[str]
    template: dict[str, Any] | None
    factories: tuple[tuple[str, Any], ...]


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        required = frozenset(
            f.name
            for f in fields
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        own_init = "__init__" in vars(cls) and "__dataclass_fields__" in vars(cls)
        plain = own_init and not hasattr(cls, "__post_init__") and not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        unset = any(
            not f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            for f in fields
        )
        template = None
        if plain and not unset:
            template = {f.name: None if f.default is dataclasses.MISSING else f.default for f in fields}
        factories = tuple(
            (f.name, f.default_factory)
            for f in fields
            if f.default_factory is not dataclasses.MISSING and f.name != "extra"
        )
        plan = _PLANS[cls] = _Plan(frozenset(record_fields(cls)), required, template, factories)
    return plan


def record_fields(cls: type) -> tuple[str, ...]:
    """The JSON fields of a record class (its dataclass fields but ``extra`` and private ones)."""
    if cls not in _FIELDS:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        _FIELDS[cls] = tuple(f.name for f in fields if f.name != "extra" and not f.name.startswith("_"))
    return _FIELDS[cls]


def _defaults(cls: type) -> dict[str, Any]:
    if cls not in _DEFAULTS:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        _DEFAULTS[cls] = out
    return _DEFAULTS[cls]


def _nested_from(spec: tuple[type[Record], str] | None, v: Any) -> Any:
    if spec is None or v is None:
        return v
    kind, container = spec
    if container == "one":
        return kind.from_dict(v) if isinstance(v, dict) else v
    if isinstance(v, dict):
        return {k: kind.from_dict(e) if isinstance(e, dict) else e for k, e in v.items()}
    return v


def _nested_to(v: Any) -> Any:
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, dict) and any(isinstance(e, Record) for e in v.values()):
        return {k: e.to_dict() if isinstance(e, Record) else e for k, e in v.items()}
    return v


def _extra() -> Any:
    return field(default_factory=dict, repr=False)


def _keys() -> Any:
    # set by from_dict only; dataclasses.replace gives a record built in code (no shared key list)
    return field(default=None, init=False, repr=False, compare=False)


@dataclass(eq=True)
class ConfigEntry(Record):
    """``run.json`` ``configs.<name>``: how a configuration (or a sweep point) was resolved and loaded."""

    ALWAYS = frozenset({"runner", "description", "source", "params", "weights"})

    runner: str | None = None
    description: str | None = None
    source: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    overrides: list[Any] | None = None
    weights: str | None = None
    load_error: str | None = None
    config_hash: str | None = None
    load_s: float | None = None
    effective: dict[str, Any] | None = None
    batch_size_after_oom: int | None = None
    point: str | None = None
    strategy: str | None = None
    phase: str | None = None
    extra: dict[str, Any] = _extra()
    _keys: list[str] | None = _keys()


@dataclass(eq=True)
class Summary(Record):
    """``run.json`` ``summary.<config>``: row counts and metric aggregates of one configuration."""

    ALWAYS = frozenset({"counts", "metrics"})

    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    scoring_errors: dict[str, Any] | None = None
    extra: dict[str, Any] = _extra()
    _keys: list[str] | None = _keys()


@dataclass(eq=True)
class RunMeta(Record):
    """``run.json``: what the run is (docs/run-format.md). ``configs`` and ``summary`` hold typed
    entries; the kind's own block (``profile``, ``frontier``, ``plan``) stays a plain object."""

    ALWAYS = frozenset(
        {
            "schema",
            "kind",
            "run_id",
            "created",
            "started",
            "finished",
            "interrupted",
            "dataset",
            "seeds",
            "generator",
            "determinism",
            "weights",
            "weights_dir",
            "metrics",
            "metric_weights",
            "environment",
            "configs",
            "distributed",
            "attempts",
        }
    )
    NESTED = {"configs": (ConfigEntry, "dict"), "summary": (Summary, "dict")}

    schema: str | None = None
    kind: str | None = None
    run_id: str | None = None
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    interrupted: bool | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | str | None = None
    generator: dict[str, Any] | None = None
    determinism: dict[str, Any] | None = None
    weights: dict[str, str] = field(default_factory=dict)
    weights_dir: str | None = None
    metrics: list[str] | None = None
    metric_weights: str | None = None
    environment: dict[str, Any] | None = None
    configs: dict[str, ConfigEntry] = field(default_factory=dict)
    distributed: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Summary] | None = None
    error: dict[str, Any] | None = None
    quantities: dict[str, dict[str, Any]] | None = None
    migrated_from: str | None = None
    profile: dict[str, Any] | None = None
    frontier: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    label: str | None = None
    extra: dict[str, Any] = _extra()
    _keys: list[str] | None = _keys()


@dataclass(eq=True)
class Row(Record):
    """One row of the journal (``rows.jsonl``) and of ``samples.parquet``: one (configuration, case,
    seed) of ``evalsuite run`` or one point of a sweep. Timings, memory, the runner's ``info``
    fields, metric columns and the sweeps' own fields are in ``extra``."""

    ALWAYS = frozenset({"config", "case_id", "seed", "status", "error", "image"})

    config: str
    case_id: str
    seed: int
    category: str | None = None
    mask_family: str | None = None
    prompt: str | None = None
    weights: str | None = None
    source: str | None = None
    mask: str | None = None
    quality_evidence: bool | None = None
    status: str | None = None
    error: str | None = None
    image: str | None = None
    batch_size: int | None = None
    latency_s: float | None = None
    steps_s: list[float] | None = None
    step_median_s: float | None = None
    wall_s: float | None = None
    first_call: bool | None = None
    config_hash: str | None = None
    case_hash: str | None = None
    dataset_fingerprint: str | None = None
    rank: int | None = None
    extra: dict[str, Any] = _extra()
    _keys: list[str] | None = _keys()

    @property
    def key(self) -> tuple[str, str, int]:
        """The row's identity: (config, case_id, seed)."""
        return (str(self.config), str(self.case_id), int(self.seed))

    @property
    def ok(self) -> bool:
        """Whether the row was generated (``status == "ok"``)."""
        return self.status == "ok"

    @property
    def records_inputs(self) -> bool:
        """Whether the row records its inputs (``source`` and ``mask``, ``None`` for a text-to-image
        case): rows written since ``quality_evidence`` and the input paths were added to rows."""
        return self.quality_evidence is not None
