"""The ``cudagraph`` axis (evalsuite.accel.graphs): call signatures, static input buffers, cloned
outputs, the fallback when a call cannot be captured, and the axis' refusals.

CUDA graphs need a GPU. Here the capture backend is :class:`ReplayBackend`, which runs the call again
on the static buffers instead of replaying a graph: the serving logic around it (which call warms up,
which captures, what is copied in and out, when it gives up) is the same code the GPU runs; the
GPU run itself is in docs/benchmarks/frontier-h100.md.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evalsuite.accel.axes import PointSpec, apply_point
from evalsuite.accel.errors import PointError, Unavailable
from evalsuite.accel.graphs import CudaBackend, GraphedCall, ReplayBackend, graph_module, graph_stats


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, scale: float = 1.0, extra: dict | None = None):
        y = self.lin(x) * scale
        return (y, {"sum": y.sum(), "tag": "ok"})


def _inputs(seed: int, rows: int = 4) -> torch.Tensor:
    return torch.randn(rows, 8, generator=torch.Generator().manual_seed(seed))


def test_calls_warm_up_then_capture_then_replay_with_each_calls_inputs():
    torch.manual_seed(0)
    m = Twice().eval()
    ref = Twice().eval()
    ref.load_state_dict(m.state_dict())
    backend = ReplayBackend()
    g = graph_module(m, "twice", backend)
    assert isinstance(m, Twice) and type(m).__name__ == "GraphedTwice"
    with torch.no_grad():
        outs = [m(_inputs(i), scale=2.0) for i in range(5)]
        want = [ref(_inputs(i), scale=2.0) for i in range(5)]
    for (y, d), (wy, wd) in zip(outs, want, strict=True):
        torch.testing.assert_close(y, wy)  # each call sees its own inputs (copied into the buffers)
        torch.testing.assert_close(d["sum"], wd["sum"])
        assert d["tag"] == "ok"
    assert backend.captures == 1
    assert g.stats.as_dict() == {"captured": 1, "replayed": 4, "eager": 1, "disabled": None}
    assert graph_stats(m) == g.stats.as_dict()


def test_outputs_are_copies_that_a_later_replay_does_not_overwrite():
    m = Twice().eval()
    graph_module(m, "twice", ReplayBackend())
    with torch.no_grad():
        m(_inputs(0))  # warm-up
        first, _ = m(_inputs(1))  # captured and replayed
        kept = first.clone()
        m(_inputs(2))  # replays into the same output buffers
    torch.testing.assert_close(first, kept)


def test_each_signature_gets_its_own_graph_up_to_the_limit():
    m = Twice().eval()
    g = graph_module(m, "twice", ReplayBackend(), max_graphs=2)
    with torch.no_grad():
        for rows in (4, 4, 8, 8, 16, 16, 4):  # 16 rows: a third signature, over the limit
            y, _ = m(_inputs(rows, rows), scale=0.5)
            assert y.shape == (rows, 8)
        m(_inputs(0), scale=3.0)  # a different non-tensor argument is another signature too
    assert len(g.graphs) == 2
    assert g.stats.captured == 2 and g.stats.replayed == 3
    assert g.stats.eager == 2 + 3  # two warm-ups, two calls over the limit, one more
    assert g.stats.disabled is None


def test_a_call_that_cannot_be_captured_is_served_without_graphs_and_says_why(caplog):
    class Refuses:
        host_inputs_ok = True

        def capture(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing")

    m = Twice().eval()
    ref = Twice().eval()
    ref.load_state_dict(m.state_dict())
    g = graph_module(m, "controlnet", Refuses())
    with torch.no_grad(), caplog.at_level("WARNING"):
        outs = [m(_inputs(i))[0] for i in range(4)]
    for i, y in enumerate(outs):
        torch.testing.assert_close(y, ref(_inputs(i))[0])
    assert g.stats.replayed == 0 and g.stats.eager == 4
    assert "operation not permitted" in (g.stats.disabled or "")
    warnings = [r.getMessage() for r in caplog.records if "cudagraph" in r.getMessage()]
    assert len(warnings) == 1 and "controlnet" in warnings[0]


def test_host_inputs_are_refused_before_any_capture():
    calls = []

    def fn(x):
        calls.append(x)
        return x * 2

    g = GraphedCall(fn, "cpu-call", CudaBackend())  # would need CUDA: refused before touching it
    x = torch.ones(3)
    for _ in range(3):
        torch.testing.assert_close(g(x), x * 2)
    assert "on the host" in (g.stats.disabled or "")
    assert g.stats.captured == 0 and len(calls) == 3


def test_graphing_a_module_twice_is_refused():
    m = Twice()
    graph_module(m, "twice", ReplayBackend())
    with pytest.raises(ValueError, match="already"):
        graph_module(m, "twice", ReplayBackend())


def test_a_graphed_flux_transformer_gives_the_eager_outputs():
    from diffusers import FluxTransformer2DModel

    from evalsuite.runners.components import FLUX_TRANSFORMER_TINY

    torch.manual_seed(0)
    model = FluxTransformer2DModel(**FLUX_TRANSFORMER_TINY).eval()
    n, t = 16, 8

    def kw(seed: int) -> dict:
        gen = torch.Generator().manual_seed(seed)
        return dict(
            hidden_states=torch.randn(1, n, 64, generator=gen),
            encoder_hidden_states=torch.randn(1, t, 32, generator=gen),
            pooled_projections=torch.randn(1, 32, generator=gen),
            timestep=torch.rand(1, generator=gen),
            guidance=torch.tensor([3.5]),
            img_ids=torch.zeros(n, 3),
            txt_ids=torch.zeros(t, 3),
            return_dict=False,
        )

    with torch.no_grad():
        want = [model(**kw(i))[0] for i in range(4)]
        g = graph_module(model, "transformer", ReplayBackend())
        got = [model(**kw(i))[0] for i in range(4)]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    assert g.stats.captured == 1 and g.stats.replayed == 3


def test_point_parsing_and_the_combinations_refused():
    p = PointSpec.parse("cudagraph,precision=fp8_row,compile=regional")
    assert p.label == "precision=fp8_row,compile=regional,cudagraph"
    assert p.graphed and p.compiled
    assert PointSpec.parse("cudagraph").compiled  # the cold call records the graphs
    assert not PointSpec.parse("cudagraph=off").graphed
    for bad, msg in (
        ("cudagraph=maybe", "on or off"),
        ("cudagraph,cache=fbc", "cache"),
        ("cudagraph,memory=te_cpu", "memory"),
    ):
        with pytest.raises(PointError, match=msg):
            PointSpec.parse(bad)


def test_the_axis_is_unavailable_without_cuda():
    class Runner:
        device = torch.device("cpu")

        def denoisers(self):
            return {"transformer": Twice()}

    with pytest.raises(Unavailable, match="cudagraph=on: CUDA graphs need a CUDA device"):
        apply_point(Runner(), PointSpec.parse("cudagraph"))


def test_the_vae_axis_on_a_tiny_flux_pipeline_keeps_its_images():
    """``vae=channels_last`` changes the memory layout only: the tiny pipeline's image is the same
    up to convolution-algorithm rounding; a bad value is refused at parsing."""
    import dataclasses

    import numpy as np

    import evalsuite  # noqa: F401  (registers the runners)
    from evalsuite.config import configuration as cfg
    from evalsuite.data.registry import load_dataset
    from evalsuite.registry import RUNNERS
    from evalsuite.runners.weights import Weights
    from evalsuite.scenarios.profile import pick_cases

    with pytest.raises(PointError, match="vae must be"):
        PointSpec.parse("vae=nhwc")
    conf = cfg.resolve("flux-dev")
    params = dataclasses.replace(conf.params, steps=2, tiny_size=32)
    images = []
    for point in ("ref", "vae=channels_last"):
        runner = RUNNERS.get(conf.runner)(params, Weights("tiny"), "cpu")
        runner.load()
        cases, seeds = pick_cases(runner, list(load_dataset("smoke").cases), 1)
        notes = apply_point(runner, PointSpec.parse(point))
        if point != "ref":
            assert notes == {"vae": "channels_last"}
            conv = runner.components()["vae"].decoder.conv_in.weight
            assert conv.is_contiguous(memory_format=torch.channels_last)
        images.append(np.asarray(runner.generate(cases, seeds)[0].image, dtype=np.int16))
        runner.close()
    assert images[0].shape == images[1].shape
    assert np.abs(images[0] - images[1]).max() <= 2
