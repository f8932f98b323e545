"""Runners: one class per model family, registered in :data:`evalsuite.registry.RUNNERS`."""

from evalsuite.runners.base import CaseError, GenerationOutput, Runner, RunnerParams
from evalsuite.runners.flux import FluxParams, FluxText2Image
from evalsuite.runners.flux_controlnet import FluxControlNetInpaint  # noqa: F401  (registers flux-cn-inpaint)
from evalsuite.runners.inpaint import FluxFill, FluxInpaint  # noqa: F401  (registers flux-inpaint, flux-fill)
from evalsuite.runners.sdxl import SDXLInpaint  # noqa: F401  (registers sdxl-inpaint)

__all__ = ["CaseError", "GenerationOutput", "Runner", "RunnerParams", "FluxParams", "FluxText2Image"]
