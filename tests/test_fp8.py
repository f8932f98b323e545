import torch
from torch import nn

from evalsuite.runners.fp8 import Fp8Linear, apply_fp8


def test_fp8_linear_approximates_the_linear_both_paths():
    torch.manual_seed(0)
    for lin, rows in ((nn.Linear(64, 32), 32), (nn.Linear(64, 32), 3), (nn.Linear(40, 24), 5)):
        # 32 rows → torch._scaled_mm; 3 rows → padded to 16; 40/24 features → dequantised fallback
        fp8 = Fp8Linear(lin)
        assert fp8.weight_fp8.dtype == torch.float8_e4m3fn
        x = torch.randn(2, rows, lin.in_features)
        ref, out = lin(x), fp8(x)
        assert out.shape == ref.shape and out.dtype == ref.dtype
        rel = (out - ref).norm() / ref.norm()
        assert 0 < rel < 0.08  # e4m3 has a 3-bit mantissa: a few percent, never exact


def test_apply_fp8_swaps_transformer_linears_and_keeps_outputs_close():
    from diffusers import FluxTransformer2DModel

    from evalsuite.runners.components import FLUX_TRANSFORMER_TINY

    torch.manual_seed(0)
    model = FluxTransformer2DModel(**FLUX_TRANSFORMER_TINY).eval()
    n, t = 16, 16
    kw = dict(
        hidden_states=torch.randn(1, n, 64),
        encoder_hidden_states=torch.randn(1, t, 32),
        pooled_projections=torch.randn(1, 32),
        timestep=torch.tensor([0.5]),
        guidance=torch.tensor([3.5]),
        img_ids=torch.zeros(n, 3),
        txt_ids=torch.zeros(t, 3),
    )
    with torch.no_grad():
        ref = model(**kw).sample
        info = apply_fp8(model, "scaled_mm")
        out = model(**kw).sample
    assert info["layers"] == sum(isinstance(m, Fp8Linear) for m in model.modules()) > 10
    assert not any(type(m) is nn.Linear and min(m.in_features, m.out_features) >= 16 for m in model.modules())
    assert 0 < ((out - ref).norm() / ref.norm()) < 0.15
