"""FLUX.1 inpainting runners on diffusers' own pipelines: ``flux-inpaint`` (FluxInpaintPipeline on
FLUX.1-dev) and ``flux-fill`` (FluxFillPipeline on FLUX.1-Fill-dev).

Both take the case's image and mask (resized to the run's size by :meth:`Runner.load_inputs`),
encode the prompt in a ``text_encode`` phase, call the pipeline with the prompt embeddings and
``output_type="latent"`` (``denoise``; the pipeline's own VAE encodes are timed as ``vae_encode``
and subtracted from ``denoise``), and decode exactly as the pipeline does (``vae_decode``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.data.cases import Case
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import GenerationOutput, Runner
from evalsuite.runners.components import flux_components
from evalsuite.runners.flux import FluxBase, FluxParams
from evalsuite.trackers.tracking import Tracker, _sync


def mask_image(mask: np.ndarray) -> Image.Image:
    """A boolean mask (True = inpaint) as the greyscale PIL image diffusers' pipelines take (255 = inpaint)."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")


@dataclass
class _EncodeClock:
    seconds: float = 0.0
    calls: int = 0


@contextmanager
def timed_vae_encode(vae: Any, tracker: Tracker) -> Iterator[_EncodeClock]:
    """Time every ``vae.encode`` call a pipeline makes (device-synchronised) while the block runs.

    The step clock of ``tracker`` restarts after each encode, so the first denoising step does not
    include VAE encoding. The caller moves ``clock.seconds`` from ``denoise`` to ``vae_encode``.
    """
    clock = _EncodeClock()
    original = vae.encode

    def encode(*args: Any, **kwargs: Any) -> Any:
        _sync(tracker.device)
        t0 = time.perf_counter()
        out = original(*args, **kwargs)
        _sync(tracker.device)
        now = time.perf_counter()
        clock.seconds += now - t0
        clock.calls += 1
        tracker.restart_step_clock()  # the next step starts after the encode
        return out

    vae.encode = encode
    try:
        yield clock
    finally:
        del vae.encode  # back to the class's method


def split_encode_time(tracker: Tracker, clock: _EncodeClock) -> None:
    """Move the VAE-encode seconds measured inside ``denoise`` into their own phase."""
    if clock.calls:
        tracker.phases["denoise"] -= clock.seconds
        tracker.phases["vae_encode"] = tracker.phases.get("vae_encode", 0.0) + clock.seconds


class InpaintInputs(Runner):
    """Mixin: the (image, mask) pairs of a batch at the run's size, as PIL images."""

    def batch_inputs(self, cases: Sequence[Case]) -> tuple[list[Image.Image], list[Image.Image]]:
        """Images (RGB) and masks (L, 255 = inpaint) for ``cases``.

        Raises:
            CaseError: a case without image or mask, or with an empty/full mask.
        """
        images, masks = [], []
        for c in cases:
            img, m = self.load_inputs(c)
            images.append(img)
            masks.append(mask_image(m))
        return images, masks

    def pipe_inputs(self, cases: Sequence[Case], seeds: Sequence[int]) -> dict[str, Any]:
        """The keyword arguments of every diffusers inpainting call of this runner (``generate`` and
        ``bare_call`` alike): images and masks at the run's size, the size, ``strength``, steps,
        guidance and one generator per seed."""
        p: Any = self.params
        w, h = self.size
        images, masks = self.batch_inputs(cases)
        return {
            "image": images,
            "mask_image": masks,
            "height": h,
            "width": w,
            "strength": p.strength,
            "num_inference_steps": p.steps,
            "guidance_scale": p.guidance,
            "generator": self.generators(seeds),
        }

    def denoise_latents(self, inputs: dict[str, Any], tracker: Tracker, **extra: Any) -> Any:
        """``generate``'s pipeline call: timed as the ``denoise`` phase, latents out, the VAE-encode
        seconds moved into their own phase."""
        with tracker.phase("denoise"), timed_vae_encode(self.pipe.vae, tracker) as clock:
            latents = self.pipe(
                **inputs, output_type="latent", callback_on_step_end=tracker.step_callback, **extra
            ).images
        split_encode_time(tracker, clock)
        return latents


@dataclass
class FluxInpaintParams(FluxParams):
    """FLUX.1 inpainting parameters.

    Attributes:
        strength: how much of the masked region's latent is replaced by noise (1.0 = all of it;
            FluxInpaintPipeline's own default 0.6 behaves like img2img).
    """

    strength: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")
        # the pipelines run steps - int(steps - steps × strength) denoising steps
        if int(max(self.steps - self.steps * self.strength, 0)) >= self.steps:
            raise ValueError(
                f"strength {self.strength} × steps {self.steps} leaves no denoising step; raise either"
            )


class _FluxInpaintBase(FluxBase, InpaintInputs):
    Params = FluxInpaintParams
    task = "inpaint"

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        inputs = self.pipe_inputs(cases, seeds)
        tracker = Tracker(self.device)
        pe, ppe, info = self.encode([c.prompt for c in cases], tracker)
        latents = self.denoise_latents(
            inputs,
            tracker,
            prompt_embeds=pe,
            pooled_prompt_embeds=ppe,
            max_sequence_length=self.params.max_sequence_length,
        )
        out = self.decode(latents, tracker)
        return self.outputs(out, tracker, info)

    def bare_call(self, cases: Sequence[Case], seeds: Sequence[int]) -> Any:
        """The diffusers inpainting pipeline called with prompts, images and masks (PIL output)."""
        return self.pipe(
            prompt=[c.prompt for c in cases],
            **self.pipe_inputs(cases, seeds),
            max_sequence_length=self.params.max_sequence_length,
        )


@RUNNERS.register("flux-inpaint")
class FluxInpaint(_FluxInpaintBase):
    """FLUX.1-dev inpainting through diffusers' FluxInpaintPipeline (no ControlNet)."""

    def _pipeline_cls(self) -> Any:
        from diffusers import FluxInpaintPipeline

        return FluxInpaintPipeline


@dataclass
class FluxFillParams(FluxInpaintParams):
    """FLUX.1-Fill-dev parameters (its published settings: 50 steps, guidance 30)."""

    model: str = "black-forest-labs/FLUX.1-Fill-dev"
    steps: int = 50
    guidance: float = 30.0


@RUNNERS.register("flux-fill")
class FluxFill(_FluxInpaintBase):
    """FLUX.1-Fill-dev inpainting through diffusers' FluxFillPipeline."""

    Params = FluxFillParams

    def _pipeline_cls(self) -> Any:
        from diffusers import FluxFillPipeline

        return FluxFillPipeline

    def _components(self) -> dict[str, Any]:
        return flux_components(self.weights.policy, self.device, self.dtype, fill=True)


__all__ = ["FluxFill", "FluxFillParams", "FluxInpaint", "FluxInpaintParams", "mask_image", "timed_vae_encode"]
