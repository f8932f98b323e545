import torch
from torch import nn

from evalsuite.runners.fp8 import Fp8Linear, swap_linears


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


def test_swap_linears_swaps_transformer_linears_and_keeps_outputs_close():
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
        swapped = swap_linears(model)
        out = model(**kw).sample
    assert swapped == sum(isinstance(m, Fp8Linear) for m in model.modules()) > 10
    assert not any(type(m) is nn.Linear and min(m.in_features, m.out_features) >= 16 for m in model.modules())
    assert 0 < ((out - ref).norm() / ref.norm()) < 0.15


def test_row_granularity_has_one_scale_per_output_feature_and_beats_per_tensor_on_uneven_rows():
    torch.manual_seed(0)
    lin = nn.Linear(64, 32)
    with torch.no_grad():
        lin.weight[0] *= 1e5  # one large output row: per tensor, the others fall to e4m3 subnormals
    x = torch.randn(48, 64)
    x[0] *= 1e5  # one large activation row
    ref = lin(x)
    err = {}
    for gran in ("tensor", "row"):
        fp8 = Fp8Linear(lin, gran)
        assert fp8.w_scale.shape == ((32, 1) if gran == "row" else ())
        out = fp8(x)
        assert out.shape == ref.shape and out.dtype == ref.dtype
        # error on the ordinary rows and columns, which per-row scales keep in e4m3's normal range
        err[gran] = float((out[1:, 1:] - ref[1:, 1:]).norm() / ref[1:, 1:].norm())
    assert 0 < err["row"] < 0.08
    assert err["row"] < err["tensor"] / 2
    assert "granularity=row" in repr(Fp8Linear(lin, "row"))


def test_row_granularity_adds_the_bias_and_pads_short_inputs():
    torch.manual_seed(1)
    lin = nn.Linear(64, 32)
    with torch.no_grad():
        lin.bias += 5.0  # a bias far from zero: forgetting it would show
    fp8 = Fp8Linear(lin, "row")
    for rows in (3, 32):
        x = torch.randn(rows, 64)
        rel = (fp8(x) - lin(x)).norm() / lin(x).norm()
        assert 0 < rel < 0.08


def test_unknown_granularity_is_refused():
    import pytest

    with pytest.raises(ValueError, match="granularity 'col' unknown"):
        Fp8Linear(nn.Linear(16, 16), "col")


def test_the_bias_in_the_product_and_after_it_agree_and_fast_accumulation_is_recorded():
    from evalsuite.runners.fp8 import rowwise_bias_supported

    torch.manual_seed(2)
    lin = nn.Linear(64, 32)
    with torch.no_grad():
        lin.bias += 3.0
    fused = Fp8Linear(lin, "row")
    assert fused.bias_in_mm == rowwise_bias_supported("cpu")
    after = Fp8Linear(lin, "row", fast_accum=False)
    after.bias_in_mm = False  # the path of a torch build whose row-wise product takes no bias
    x = torch.randn(20, 64)
    # the same product; the bias added in the epilogue or after it differs by bf16 rounding only
    torch.testing.assert_close(fused(x), after(x), rtol=2e-2, atol=5e-2)
    assert "fast_accum=True" in repr(fused) and "fast_accum=False" in repr(after)


def test_a_build_whose_rowwise_product_refuses_a_bias_adds_it_after(monkeypatch, caplog):
    # the refusal of a torch build without that kernel cannot be produced here: the product raises as
    # TORCH_CHECK would, and the probe must answer False and say why
    from evalsuite.runners import fp8

    def refuse(*args, **kwargs):
        if kwargs.get("bias") is not None:
            raise RuntimeError("Bias is not supported with row-wise scaling")
        return real(*args, **kwargs)

    real = torch._scaled_mm
    fp8.rowwise_bias_supported.cache_clear()
    monkeypatch.setattr(torch, "_scaled_mm", refuse)
    try:
        with caplog.at_level("INFO", logger="evalsuite.runners.fp8"):
            assert fp8.rowwise_bias_supported("cpu") is False
        assert "takes no bias with row-wise scales" in caplog.text
        lin = nn.Linear(32, 16)
        m = Fp8Linear(lin, "row")
        assert m.bias_in_mm is False
        y = m(torch.randn(4, 32))  # the bias goes in after the product
        assert y.shape == (4, 16)
    finally:
        fp8.rowwise_bias_supported.cache_clear()
    assert swap_linears(nn.Sequential(nn.Linear(32, 32)), granularity="row", fast_accum=False) == 1
