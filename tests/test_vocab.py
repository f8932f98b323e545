"""The shared vocabularies (:mod:`evalsuite.vocab`) are the ones every part uses."""

from __future__ import annotations

import typing

from evalsuite import vocab


def _choices(argv_prefix: list[str], dest: str) -> tuple[str, ...]:
    from evalsuite.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[argv_prefix[0]]  # type: ignore[union-attr]
    return tuple(next(a for a in sub._actions if a.dest == dest).choices)


def test_command_line_choices_are_the_vocabularies():
    for command in ("run", "profile", "frontier", "plan"):
        assert _choices([command], "weights") == vocab.WEIGHT_POLICIES
    for command in ("run", "score", "frontier"):
        assert _choices([command], "metric_weights") == vocab.METRIC_WEIGHT_MODES


def test_typed_options_and_checks_use_the_vocabularies():
    from evalsuite.config.runconfig import METRIC_WEIGHT_MODES, WEIGHT_POLICIES
    from evalsuite.metrics import features as fx
    from evalsuite.metrics.quality import FIDOptions
    from evalsuite.runners.weights import NO_QUALITY_EVIDENCE, Weights

    assert WEIGHT_POLICIES is vocab.WEIGHT_POLICIES and METRIC_WEIGHT_MODES is vocab.METRIC_WEIGHT_MODES
    assert NO_QUALITY_EVIDENCE is vocab.NO_QUALITY_EVIDENCE
    assert typing.get_args(typing.get_type_hints(FIDOptions)["mode"]) == vocab.FID_MODES == fx.FID_MODES
    assert {p: fx.default_mode(p) for p in vocab.WEIGHT_POLICIES} == vocab.METRIC_WEIGHTS_FOR_POLICY
    assert [Weights(p).quality_evidence for p in vocab.WEIGHT_POLICIES] == [False, False, True]
    assert set(vocab.METRIC_WEIGHTS_FOR_POLICY) == set(vocab.WEIGHT_POLICIES)
    assert set(vocab.METRIC_WEIGHTS_FOR_POLICY.values()) == set(vocab.METRIC_WEIGHT_MODES)
