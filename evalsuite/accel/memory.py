"""Memory strategies applied to a loaded runner, and component sizes (issue: fit a memory budget).

A strategy is a ``+``-joined list of parts, applied in order to a runner whose pipeline is loaded
(on the GPU, under the ``random`` policy: built there directly):

``resident``
    everything stays on the device (the reference).
``te_offload``
    text encoders live on the CPU; each new prompt moves them to the device, encodes, moves them
    back and empties the allocator cache. Embeddings are cached per prompt, so repeated prompts
    (a seed sweep) encode once.
``te_cpu``
    text encoders live and run on the CPU (no device memory at all; slower first encode), with the
    same per-prompt cache.
``model_offload`` / ``sequential``
    diffusers' ``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``.
``group_block[:N][:stream]`` / ``group_leaf[:stream]``
    diffusers' ``enable_group_offload`` on every denoiser (block level with ``num_blocks_per_group=N``,
    default 1, or leaf level), optionally overlapping transfers with compute on a CUDA stream.
``group_partial:F[:stream]``
    group offload of only a fraction ``F`` (0 < F ≤ 1) of every denoiser's blocks (the children of its
    ``ModuleList``s, spread evenly over the execution order); the other blocks stay resident. The
    offloaded blocks are streamed in one block ahead (with ``stream``), so their transfer overlaps
    the resident blocks' compute. Built on ``enable_group_offload`` at block level: the hooks of
    the blocks that stay are removed again and the blocks moved back to the device.
``expandable``
    the CUDA caching allocator's ``expandable_segments`` for the calls of this strategy (fewer
    cached-but-unused blocks, so the device peak comes closer to the allocator peak); reset when
    the strategy's runner is closed.
``vae_tiling`` / ``vae_slicing``
    ``vae.enable_tiling()`` / ``vae.enable_slicing()``.
``empty_cache``
    release the allocator's cached blocks before the VAE decode (``torch.cuda.empty_cache``).

Quantised or fp8-stored denoisers are precision axes (:mod:`evalsuite.accel.axes`) and compose
with these (``precision=layerwise,memory=te_cpu+vae_tiling``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from evalsuite.accel.errors import PointError, Unavailable

log = logging.getLogger(__name__)
GIB = float(1 << 30)


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (tensor subclasses count their storage)."""
    total = 0
    seen: set[int] = set()
    for t in list(module.parameters()) + list(module.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        inner = getattr(t, "__tensor_flatten__", None)
        if inner is not None and type(t) not in (torch.Tensor, torch.nn.Parameter):
            names, _ = inner()  # the bound t.__tensor_flatten__
            total += sum(
                getattr(t, n).numel() * getattr(t, n).element_size()
                for n in names
                if isinstance(getattr(t, n), torch.Tensor)
            )
        else:
            total += t.numel() * t.element_size()
    return total


def component_sizes(runner: Any) -> dict[str, float]:
    """GiB of weights per component (``runner.components()``), as loaded now (dtype/quantisation)."""
    return {name: module_bytes(m) / GIB for name, m in runner.components().items()}


def _text_encoders(runner: Any) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in runner.components().items() if n.startswith("text_encoder")}


def _freeze(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, torch.Tensor):
        return ("tensor", v.data_ptr(), tuple(v.shape))
    return v if isinstance(v, str | int | float | bool | type(None)) else repr(v)


def _move(out: Any, device: torch.device) -> Any:
    if isinstance(out, torch.Tensor):
        return out.to(device)
    if isinstance(out, tuple | list):
        return type(out)(_move(x, device) for x in out)
    return out


def _memo_encode(runner: Any, on_cpu: bool) -> dict[str, Any]:
    pipe, dev = runner.pipe, runner.device
    encoders = _text_encoders(runner)
    if not encoders:
        raise Unavailable("the pipeline has no text encoders")
    if not hasattr(pipe, "encode_prompt"):
        raise Unavailable(f"{type(pipe).__name__} has no encode_prompt to wrap")
    for m in encoders.values():
        m.to("cpu")
    _empty(dev)
    original: Callable[..., Any] = pipe.encode_prompt
    memo: dict[Any, Any] = {}

    def encode(*args: Any, **kwargs: Any) -> Any:
        key = (_freeze(args), tuple(sorted((k, _freeze(v)) for k, v in kwargs.items())))
        if key in memo:
            return memo[key]
        if on_cpu:
            kwargs = {**kwargs, "device": torch.device("cpu")}
            out = _move(original(*args, **kwargs), dev)
        else:
            for m in encoders.values():
                m.to(dev)
            try:
                out = original(*args, **kwargs)
            finally:
                for m in encoders.values():
                    m.to("cpu")
                _empty(dev)
        memo[key] = out
        return out

    pipe.encode_prompt = encode
    where = "run on the CPU" if on_cpu else "moved to the device per new prompt, then back"
    return {"text_encoders": f"{', '.join(encoders)} on the CPU ({where}); embeddings cached per prompt"}


