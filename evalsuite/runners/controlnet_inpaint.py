"""Our port of the Alimama FLUX.1-dev inpainting ControlNet (Alpha / Beta) and its pipeline.

The published checkpoints (``alimama-creative/FLUX.1-dev-Controlnet-Inpainting-Alpha`` and
``-Beta``) are FLUX ControlNets with 6 double-stream blocks, no single-stream blocks and a control
input projection ``controlnet_x_embedder`` of ``64 + 4 → 3072``: each token carries 64 packed
latent features of the masked image plus 4 packed features of the (inverted) mask. diffusers'
:class:`~diffusers.FluxControlNetModel` has a ``64 → 3072`` projection and cannot load them, and
the authors' reference code imports ``diffusers.models.controlnet`` (removed in diffusers 0.37).

What this module reproduces (the authors' reference pipeline; docs/controlnet-inpainting.md):

* control input: image scaled to [-1, 1]; mask in greyscale binarised at ≥ 0.5 (128 of 255);
  pixels where the mask is 1 set to -1; the masked image VAE-encoded by *sampling* the posterior,
  shifted and scaled like the denoising latents; the mask resized to latent size with nearest
  neighbour (the top-left pixel of each 8×8 cell) and inverted (1 = keep); latent (16 ch) and mask
  (1 ch) concatenated and packed 2×2 into tokens of 68 features;
* injection: the transformer adds ControlNet sample ``j // ceil(num_double / num_control)`` after
  double block ``j`` (diffusers' :class:`~diffusers.FluxTransformer2DModel` rule; with 19 and 6
  blocks the 6th sample is unused); no single-block samples;
* true CFG when ``true_guidance_scale > 1``: one batched pass ordered ``[negative, positive]``,
  result ``neg + scale · (pos − neg)``, distilled guidance in both halves, negative prompt ``""``
  by default;
* timesteps from ``sigmas = linspace(1, 1/N, N)`` with FLUX's resolution-dependent shift ``mu``;
* no paste-back: the whole image is regenerated.

This module imports diffusers at import time (seconds); the runner
(:mod:`evalsuite.runners.flux_controlnet`) imports it only when a model is loaded.

One deliberate difference: the reference samples the VAE posterior with the *global* RNG. Here
the initial noise is drawn first from the run's generator (exactly the noise the reference draws
from the same generator) and the VAE posterior sample then continues that same generator, so a
seed fixes the whole image. :data:`VAE_SAMPLE_RNG` records this choice in every result row.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import FluxControlNetModel as _FluxControlNetModel
from diffusers import FluxPipeline as _FluxPipeline
from diffusers.configuration_utils import register_to_config
from diffusers.models.controlnets.controlnet import zero_module
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from diffusers.pipelines.flux.pipeline_output import FluxPipelineOutput
from PIL import Image

from evalsuite.runners.components import FLUX_TRANSFORMER_FULL, FLUX_TRANSFORMER_TINY, build
from evalsuite.runners.weights import WeightsError

log = logging.getLogger(__name__)

# diffusers is untyped: treat its base classes as Any for mypy.
FluxControlNetModel: Any = _FluxControlNetModel
FluxPipeline: Any = _FluxPipeline

VAE_SAMPLE_RNG = "run generator, after the initial noise (reference: global RNG)"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"

_SHARED = (
    "patch_size",
    "in_channels",
    "attention_head_dim",
    "num_attention_heads",
    "joint_attention_dim",
    "pooled_projection_dim",
    "guidance_embeds",
    "axes_dims_rope",
)
# The published Alpha/Beta architecture: FLUX.1-dev widths, 6 double blocks, 0 single, 4 mask channels.
CONTROLNET_FULL: dict[str, Any] = {
    **{k: FLUX_TRANSFORMER_FULL[k] for k in _SHARED},
    "num_layers": 6,
    "num_single_layers": 0,
    "extra_condition_channels": 4,
}
# Matches the tiny FLUX transformer of components.py (2 double blocks there, so interval 1 here).
CONTROLNET_TINY: dict[str, Any] = {
    **{k: FLUX_TRANSFORMER_TINY[k] for k in _SHARED},
    "num_layers": 2,
    "num_single_layers": 0,
    "extra_condition_channels": 4,
}


class AlimamaInpaintControlNet(FluxControlNetModel):
    """FLUX ControlNet whose control projection takes ``in_channels + extra_condition_channels`` features.

    Same parameter names and shapes as the published Alimama checkpoints (``controlnet_x_embedder``
    is ``Linear(64 + 4, inner_dim)``, zero-initialised as in the reference); every other module is
    diffusers' :class:`~diffusers.FluxControlNetModel`, so ``forward`` returns
    ``(block_samples, single_block_samples)`` already multiplied by ``conditioning_scale``
    (``single_block_samples`` is ``None`` with 0 single layers).

    Args:
        extra_condition_channels: packed mask features per token (4 = 1 mask channel × 2×2).
        Other arguments: as :class:`~diffusers.FluxControlNetModel` (defaults: the published
            Alpha/Beta configuration).
    """

    @register_to_config
    def __init__(
        self,
        patch_size: int = 1,
        in_channels: int = 64,
        num_layers: int = 6,
        num_single_layers: int = 0,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        guidance_embeds: bool = True,
        axes_dims_rope: Sequence[int] = (16, 56, 56),
        extra_condition_channels: int = 4,
    ) -> None:
        with warnings.catch_warnings():  # diffusers' own FluxControlNetModel imports FluxPosEmbed the old way
            warnings.filterwarnings("ignore", message="`FluxPosEmbed` is deprecated", category=FutureWarning)
            super().__init__(
                patch_size=patch_size,
                in_channels=in_channels,
                num_layers=num_layers,
                num_single_layers=num_single_layers,
                attention_head_dim=attention_head_dim,
                num_attention_heads=num_attention_heads,
                joint_attention_dim=joint_attention_dim,
                pooled_projection_dim=pooled_projection_dim,
                guidance_embeds=guidance_embeds,
                axes_dims_rope=list(axes_dims_rope),
            )
        self.controlnet_x_embedder = zero_module(
            torch.nn.Linear(in_channels + extra_condition_channels, self.inner_dim)
        )


def interval_index(block: int, num_double: int, num_control: int) -> int:
    """Which ControlNet sample the transformer adds after double block ``block``.

    ``block // ceil(num_double / num_control)`` — the rule of the reference transformer and of
    diffusers' FluxTransformer2DModel (19 blocks, 6 samples: groups of 4, sample 5 unused).
    """
    return block // math.ceil(num_double / num_control)


# -- loading -------------------------------------------------------------------------------------
_CONFIG_FIELDS = {
    "patch_size",
    "in_channels",
    "num_layers",
    "num_single_layers",
    "attention_head_dim",
    "num_attention_heads",
    "joint_attention_dim",
    "pooled_projection_dim",
    "guidance_embeds",
    "axes_dims_rope",
    "extra_condition_channels",
}
# Fields newer diffusers versions write for FluxControlNetModel; harmless only when unset.
_NULL_ONLY_FIELDS = {"num_mode", "conditioning_embedding_channels"}


def read_controlnet_config(folder: Path) -> dict[str, Any]:
    """The constructor arguments from ``folder/config.json`` (published Alimama layout).

    Raises:
        WeightsError: missing/invalid file, a class other than a FLUX ControlNet, or a field this
            port does not implement.
    """
    path = folder / "config.json"
    if not path.is_file():
        raise WeightsError(f"{path}: not found; a ControlNet folder needs config.json and {WEIGHTS_NAME}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: not valid JSON ({exc})") from exc
    cls = raw.get("_class_name", "FluxControlNetModel")
    if cls not in ("FluxControlNetModel", AlimamaInpaintControlNet.__name__):
        raise WeightsError(
            f"{path}: _class_name is {cls!r}; expected a FLUX ControlNet (FluxControlNetModel)"
        )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if key in _CONFIG_FIELDS:
            out[key] = value
        elif key in _NULL_ONLY_FIELDS and value is None:
            continue
        else:
            raise WeightsError(
                f"{path}: field {key!r}={value!r} is not supported by the Alimama inpainting ControlNet port "
                f"(supported: {', '.join(sorted(_CONFIG_FIELDS))})"
            )
    return out


def _safetensors_files(folder: Path) -> list[Path]:
    single = folder / WEIGHTS_NAME
    if single.is_file():
        return [single]
    index = folder / INDEX_NAME
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / s for s in shards]
    others = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise WeightsError(
        f"{folder}: no {WEIGHTS_NAME} (or {INDEX_NAME}); only safetensors weights are loaded. "
        f"Found: {', '.join(others) or '(nothing)'}"
    )


def load_controlnet(
    folder: str | Path, device: torch.device | str, dtype: torch.dtype
) -> AlimamaInpaintControlNet:
    """Load a published Alimama inpainting ControlNet folder with strict key and shape checking.

    The model is built on the meta device and the safetensors tensors (read straight onto
    ``device``, cast to ``dtype``) are assigned, so no random initialisation or CPU copy happens.

    Raises:
        WeightsError: missing files, unsupported config, or a state dict whose keys or shapes do not
            match the architecture (the message lists missing/unexpected keys and shape mismatches).
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = read_controlnet_config(folder)
    with torch.device("meta"):
        model = AlimamaInpaintControlNet(**cfg)
    state: dict[str, torch.Tensor] = {}
    for f in _safetensors_files(folder):
        state.update(load_file(str(f), device=str(torch.device(device))))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:

        def head(xs: list[str]) -> str:
            return ", ".join(xs[:8]) + (f" … (+{len(xs) - 8})" if len(xs) > 8 else "")

        parts = [
            f"{len(missing)} missing: {head(missing)}" if missing else "",
            f"{len(unexpected)} unexpected: {head(unexpected)}" if unexpected else "",
            f"{len(shapes)} shape mismatches: {head(shapes)}" if shapes else "",
        ]
        raise WeightsError(
            f"{folder}: the checkpoint does not match the Alimama inpainting ControlNet built from its config.json "
            f"({'; '.join(p for p in parts if p)}); check that config.json belongs to these weights"
        )
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise WeightsError(f"{folder}: tensors left uninitialised after loading: {', '.join(left[:8])}")
    model.eval().requires_grad_(False)
    return model


