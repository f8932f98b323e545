"""SDXL inpainting runner (diffusers' StableDiffusionXLInpaintPipeline), registered as ``sdxl-inpaint``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalsuite.data.cases import Case
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import GenerationOutput, RunnerParams, no_grad
from evalsuite.runners.components import sdxl_inpaint_components
from evalsuite.runners.flux import FluxBase, count_truncated
from evalsuite.runners.inpaint import InpaintInputs
from evalsuite.runners.weights import WeightsError
from evalsuite.trackers.tracking import Tracker

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def _not_the_empty_fp32_notice(record: logging.LogRecord) -> bool:
    """diffusers warns on every ``vae.to(dtype)`` the SDXL pipeline does (four per image) that the
    modules to keep in float32 are ``[]``: a notice about nothing, dropped."""
    return "that should be kept in float32: []" not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_not_the_empty_fp32_notice)


@dataclass
class SDXLInpaintParams(RunnerParams):
    """SDXL inpainting parameters (model card of diffusers/stable-diffusion-xl-1.0-inpainting-0.1).

    Attributes:
        strength: fraction of the schedule run from the noised image latents (0.99 per the model card;
            1.0 would discard the image latents entirely).
        negative_prompt: negative prompt for classifier-free guidance; ``None`` means none, and the
            pipeline then uses zero negative embeddings (``force_zeros_for_empty_prompt``), as the
            model card's example does. ``""`` encodes the empty prompt instead.
        variant: weight-file variant under ``hub`` weights (``fp16`` reads ``*.fp16.safetensors``;
            ``""`` the full-precision files).
    """

    model: str = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    steps: int = 20
    guidance: float = 8.0
    strength: float = 0.99
    negative_prompt: str | None = None
    variant: str = "fp16"

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")
        # the pipelines run steps - int(steps - steps × strength) denoising steps
        if int(max(self.steps - self.steps * self.strength, 0)) >= self.steps:
            raise ValueError(
                f"strength {self.strength} × steps {self.steps} leaves no denoising step; raise either"
            )


@RUNNERS.register("sdxl-inpaint")
class SDXLInpaint(InpaintInputs):
    """SDXL 1.0 inpainting (9-channel UNet) through diffusers' StableDiffusionXLInpaintPipeline."""

    Params = SDXLInpaintParams
    task = "inpaint"

    def load(self) -> None:
        from diffusers import StableDiffusionXLInpaintPipeline

        p = self.params
        if self.weights.policy == "hub":
            src = self.weights.resolve(p.model)
            try:
                self.pipe = StableDiffusionXLInpaintPipeline.from_pretrained(
                    src,
                    torch_dtype=self.dtype,
                    use_safetensors=True,
                    variant=p.variant or None,
                    add_watermarker=False,
                )
            except (OSError, ValueError) as exc:
                raise WeightsError(f"cannot load {p.model!r} from {src}: {exc}") from exc
            self.pipe.to(self.device)
        else:
            self.pipe = StableDiffusionXLInpaintPipeline(
                **sdxl_inpaint_components(self.weights.policy, self.device, self.dtype),
                requires_aesthetics_score=False,
                force_zeros_for_empty_prompt=True,
                add_watermarker=False,
            )
        self.pipe.set_progress_bar_config(disable=True)

    @no_grad
    def encode(
        self, prompts: Sequence[str], tracker: Tracker
    ) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """Encode prompts (and the negative prompt when guidance > 1) with both CLIP text encoders."""
        pipe, p = self.pipe, self.params
        info = {"clip_truncated": count_truncated(pipe.tokenizer, prompts, pipe.tokenizer.model_max_length)}
        neg = None if p.negative_prompt is None else [p.negative_prompt] * len(prompts)
        with tracker.phase("text_encode"):
            pe, npe, ppe, nppe = pipe.encode_prompt(
                prompt=list(prompts),
                device=self.device,
                num_images_per_prompt=1,
                do_classifier_free_guidance=p.guidance > 1.0,
                negative_prompt=neg,
            )
        embeds = {"prompt_embeds": pe, "pooled_prompt_embeds": ppe}
        if npe is not None:
            embeds.update(negative_prompt_embeds=npe, negative_pooled_prompt_embeds=nppe)
        return embeds, info

    @no_grad
    def decode(self, latents: torch.Tensor, tracker: Tracker) -> list[Any]:
        """Decode latents to PIL images exactly as the pipeline does (fp16 VAE upcast, latents mean/std)."""
        import torch

        pipe = self.pipe
        with tracker.phase("vae_decode"):
            upcast = pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast
            if upcast:
                pipe.upcast_vae()
                latents = latents.to(next(iter(pipe.vae.post_quant_conv.parameters())).dtype)
            cfg = pipe.vae.config
            if (
                getattr(cfg, "latents_mean", None) is not None
                and getattr(cfg, "latents_std", None) is not None
            ):
                mean = torch.tensor(cfg.latents_mean).view(1, 4, 1, 1).to(latents.device, latents.dtype)
                std = torch.tensor(cfg.latents_std).view(1, 4, 1, 1).to(latents.device, latents.dtype)
                latents = latents * std / cfg.scaling_factor + mean
            else:
                latents = latents / cfg.scaling_factor
            image = pipe.vae.decode(latents, return_dict=False)[0]
            if upcast:
                pipe.vae.to(dtype=torch.float16)
            if pipe.watermark is not None:
                image = pipe.watermark.apply_watermark(image)
            images = pipe.image_processor.postprocess(image, output_type="pil")
        return images

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        inputs = self.pipe_inputs(cases, seeds)
        tracker = Tracker(self.device)
        embeds, info = self.encode([c.prompt for c in cases], tracker)
        latents = self.denoise_latents(inputs, tracker, **embeds)
        out = self.decode(latents, tracker)
        return FluxBase.outputs(out, tracker, info)

    def cfg_batch_multiplier(self) -> int:
        """Classifier-free guidance runs a negative batch through the UNet when guidance > 1."""
        return 2 if float(self.params.guidance) > 1.0 else 1

    def flop_inputs(self) -> list[Any]:
        """The UNet, counted on the meta device at the current size (77 CLIP tokens)."""
        from evalsuite.trackers.flops import FlopInput

        w, h = self.size
        return [FlopInput("unet_counted", dict(self.pipe.unet.config), {"width": w, "height": h}, "unet")]

    def bare_call(self, cases: Sequence[Case], seeds: Sequence[int]) -> Any:
        """``StableDiffusionXLInpaintPipeline(prompt=..., image=..., mask_image=...)`` (PIL output)."""
        p = self.params
        return self.pipe(
            prompt=[c.prompt for c in cases],
            negative_prompt=None if p.negative_prompt is None else [p.negative_prompt] * len(cases),
            **self.pipe_inputs(cases, seeds),
        )
