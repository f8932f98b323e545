"""Acceleration axes, applied to a loaded runner through its hooks; composable points.

A **point** is a comma-separated list of ``axis=value`` (``qkv`` alone means ``qkv=on``), e.g.
``precision=fp8,qkv,compile=regional`` or ``cache=taylorseer``. The empty point (``ref``) is the
reference: the configuration as loaded (bf16, eager, its own steps).

===============  =====================================================================================
axis             values
===============  =====================================================================================
``steps``        an integer (set before loading)
``lora``         ``off`` (drop the configuration's LoRA; set before loading)
``precision``    ``bf16`` (as loaded), ``fp8`` (torchao ``Float8DynamicActivationFloat8WeightConfig``,
                 ``PerRow`` granularity), ``fp8_tensor`` / ``fp8_row`` (evalsuite's ``torch._scaled_mm`` swap,
                 per-tensor or per-row scales: plain tensors, so ``torch.compile`` traces them directly),
                 ``int8wo`` (torchao ``Int8WeightOnlyConfig``), ``nf4`` (bitsandbytes ``Linear4bit``),
                 ``gguf``, ``layerwise`` (fp8 e4m3 storage, compute in the loaded dtype:
                 ``enable_layerwise_casting``, whose model defaults keep ``*norm*`` modules — in FLUX the
                 AdaLN modulation linears — in bf16), ``layerwise_all`` (the same with those linears
                 stored in fp8 too) — on every denoiser, the ControlNet included
``qkv``          ``on``: ``fuse_qkv_projections()`` on every denoiser that has it (before quantising)
``attention``    a diffusers backend name for ``set_attention_backend`` (``native``, ``_native_cudnn``,
                 ``flash``, ``_flash_3``, ``sage``...)
``cache``        ``fbc[:threshold]`` (FirstBlockCache, default 0.05), ``taylorseer``, ``pab[:skip]``
                 (PyramidAttentionBroadcast, spatial skip range, default 2), ``mag[:threshold]``
                 (MagCache, calibrated on this configuration first), ``faster`` (FasterCache) — on
                 the transformer/UNet
``memory``       a strategy of :mod:`evalsuite.accel.memory` (``te_cpu+group_block:4:stream``)
``compile``      ``full`` (``module.compile()`` of every denoiser) or ``regional`` (each repeated
                 block compiled with ``fullgraph=True``, like ``compile_repeated_blocks``)
``vae``          ``channels_last`` (the VAE's convolutions in NHWC) or ``compile`` (channels-last, and its
                 encoder and decoder each ``torch.compile``-d)
``inductor``     Inductor options for what ``compile`` and ``vae=compile`` compile: ``tuned`` (the flags of
                 the flux-fast recipe: coordinate-descent tuning in all directions, no epilogue fusion,
                 1×1 convolutions as matmuls) or ``autotune`` (the options of mode
                 ``max-autotune-no-cudagraphs``: GEMM templates benchmarked against cuBLAS, coordinate-descent
                 tuning; minutes of extra cold start) or ``persistent`` (Triton multi-kernels: wide
                 reductions such as the fp8 activation amax also as one-read persistent kernels, the faster
                 kept by a benchmark in the first call; compiled afresh in every process, never from
                 Inductor's cache). Needs ``compile`` or ``vae=compile``
``cudagraph``    ``on``: every denoiser call recorded once as a CUDA graph and replayed after that
                 (:mod:`evalsuite.accel.graphs`; CUDA only; not with ``cache`` or ``memory``, whose
                 kernels depend on the data)
===============  =====================================================================================

Axes are applied in a fixed order whatever the text order: qkv, attention, precision, cache,
memory, compile, vae, cudagraph (fusing needs plain linears; compile must see the final modules; a graph
records whatever the call runs, compiled blocks included). ``inductor`` is not applied on its own: it
sets the options of the two compiling axes.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from evalsuite.accel.counters import main_denoiser, repeated_blocks
from evalsuite.accel.errors import PointError, Unavailable
from evalsuite.accel.memory import apply_strategy

log = logging.getLogger(__name__)

AXES = (
    "steps",
    "lora",
    "precision",
    "qkv",
    "attention",
    "cache",
    "memory",
    "compile",
    "vae",
    "inductor",
    "cudagraph",
)
LOAD_AXES = ("steps", "lora")
APPLY_ORDER = ("qkv", "attention", "precision", "cache", "memory", "compile", "vae", "cudagraph")
PRECISIONS = ("bf16", "fp8", "fp8_tensor", "fp8_row", "int8wo", "nf4", "gguf", "layerwise", "layerwise_all")
# layerwise_all: fp8 storage for every Linear/Conv/Embedding of the denoiser but these (diffusers'
# model default also keeps every module named "*norm*" in bf16 — in FLUX that is the AdaLN
# modulation linears, about 3.2 B parameters, 6 GiB of the 22 GiB transformer).
LAYERWISE_ALL_SKIP = ("pos_embed", "patch_embed", "^proj_in$", "^proj_out$")
VAE_MODES = ("channels_last", "compile")
#: ``inductor`` axis value → Inductor options (``torch.compile(options=...)``), merged over the
#: run's compile mode. ``tuned`` is the flux-fast recipe's flags; ``autotune`` is what mode
#: ``max-autotune-no-cudagraphs`` sets (``torch._inductor.list_mode_options``). ``persistent`` turns on
#: Triton multi-kernels: a reduction over up to 16× Inductor's usual 1,024 elements per row (FLUX's
#: 3,072-wide norms, the 12,288- and 15,360-wide inputs of its fp8 products' row-wise amax) is also
#: generated as a persistent kernel that reads each row once, and the first call benchmarks it
#: against the looped kernel that reads the row per pass, keeping the faster (Triton only: no effect on CPU).
#: Its graphs are never taken from Inductor's on-disk cache (see the value's comment), so every process
#: pays its whole compile.
INDUCTOR_OPTIONS: dict[str, dict[str, Any]] = {
    "tuned": {
        "coordinate_descent_tuning": True,
        "coordinate_descent_check_all_directions": True,
        "epilogue_fusion": False,
        "conv_1x1_as_mm": True,
    },
    "autotune": {"max_autotune": True, "coordinate_descent_tuning": True},
    # fx_graph_cache off: on the H100 (torch 2.11.0, Triton 3.6.0) a multi-kernel graph loaded from
    # Inductor's cache in a new process failed in MultiKernelCall's cache key (TypeError from Triton's
    # JIT hash lock); compiling afresh every process avoids that path (and so the compile cache)
    "persistent": {"triton.multi_kernel": 1, "fx_graph_cache": False},
}
CACHES = ("fbc", "taylorseer", "pab", "mag", "faster")
#: caches whose skipping decision compares activations against a threshold: their speed-up depends
#: on the weight values (none on random weights, where consecutive steps differ a lot)
WEIGHT_DEPENDENT_CACHES = ("fbc", "mag")


@dataclass(frozen=True)
class PointSpec:
    """One point: axis → value (``{}`` is the reference point)."""

    axes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> PointSpec:
        """Parse ``axis=value,...`` (``qkv`` alone = ``qkv=on``; ``ref``/``reference``/``""`` = reference).

        Raises:
            PointError: (a ValueError) for an unknown axis, a repeated axis, or an unknown precision/cache value.
        """
        text = text.strip()
        if text in ("", "ref", "reference"):
            return cls()
        out: dict[str, str] = {}
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            key, _, value = item.partition("=")
            key, value = key.strip(), (value.strip() or "on")
            if key not in AXES:
                raise PointError(f"point {text!r}: unknown axis {key!r}; axes are {', '.join(AXES)}")
            if key in out:
                raise PointError(f"point {text!r}: axis {key!r} given twice")
            if key == "precision" and value not in PRECISIONS:
                raise PointError(f"point {text!r}: precision {value!r} unknown; use {', '.join(PRECISIONS)}")
            if key == "cache" and value.split(":")[0] not in CACHES:
                raise PointError(f"point {text!r}: cache {value!r} unknown; use {', '.join(CACHES)}")
            if key == "compile" and value not in ("full", "regional", "off"):
                raise PointError(f"point {text!r}: compile must be full, regional or off")
            if key == "steps" and (not value.isdigit() or int(value) < 1):
                raise PointError(f"point {text!r}: steps must be a positive integer")
            if key == "lora" and value not in ("off", "on"):
                raise PointError(f"point {text!r}: lora must be off or on")
            if key == "vae" and value not in VAE_MODES:
                raise PointError(f"point {text!r}: vae must be {' or '.join(VAE_MODES)}")
            if key == "inductor" and value not in INDUCTOR_OPTIONS:
                raise PointError(f"point {text!r}: inductor must be {', '.join(INDUCTOR_OPTIONS)}")
            if key == "cudagraph" and value not in ("on", "off"):
                raise PointError(f"point {text!r}: cudagraph must be on or off")
            out[key] = value
        if "inductor" in out and out.get("compile", "off") == "off" and out.get("vae") != "compile":
            raise PointError(
                f"point {text!r}: inductor={out['inductor']} sets the options of what is compiled, and this "
                "point compiles nothing; add compile=regional (or full) or vae=compile"
            )
        if out.get("cudagraph") == "on":
            clash = [k for k in ("cache", "memory") if k in out]
            if clash:
                raise PointError(
                    f"point {text!r}: cudagraph=on cannot be combined with {' or '.join(clash)}: a CUDA graph "
                    "replays one fixed kernel sequence, and a cache (which skips blocks by comparing "
                    "activations) or a memory strategy (which moves weights between calls) needs a different one"
                )
        return cls(tuple((k, out[k]) for k in AXES if k in out))

    def get(self, axis: str, default: str | None = None) -> str | None:
        return dict(self.axes).get(axis, default)

    @property
    def label(self) -> str:
        """Canonical text (axes in :data:`AXES` order); ``ref`` for the reference."""
        if not self.axes:
            return "ref"
        return ",".join(k if v == "on" and k in ("qkv", "cudagraph") else f"{k}={v}" for k, v in self.axes)

    @property
    def compiled(self) -> bool:
        """True when the cold call compiles or records CUDA graphs (the warm calls then run what it built)."""
        return self.get("compile", "off") != "off" or self.graphed or self.get("vae") == "compile"

    @property
    def graphed(self) -> bool:
        return self.get("cudagraph", "off") == "on"

    @property
    def speed_depends_on_weights(self) -> bool:
        """True when the speed figure depends on weight values (threshold caches)."""
        cache = (self.get("cache") or "").split(":")[0]
        return cache in WEIGHT_DEPENDENT_CACHES


def load_params(params: Any, point: PointSpec, where: str = "") -> Any:
    """A copy of runner params with the load-time axes (steps, LoRA) applied, typed and validated
    like ``--set`` (:func:`evalsuite.config.configuration.replace_params`).

    Raises:
        ConfigError: a value the runner refuses (``steps=5000`` over ``MAX_STEPS``), naming ``where``
            (default: the point).
    """
    from evalsuite.config.configuration import replace_params

    changes: dict[str, Any] = {}
    if point.get("steps"):
        changes["steps"] = int(point.get("steps") or 0)
    if point.get("lora") == "off" and hasattr(params, "lora"):
        changes["lora"] = ""
    return replace_params(params, changes, where or f"point {point.label!r}")


@dataclass
class ApplyContext:
    """What an axis may need besides the runner.

    Attributes:
        compile_mode: ``torch.compile`` mode.
        calibrate: for MagCache, a function running one calibration generate on the runner.
        mag_ratios: calibrated ratios by key (configuration, steps); filled by calibration.
        config: configuration name (the key of stored calibrations).
        compile_cache: a folder of compile-cache artifacts
            (:class:`evalsuite.accel.compile_cache.CompileCache`), loaded before the first compile.
    """

    compile_mode: str = "default"
    calibrate: Callable[[], Any] | None = None
    mag_ratios: dict[str, list[float]] = field(default_factory=dict)
    config: str = ""
    compile_cache: Any = None


def _load_compile_cache(ctx: ApplyContext) -> dict[str, Any]:
    """Load the run's compile-cache folder before the first compile (its time counts in the applying
    of the point that loads it); the note is on that point only."""
    cache = ctx.compile_cache
    if cache is None or cache.loaded is not None:
        return {}
    got = cache.load()
    note = f"{got['artifacts']} artifact(s) from {got['files']} file(s) of {got['folder']} in {got['seconds']:.2f} s"
    if got["skipped"]:
        note += f"; {len(got['skipped'])} file(s) not loaded (see frontier.json)"
    return {"compile_cache": note}


# -- precision --------------------------------------------------------------------------------


#: Packages of the ``accel`` extra (pyproject.toml, pinned): ``pip install 'evalsuite[accel]'``.
ACCEL_EXTRA = ("torchao",)


def _need_package(name: str, what: str) -> None:
    if importlib.util.find_spec(name) is None:
        fix = " (pip install 'evalsuite[accel]')" if name in ACCEL_EXTRA else ""
        raise Unavailable(f"{what} needs the {name} package, which is not installed{fix}")


def _fp8_capable(device: torch.device) -> None:
    if device.type != "cuda":
        raise Unavailable("fp8 matmuls need a CUDA GPU with fp8 tensor cores (compute capability ≥ 8.9)")
    if torch.cuda.get_device_capability(device) < (8, 9):
        raise Unavailable(
            f"fp8 needs compute capability ≥ 8.9, this GPU has {torch.cuda.get_device_capability(device)}"
        )


def _linear_filter(mod: nn.Module, _fqn: str = "") -> bool:
    return isinstance(mod, nn.Linear) and mod.in_features % 16 == 0 and mod.out_features % 16 == 0


def apply_precision(runner: Any, value: str) -> dict[str, Any]:
    dens = runner.denoisers()
    dev = runner.device
    if value == "bf16":
        dt = {str(p.dtype) for m in dens.values() for p in m.parameters()}
        return {"precision": f"as loaded ({', '.join(sorted(dt))})"}
    if value == "gguf":
        _need_package("gguf", "GGUF")
        raise Unavailable(
            "GGUF needs a pre-quantised .gguf checkpoint (diffusers GGUFQuantizationConfig with "
            "from_single_file); random/tiny weights have none"
        )
    if value in ("layerwise", "layerwise_all"):
        from diffusers.hooks import apply_layerwise_casting

        done = []
        for role, m in dens.items():
            if not hasattr(m, "enable_layerwise_casting"):
                raise Unavailable(f"{role} ({type(m).__name__}) has no enable_layerwise_casting")
            if value == "layerwise":
                m.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=runner.dtype)
            else:
                apply_layerwise_casting(
                    m, torch.float8_e4m3fn, runner.dtype, skip_modules_pattern=LAYERWISE_ALL_SKIP
                )
            done.append(role)
        how = (
            "enable_layerwise_casting"
            if value == "layerwise"
            else f"apply_layerwise_casting, modulation linears included; skipped: {', '.join(LAYERWISE_ALL_SKIP)}"
        )
        return {"precision": f"fp8 e4m3 storage, {runner.dtype} compute ({how}) on {', '.join(done)}"}
    if value in ("fp8", "int8wo"):
        _need_package("torchao", f"torchao {value}")
        if value == "fp8":
            _fp8_capable(dev)
        try:
            from torchao.quantization import quantize_

            if value == "fp8":
                from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

                config: Any = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
                desc = "torchao Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())"
            else:
                from torchao.quantization import Int8WeightOnlyConfig

                config = Int8WeightOnlyConfig()
                desc = "torchao Int8WeightOnlyConfig()"
        except ImportError as exc:
            raise Unavailable(f"torchao imports but lacks {value} ({exc})") from exc
        counts = {}
        for role, m in dens.items():
            counts[role] = sum(_linear_filter(x) for x in m.modules())
            quantize_(m, config, filter_fn=_linear_filter)
        return {"precision": desc, "quantized_linears": counts}
    if value in ("fp8_tensor", "fp8_row"):
        _fp8_capable(dev)
        from evalsuite.runners.fp8 import swap_linears

        gran = value.removeprefix("fp8_")
        return {
            "precision": f"evalsuite Fp8Linear (per-{gran} e4m3, torch._scaled_mm)",
            "quantized_linears": {r: swap_linears(m, granularity=gran) for r, m in dens.items()},
        }
    if value == "nf4":
        _need_package("bitsandbytes", "NF4")
        if dev.type != "cuda":
            raise Unavailable("bitsandbytes NF4 kernels need a CUDA device")
        return {
            "precision": "bitsandbytes NF4 (Linear4bit)",
            "quantized_linears": {r: _to_nf4(m, runner.dtype) for r, m in dens.items()},
        }
    raise PointError(f"precision {value!r} unknown")


def _to_nf4(module: nn.Module, compute_dtype: torch.dtype) -> int:
    import bitsandbytes as bnb

    n = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear) and _linear_filter(child):
            dev = child.weight.device
            q = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=compute_dtype,
                quant_type="nf4",
                device="cpu",
            )
            q.weight = bnb.nn.Params4bit(child.weight.data.cpu(), requires_grad=False, quant_type="nf4")
            if child.bias is not None:
                q.bias = nn.Parameter(child.bias.data.cpu(), requires_grad=False)
            setattr(module, name, q.to(dev))
            n += 1
        else:
            n += _to_nf4(child, compute_dtype)
    return n


# -- fused QKV, attention backend ---------------------------------------------------------------


def apply_qkv(runner: Any, value: str) -> dict[str, Any]:
    if value != "on":
        return {}
    done = []
    for role, m in runner.denoisers().items():
        fuse = getattr(m, "fuse_qkv_projections", None)
        if fuse is None:
            continue
        try:
            fuse()
        except ValueError as exc:
            raise Unavailable(f"{role}: {exc}") from exc
        done.append(role)
    if not done:
        raise Unavailable("no denoiser has fuse_qkv_projections")
    return {"qkv": f"fused on {', '.join(done)}"}


CUDA_ONLY_BACKENDS = ("_native_cudnn", "_native_flash", "_native_efficient", "flash", "_flash_3", "sage")


def apply_attention(runner: Any, value: str) -> dict[str, Any]:
    dens = runner.denoisers()
    try:
        for m in dens.values():
            if not hasattr(m, "set_attention_backend"):
                raise Unavailable(f"{type(m).__name__} has no set_attention_backend")
            m.set_attention_backend(value)
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, Unavailable):
            raise
        raise Unavailable(f"attention backend {value!r}: {exc}") from exc
    if runner.device.type != "cuda" and value in CUDA_ONLY_BACKENDS:
        for m in dens.values():
            m.set_attention_backend("native")
        raise Unavailable(f"attention backend {value!r} runs on CUDA devices only")
    return {"attention": value}


# -- caches ---------------------------------------------------------------------------------------


def _state_managers(module: nn.Module) -> list[Any]:
    from diffusers.hooks.hooks import StateManager

    out = []
    for m in module.modules():
        reg = getattr(m, "_diffusers_hook", None)
        for hook in getattr(reg, "hooks", {}).values():
            out += [a for a in vars(hook).values() if isinstance(a, StateManager)]
    return out


def _ensure_cache_context(denoiser: nn.Module) -> None:
    """Wrap ``denoiser.forward`` so that a call made outside any ``cache_context`` (pipelines written
    before diffusers' cache hooks, e.g. the ControlNet port's loop) runs in context ``"cond"``."""
    managers = _state_managers(denoiser)
    if not managers:
        return
    inner = denoiser.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if managers[0]._context is not None:
            return inner(*args, **kwargs)
        with cast(Any, denoiser).cache_context("cond"):  # diffusers CacheMixin method
            return inner(*args, **kwargs)

    forward._evalsuite_inner = inner  # type: ignore[attr-defined]
    denoiser.forward = forward  # type: ignore[method-assign]


def _timestep_probe(runner: Any, denoiser: nn.Module) -> Callable[[], float]:
    """A ``current_timestep_callback``: the pipeline's ``current_timestep`` where it keeps one, else the
    last ``timestep`` the denoiser saw (FLUX passes t/1000: scaled back to 0–1000)."""
    seen: dict[str, float] = {"t": 1000.0}

    def pre(_m: Any, args: Any, kwargs: dict[str, Any]) -> None:
        t = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        if isinstance(t, torch.Tensor) and t.numel():
            v = float(t.flatten()[0])
            seen["t"] = v * 1000.0 if v <= 1.0 else v

    denoiser.register_forward_pre_hook(pre, with_kwargs=True)
    pipe = runner.pipe

    def current() -> float:
        t = getattr(pipe, "_current_timestep", None)
        if t is not None:
            return float(t.flatten()[0]) if isinstance(t, torch.Tensor) else float(t)
        return seen["t"]

    return current


def _calibrate_mag(runner: Any, denoiser: nn.Module, ctx: ApplyContext, steps: int) -> list[float]:
    from diffusers import MagCacheConfig

    if ctx.calibrate is None:
        raise Unavailable("MagCache needs a calibration pass, and none was provided")
    cache: Any = denoiser  # a diffusers CacheMixin (enable_cache/disable_cache)
    cache.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=steps))
    _ensure_cache_context(denoiser)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            ctx.calibrate()
    finally:
        _drop_wrapper(denoiser)
        cache.disable_cache()
    text = buf.getvalue()
    start = text.rfind("[", 0, text.rfind("]") + 1)
    try:
        ratios = [float(x) for x in ast.literal_eval(text[start : text.rfind("]") + 1])]
    except (ValueError, SyntaxError) as exc:
        raise Unavailable(f"MagCache calibration printed no ratios (got {text[-200:]!r})") from exc
    return ratios


def _drop_wrapper(denoiser: nn.Module) -> None:
    """Undo :func:`_ensure_cache_context` (before ``disable_cache``, which restores its own forward)."""
    fwd = vars(denoiser).get("forward")
    inner = getattr(fwd, "_evalsuite_inner", None)
    if inner is not None:
        denoiser.forward = inner  # type: ignore[method-assign]


def apply_cache(runner: Any, value: str, ctx: ApplyContext) -> dict[str, Any]:
    import diffusers.hooks as dh

    found = main_denoiser(runner)
    if found is None:
        raise Unavailable("no denoiser")
    role, den = found
    if not hasattr(den, "enable_cache"):
        raise Unavailable(f"{role} ({type(den).__name__}) has no enable_cache (diffusers CacheMixin)")
    name, *opts = value.split(":")
    steps = int(runner.params.steps)
    notes: dict[str, Any] = {}
    if name == "fbc":
        config: Any = dh.FirstBlockCacheConfig(threshold=float(opts[0]) if opts else 0.05)
    elif name == "taylorseer":
        config = dh.TaylorSeerCacheConfig()
    elif name == "pab":
        skip = int(opts[0]) if opts else 2
        config = dh.PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=skip,
            spatial_attention_timestep_skip_range=(100, 800),
            # diffusers annotates Callable[[], int]; it only compares the value with the skip range
            current_timestep_callback=cast("Callable[[], int]", _timestep_probe(runner, den)),
        )
    elif name == "faster":
        config = dh.FasterCacheConfig(
            spatial_attention_block_skip_range=2,
            current_timestep_callback=cast("Callable[[], int]", _timestep_probe(runner, den)),
            is_guidance_distilled=runner.cfg_batch_multiplier() == 1,
        )
    elif name == "mag":
        key = f"{ctx.config}|steps={steps}"
        if key not in ctx.mag_ratios:
            ctx.mag_ratios[key] = _calibrate_mag(runner, den, ctx, steps)
            notes["mag_calibration"] = "calibrated in this run"
        config = dh.MagCacheConfig(
            threshold=float(opts[0]) if opts else 0.06,
            num_inference_steps=steps,
            mag_ratios=ctx.mag_ratios[key],
        )
        notes["mag_ratios_key"] = key
    else:
        raise PointError(f"cache {value!r} unknown")
    try:
        cast(Any, den).enable_cache(config)  # hasattr-checked above (diffusers CacheMixin)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise Unavailable(
            f"{type(config).__name__} on {type(den).__name__}: {type(exc).__name__}: {exc}"
        ) from exc
    _ensure_cache_context(den)
    notes["cache"] = f"{type(config).__name__} on {role}" + (
        f" ({':'.join(opts)})" if opts else " (defaults)"
    )
    return notes


# -- compile ----------------------------------------------------------------------------------------


def compile_kwargs(mode: str, inductor: str | None = None) -> dict[str, Any]:
    """``torch.compile`` keyword arguments for the run's ``mode`` and a point's ``inductor`` value:
    ``{"mode": mode}`` alone, or, with an ``inductor`` value, ``{"options": ...}``: the options the mode
    stands for with the axis's options over them (``torch.compile`` takes a mode or options, not both)."""
    if not inductor:
        return {"mode": mode}
    import torch._inductor

    options = dict(torch._inductor.list_mode_options(mode)) if mode != "default" else {}
    options.update(INDUCTOR_OPTIONS[inductor])
    return {"options": options}


