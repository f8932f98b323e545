"""CUDA graphs around whole denoiser calls: the ``cudagraph`` axis of :mod:`evalsuite.accel.axes`.

Each denoiser call (one transformer or ControlNet pass of one step) is recorded once as a CUDA graph
and replayed afterwards: the host then launches one graph instead of the thousands of kernels of a
pass, so the GPU no longer waits for Python between them. This is what the 8-step configurations
need, where the host's launch gaps are a tenth of the time (docs/benchmarks/frontier-h200.md).

Why a graph around the whole call and not ``torch.compile(mode="reduce-overhead")``: with regional
compilation every repeated block is its own CUDA graph and the blocks share one compiled graph, so a
block's replay overwrites the residual stream its predecessor returned ("accessing tensor output of
CUDAGraphs that has been overwritten by a subsequent run"). One graph per denoiser call owns every
intermediate of the pass; the compiled blocks inside it (Inductor's kernels, cuBLAS, cuDNN attention)
are captured like eager kernels.

How a call is served (:class:`GraphedCall`):

1. The call's arguments are flattened (:mod:`torch.utils._pytree`); its *signature* is the tree
   structure, every tensor's shape/dtype/device and every other leaf's value. Each signature has its
   own graph (at most ``max_graphs``; calls with further signatures run without one).
2. The first call of a signature runs normally (it also warms up compilation, cuBLAS and cuDNN).
3. The second call copies its tensors into static input buffers, runs once more on a side stream
   (the warm-up the CUDA graph documentation asks for), captures the call, and replays it.
4. Every later call copies its tensors into the static buffers and replays. The outputs are cloned
   (the graph's output buffers are overwritten by its next replay), so a caller may keep them.

A call that cannot be captured (a host synchronisation, a host-to-device copy, a CPU tensor among the
inputs) is served without a graph from then on, with one warning naming the module and the reason;
nothing is lost. Replay runs a fixed kernel sequence: code whose kernels depend on the data (a cache
that skips blocks, offloading hooks) must not be graphed, and :mod:`evalsuite.accel.axes` refuses
those combinations.

The capture backend is a parameter: :class:`CudaBackend` on a GPU; the tests exercise the signature,
buffer and fallback logic on CPU with :class:`ReplayBackend`, which re-runs the call on the static
buffers (CUDA graphs themselves need a GPU).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import _pytree as pytree

from evalsuite.accel.errors import Unavailable

log = logging.getLogger(__name__)

MAX_GRAPHS = 4


class NotCapturable(Unavailable):
    """A call that cannot be recorded as a CUDA graph (the reason is the message); caught by
    :class:`GraphedCall`, which then serves the calls without graphs."""


class CudaBackend:
    """Captures with :class:`torch.cuda.CUDAGraph` (each graph with its own memory pool)."""

    host_inputs_ok = False  # a graph cannot copy host memory in at replay

    def capture(self, fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        """Warm ``fn`` up on a side stream, capture it; returns (replay, the captured outputs)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()  # the warm-up on a side stream that torch.cuda.graph's documentation asks for
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        return graph.replay, out


