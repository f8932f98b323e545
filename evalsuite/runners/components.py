"""Model components for the ``tiny`` and ``random`` weight policies, and offline tokenizers.

``random`` builds the published full-size architectures (FLUX.1-dev transformer, FLUX VAE,
CLIP-L and T5-XXL text encoders, SDXL UNet...) with random weights directly on the target device
in the target dtype (no CPU copy). ``tiny`` builds the same classes with small widths and depths,
seeded so that two builds are identical. Tokenizers are built from vocabularies made in code
(a byte-level CLIP vocabulary of 514 entries; a character-level T5 unigram vocabulary), so
nothing is downloaded; token counts (77 CLIP, 512 T5 with padding) are those of the real models.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # torch is imported where components are built, not when this module is
    import torch

M = TypeVar("M")

# Published configurations (config.json of the hub repositories), full size.
FLUX_TRANSFORMER_FULL: dict[str, Any] = dict(
    patch_size=1,
    in_channels=64,
    num_layers=19,
    num_single_layers=38,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=True,
    axes_dims_rope=(16, 56, 56),
)
FLUX_TRANSFORMER_TINY: dict[str, Any] = dict(
    patch_size=1,
    in_channels=64,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=32,
    pooled_projection_dim=32,
    guidance_embeds=True,
    axes_dims_rope=(4, 6, 6),
)
FLUX_VAE_FULL: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=16,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.3611,
    shift_factor=0.1159,
    use_quant_conv=False,
    use_post_quant_conv=False,
    force_upcast=True,
)
FLUX_VAE_TINY: dict[str, Any] = dict(
    FLUX_VAE_FULL,
    block_out_channels=(8, 8, 16, 16),
    layers_per_block=1,
    norm_num_groups=8,
    sample_size=64,
)
FLUX_SCHEDULER: dict[str, Any] = dict(
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)
CLIP_L_FULL: dict[str, Any] = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    projection_dim=768,
    hidden_act="quick_gelu",
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
)
CLIP_TINY: dict[str, Any] = dict(
    vocab_size=1000,
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    projection_dim=32,
    hidden_act="quick_gelu",
    bos_token_id=512,
    eos_token_id=513,
    pad_token_id=513,
)
T5_XXL_FULL: dict[str, Any] = dict(
    vocab_size=32128,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    feed_forward_proj="gated-gelu",
    relative_attention_num_buckets=32,
    is_encoder_decoder=False,
    pad_token_id=0,
    eos_token_id=1,
)
T5_TINY: dict[str, Any] = dict(
    T5_XXL_FULL,
    vocab_size=1000,
    d_model=32,
    d_kv=8,
    d_ff=37,
    num_layers=2,
    num_heads=4,
)
# FLUX.1-Fill-dev: the transformer takes 64 noisy + 64 masked-image + 256 mask features per token.
FLUX_FILL_TRANSFORMER_FULL: dict[str, Any] = dict(FLUX_TRANSFORMER_FULL, in_channels=384, out_channels=64)
FLUX_FILL_TRANSFORMER_TINY: dict[str, Any] = dict(FLUX_TRANSFORMER_TINY, in_channels=384, out_channels=64)

# diffusers/stable-diffusion-xl-1.0-inpainting-0.1 (unet/vae/text_encoder*/scheduler config.json).
SDXL_UNET_FULL: dict[str, Any] = dict(
    sample_size=128,
    in_channels=9,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20),
    transformer_layers_per_block=(1, 2, 10),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
    norm_num_groups=32,
)
SDXL_UNET_TINY: dict[str, Any] = dict(
    SDXL_UNET_FULL,
    sample_size=8,
    block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(2, 4),
    transformer_layers_per_block=(1, 2),
    cross_attention_dim=64,
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=80,
)
SDXL_VAE_FULL: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,
    force_upcast=True,
)
SDXL_VAE_TINY: dict[str, Any] = dict(
    SDXL_VAE_FULL,
    block_out_channels=(8, 8, 16, 16),
    layers_per_block=1,
    norm_num_groups=8,
    sample_size=64,
)
# CLIP ViT-L/14 text tower (text_encoder) and OpenCLIP ViT-bigG/14 text tower with projection (text_encoder_2).
SDXL_CLIP_L_FULL: dict[str, Any] = dict(CLIP_L_FULL)
SDXL_CLIP_G_FULL: dict[str, Any] = dict(
    CLIP_L_FULL,
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=20,
    projection_dim=1280,
    hidden_act="gelu",
)
SDXL_CLIP_G_TINY: dict[str, Any] = dict(CLIP_TINY, hidden_act="gelu")
SDXL_SCHEDULER: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    steps_offset=1,
    timestep_spacing="leading",
    prediction_type="epsilon",
    interpolation_type="linear",
    use_karras_sigmas=False,
)


@contextmanager
def build_on(device: torch.device | str, dtype: torch.dtype) -> Iterator[None]:
    """Construct modules directly on ``device`` in ``dtype`` (restores the default dtype after)."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