def _kwargs_text(kw: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


def apply_compile(runner: Any, value: str, ctx: ApplyContext, inductor: str | None = None) -> dict[str, Any]:
    if value == "off":
        return {}
    notes = _load_compile_cache(ctx)
    kw = compile_kwargs(ctx.compile_mode, inductor)
    dens = runner.denoisers()
    if value == "full":
        for m in dens.values():
            m.compile(**kw)
        return {**notes, "compile": f"full: module.compile({_kwargs_text(kw)}) on {', '.join(dens)}"}
    found = main_denoiser(runner)
    names = set(getattr(found[1], "_repeated_blocks", None) or []) if found else set()
    n, how = 0, []
    for role, m in dens.items():
        if getattr(m, "_repeated_blocks", None) and hasattr(m, "compile_repeated_blocks"):
            k = len(repeated_blocks(m))
            m.compile_repeated_blocks(fullgraph=True, **kw)
            how.append(f"{role}.compile_repeated_blocks ({k} blocks)")
        else:  # e.g. the ControlNet: the same block classes, compiled one by one
            k = 0
            for b in [x for x in m.modules() if type(x).__name__ in names]:
                b.compile(fullgraph=True, **kw)
                k += 1
            if k:
                how.append(f"{role}: {k} blocks compiled")
        n += k
    if not n:
        raise Unavailable("no repeated blocks to compile regionally (_repeated_blocks is empty)")
    return {**notes, "compile": f"regional (fullgraph=True, {_kwargs_text(kw)}): " + "; ".join(how)}


# -- the VAE ----------------------------------------------------------------------------------------


def apply_vae(runner: Any, value: str, ctx: ApplyContext, inductor: str | None = None) -> dict[str, Any]:
    vae = runner.components().get("vae")
    if not isinstance(vae, nn.Module):
        raise Unavailable("the pipeline has no VAE component")
    vae.to(memory_format=torch.channels_last)
    if value == "channels_last":
        return {"vae": "channels_last"}
    notes = _load_compile_cache(ctx)
    kw = compile_kwargs(ctx.compile_mode, inductor)
    parts = [n for n in ("encoder", "decoder") if isinstance(getattr(vae, n, None), nn.Module)]
    for n in parts:
        getattr(vae, n).compile(**kw)
    return {**notes, "vae": f"channels_last; {' and '.join(parts)} compiled ({_kwargs_text(kw)})"}


# -- CUDA graphs ------------------------------------------------------------------------------------


def apply_cudagraph(runner: Any, value: str) -> dict[str, Any]:
    if value != "on":
        return {}
    if runner.device.type != "cuda":
        raise Unavailable("CUDA graphs need a CUDA device")
    from evalsuite.accel.graphs import graph_module

    roles = []
    for role, m in runner.denoisers().items():
        graph_module(m, role)
        roles.append(role)
    return {
        "cudagraph": f"each call of {', '.join(roles)} recorded once as a CUDA graph (second call) and replayed after that"
    }


def cudagraph_stats(runner: Any) -> dict[str, Any]:
    """role → what the CUDA graphs of that denoiser did (captured, replayed, eager calls, why disabled);
    empty when no denoiser is graphed."""
    from evalsuite.accel.graphs import graph_stats

    out = {}
    for role, m in runner.denoisers().items():
        st = graph_stats(m)
        if st is not None:
            out[role] = st
    return out


# -- a whole point ----------------------------------------------------------------------------------


def apply_point(runner: Any, point: PointSpec, ctx: ApplyContext | None = None) -> dict[str, Any]:
    """Apply every non-load axis of ``point`` to the loaded ``runner`` in :data:`APPLY_ORDER`.

    Returns:
        notes per axis (what was done).

    Raises:
        Unavailable: naming the axis and the reason; the runner may be partly modified (reload it).
    """
    ctx = ctx or ApplyContext()
    notes: dict[str, Any] = {}
    for axis in APPLY_ORDER:
        value = point.get(axis)
        if value is None:
            continue
        try:
            if axis == "qkv":
                notes.update(apply_qkv(runner, value))
            elif axis == "attention":
                notes.update(apply_attention(runner, value))
            elif axis == "precision":
                notes.update(apply_precision(runner, value))
            elif axis == "cache":
                notes.update(apply_cache(runner, value, ctx))
            elif axis == "memory":
                notes.update(apply_strategy(runner, value))
            elif axis == "compile":
                notes.update(apply_compile(runner, value, ctx, point.get("inductor")))
            elif axis == "vae":
                notes.update(apply_vae(runner, value, ctx, point.get("inductor")))
            elif axis == "cudagraph":
                notes.update(apply_cudagraph(runner, value))
        except Unavailable as exc:
            raise Unavailable(f"{axis}={value}: {exc}") from exc
    inductor = point.get("inductor")
    if inductor:
        notes["inductor"] = f"{inductor}: {_kwargs_text(compile_kwargs(ctx.compile_mode, inductor))}"
    return notes


def check_point(point: PointSpec, device: torch.device | str) -> None:
    """What can be refused before loading: a memory strategy with a part that needs CUDA elsewhere.

    Raises:
        Unavailable: naming the axis and the reason (as :func:`apply_point` would after loading).
    """
    from evalsuite.accel.memory import check_device

    memory = point.get("memory")
    if memory:
        try:
            check_device(memory, device)
        except Unavailable as exc:
            raise Unavailable(f"memory={memory}: {exc}") from exc


def available_axes(device: torch.device | str) -> dict[str, str]:
    """Which optional packages each axis value needs and whether they are importable here."""
    dev = torch.device(device)
    out = {}
    for pkg, what in (
        ("torchao", "precision=fp8/int8wo"),
        ("bitsandbytes", "precision=nf4"),
        ("gguf", "precision=gguf"),
        ("flash_attn", "attention=flash"),
        ("flash_attn_interface", "attention=_flash_3"),
        ("sageattention", "attention=sage"),
    ):
        fix = " (pip install 'evalsuite[accel]')" if pkg in ACCEL_EXTRA else ""
        out[what] = "installed" if importlib.util.find_spec(pkg) else f"unavailable: {pkg} not installed{fix}"
    if dev.type != "cuda":
        out["memory offload / fp8"] = "unavailable: needs CUDA"
    return out