def build_controlnet(
    policy: str, device: torch.device | str, dtype: torch.dtype, seed: int = 10
) -> AlimamaInpaintControlNet:
    """A ControlNet with random weights: full size (``random``) or matching the tiny FLUX (``tiny``).

    The zero-initialised layers (``controlnet_x_embedder``, ``controlnet_blocks``) get nn.Linear's
    default random initialisation so that the control path changes the output (with zeros it
    would be a no-op and tests of it could not fail).
    """
    cfg = CONTROLNET_FULL if policy == "random" else CONTROLNET_TINY

    def make() -> AlimamaInpaintControlNet:
        m = AlimamaInpaintControlNet(**cfg)
        m.controlnet_x_embedder.reset_parameters()
        for blk in m.controlnet_blocks:
            blk.reset_parameters()
        return m

    return build(make, policy, device, dtype, seed)


def save_controlnet(model: AlimamaInpaintControlNet, folder: str | Path) -> Path:
    """Write ``config.json`` + ``diffusion_pytorch_model.safetensors`` as the published repositories lay them out."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {k: model.config[k] for k in sorted(_CONFIG_FIELDS)}
    cfg["axes_dims_rope"] = list(cfg["axes_dims_rope"])
    doc = {"_class_name": "FluxControlNetModel", "_diffusers_version": "0.30.2", **cfg}
    (folder / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_NAME))
    return folder


# -- control input -------------------------------------------------------------------------------
def binarize_masks(masks: Sequence[Any]) -> list[np.ndarray]:
    """Masks as boolean (H, W) arrays, True = regenerate.

    PIL images are converted to greyscale and thresholded at ≥ 128 (0.5); float arrays at ≥ 0.5;
    boolean arrays are used as they are.
    """
    out = []
    for m in masks:
        if isinstance(m, Image.Image):
            out.append(np.asarray(m.convert("L"), dtype=np.uint8) >= 128)
        else:
            a = np.asarray(m)
            out.append(a.astype(bool) if a.dtype == bool else (a >= (128 if a.dtype == np.uint8 else 0.5)))
    return out


def image_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """RGB images → float32 (B, 3, H, W) in [-1, 1] (x / 255 · 2 − 1, as VaeImageProcessor)."""
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2) * 2.0 - 1.0


def pack(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, H/2 · W/2, 4C) tokens; feature ``c·4 + dy·2 + dx`` of token (i, j) is x[c, 2i+dy, 2j+dx]."""
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def latent_mask(mask: torch.Tensor, latent_h: int, latent_w: int) -> torch.Tensor:
    """(B, 1, H, W) {0,1} mask → nearest-resized to (latent_h, latent_w) and inverted (1 = keep)."""
    small = torch.nn.functional.interpolate(mask, size=(latent_h, latent_w), mode="nearest")
    return 1 - small


