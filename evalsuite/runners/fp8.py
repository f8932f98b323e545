"""fp8 (e4m3) linear layers through a small ``torch._scaled_mm`` swap: the precision axes ``fp8_tensor`` /
``fp8_row`` of :mod:`evalsuite.accel.axes` (torchao's recipe is ``precision=fp8``; ``evalsuite profile``
``--dtypes fp8`` picks one of them by ``--fp8-backend``).

:class:`Fp8Linear` stores the weight in ``float8_e4m3fn`` with one per-tensor scale
(amax / 448) and quantises the activation per tensor on the fly (dynamic scaling); the product
runs in ``torch._scaled_mm`` with the input's output dtype and the bias added there. With
``granularity="row"`` the weight gets one scale per output feature and the activation one per row
(torchao's ``PerRow`` recipe, written with plain tensors so that ``torch.compile`` traces it
without tensor subclasses); the bias goes into the product's epilogue where this torch's
``torch._scaled_mm`` takes a bias with row-wise scales (probed once per device), else it is added
after. Products use fast accumulation (``use_fast_accum=True``: Hopper's fp8 tensor cores accumulate
in reduced precision and promote periodically instead of after every step), as torchao's
``Float8DynamicActivationFloat8WeightConfig`` does by default; ``fast_accum=False`` turns it off. Row counts
that are not multiples of 16 (modulation layers act on one conditioning vector per sample) are
zero-padded; layers whose in- or out-features are not multiples of 16 use the dequantised weight
in a plain matmul, so every layer keeps the fp8 weight's numerics. This changes numerics: images from fp8
runs differ from bf16 ones (measure the cost with a paired metric under real weights).
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

E4M3_MAX = 448.0


def _scale(t: torch.Tensor, row: bool = False) -> torch.Tensor:
    """amax / 448: one scale for the tensor, or (``row``) one per row, shape ``(rows, 1)``."""
    amax = t.detach().abs().amax(dim=-1, keepdim=True) if row else t.detach().abs().amax()
    return (amax.float() / E4M3_MAX).clamp(min=1e-12)


GRANULARITIES = ("tensor", "row")


@functools.cache
def rowwise_bias_supported(device: str) -> bool:
    """Whether ``torch._scaled_mm`` on ``device`` takes a bias together with row-wise scales (a tiny
    product, run once per device; torch builds differ)."""
    dev = torch.device(device)
    try:
        a = torch.ones(16, 16, device=dev).to(torch.float8_e4m3fn)
        ones_a, ones_b = torch.ones(16, 1, device=dev), torch.ones(1, 16, device=dev)
        bias = torch.full((16,), 2.0, device=dev, dtype=torch.bfloat16)
        y = torch._scaled_mm(a, a.t(), scale_a=ones_a, scale_b=ones_b, bias=bias, out_dtype=torch.bfloat16)
        return bool((y.float() == 18.0).all())
    except RuntimeError as exc:  # TORCH_CHECK's refusal (NotImplementedError, a missing kernel, is one too)
        log.info(
            "torch._scaled_mm on %s takes no bias with row-wise scales (%s); it is added after", device, exc
        )
        return False


class Fp8Linear(nn.Module):
    """A drop-in ``nn.Linear`` replacement with an e4m3 weight and dynamic activation scales.

    Args:
        linear: the layer to replace (its weight is quantised once, here).
        granularity: ``tensor`` (one scale each for weight and activation) or ``row`` (one per
            output feature of the weight, one per row of the activation).
        fast_accum: fast fp8 accumulation in ``torch._scaled_mm`` (see the module docstring).
    """

    w_scale: torch.Tensor
    weight_fp8: torch.Tensor
    bias: nn.Parameter | None

    def __init__(self, linear: nn.Linear, granularity: str = "tensor", fast_accum: bool = True) -> None:
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity {granularity!r} unknown; use {' or '.join(GRANULARITIES)}")
        self.granularity = granularity
        w = linear.weight.detach()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        scale = _scale(w, row=granularity == "row")  # (out, 1) per row
        self.register_buffer("w_scale", scale)
        self.register_buffer("weight_fp8", (w.float() / scale).to(torch.float8_e4m3fn))
        self.bias = (
            None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        )
        self.out_dtype = w.dtype
        self.fast_accum = fast_accum
        self.bias_in_mm = granularity == "tensor" or (
            self.bias is not None and rowwise_bias_supported(str(w.device))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        out_dtype = x.dtype if x.dtype in (torch.bfloat16, torch.float16, torch.float32) else self.out_dtype
        if self.in_features % 16 == 0 and self.out_features % 16 == 0:
            rows = x2.shape[0]
            pad = -rows % 16  # e.g. modulation layers act on one vector per sample
            if pad:
                x2 = torch.nn.functional.pad(x2, (0, 0, 0, pad))
            row = self.granularity == "row"
            xs = _scale(x2, row=row)
            xq = (x2.float() / xs).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
            bias = None if self.bias is None else self.bias.to(out_dtype)
            if row:  # scale_b is (1, out); row-wise products return bf16
                in_mm = bias is not None and self.bias_in_mm
                y = torch._scaled_mm(
                    xq,
                    self.weight_fp8.t(),
                    scale_a=xs,
                    scale_b=self.w_scale.t(),
                    bias=bias.to(torch.bfloat16) if in_mm and bias is not None else None,
                    out_dtype=torch.bfloat16,
                    use_fast_accum=self.fast_accum,
                )[:rows].to(out_dtype)
                if bias is not None and not in_mm:
                    y = y + bias
            else:
                y = torch._scaled_mm(
                    xq,
                    self.weight_fp8.t(),
                    scale_a=xs,
                    scale_b=self.w_scale,
                    bias=bias,
                    out_dtype=out_dtype,
                    use_fast_accum=self.fast_accum,
                )[:rows]
        else:
            w = (self.weight_fp8.float() * self.w_scale).to(out_dtype)
            y = nn.functional.linear(
                x2.to(out_dtype), w, None if self.bias is None else self.bias.to(out_dtype)
            )
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, fp8=e4m3, "
            f"granularity={self.granularity}, fast_accum={self.fast_accum}"
        )


def swap_linears(
    module: nn.Module, min_features: int = 16, granularity: str = "tensor", fast_accum: bool = True
) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by :class:`Fp8Linear`; returns how many were swapped."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear) and min(child.in_features, child.out_features) >= min_features:
            setattr(module, name, Fp8Linear(child, granularity, fast_accum))
            count += 1
        else:
            count += swap_linears(child, min_features, granularity, fast_accum)
    return count
