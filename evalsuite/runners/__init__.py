"""Runners: one class per model family, registered in :data:`evalsuite.registry.RUNNERS`."""

from .base import CaseError, GenerationOutput, Runner, RunnerParams
from .flux import FluxParams, FluxText2Image
from .inpaint import FluxFill, FluxInpaint  # noqa: F401  (registers flux-inpaint, flux-fill)
from .sdxl import SDXLInpaint  # noqa: F401  (registers sdxl-inpaint)

__all__ = ["CaseError", "GenerationOutput", "Runner", "RunnerParams", "FluxParams", "FluxText2Image"]
