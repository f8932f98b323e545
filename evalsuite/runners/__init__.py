"""Runners: one class per model family, registered in :data:`evalsuite.registry.RUNNERS`.

The names below are imported on first access (PEP 562), so importing one light module of this
package (``evalsuite.runners.weights``) does not import every runner, torch and diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalsuite.registry import lazy_attribute

_EXPORTS = {
    "CaseError": "evalsuite.runners.base",
    "GenerationOutput": "evalsuite.runners.base",
    "Runner": "evalsuite.runners.base",
    "RunnerParams": "evalsuite.runners.base",
    "FluxParams": "evalsuite.runners.flux",
    "FluxText2Image": "evalsuite.runners.flux",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, globals(), name)


if TYPE_CHECKING:
    from evalsuite.runners.base import CaseError, GenerationOutput, Runner, RunnerParams  # noqa: F401
    from evalsuite.runners.flux import FluxParams, FluxText2Image  # noqa: F401
