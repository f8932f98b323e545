"""FLOP model of one denoising step, and the measured matmul peak that MFU is relative to.

Conventions (see ``docs/flops.md``): a multiply-add is 2 FLOP; only matrix products count
(linear layers, convolutions, attention's QKᵀ and AV); element-wise work (norms, activations,
RoPE, softmax) is left out, exactly like ``torch.utils.flop_counter.FlopCounterMode``, which
:func:`count_flops` uses to check the analytic formulas.

FLUX (analytic, :func:`flux_transformer_flops`): with inner width d = heads × head_dim, N image
tokens = (H/16)·(W/16), T text tokens and S = N + T:

* per token, each double block applies one stream's q/k/v, output and MLP weights (12·d²
  multiply-adds), each single block 12·d² (q/k/v 3·d², MLP-in 4·d², fused output 5·d²);
* attention per block: 4·S²·d (QKᵀ and AV, 2·S²·d each);
* modulation (AdaLayerNorm) linears act once per sample on the conditioning vector
  (double 2 × 6·d², single 3·d², final 2·d²), as do the time/guidance/pooled-text embedders;
* input/output projections: x_embedder (N × in·d), context_embedder (T × 4096·d), proj_out.

The ControlNet is the same formula with its own block counts plus one zero-initialised d×d
projection per block on the image tokens. A runner's CFG multiplier (true CFG, SDXL's CFG) scales the batch. The SDXL UNet is counted
(:func:`count_flops` on the meta device: shapes only, no memory, seconds on CPU).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

# Published SDXL UNet configuration (stable-diffusion-xl-1.0-inpainting-0.1: 9 input channels).
SDXL_UNET_FULL: dict[str, Any] = dict(
    sample_size=128,
    in_channels=9,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    transformer_layers_per_block=(1, 2, 10),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)


def _get(config: Mapping[str, Any] | Any, key: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(key, default)
    return getattr(config, key, default)


def flux_tokens(width: int, height: int) -> int:
    """Image tokens of FLUX at a resolution: (H/16)·(W/16) (VAE ×8, 2×2 patches)."""
    return (height // 16) * (width // 16)


def flux_transformer_flops(
    config: Mapping[str, Any] | Any, image_tokens: int, text_tokens: int = 512, batch: int = 1
) -> float:
    """FLOP of one forward of a FLUX transformer (``FluxTransformer2DModel`` config) for ``batch`` samples.

    Args:
        config: a mapping or config object with ``num_layers``, ``num_single_layers``,
            ``num_attention_heads``, ``attention_head_dim``, ``in_channels``,
            ``joint_attention_dim``, ``pooled_projection_dim``, ``guidance_embeds``
            (and optionally ``out_channels``, ``patch_size``).
        image_tokens: N; text_tokens: T.
    """
    d = int(_get(config, "num_attention_heads")) * int(_get(config, "attention_head_dim"))
    n, t = int(image_tokens), int(text_tokens)
    s = n + t
    double, single = int(_get(config, "num_layers")), int(_get(config, "num_single_layers"))
    cin = int(_get(config, "in_channels"))
    cout = int(_get(config, "out_channels", None) or cin) * int(_get(config, "patch_size", 1) or 1) ** 2
    per_token = 2 * 12 * d * d * (double + single) * s
    attention = 4 * s * s * d * (double + single)
    once = 2 * (6 * d * d * 2 * double + 3 * d * d * single + 2 * d * d)
    embed_once = 2 * (256 * d + d * d) * (2 if _get(config, "guidance_embeds", False) else 1)
    embed_once += 2 * (int(_get(config, "pooled_projection_dim")) * d + d * d)
    io = 2 * n * cin * d + 2 * t * int(_get(config, "joint_attention_dim")) * d + 2 * n * d * cout
    return float(batch * (per_token + attention + once + embed_once + io))


def flux_controlnet_flops(
    config: Mapping[str, Any] | Any,
    image_tokens: int,
    text_tokens: int = 512,
    batch: int = 1,
    cond_channels: int | None = None,
) -> float:
    """FLOP of one forward of a FLUX ControlNet (e.g. Alimama's: 6 double blocks, 0 single).

    The backbone is :func:`flux_transformer_flops` with the ControlNet's block counts, without the
    final norm/projection, plus the condition embedder (``cond_channels`` → d per image token,
    default ``in_channels``) and one d×d projection per block on the image tokens.
    """
    d = int(_get(config, "num_attention_heads")) * int(_get(config, "attention_head_dim"))
    n = int(image_tokens)
    blocks = int(_get(config, "num_layers")) + int(_get(config, "num_single_layers"))
    cin = int(_get(config, "in_channels"))
    cout = int(_get(config, "out_channels", None) or cin) * int(_get(config, "patch_size", 1) or 1) ** 2
    base = flux_transformer_flops(config, n, text_tokens, 1)
    base -= 2 * 2 * d * d + 2 * n * d * cout  # no norm_out / proj_out
    extra = 2 * n * (cond_channels if cond_channels is not None else cin) * d + 2 * n * d * d * blocks
    return float(batch * (base + extra))


def count_flops(fn: Callable[[], Any]) -> float:
    """FLOP counted by ``torch.utils.flop_counter.FlopCounterMode`` while ``fn()`` runs."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return float(counter.get_total_flops())


def count_flux_transformer_flops(
    config: Mapping[str, Any], image_tokens: int, text_tokens: int = 512, batch: int = 1
) -> float:
    """FLOP of a ``FluxTransformer2DModel(**config)`` forward, counted on the meta device."""
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        model: Any = FluxTransformer2DModel(**config)
        n, t, b = image_tokens, text_tokens, batch
        kw = dict(
            hidden_states=torch.empty(b, n, int(config["in_channels"])),
            encoder_hidden_states=torch.empty(b, t, int(config["joint_attention_dim"])),
            pooled_projections=torch.empty(b, int(config["pooled_projection_dim"])),
            timestep=torch.empty(b),
            img_ids=torch.empty(n, 3),
            txt_ids=torch.empty(t, 3),
            guidance=torch.empty(b) if config.get("guidance_embeds") else None,
        )
    return count_flops(lambda: model(**kw))


def count_unet_flops(
    config: Mapping[str, Any], width: int, height: int, batch: int = 1, text_tokens: int = 77
) -> float:
    """FLOP of an SDXL-style ``UNet2DConditionModel(**config)`` forward, counted on the meta device.

    ``addition_embed_type == "text_time"`` inputs (pooled text 1280 + 6 time ids) are supplied.
    """
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet: Any = UNet2DConditionModel(**config)
        b = batch
        added = None
        if config.get("addition_embed_type") == "text_time":
            pooled = int(config["projection_class_embeddings_input_dim"]) - 6 * int(
                config["addition_time_embed_dim"]
            )
            added = {"text_embeds": torch.empty(b, pooled), "time_ids": torch.empty(b, 6)}
        kw = dict(
            sample=torch.empty(b, int(config["in_channels"]), height // 8, width // 8),
            timestep=torch.empty(b),
            encoder_hidden_states=torch.empty(b, text_tokens, int(config["cross_attention_dim"])),
            added_cond_kwargs=added,
        )
    return count_flops(lambda: unet(**kw))


@dataclass(frozen=True)
class FlopInput:
    """One denoiser forward of a denoising step, as a runner describes it (:meth:`Runner.flop_inputs`).

    Attributes:
        formula: key of :data:`FORMULAS` (how this module is counted).
        config: the module's config (mapping or config object).
        args: further arguments of the formula for ONE sample (e.g. ``image_tokens``, ``text_tokens``,
            ``width``/``height``, ``cond_channels``); the batch is supplied by :func:`step_flops`.
        label: what the method string calls this module.
    """

    formula: str
    config: Any
    args: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


def _flux_transformer(inp: FlopInput, batch: int) -> tuple[float, str]:
    n, t = int(inp.args["image_tokens"]), int(inp.args.get("text_tokens", 512))
    flop = flux_transformer_flops(inp.config, n, t, batch)
    return flop, f"analytic FLUX transformer (N={n} image + T={t} text tokens, batch×cfg={batch})"


def _flux_controlnet(inp: FlopInput, batch: int) -> tuple[float, str]:
    n, t = int(inp.args["image_tokens"]), int(inp.args.get("text_tokens", 512))
    flop = flux_controlnet_flops(inp.config, n, t, batch, inp.args.get("cond_channels"))
    return flop, (
        f"ControlNet ({_get(inp.config, 'num_layers')} double, {_get(inp.config, 'num_single_layers')} single)"
    )


def _unet_counted(inp: FlopInput, batch: int) -> tuple[float, str]:
    w, h = int(inp.args["width"]), int(inp.args["height"])
    flop = count_unet_flops(dict(inp.config), w, h, batch, int(inp.args.get("text_tokens", 77)))
    return flop, f"counted UNet on meta device (batch×cfg={batch})"


FORMULAS: dict[str, Callable[[FlopInput, int], tuple[float, str]]] = {
    "flux_transformer": _flux_transformer,
    "flux_controlnet": _flux_controlnet,
    "unet_counted": _unet_counted,
}


def cfg_multiplier(runner: Any) -> int:
    """Denoiser passes per image and step: the runner's own :meth:`Runner.cfg_batch_multiplier` (kept
    as a function for callers of earlier versions)."""
    return int(runner.cfg_batch_multiplier())


def step_flops(runner: Any, batch: int | None = None) -> tuple[float, str]:
    """FLOP of one denoising step of a loaded runner at its current size/batch, and how it was obtained.

    The inputs come from the runner (:meth:`Runner.flop_inputs`, :meth:`Runner.cfg_batch_multiplier`);
    nothing here knows model families.

    Returns:
        ``(flop, method)``; ``(nan, reason)`` when the runner describes no FLOP model.
    """
    inputs = list(runner.flop_inputs())
    if not inputs:
        return float("nan"), "no FLOP model for this denoiser"
    b = (batch or int(runner.params.batch_size)) * cfg_multiplier(runner)
    total, methods = 0.0, []
    for inp in inputs:
        if inp.formula not in FORMULAS:
            return float("nan"), f"unknown FLOP formula {inp.formula!r} (known: {', '.join(FORMULAS)})"
        flop, method = FORMULAS[inp.formula](inp, b)
        total += flop
        methods.append(method)
    return total, " + ".join(methods)


PEAK_SHAPES_CUDA = ((8192, 8192, 8192), (4096, 4096, 4096), (16384, 8192, 8192), (4096, 12288, 3072))
PEAK_SHAPES_CPU = ((512, 512, 512),)


def measure_peak_tflops(
    device: torch.device | str,
    dtype: str = "bfloat16",
    n: int | None = None,
    min_seconds: float = 1.0,
    shapes: tuple[tuple[int, int, int], ...] | None = None,
    warmup: int = 3,
) -> dict[str, Any]:
    """Achieved TFLOP/s of large matrix products on ``device`` (the MFU reference), measured the way
    cuBLAS reaches its peak.

    Method (CUDA): for each (M, N, K) shape, random (never zero) operands; ``warmup`` products first
    (kernel selection, clocks up); then back-to-back products with **no synchronisation inside the
    loop**, timed by two CUDA events around the whole loop (one synchronisation at the end); the
    loop is repeated with more products until it lasts ``min_seconds / len(shapes)``. The maximum
    over the shapes is the peak (each shape's figure is kept in ``by_shape``). On CPU one shape,
    ``perf_counter`` around the loop.

    Args:
        dtype: ``bfloat16``, ``float16``, ``float32`` or ``fp8`` (``torch._scaled_mm``, e4m3, bf16 out).
        n: one square shape (n, n, n) instead of the default shapes.
        min_seconds: total timing budget over all shapes.

    Returns:
        ``{"tflops", "dtype", "n", "shape", "by_shape", "reps", "method"}``; ``{"tflops": nan, "reason"}``
        when the dtype cannot run on the device.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if shapes is None:
        shapes = ((n, n, n),) if n else (PEAK_SHAPES_CUDA if cuda else PEAK_SHAPES_CPU)
    per_shape = max(min_seconds / len(shapes), 0.01)
    by_shape: dict[str, float] = {}
    reps_used: dict[str, int] = {}
    op_name = ""
    try:
        for m, nn_, k in shapes:
            g = torch.Generator(device=dev).manual_seed(0)
            if dtype == "fp8":
                a = torch.randn(m, k, device=dev, generator=g).to(torch.float8_e4m3fn)
                bt = torch.randn(nn_, k, device=dev, generator=g).to(torch.float8_e4m3fn).t()
                one = torch.ones((), device=dev)

                def _op_fp8(a: Any = a, bt: Any = bt, one: Any = one) -> Any:
                    return torch._scaled_mm(a, bt, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

                op: Callable[[], Any] = _op_fp8

                op_name = "torch._scaled_mm e4m3 × e4m3 → bf16"
            else:
                dt = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]
                a = torch.randn(m, k, device=dev, dtype=dt, generator=g)
                b = torch.randn(k, nn_, device=dev, dtype=dt, generator=g)
                out = torch.empty(m, nn_, device=dev, dtype=dt)

                def _op_mm(a: Any = a, b: Any = b, out: Any = out) -> Any:
                    return torch.matmul(a, b, out=out)

                op = _op_mm

                op_name = f"torch.matmul {dtype}"
            for _ in range(warmup):
                op()
            if cuda:
                torch.cuda.synchronize(dev)
            reps = 4
            while True:
                if cuda:
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    for _ in range(reps):
                        op()
                    e1.record()
                    e1.synchronize()
                    secs = e0.elapsed_time(e1) / 1000.0
                else:
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        op()
                    secs = time.perf_counter() - t0
                if secs >= per_shape or reps >= 1 << 14:
                    break
                reps = min(1 << 14, max(reps * 2, int(reps * per_shape / max(secs, 1e-6)) + 1))
            key = f"{m}x{nn_}x{k}"
            by_shape[key] = 2.0 * m * nn_ * k * reps / secs / 1e12
            reps_used[key] = reps
            del a
    except (RuntimeError, KeyError, TypeError) as exc:
        return {"tflops": float("nan"), "dtype": dtype, "n": n, "reason": f"{type(exc).__name__}: {exc}"}
    best = max(by_shape, key=lambda s: by_shape[s])
    timer = "CUDA events around the whole loop" if cuda else "perf_counter around the loop"
    return {
        "tflops": by_shape[best],
        "dtype": dtype,
        "n": int(best.split("x")[0]),
        "shape": best,
        "by_shape": by_shape,
        "reps": reps_used[best],
        "method": f"{op_name}; max over shapes {', '.join(by_shape)}; {warmup} warm-ups, back-to-back "
        f"products, {timer}, no sync inside",
    }
