"""The vocabularies several parts share, written once (light: imports nothing heavy).

Every other module (the command line's choices, :class:`~evalsuite.config.runconfig.RunConfig`,
:class:`~evalsuite.runners.weights.Weights`, the metric options, the pytest plugin, the report)
takes these names from here instead of spelling the lists again. Each vocabulary is a ``Literal``
type (for annotations and the typed-option coercer) and the tuple of its values (for ``choices``
and messages), the tuple derived from the type.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "FID_MODES",
    "METRIC_WEIGHTS_FOR_POLICY",
    "METRIC_WEIGHT_MODES",
    "NO_QUALITY_EVIDENCE",
    "WEIGHT_POLICIES",
    "FIDMode",
    "MetricWeightMode",
    "Policy",
    "default_metric_weights",
    "quality_evidence",
]

#: The weights policies every runner takes (``--weights``): tiny random models (CPU tests and the
#: demo), full-size random architectures (real speed and memory), real checkpoints.
Policy = Literal["tiny", "random", "hub"]
WEIGHT_POLICIES: tuple[str, ...] = get_args(Policy)

#: Policies whose images and numbers carry no quality evidence.
NO_QUALITY_EVIDENCE: tuple[str, ...] = ("tiny", "random")

#: The feature networks of FID/CLIP/LPIPS and the preference metrics (``--metric-weights``):
#: published weights, small random networks (offline, no quality evidence), real architectures with
#: random weights (speed only).
MetricWeightMode = Literal["real", "random", "random_full"]
METRIC_WEIGHT_MODES: tuple[str, ...] = get_args(MetricWeightMode)

#: The metric weights a run uses when none is asked for, by weights policy.
METRIC_WEIGHTS_FOR_POLICY: dict[str, str] = {"tiny": "random", "random": "random_full", "hub": "real"}

#: FID/KID preprocessing (``fid.mode``): clean-fid's resize, pytorch-fid's, the TensorFlow original's.
FIDMode = Literal["clean", "legacy_pytorch", "legacy_tensorflow"]
FID_MODES: tuple[str, ...] = get_args(FIDMode)


def quality_evidence(policy: str | None) -> bool:
    """Whether numbers made under the weights ``policy`` can count as quality evidence (only ``hub``)."""
    return policy is not None and policy not in NO_QUALITY_EVIDENCE


def default_metric_weights(policy: str) -> str:
    """``metric_weights`` for a generation weights policy: tiny → random, random → random_full, hub → real
    (and real for a policy this version does not know)."""
    return METRIC_WEIGHTS_FOR_POLICY.get(policy, "real")
