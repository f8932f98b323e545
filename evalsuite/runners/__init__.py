"""Runners: one class per model family, registered in :data:`evalsuite.registry.RUNNERS`."""

from .base import CaseError, GenerationOutput, Runner, RunnerParams
from .flux import FluxParams, FluxText2Image

__all__ = ["CaseError", "GenerationOutput", "Runner", "RunnerParams", "FluxParams", "FluxText2Image"]