class ReplayBackend:
    """No graph: "replay" calls ``fn`` again on the static buffers (for tests of the logic on CPU)."""

    host_inputs_ok = True

    def __init__(self) -> None:
        self.captures = 0

    def capture(self, fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        self.captures += 1
        static = fn()

        def replay() -> None:
            fresh = fn()
            for dst, src in zip(pytree.tree_leaves(static), pytree.tree_leaves(fresh), strict=True):
                if isinstance(dst, torch.Tensor):
                    dst.copy_(src)

        return replay, static


def _signature(leaves: list[Any], spec: Any) -> tuple[Any, ...]:
    """A hashable description of one call: tree structure, tensor metadata, other leaves' values."""
    sig: list[Any] = [repr(spec)]
    for x in leaves:
        if isinstance(x, torch.Tensor):
            sig.append(("T", tuple(x.shape), x.dtype, str(x.device), x.requires_grad))
        else:
            sig.append(("V", type(x).__name__, repr(x)))
    return tuple(sig)


@dataclass
class _Graph:
    calls: int = 0
    replay: Callable[[], None] | None = None
    inputs: list[torch.Tensor] = field(default_factory=list)  # static buffers, in leaf order
    output: Any = None


@dataclass
class GraphStats:
    """What a :class:`GraphedCall` did: graphs captured, calls replayed, calls run without a graph,
    and the reason it stopped capturing (``None`` while it still captures)."""

    captured: int = 0
    replayed: int = 0
    eager: int = 0
    disabled: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class GraphedCall:
    """Serves calls of ``fn`` from CUDA graphs, one per call signature (see the module docstring).

    Args:
        fn: the call to graph (a denoiser's ``__call__``).
        name: how warnings name it.
        backend: :class:`CudaBackend` (default) or :class:`ReplayBackend`.
        max_graphs: most signatures given a graph.
    """

    def __init__(
        self, fn: Callable[..., Any], name: str = "module", backend: Any = None, max_graphs: int = MAX_GRAPHS
    ):
        self.fn = fn
        self.name = name
        self.backend = backend if backend is not None else CudaBackend()
        self.max_graphs = max_graphs
        self.graphs: dict[tuple[Any, ...], _Graph] = {}
        self.stats = GraphStats()

    def _eager(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.stats.eager += 1
        return self.fn(*args, **kwargs)

    def _disable(self, why: str) -> None:
        if self.stats.disabled is None:
            self.stats.disabled = why
            log.warning("cudagraph: %s runs without CUDA graphs from now on: %s", self.name, why)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.stats.disabled is not None:
            return self._eager(args, kwargs)
        leaves, spec = pytree.tree_flatten((args, kwargs))
        sig = _signature(leaves, spec)
        g = self.graphs.get(sig)
        if g is None:
            if len(self.graphs) >= self.max_graphs:
                self.stats.eager += 1  # a further signature: served without a graph, capture goes on
                return self.fn(*args, **kwargs)
            g = self.graphs[sig] = _Graph()
        g.calls += 1
        if g.calls == 1:
            return self._eager(args, kwargs)  # the warm-up (compilation, library handles)
        tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
        if g.replay is None:
            try:
                self._capture(g, leaves, spec)
            except Exception as exc:  # not capturable: keep serving the calls, without graphs
                del self.graphs[sig]
                self._disable(f"{type(exc).__name__}: {exc}")
                return self._eager(args, kwargs)
        with torch.no_grad():
            for dst, src in zip(g.inputs, tensors, strict=True):
                dst.copy_(src)
        assert g.replay is not None
        g.replay()
        self.stats.replayed += 1
        return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, g.output)

    def _capture(self, g: _Graph, leaves: list[Any], spec: Any) -> None:
        tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
        on_host = [tuple(t.shape) for t in tensors if t.device.type == "cpu"]
        if on_host and not getattr(self.backend, "host_inputs_ok", False):
            raise NotCapturable(f"input tensor(s) on the host {on_host}: a graph cannot copy them in")
        static = [t.detach().clone() for t in tensors]
        it = iter(static)
        static_leaves = [next(it) if isinstance(x, torch.Tensor) else x for x in leaves]
        args, kwargs = pytree.tree_unflatten(static_leaves, spec)

        def call() -> Any:
            return self.fn(*args, **kwargs)

        replay, out = self.backend.capture(call)
        bad = [type(x).__name__ for x in pytree.tree_leaves(out) if not _plain_leaf(x)]
        if bad:
            raise NotCapturable(
                f"output holds {', '.join(sorted(set(bad)))}, which cannot be copied out of a graph"
            )
        g.inputs, g.replay, g.output = static, replay, out
        self.stats.captured += 1


def _plain_leaf(x: Any) -> bool:
    return x is None or isinstance(x, torch.Tensor | int | float | bool | str)


# -- on a module ---------------------------------------------------------------------------------------

ATTR = "_evalsuite_graphs"


def _graphed_dunder_call(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    return getattr(self, ATTR)(*args, **kwargs)


def graph_module(
    module: torch.nn.Module, name: str, backend: Any = None, max_graphs: int = MAX_GRAPHS
) -> GraphedCall:
    """Serve ``module``'s calls from CUDA graphs: its class becomes a subclass whose ``__call__``
    goes through a :class:`GraphedCall` (``isinstance`` checks, attributes and a ``compile()`` of the
    module keep working: the original ``__call__`` runs inside the graph). Returns the
    :class:`GraphedCall` (its ``stats`` say what it did)."""
    if isinstance(getattr(module, ATTR, None), GraphedCall):
        raise ValueError(f"{name}: already served from CUDA graphs")
    cls = type(module)
    original = cls.__call__

    def call(*args: Any, **kwargs: Any) -> Any:
        return original(module, *args, **kwargs)

    graphed = GraphedCall(call, name, backend, max_graphs)
    sub = type(
        f"Graphed{cls.__name__}", (cls,), {"__call__": _graphed_dunder_call, "__module__": cls.__module__}
    )
    object.__setattr__(module, ATTR, graphed)
    module.__class__ = sub
    return graphed


def graph_stats(module: torch.nn.Module) -> dict[str, Any] | None:
    """The :class:`GraphStats` of a module served by :func:`graph_module` (``None`` otherwise)."""
    g = getattr(module, ATTR, None)
    return g.stats.as_dict() if isinstance(g, GraphedCall) else None