def _empty(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()


#: parts that need a CUDA device (:func:`check_device` refuses them elsewhere before anything is loaded)
CUDA_PARTS = ("model_offload", "sequential", "group_block", "group_leaf", "group_partial", "empty_cache")
EXPANDABLE_NEEDS_CUDA = "expandable is a setting of the CUDA caching allocator: it needs a CUDA device"


def _cuda_reason(what: str) -> str:
    return f"{what} needs a CUDA device (it moves weights between host and GPU)"


def _need_cuda(runner: Any, what: str) -> None:
    if runner.device.type != "cuda":
        raise Unavailable(_cuda_reason(what))


def check_device(strategy: str, device: torch.device | str) -> None:
    """Refuse, before a runner is loaded, a strategy with a part that cannot run on ``device``
    (the same reasons :func:`apply_part` gives after loading).

    Raises:
        Unavailable: naming the part.
    """
    if torch.device(device).type == "cuda":
        return
    for part in strategy.split("+"):
        name = part.split(":")[0]
        if name in CUDA_PARTS:
            raise Unavailable(_cuda_reason(name))
        if name == "expandable":
            raise Unavailable(EXPANDABLE_NEEDS_CUDA)


def apply_part(runner: Any, part: str) -> dict[str, Any]:
    """Apply one strategy part (see the module docstring); returns notes.

    Raises:
        Unavailable: with the reason the part cannot run here.
        PointError: (a ValueError) for an unknown or malformed part.
    """
    name, *opts = part.split(":")
    pipe, dev = runner.pipe, runner.device
    if name == "resident":
        return {}
    if name in ("te_offload", "te_cpu"):
        return _memo_encode(runner, on_cpu=name == "te_cpu")
    if name == "model_offload":
        _need_cuda(runner, name)
        pipe.enable_model_cpu_offload(device=dev)
        return {"offload": "enable_model_cpu_offload"}
    if name == "sequential":
        _need_cuda(runner, name)
        pipe.enable_sequential_cpu_offload(device=dev)
        return {"offload": "enable_sequential_cpu_offload"}
    if name in ("group_block", "group_leaf"):
        _need_cuda(runner, name)
        stream = "stream" in opts
        nums = [int(o) for o in opts if o.isdigit()]
        kw: dict[str, Any] = dict(
            onload_device=dev,
            offload_device=torch.device("cpu"),
            offload_type="block_level" if name == "group_block" else "leaf_level",
            use_stream=stream,
            # without record_stream, every offload waits for the compute stream on the host
            record_stream=stream,
        )
        if name == "group_block":
            kw["num_blocks_per_group"] = nums[0] if nums else 1
        done = []
        for role, m in runner.denoisers().items():
            if not hasattr(m, "enable_group_offload"):
                raise Unavailable(f"{role} ({type(m).__name__}) has no enable_group_offload")
            m.enable_group_offload(**kw)
            done.append(role)
        _empty(dev)
        return {
            "group_offload": f"{', '.join(done)}: {kw['offload_type']}, use_stream={stream}"
            + (f", num_blocks_per_group={kw['num_blocks_per_group']}" if name == "group_block" else "")
        }
    if name == "group_partial":
        _need_cuda(runner, name)
        return _partial_group_offload(runner, opts)
    if name == "expandable":
        if runner.device.type != "cuda":
            raise Unavailable(EXPANDABLE_NEEDS_CUDA)
        set_expandable_segments(True)
        return {"allocator": "expandable_segments:True"}
    if name in ("vae_tiling", "vae_slicing"):
        vae = getattr(pipe, "vae", None)
        fn = getattr(vae, "enable_" + name.split("_")[1], None)
        if fn is None:
            raise Unavailable(f"the VAE ({type(vae).__name__}) has no {name.replace('_', ' ')}")
        fn()
        return {name: "on"}
    if name == "empty_cache":
        _need_cuda(runner, name)
        vae = pipe.vae
        original = vae.decode

        def decode(*args: Any, **kwargs: Any) -> Any:
            torch.cuda.empty_cache()
            return original(*args, **kwargs)

        vae.decode = decode
        return {"empty_cache": "before the VAE decode"}
    raise PointError(
        f"unknown memory strategy part {part!r}; use resident, te_offload, te_cpu, model_offload, sequential, "
        "group_block[:N][:stream], group_leaf[:stream], group_partial:F[:stream], expandable, vae_tiling, vae_slicing, empty_cache"
    )


def set_expandable_segments(on: bool) -> None:
    """Switch the CUDA caching allocator's ``expandable_segments`` (applies to segments created from now on)."""
    torch.cuda.memory._set_allocator_settings(f"expandable_segments:{on}")


def reset_allocator(dev: torch.device) -> None:
    """Undo ``expandable``: back to what ``PYTORCH_CUDA_ALLOC_CONF`` asked for (default: off)."""
    if dev.type == "cuda":
        import os

        conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "").replace(" ", "")
        set_expandable_segments("expandable_segments:True" in conf)