def build(
    factory: Callable[[], M], policy: str, device: torch.device | str, dtype: torch.dtype, seed: int
) -> M:
    """Build one module with ``factory`` under a fixed seed, on ``device`` in ``dtype``, in eval mode.

    The seed makes ``tiny`` (and ``random``) weights identical from one build to the next.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with build_on(device, dtype):
            module = factory()
    module.eval()  # type: ignore[attr-defined]
    module.requires_grad_(False)  # type: ignore[attr-defined]
    return module


def _bytes_to_unicode() -> dict[int, str]:
    """The reversible byte → printable-character table of byte-level BPE (as used by CLIP/GPT-2)."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def clip_tokenizer() -> Any:
    """A CLIP tokenizer with a byte-level vocabulary of 514 entries built in code (no download).

    Every byte is one token (no merges), so token counts are larger than the real tokenizer's;
    the context length (77) and special tokens match the real one.
    """
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    return tok


def t5_tokenizer() -> Any:
    """A T5 (unigram) tokenizer with a character-level vocabulary built in code (no download)."""
    from transformers import T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>"]
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces += ["▁" + c for c in chars] + list(chars) + ["▁"]
    vocab = [(p, 0.0 if i < 3 else -float(i) / 100) for i, p in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def flux_components(
    policy: str,
    device: torch.device | str,
    dtype: torch.dtype,
    seed: int = 0,
    fill: bool = False,
) -> dict[str, Any]:
    """FLUX.1 components (``transformer``, ``vae``, both text encoders and tokenizers, ``scheduler``).

    Args:
        policy: ``tiny`` or ``random``.
        fill: build the FLUX.1-Fill-dev transformer (384 input features per token) instead of FLUX.1-dev's.
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    full = policy == "random"
    if fill:
        tcfg = FLUX_FILL_TRANSFORMER_FULL if full else FLUX_FILL_TRANSFORMER_TINY
    else:
        tcfg = FLUX_TRANSFORMER_FULL if full else FLUX_TRANSFORMER_TINY
    vcfg = FLUX_VAE_FULL if full else FLUX_VAE_TINY
    ccfg = CLIP_L_FULL if full else CLIP_TINY
    t5cfg = T5_XXL_FULL if full else T5_TINY
    return dict(
        transformer=build(lambda: FluxTransformer2DModel(**tcfg), policy, device, dtype, seed),
        vae=build(lambda: AutoencoderKL(**vcfg), policy, device, dtype, seed + 1),
        text_encoder=build(lambda: CLIPTextModel(CLIPTextConfig(**ccfg)), policy, device, dtype, seed + 2),
        text_encoder_2=build(lambda: T5EncoderModel(T5Config(**t5cfg)), policy, device, dtype, seed + 3),
        tokenizer=clip_tokenizer(),
        tokenizer_2=t5_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
    )


def sdxl_inpaint_components(
    policy: str, device: torch.device | str, dtype: torch.dtype, seed: int = 0
) -> dict[str, Any]:
    """SDXL inpainting components: 9-channel UNet, SDXL VAE, CLIP-L and OpenCLIP-bigG text encoders,
    both tokenizers and the Euler scheduler.

    Args:
        policy: ``tiny`` or ``random`` (full size: UNet 2.57 B parameters).
    """
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    full = policy == "random"
    ucfg = SDXL_UNET_FULL if full else SDXL_UNET_TINY
    vcfg = SDXL_VAE_FULL if full else SDXL_VAE_TINY
    c1 = SDXL_CLIP_L_FULL if full else CLIP_TINY
    c2 = SDXL_CLIP_G_FULL if full else SDXL_CLIP_G_TINY
    tok2 = clip_tokenizer()
    tok2.pad_token = "!"  # as the published tokenizer_2 (OpenCLIP pads with '!')
    return dict(
        unet=build(lambda: UNet2DConditionModel(**ucfg), policy, device, dtype, seed),
        vae=build(lambda: AutoencoderKL(**vcfg), policy, device, dtype, seed + 1),
        text_encoder=build(lambda: CLIPTextModel(CLIPTextConfig(**c1)), policy, device, dtype, seed + 2),
        text_encoder_2=build(
            lambda: CLIPTextModelWithProjection(CLIPTextConfig(**c2)), policy, device, dtype, seed + 3
        ),
        tokenizer=clip_tokenizer(),
        tokenizer_2=tok2,
        scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
    )
