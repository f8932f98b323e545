"""Speed regressions of a configuration's ``generate`` call, through pytest-benchmark.

Uses the fixtures of :mod:`evalsuite.testing.pytest_plugin`. Save a reference on the trusted commit and
compare later runs with it (see docs/regression.md)::

    pytest benchmarks/test_regression_speed.py --benchmark-only --benchmark-autosave
    pytest benchmarks/test_regression_speed.py --benchmark-only --benchmark-compare \
        --benchmark-compare-fail=median:10%

Default: ``tiny`` weights on CPU (plumbing only). On a GPU runner add
``--evalsuite-weights hub --evalsuite-device cuda --evalsuite-configs flux-dev,flux-cn-beta``.
"""

import pytest

pytestmark = pytest.mark.regression

EVALSUITE_CONFIGS = ["flux-dev"]
TINY_OVERRIDES = ["steps=2"]


def test_generate_one_image(
    benchmark, evalsuite_config, evalsuite_options, evalsuite_runner, evalsuite_cases
):
    overrides = TINY_OVERRIDES if evalsuite_options.weights == "tiny" else []
    runner = evalsuite_runner(evalsuite_config, overrides=overrides)
    cases = evalsuite_cases("smoke", limit=1)
    seeds = [c.seed for c in cases]
    benchmark.extra_info.update(
        config=evalsuite_config,
        weights=evalsuite_options.weights,
        device=str(runner.device),
        steps=runner.params.steps,
        size=list(runner.size),
        overrides=overrides,
        quality_evidence=evalsuite_options.weights == "hub",
    )
    outs = benchmark.pedantic(runner.generate, args=(cases, seeds), rounds=5, warmup_rounds=1, iterations=1)
    assert len(outs) == 1 and outs[0].image.size == runner.size
