"""The one typed-value coercer (:mod:`evalsuite.config.coerce`): a table of inputs, the refusal of
unknown annotations, and configuration parameters and metric options reading values the same way."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from evalsuite.config.coerce import CoercionError, coerce, supported
from evalsuite.errors import UsageError

Mode = Literal["clean", "legacy_pytorch"]

ACCEPTED = [
    # (value, annotation, result)
    (True, bool, True),
    ("true", bool, True),
    ("False", bool, False),
    ("1", bool, True),
    ("0", bool, False),
    (5, int, 5),
    (5.0, int, 5),
    ("5", int, 5),
    (" -3 ", int, -3),
    (2, float, 2.0),
    ("2.5", float, 2.5),
    ("1e-3", float, 0.001),
    ("abc", str, "abc"),
    (Path("a/b"), str, "a/b"),
    ("a/b", Path, Path("a/b")),
    (None, type(None), None),
    ("null", type(None), None),
    (None, str | None, None),
    ("null", int | None, None),
    ("None", typing.Optional[float], None),  # noqa: UP045 - the spelling under test
    ("7", int | None, 7),
    ("7", int | str, 7),
    ("x", int | str, "x"),
    ("clean", Mode, "clean"),
    ("3", Literal[1, 3], 3),
    ([1, "2"], list[int], [1, 2]),
    ("a, b,c", list[str], ["a", "b", "c"]),
    ("1,2", tuple[int, ...], (1, 2)),
    ([1, "x"], tuple[int, str], (1, "x")),
    ({"a": "1"}, dict[str, int], {"a": 1}),
    ({"k": [1]}, dict, {"k": [1]}),
    (object, Any, object),
]

REFUSED = [
    # (value, annotation, message after "where: ")
    ("yes please", bool, "expected true/false, got 'yes please'"),
    (1, bool, "expected true/false, got 1"),
    (True, int, "expected an integer, got True"),
    (2.5, int, "expected an integer, got 2.5"),
    ("abc", int, "expected an integer, got 'abc'"),
    (False, float, "expected a number, got False"),
    ("fast", float, "expected a number, got 'fast'"),
    (5, str, "expected a string, got 5"),
    ("", Path, "expected a path, got ''"),
    ("legacy", Mode, "expected one of clean, legacy_pytorch, got 'legacy'"),
    ("x", int | None, "expected an integer or null, got 'x'"),
    (5, list[int], "expected a list of an integer, got 5"),
    ([1, 2, 3], tuple[int, str], "expected a list of an integer and a string, got [1, 2, 3]"),
    ("a=1", dict[str, int], "expected a mapping, got 'a=1'"),
]


@pytest.mark.parametrize("value, tp, result", ACCEPTED, ids=[f"{v!r}-{t}" for v, t, _ in ACCEPTED])
def test_accepted_values(value, tp, result):
    out = coerce(value, tp, "where")
    assert out == result and type(out) is type(result)


@pytest.mark.parametrize("value, tp, message", REFUSED, ids=[f"{v!r}-{t}" for v, t, _ in REFUSED])
def test_refused_values_name_where_the_value_and_the_expected_type(value, tp, message):
    with pytest.raises(CoercionError) as info:
        coerce(value, tp, "where")
    assert str(info.value) == f"where: {message}"
    assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)


def test_an_item_of_a_list_is_named_by_its_index():
    with pytest.raises(CoercionError, match=r"^steps\[1\]: expected an integer, got 'x'$"):
        coerce([1, "x"], list[int], "steps")


def test_the_error_class_is_the_callers():
    class MyError(UsageError):
        pass

    with pytest.raises(MyError, match="^p: expected an integer"):
        coerce("x", int, "p", MyError)


@pytest.mark.parametrize("tp", [complex, bytes, set[int], list[complex], int | complex, type])
def test_an_unknown_annotation_is_refused_not_passed_through(tp):
    assert not supported(tp)
    with pytest.raises(TypeError, match="^p: the parameter is annotated .* does not know"):
        coerce(1, tp, "p")


def test_every_runner_parameter_and_metric_option_has_a_type_the_coercer_knows():
    from evalsuite import metrics, runners  # noqa: F401 - registers the built-in runners and metrics
    from evalsuite.registry import METRICS, RUNNERS

    classes = [RUNNERS.get(n).Params for n in RUNNERS.names()]
    classes += [METRICS.get(n).Options for n in METRICS.names()]
    assert len(classes) > 10
    for cls in classes:
        for name, tp in typing.get_type_hints(cls).items():
            if name in {f.name for f in dataclasses.fields(cls)}:
                assert supported(tp), (cls, name, tp)


@pytest.mark.parametrize(
    "text, value",
    [
        ("5", 5),
        ("5.0", 5),
        ("abc", "expected an integer, got 'abc'"),
        ("true", "expected an integer, got True"),
    ],
)
def test_configuration_parameters_and_metric_options_read_values_the_same_way(text, value):
    """``--set flux-dev.steps=TEXT`` (YAML) and ``--metric-option unmasked_psnr.erode_px=TEXT``
    (JSON, else the string) go through the one coercer: same result, same message."""
    import json

    import yaml

    from evalsuite.config import configuration as cfg
    from evalsuite.metrics.base import MetricOptionError
    from evalsuite.metrics.quality import UnmaskedPSNR

    try:
        option: Any = json.loads(text)
    except json.JSONDecodeError:
        option = text
    got: list[Any] = []
    try:
        got.append(
            cfg.resolve("flux-dev", [cfg.Override("flux-dev", "steps", yaml.safe_load(text))]).params.steps
        )
    except cfg.ConfigError as exc:
        got.append(str(exc).rpartition("parameter 'steps': ")[2])
    try:
        got.append(UnmaskedPSNR(erode_px=option).options.erode_px)
    except MetricOptionError as exc:
        got.append(str(exc).removeprefix("unmasked_psnr.erode_px: "))
    assert got == [value, value]