# -- pipeline ------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Inputs of the denoising loop for one batch (before any true-CFG duplication).

    Attributes:
        latents: initial packed noise (B, L, 64).
        latent_ids: position ids of the image tokens (L, 3).
        control: packed control input (B, L, 68).
    """

    latents: torch.Tensor
    latent_ids: torch.Tensor
    control: torch.Tensor


class AlimamaInpaintPipeline(FluxPipeline):
    """FLUX.1-dev + Alimama inpainting ControlNet: our own denoising loop (see the module docstring).

    Subclasses diffusers' FluxPipeline for its prompt encoding, latent packing, VAE decoding and
    LoRA support (``load_lora_weights`` / ``fuse_lora`` act on ``transformer`` only, never on the
    ControlNet); ``__call__`` is replaced.
    """

    def __init__(
        self,
        scheduler: Any,
        vae: Any,
        text_encoder: Any,
        tokenizer: Any,
        text_encoder_2: Any,
        tokenizer_2: Any,
        transformer: Any,
        controlnet: AlimamaInpaintControlNet,
        image_encoder: Any = None,
        feature_extractor: Any = None,
    ) -> None:
        super().__init__(
            scheduler=scheduler,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            text_encoder_2=text_encoder_2,
            tokenizer_2=tokenizer_2,
            transformer=transformer,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
        )
        self.register_modules(controlnet=controlnet)

    @torch.no_grad()
    def prepare(
        self,
        images: Sequence[Image.Image],
        masks: Sequence[Any],
        generator: Any,
        height: int,
        width: int,
        dtype: torch.dtype | None = None,
    ) -> Prepared:
        """Draw the initial noise, then build the packed control input (the VAE sample continues ``generator``).

        Args:
            images: RGB images of size (width, height).
            masks: masks of the same size (PIL, bool or float arrays; white/True = regenerate).
            generator: one ``torch.Generator`` or one per image.
            dtype: compute dtype (default: the transformer's).

        Raises:
            ValueError: when an image or mask is not (width, height), or counts differ.
        """
        device = self._execution_device
        dtype = dtype or self.transformer.dtype
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        bmasks = binarize_masks(masks)
        for i, (im, m) in enumerate(zip(images, bmasks, strict=True)):
            if im.size != (width, height) or m.shape != (height, width):
                raise ValueError(
                    f"input {i}: image {im.size} / mask {m.shape[::-1]} is not {width}x{height}; resize first"
                )
        n = len(images)
        latents, ids = self.prepare_latents(
            n, self.transformer.config.in_channels // 4, height, width, dtype, device, generator
        )
        image = image_tensor(images).to(device=device, dtype=dtype)
        mask = torch.from_numpy(np.stack(bmasks)[:, None].astype(np.float32)).to(device=device, dtype=dtype)
        masked = image.clone()
        masked[(mask > 0.5).expand_as(masked)] = -1.0
        vae = self.vae
        gens = generator if isinstance(generator, list) else [generator] * n
        # one image at a time: a batched encode changes the floats (results would depend on batch size)
        lat = torch.cat(
            [
                vae.encode(masked[i : i + 1].to(vae.dtype)).latent_dist.sample(generator=gens[i])
                for i in range(n)
            ]
        )
        lat = ((lat - vae.config.shift_factor) * vae.config.scaling_factor).to(dtype)
        keep = latent_mask(mask, lat.shape[2], lat.shape[3])
        control = pack(torch.cat([lat, keep], dim=1))
        return Prepared(latents=latents, latent_ids=ids, control=control)

    def timesteps(self, steps: int, image_seq_len: int) -> torch.Tensor:
        """Set the scheduler to ``sigmas = linspace(1, 1/steps, steps)`` shifted by FLUX's ``mu``; returns timesteps."""
        c = self.scheduler.config
        mu = calculate_shift(
            image_seq_len,
            c.get("base_image_seq_len", 256),
            c.get("max_image_seq_len", 4096),
            c.get("base_shift", 0.5),
            c.get("max_shift", 1.15),
        )
        sigmas = np.linspace(1.0, 1.0 / steps, steps)
        self.scheduler.set_timesteps(sigmas=sigmas, device=self._execution_device, mu=mu)
        self.scheduler.set_begin_index(0)
        return self.scheduler.timesteps

    @torch.no_grad()
    def __call__(  # type: ignore[override]
        self,
        prompt: str | list[str] | None = None,
        image: Sequence[Image.Image] | None = None,
        mask: Sequence[Any] | None = None,
        *,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        true_guidance_scale: float,
        controlnet_conditioning_scale: float,
        negative_prompt: str | list[str] | None = None,
        generator: Any = None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_pooled_prompt_embeds: torch.Tensor | None = None,
        prepared: Prepared | None = None,
        max_sequence_length: int = 512,
        output_type: str = "pil",
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
    ) -> Any:
        """Inpaint: every sampling value is an explicit argument (the reference's defaults are not used).

        Either ``prompt`` or ``prompt_embeds`` + ``pooled_prompt_embeds``; either ``image`` + ``mask``
        or ``prepared`` (from :meth:`prepare`). With ``true_guidance_scale > 1`` the negative prompt
        (default ``""``) is encoded unless its embeddings are given.

        Returns:
            ``FluxPipelineOutput`` with PIL images, or packed latents when ``output_type="latent"``.
        """
        device = self._execution_device
        dtype = self.transformer.dtype
        true_cfg = true_guidance_scale > 1
        if prompt_embeds is None:
            if prompt is None:
                raise ValueError("give prompt or prompt_embeds + pooled_prompt_embeds")
            prompt_embeds, pooled_prompt_embeds, _ = self.encode_prompt(
                prompt=prompt, prompt_2=None, device=device, max_sequence_length=max_sequence_length
            )
        assert pooled_prompt_embeds is not None
        n = prompt_embeds.shape[0]
        if true_cfg and negative_prompt_embeds is None:
            neg = negative_prompt or ""
            neg = [neg] * n if isinstance(neg, str) else list(neg)
            negative_prompt_embeds, negative_pooled_prompt_embeds, _ = self.encode_prompt(
                prompt=neg, prompt_2=None, device=device, max_sequence_length=max_sequence_length
            )
        if prepared is None:
            if image is None or mask is None:
                raise ValueError("give image and mask, or prepared inputs from prepare()")
            prepared = self.prepare(image, mask, generator, height, width, dtype)
        latents, ids, control = prepared.latents, prepared.latent_ids, prepared.control
        if latents.shape[0] != n:
            raise ValueError(f"{n} prompts but {latents.shape[0]} images")

        pe, ppe = prompt_embeds.to(dtype), pooled_prompt_embeds.to(dtype)
        if true_cfg:
            assert negative_prompt_embeds is not None and negative_pooled_prompt_embeds is not None
            pe = torch.cat([negative_prompt_embeds.to(dtype), pe])
            ppe = torch.cat([negative_pooled_prompt_embeds.to(dtype), ppe])
            control = torch.cat([control, control])
        text_ids = torch.zeros(pe.shape[1], 3, device=device, dtype=dtype)
        reps = 2 if true_cfg else 1
        guidance = torch.full([n * reps], guidance_scale, device=device, dtype=torch.float32)

        timesteps = self.timesteps(num_inference_steps, latents.shape[1])
        for i, t in enumerate(timesteps):
            x = torch.cat([latents, latents]) if true_cfg else latents
            timestep = t.expand(x.shape[0]).to(x.dtype) / 1000
            blocks, singles = self.controlnet(
                hidden_states=x,
                controlnet_cond=control,
                conditioning_scale=controlnet_conditioning_scale,
                timestep=timestep,
                guidance=guidance,
                pooled_projections=ppe,
                encoder_hidden_states=pe,
                txt_ids=text_ids,
                img_ids=ids,
                return_dict=False,
            )
            pred = self.transformer(
                hidden_states=x,
                timestep=timestep,
                guidance=guidance,
                pooled_projections=ppe,
                encoder_hidden_states=pe,
                txt_ids=text_ids,
                img_ids=ids,
                controlnet_block_samples=[s.to(dtype) for s in blocks],
                controlnet_single_block_samples=None if singles is None else [s.to(dtype) for s in singles],
                return_dict=False,
            )[0]
            if true_cfg:
                neg_pred, pos_pred = pred.chunk(2)
                pred = neg_pred + true_guidance_scale * (pos_pred - neg_pred)
            latents = self.scheduler.step(pred, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                out = callback_on_step_end(self, i, t, {"latents": latents})
                latents = out.pop("latents", latents)

        if output_type == "latent":
            return FluxPipelineOutput(images=latents)  # type: ignore[arg-type]
        lat = self._unpack_latents(latents, height, width, self.vae_scale_factor)
        lat = lat / self.vae.config.scaling_factor + self.vae.config.shift_factor
        decoded = self.vae.decode(lat.to(self.vae.dtype), return_dict=False)[0]
        return FluxPipelineOutput(images=self.image_processor.postprocess(decoded, output_type=output_type))