def offloaded_blocks(n: int, fraction: float) -> list[int]:
    """Indices of ``round(fraction * n)`` of ``n`` blocks, spread evenly (the last block always among them).

    >>> offloaded_blocks(8, 0.25)
    [3, 7]
    """
    k = max(0, min(n, round(fraction * n)))
    return [i for i in range(n) if (i + 1) * k // n > i * k // n]


def denoiser_blocks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks group offload works on: the children of the module's ``ModuleList``/``Sequential`` children."""
    return [
        b
        for _, child in module.named_children()
        if isinstance(child, torch.nn.ModuleList | torch.nn.Sequential)
        for b in child
    ]


def _partial_group_offload(runner: Any, opts: list[str], offload_device: str = "cpu") -> dict[str, Any]:
    from diffusers.hooks import HookRegistry
    from diffusers.hooks import group_offloading as go

    nums = [o for o in opts if o != "stream"]
    try:
        fraction = float(nums[0]) if len(nums) == 1 else float("nan")
    except ValueError:
        fraction = float("nan")
    if not 0.0 < fraction <= 1.0 or set(opts) - {"stream", *nums}:
        raise PointError(f"group_partial:{':'.join(opts)}: write group_partial:F[:stream] with 0 < F <= 1")
    stream = "stream" in opts
    dev = runner.device
    notes = []
    for role, m in runner.denoisers().items():
        if not hasattr(m, "enable_group_offload"):
            raise Unavailable(f"{role} ({type(m).__name__}) has no enable_group_offload")
        blocks = denoiser_blocks(m)
        if not blocks:
            raise Unavailable(f"{role} ({type(m).__name__}) has no ModuleList of blocks to offload")
        away = set(offloaded_blocks(len(blocks), fraction))
        m.enable_group_offload(
            onload_device=dev,
            offload_device=torch.device(offload_device),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=stream,
            record_stream=stream,
        )
        lazy = m._diffusers_hook.get_hook(go._LAZY_PREFETCH_GROUP_OFFLOADING) if stream else None
        names = {id(mod): n for n, mod in m.named_modules()}
        for i, b in enumerate(blocks):
            if i in away:
                continue
            reg = HookRegistry.check_if_exists_or_initialize(b)
            reg.remove_hook(go._GROUP_OFFLOADING, recurse=False)
            reg.remove_hook(go._LAYER_EXECUTION_TRACKER, recurse=False)
            if lazy is not None:
                lazy._layer_execution_tracker_module_names.discard(names[id(b)])
            b.to(dev)
        gib = sum(module_bytes(blocks[i]) for i in away) / GIB
        notes.append(
            f"{role}: {len(away)}/{len(blocks)} blocks offloaded ({gib:.2f} GiB), use_stream={stream}"
        )
    _empty(dev)
    return {"group_partial": "; ".join(notes)}


def apply_strategy(runner: Any, strategy: str) -> dict[str, Any]:
    """Apply a ``+``-joined strategy; returns the merged notes (raises :class:`Unavailable`)."""
    notes: dict[str, Any] = {}
    for part in strategy.split("+"):
        if part:
            notes.update(apply_part(runner, part))
    return notes
