"""The vocabularies several parts share, written once (light: imports nothing).

Every other module takes these names from here instead of spelling the lists again.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["NO_QUALITY_EVIDENCE", "WEIGHT_POLICIES", "Policy", "quality_evidence"]

#: The weights policies every runner takes (``--weights``): real checkpoints, full-size random
#: architectures (real speed and memory), tiny random models (CPU tests and the demo).
Policy = Literal["hub", "random", "tiny"]
WEIGHT_POLICIES: tuple[str, ...] = ("tiny", "random", "hub")

#: Policies whose images and numbers carry no quality evidence.
NO_QUALITY_EVIDENCE: tuple[str, ...] = ("tiny", "random")


def quality_evidence(policy: str | None) -> bool:
    """Whether numbers made under the weights ``policy`` can count as quality evidence (only ``hub``)."""
    return policy is not None and policy not in NO_QUALITY_EVIDENCE
