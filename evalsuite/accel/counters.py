"""Count denoiser passes computed vs reused (what a cache hook saves), per ``generate`` call.

A cache hook (FirstBlockCache, MagCache, TaylorSeer, PAB, FasterCache) replaces the forward of a
block or of its attention/feed-forward modules by a lookup, so a forward hook on the block itself
still fires when the work is skipped. :class:`PassCounter` therefore counts calls of the **query
(or fused QKV) projection of the first attention inside each repeated block** (found after
fusing/quantisation): it runs only when the block's attention is really computed (the block's
modulation linear runs on every step, cached or not). With ``B`` blocks and ``C`` denoiser calls, ``computed = linear calls / B`` block-
equivalent passes, ``reused = C − computed``.

Counting uses Python forward hooks, so it is attached to eager points only (inside a compiled
region the hooks would be traced); compiled points report ``passes: not counted (compiled)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def repeated_blocks(module: nn.Module) -> list[nn.Module]:
    """The module's repeated blocks: instances of the classes named in diffusers' ``_repeated_blocks``
    (FLUX double/single blocks, the UNet's transformer blocks), in module order; ``[]`` if none."""
    names = set(getattr(module, "_repeated_blocks", None) or [])
    return [m for m in module.modules() if type(m).__name__ in names]


def _first_linear(block: nn.Module) -> nn.Module | None:
    """The query (or fused QKV) projection of the block's first attention module, else its first linear
    layer: the modulation linears (``norm1.linear``) run even when a cache reuses the attention."""
    for m in block.modules():
        for name in ("to_qkv", "to_q"):
            proj = getattr(m, name, None)
            if isinstance(proj, nn.Module):
                return proj
    for m in block.modules():
        if isinstance(m, nn.Linear) or type(m).__name__ in ("Linear4bit", "Fp8Linear"):
            return m
    return None


class PassCounter:
    """Forward hooks counting denoiser calls and computed blocks of one denoiser.

    Use :meth:`attach` once, :meth:`reset` before a call, :meth:`snapshot` after it.
    """

    def __init__(self, denoiser: nn.Module) -> None:
        self.denoiser = denoiser
        self.calls = 0
        self.block_calls = 0
        self.blocks = 0
        self._handles: list[Any] = []

    def attach(self) -> PassCounter:
        def root(*_: Any) -> None:
            self.calls += 1

        def blk(*_: Any) -> None:
            self.block_calls += 1

        self._handles.append(self.denoiser.register_forward_pre_hook(root))
        for b in repeated_blocks(self.denoiser):
            lin = _first_linear(b)
            if lin is not None:
                self._handles.append(lin.register_forward_pre_hook(blk))
                self.blocks += 1
        return self

    def reset(self) -> None:
        self.calls = 0
        self.block_calls = 0

    def snapshot(self) -> dict[str, float]:
        """``denoiser_calls``, ``passes_computed`` (block-equivalent), ``passes_reused``."""
        if not self.blocks:
            return {"denoiser_calls": float(self.calls)}
        computed = self.block_calls / self.blocks
        return {
            "denoiser_calls": float(self.calls),
            "passes_computed": computed,
            "passes_reused": max(0.0, self.calls - computed),
        }

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def main_denoiser(runner: Any) -> tuple[str, torch.nn.Module] | None:
    """The (role, module) a cache acts on: the transformer or UNet (not the ControlNet)."""
    dens = runner.denoisers()
    for role in ("transformer", "unet"):
        if role in dens:
            return role, dens[role]
    return next(iter(dens.items()), None)
