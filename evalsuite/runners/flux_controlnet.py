"""Runner ``flux-cn-inpaint``: FLUX.1-dev + the Alimama inpainting ControlNet (our port).

The model and pipeline live in :mod:`evalsuite.runners.controlnet_inpaint` and are imported only
when a model is loaded (diffusers takes seconds to import). Configurations: ``flux-cn-alpha``,
``flux-cn-beta``, ``flux-cn-beta-turbo8``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.data.cases import Case
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import GenerationOutput
from evalsuite.runners.components import flux_components
from evalsuite.runners.flux import FluxBase, FluxParams
from evalsuite.runners.weights import WeightsError
from evalsuite.trackers.tracking import Tracker

log = logging.getLogger(__name__)

BASE_COMPONENTS = (
    "scheduler",
    "vae",
    "text_encoder",
    "tokenizer",
    "text_encoder_2",
    "tokenizer_2",
    "transformer",
)


@dataclass
class ControlNetInpaintParams(FluxParams):
    """Parameters of the Alimama ControlNet inpainting runner (on top of :class:`FluxParams`).

    Attributes:
        controlnet: Hugging Face id or local folder of the ControlNet (config.json + safetensors).
        true_guidance: true CFG scale; > 1 runs a negative-prompt pass each step (≈ 2× cost).
        negative_prompt: the negative prompt used when ``true_guidance > 1``.
        conditioning_scale: multiplier of the ControlNet samples.
    """

    controlnet: str = "alimama-creative/FLUX.1-dev-Controlnet-Inpainting-Beta"
    true_guidance: float = 1.0
    negative_prompt: str = ""
    conditioning_scale: float = 0.9

    def validate(self) -> None:
        super().validate()
        if self.true_guidance < 1:
            raise ValueError(f"true_guidance must be ≥ 1 (1 = off), got {self.true_guidance}")
        if self.conditioning_scale < 0:  # also covered by the base rule for *scale fields
            raise ValueError(f"conditioning_scale must be ≥ 0, got {self.conditioning_scale}")


@RUNNERS.register("flux-cn-inpaint")
class FluxControlNetInpaint(FluxBase):
    """FLUX.1-dev + Alimama inpainting ControlNet (our port), optional true CFG and fused LoRA."""

    Params = ControlNetInpaintParams
    task = "inpaint"

    def _pipeline_cls(self) -> Any:
        from evalsuite.runners.controlnet_inpaint import AlimamaInpaintPipeline

        return AlimamaInpaintPipeline

    def _controlnet_folder(self) -> Path:
        ref = self.params.controlnet
        src = Path(self.weights.resolve(ref))
        if src.is_dir():
            return src
        try:
            from huggingface_hub import snapshot_download

            return Path(
                snapshot_download(
                    ref, allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json"]
                )
            )
        except Exception as exc:
            raise WeightsError(
                f"ControlNet {ref!r} is not a local folder and could not be downloaded: {exc}"
            ) from exc

    def load(self) -> None:
        """Base FLUX components and the ControlNet by weights policy, then the optional LoRA.

        Raises:
            WeightsError: missing or mismatching weights (``hub``).
        """
        from evalsuite.runners.controlnet_inpaint import (
            AlimamaInpaintPipeline,
            build_controlnet,
            load_controlnet,
        )

        if self.weights.policy == "hub":
            from diffusers import FluxPipeline

            src = self.weights.resolve(self.params.model)
            try:
                base = FluxPipeline.from_pretrained(src, torch_dtype=self.dtype, use_safetensors=True)
            except (OSError, ValueError) as exc:
                raise WeightsError(f"cannot load {self.params.model!r} from {src}: {exc}") from exc
            comps = {k: base.components[k] for k in BASE_COMPONENTS}
            controlnet = load_controlnet(self._controlnet_folder(), self.device, self.dtype)
            self.pipe = AlimamaInpaintPipeline(**comps, controlnet=controlnet)
            self.pipe.to(self.device)
        else:
            comps = flux_components(self.weights.policy, self.device, self.dtype)
            controlnet = build_controlnet(self.weights.policy, self.device, self.dtype)
            self.pipe = AlimamaInpaintPipeline(**comps, controlnet=controlnet)
        self.pipe.set_progress_bar_config(disable=True)
        if self.params.lora:
            self.fuse_lora()

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        p = self.params
        w, h = self.size
        inputs = [self.load_inputs(c) for c in cases]
        tracker = Tracker(self.device)
        pe, ppe, counts = self.encode([c.prompt for c in cases], tracker)
        info: dict[str, Any] = dict(counts)
        npe = nppe = None
        if p.true_guidance > 1:
            npe, nppe, _ = self.encode([p.negative_prompt] * len(cases), tracker)
        gens = self.generators(seeds)
        with tracker.phase("vae_encode"):
            prep = self.pipe.prepare([im for im, _ in inputs], [m for _, m in inputs], gens, h, w, self.dtype)
        with tracker.phase("denoise"):
            latents = self.pipe(
                height=h,
                width=w,
                num_inference_steps=p.steps,
                guidance_scale=p.guidance,
                true_guidance_scale=p.true_guidance,
                controlnet_conditioning_scale=p.conditioning_scale,
                prompt_embeds=pe,
                pooled_prompt_embeds=ppe,
                negative_prompt_embeds=npe,
                negative_pooled_prompt_embeds=nppe,
                prepared=prep,
                max_sequence_length=p.max_sequence_length,
                output_type="latent",
                callback_on_step_end=tracker.step_callback,
            ).images
        images = self.decode(latents, tracker)
        from evalsuite.runners.controlnet_inpaint import VAE_SAMPLE_RNG

        info.update(vae_sample_rng=VAE_SAMPLE_RNG, true_cfg=p.true_guidance > 1)
        return self.outputs(images, tracker, info)

    def cfg_batch_multiplier(self) -> int:
        """True CFG (``true_guidance > 1``) runs the negative prompt through both denoisers each step."""
        return 2 if float(self.params.true_guidance) > 1.0 else 1

    def flop_inputs(self) -> list[Any]:
        """The FLUX transformer plus the Alimama ControlNet (its condition embedder's input width)."""
        import torch

        from evalsuite.trackers.flops import FlopInput

        out = super().flop_inputs()
        cn = self.pipe.controlnet
        emb = getattr(cn, "controlnet_x_embedder", None)
        cond = int(emb.in_features) if isinstance(emb, torch.nn.Linear) else None
        out.append(
            FlopInput("flux_controlnet", cn.config, {**out[0].args, "cond_channels": cond}, "controlnet")
        )
        return out

    def bare_call(self, cases: Sequence[Case], seeds: Sequence[int]) -> Any:
        """The port's own pipeline as its users call it: ``AlimamaInpaintPipeline(prompt=..., image=...,
        mask=...)`` (it encodes the prompts and prepares the control input itself; PIL output), without
        evalsuite's trackers or phase split."""
        p = self.params
        w, h = self.size
        inputs = [self.load_inputs(c) for c in cases]
        return self.pipe(
            prompt=[c.prompt for c in cases],
            image=[im for im, _ in inputs],
            mask=[m for _, m in inputs],
            height=h,
            width=w,
            num_inference_steps=p.steps,
            guidance_scale=p.guidance,
            true_guidance_scale=p.true_guidance,
            controlnet_conditioning_scale=p.conditioning_scale,
            negative_prompt=p.negative_prompt,
            generator=self.generators(seeds),
            max_sequence_length=p.max_sequence_length,
        )
