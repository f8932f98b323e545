"""The ``inductor`` axis: Inductor options for what a point compiles (evalsuite.accel.axes)."""

import pytest
import torch
from torch import nn

from evalsuite.accel.axes import INDUCTOR_OPTIONS, PointSpec, compile_kwargs


def test_inductor_axis_parses_and_needs_something_compiled():
    p = PointSpec.parse("inductor=tuned,compile=regional,precision=fp8_row")
    assert p.label == "precision=fp8_row,compile=regional,inductor=tuned"
    assert PointSpec.parse("vae=compile,inductor=autotune").get("inductor") == "autotune"
    with pytest.raises(ValueError, match="inductor must be tuned, autotune, persistent"):
        PointSpec.parse("compile=regional,inductor=fast")
    with pytest.raises(ValueError, match="compiles nothing; add compile=regional"):
        PointSpec.parse("precision=fp8_row,inductor=tuned")
    with pytest.raises(ValueError, match="compiles nothing"):
        PointSpec.parse("compile=off,vae=channels_last,inductor=tuned")


def test_compile_kwargs_merge_the_mode_under_the_axis_options():
    assert compile_kwargs("default") == {"mode": "default"}
    assert compile_kwargs("max-autotune-no-cudagraphs", None) == {"mode": "max-autotune-no-cudagraphs"}
    assert compile_kwargs("default", "tuned") == {"options": INDUCTOR_OPTIONS["tuned"]}
    merged = compile_kwargs("max-autotune-no-cudagraphs", "tuned")["options"]
    # the mode's own options stay (torch.compile refuses mode and options together) ...
    assert merged["max_autotune"] is True
    # ... and the axis's options are there, over the mode's
    assert merged["epilogue_fusion"] is False and merged["coordinate_descent_check_all_directions"] is True
    # autotune is what mode max-autotune-no-cudagraphs means in this torch
    assert compile_kwargs("default", "autotune")["options"] == torch._inductor.list_mode_options(
        "max-autotune-no-cudagraphs"
    )


@pytest.mark.parametrize("value", sorted(INDUCTOR_OPTIONS))
def test_torch_compile_accepts_every_option_set(value):
    # torch.compile checks option names against this torch's Inductor config when it wraps the module
    # (an unknown name raises RuntimeError here, long before a GPU run would have found it)
    for mode in ("default", "max-autotune-no-cudagraphs"):
        torch.compile(nn.Linear(2, 2), **compile_kwargs(mode, value))
    with pytest.raises(RuntimeError, match="Unexpected optimization option"):
        torch.compile(nn.Linear(2, 2), options={"no_such_inductor_option": True})


@pytest.mark.numerics
@pytest.mark.parametrize("value", ["tuned", "persistent"])
def test_a_module_compiled_with_the_options_computes_what_eager_does(value, tmp_path, monkeypatch):
    # A fresh Inductor cache: torch 2.14's on-disk graph cache does not key on ATEN_CPU_CAPABILITY, and a
    # graph compiled at the native level (AVX-512) and reloaded under ATEN_CPU_CAPABILITY=avx2 computed
    # wrong values (max error 0.34 on this module), while under =default it failed to load.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))
    x = torch.randn(4, 16)
    with torch.no_grad():
        want = m(x)
        m.compile(**compile_kwargs("default", value))
        got = m(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
