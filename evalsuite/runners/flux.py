"""FLUX.1 text-to-image runner (diffusers ``FluxPipeline``), with an optional LoRA fused in."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalsuite.data.cases import Case
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import GenerationOutput, Runner, RunnerParams, no_grad
from evalsuite.runners.components import flux_components
from evalsuite.runners.weights import WeightsError
from evalsuite.trackers.tracking import Tracker

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass
class FluxParams(RunnerParams):
    """FLUX.1 parameters.

    Attributes:
        max_sequence_length: T5 tokens (prompts are padded/truncated to this many).
        lora: Hugging Face id, local folder or ``.safetensors`` file of a LoRA to fuse, or ``""``.
        lora_weight_name: file name inside the LoRA repository/folder.
        lora_scale: scale the LoRA is fused at.
        lora_rank: rank of the synthetic LoRA built in the published key format under ``tiny``/``random``
            weights (the real file is used only under ``hub`` or when ``lora`` is a local path).
        lora_seed: seed of that synthetic LoRA.
    """

    model: str = "black-forest-labs/FLUX.1-dev"
    max_sequence_length: int = 512
    lora: str = ""
    lora_weight_name: str = "diffusion_pytorch_model.safetensors"
    lora_scale: float = 1.0
    lora_rank: int = 64
    lora_seed: int = 0

    def validate(self) -> None:
        super().validate()
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be ≥ 1, got {self.lora_rank}")
        if not 1 <= self.max_sequence_length <= 512:
            raise ValueError(f"max_sequence_length must be in [1, 512], got {self.max_sequence_length}")


def count_truncated(tokenizer: Any, prompts: Sequence[str], max_length: int) -> int:
    """How many of ``prompts`` have more than ``max_length`` tokens (incl. specials) and get truncated."""
    if tokenizer is None:
        return 0
    ids = tokenizer(list(prompts), truncation=False, padding=False)["input_ids"]
    return sum(len(x) > max_length for x in ids)


class FluxBase(Runner):
    """Shared FLUX loading (three weight policies, LoRA fusing), prompt encoding and VAE decoding."""

    Params = FluxParams
    pipeline_class: Any = None
    lora_info: dict[str, Any] | None = None

    @abstractmethod
    def _pipeline_cls(self) -> Any:
        """The diffusers pipeline class this runner builds (each concrete runner names its own)."""

    def _components(self) -> dict[str, Any]:
        return flux_components(self.weights.policy, self.device, self.dtype)

    def load(self) -> None:
        cls = self._pipeline_cls()
        if self.weights.policy == "hub":
            src = self.weights.resolve(self.params.model)
            try:
                self.pipe = cls.from_pretrained(src, torch_dtype=self.dtype, use_safetensors=True)
            except (OSError, ValueError) as exc:
                raise WeightsError(f"cannot load {self.params.model!r} from {src}: {exc}") from exc
            self.pipe.to(self.device)
        else:
            self.pipe = cls(**self._components())
        self.pipe.set_progress_bar_config(disable=True)
        if self.params.lora:
            self.fuse_lora()

    def fuse_lora(self) -> None:
        """Load ``params.lora`` through diffusers' LoRA API and fuse it at ``params.lora_scale``."""
        from evalsuite.runners.lora import fuse_lora

        p = self.params
        self.lora_info = fuse_lora(
            self.pipe,
            p.lora,
            p.lora_weight_name,
            p.lora_scale,
            self.weights,
            rank=p.lora_rank,
            seed=p.lora_seed,
        )

    def effective(self) -> dict[str, Any]:
        """Size/dtype under the weights policy, plus what LoRA was fused (``synthetic`` under tiny/random)."""
        eff = super().effective()
        if self.lora_info is not None:
            eff.update({k: v for k, v in self.lora_info.items()})
            eff["lora_synthetic"] = self.lora_info["lora_source"] == "synthetic"
        return eff

    @no_grad
    def encode(
        self, prompts: Sequence[str], tracker: Tracker
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
        """Encode prompts (CLIP pooled + T5 sequence); returns embeds, pooled embeds and truncation counts."""
        pipe = self.pipe
        info = {
            "clip_truncated": count_truncated(pipe.tokenizer, prompts, pipe.tokenizer_max_length),
            "t5_truncated": count_truncated(pipe.tokenizer_2, prompts, self.params.max_sequence_length),
        }
        with tracker.phase("text_encode"):
            pe, ppe, _ = pipe.encode_prompt(
                prompt=list(prompts),
                prompt_2=None,
                device=self.device,
                num_images_per_prompt=1,
                max_sequence_length=self.params.max_sequence_length,
            )
        return pe, ppe, info

    @no_grad
    def decode(self, latents: torch.Tensor, tracker: Tracker) -> list[Any]:
        """Unpack, unscale and VAE-decode packed latents to PIL images (as FluxPipeline does)."""
        pipe = self.pipe
        w, h = self.size
        with tracker.phase("vae_decode"):
            lat = pipe._unpack_latents(latents, h, w, pipe.vae_scale_factor)
            lat = (lat / pipe.vae.config.scaling_factor) + pipe.vae.config.shift_factor
            image = pipe.vae.decode(lat, return_dict=False)[0]
            images = pipe.image_processor.postprocess(image, output_type="pil")
        return images

    def flop_inputs(self) -> list[Any]:
        """The FLUX transformer (analytic formula) at the current size and T5 sequence length."""
        from evalsuite.trackers.flops import FlopInput, flux_tokens

        w, h = self.size
        tokens = {"image_tokens": flux_tokens(w, h), "text_tokens": int(self.params.max_sequence_length)}
        return [FlopInput("flux_transformer", self.pipe.transformer.config, tokens, "transformer")]

    @staticmethod
    def outputs(images: list[Any], tracker: Tracker, info: dict[str, Any]) -> list[GenerationOutput]:
        """Split a batch's images and tracker into per-image outputs (phase times divided by batch size)."""
        n = len(images)
        phases = {k: v / n for k, v in tracker.phases.items()}
        return [
            GenerationOutput(
                image=img,
                phases=phases,
                steps=list(tracker.steps),
                memory=tracker.peak_memory_gib(),
                info=dict(info),
            )
            for img in images
        ]


@RUNNERS.register("flux-t2i")
class FluxText2Image(FluxBase):
    """FLUX.1 text-to-image through diffusers' FluxPipeline (optionally with a fused LoRA)."""

    task = "t2i"

    def _pipeline_cls(self) -> Any:
        from diffusers import FluxPipeline

        return FluxPipeline

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        p = self.params
        w, h = self.size
        tracker = Tracker(self.device)
        pe, ppe, info = self.encode([c.prompt for c in cases], tracker)
        with tracker.phase("denoise"):
            latents = self.pipe(
                prompt_embeds=pe,
                pooled_prompt_embeds=ppe,
                height=h,
                width=w,
                num_inference_steps=p.steps,
                guidance_scale=p.guidance,
                generator=self.generators(seeds),
                output_type="latent",
                max_sequence_length=p.max_sequence_length,
                callback_on_step_end=tracker.step_callback,
            ).images
        images = self.decode(latents, tracker)
        return self.outputs(images, tracker, info)

    def bare_call(self, cases: Sequence[Case], seeds: Sequence[int]) -> Any:
        """``FluxPipeline(prompt=..., ...)`` with this run's size, steps, guidance and seeds (PIL output)."""
        p = self.params
        w, h = self.size
        return self.pipe(
            prompt=[c.prompt for c in cases],
            height=h,
            width=w,
            num_inference_steps=p.steps,
            guidance_scale=p.guidance,
            generator=self.generators(seeds),
            max_sequence_length=p.max_sequence_length,
        )
