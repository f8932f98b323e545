"""Regression of configurations against committed baselines (``reports/baselines/``).

CI runs these with ``tiny`` weights on CPU: the image check compares every generated image with
the baseline's thumbnails, so any change of a configuration's behaviour (steps, guidance, LoRA
scale, scheduler, a diffusers upgrade that changes numerics) fails here; the metric check runs on a
GPU runner with ``--evalsuite-weights hub`` against baselines written there (see docs/regression.md).
Tiny weights carry no quality evidence: these runs check behaviour, not quality.
"""

import pytest

from evalsuite.compare.baselines import assert_images_match, assert_no_regression

pytestmark = pytest.mark.regression

EVALSUITE_CONFIGS = ["flux-dev"]

# 10 % slower median latency, and only when the 95 % CI of the new median lies above the baseline's.
LATENCY_10_PERCENT_SIGNIFICANT = {
    "metric": "latency",
    "max_regression": 0.10,
    "mode": "relative",
    "require_significance": True,
}

# Per weights policy: which cases/steps a run uses, which metrics are compared and how much worse
# each may get (the threshold model of `evalsuite compare`: docs/reports.md#thresholds), and the
# image tolerance (mean |Δ| of 32×32 thumbnails, 0–255 units). Add quality metrics (clip_score,
# unmasked_lpips...) here as they become available, then refresh the baselines with
# --evalsuite-update-baselines.
POLICY = {
    "tiny": {
        "run": {"limit": 3, "overrides": ["steps=2"], "metrics": ["latency"]},
        # Committed tiny baselines check the images only: no metric of a tiny t2i run is both
        # machine-independent and meaningful, and a latency measured on the machine that wrote the
        # baseline says nothing about another CPU. Speed lives in benchmarks/.
        "thresholds": [],
        "image_tolerance": 0.25,
    },
    "random": {
        "run": {"metrics": ["latency"]},
        "thresholds": [LATENCY_10_PERCENT_SIGNIFICANT],
        "image_tolerance": None,
    },
    "hub": {
        "run": {"metrics": ["latency"]},
        # compared only with a baseline written on this runner (other machines: skipped with the reason)
        "thresholds": [LATENCY_10_PERCENT_SIGNIFICANT],
        "image_tolerance": 2.0,
    },
}


@pytest.fixture
def policy(evalsuite_options):
    return POLICY[evalsuite_options.weights]


@pytest.fixture
def config_run(evalsuite_config, evalsuite_run, policy):
    return evalsuite_run(evalsuite_config, "smoke", **policy["run"])


@pytest.mark.evalsuite_weights(
    "random",
    "hub",
    reason="tiny weights have no machine-independent metric to compare (the images are checked)",
)
def test_metrics_do_not_regress(config_run, evalsuite_baseline, policy):
    assert policy["thresholds"], "a policy this test runs under must name its thresholds"
    baseline = evalsuite_baseline(config_run)
    assert_no_regression(config_run, baseline, thresholds=policy["thresholds"])


def test_images_match_baseline(config_run, evalsuite_baseline, policy):
    if policy["image_tolerance"] is None:
        pytest.skip("random weights: images are not compared (full-size random models differ per device)")
    assert_images_match(config_run, evalsuite_baseline(config_run), tolerance=policy["image_tolerance"])
