"""Regression of configurations against committed baselines (``reports/baselines/``).

CI runs these with ``tiny`` weights on CPU: the image check compares every generated image with
the baseline's thumbnails, so any change of a configuration's behaviour (steps, guidance, LoRA
scale, scheduler, a diffusers upgrade that changes numerics) fails here; the metric check is the
same code path a GPU runner uses with ``--evalsuite-weights hub`` (see docs/regression.md).
Tiny weights carry no quality evidence: these runs check behaviour, not quality.
"""

import pytest

from evalsuite.compare.baselines import assert_images_match, assert_no_regression

pytestmark = pytest.mark.regression

EVALSUITE_CONFIGS = ["flux-dev"]

# Per weights policy: which cases/steps a run uses, which metrics are compared and how much worse
# each may get (absolute in the metric's unit, or relative to the baseline value), and the image
# tolerance (mean |Δ| of 32×32 thumbnails, 0–255 units). Add quality metrics (clip_score, lpips...)
# here as they become available, then refresh the baselines with --evalsuite-update-baselines.
POLICY = {
    "tiny": {
        "run": {"limit": 3, "overrides": ["steps=2"], "metrics": ["latency"]},
        # CPU machines differ a lot; this only catches gross slowdowns (e.g. an override ignored
        # and 28 steps run instead of 2). Speed proper is benchmarked with pytest-benchmark.
        "thresholds": {"latency": {"rel": 4.0}},
        "image_tolerance": 0.25,
    },
    "random": {
        "run": {"metrics": ["latency"]},
        "thresholds": {"latency": {"rel": 0.10}},
        "image_tolerance": None,
    },
    "hub": {
        "run": {"metrics": ["latency"]},
        "thresholds": {"latency": {"rel": 0.10}},
        "image_tolerance": 2.0,
    },
}


@pytest.fixture
def policy(evalsuite_options):
    return POLICY[evalsuite_options.weights]


@pytest.fixture
def config_run(evalsuite_config, evalsuite_run, policy):
    return evalsuite_run(evalsuite_config, "smoke", **policy["run"])


def test_metrics_do_not_regress(config_run, evalsuite_baseline, policy):
    baseline = evalsuite_baseline(config_run)
    assert_no_regression(
        config_run, baseline, metrics=list(policy["thresholds"]), thresholds=policy["thresholds"]
    )


def test_images_match_baseline(config_run, evalsuite_baseline, policy):
    if policy["image_tolerance"] is None:
        pytest.skip("random weights: images are not compared (full-size random models differ per device)")
    assert_images_match(config_run, evalsuite_baseline(config_run), tolerance=policy["image_tolerance"])
