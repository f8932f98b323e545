"""Timing, memory and energy trackers used around runners (never inside metric code).

Three layers:

:class:`Tracker`
    Inside one ``runner.generate`` call: seconds per phase (``text_encode``, ``vae_encode``,
    ``denoise``, ``vae_decode``), seconds per denoising step (diffusers ``callback_on_step_end``)
    and ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` per phase (the allocator's
    peak counters are reset at each phase start). On CUDA, phases and steps are timed with CUDA
    events (one synchronisation before a phase and one at its end; steps only *record* events, so
    timing adds no synchronisation inside the denoising loop); on CPU with ``time.perf_counter``.
:class:`DeviceMonitor`
    Around a whole call: wall seconds (synchronised), the device-level memory peak from a
    background thread sampling NVML (``nvmlDeviceGetMemoryInfo().used``, which includes other
    processes and the CUDA context, unlike the allocator counters), the host RSS peak sampled by
    the same thread (psutil), and energy from NVML's total-energy counter
    (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since driver load) where the GPU
    supports it. Anything unavailable is omitted and the reason recorded in ``reasons``.
:func:`measure`, :func:`cold_then_warm`
    Repeat a call until both a minimum count and a minimum duration are reached (or run a list of
    warm calls), keeping the first (cold) call apart; :func:`cold_then_warm` monitors each call; :func:`summarize` gives median, p90 and a 95 % confidence interval of
    the median (order statistics, see :func:`median_ci`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported inside the functions that use it (light runner modules)
    import torch

log = logging.getLogger(__name__)

GIB = float(1 << 30)


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """A point in time: a recorded CUDA event on GPU, a ``perf_counter`` value on CPU."""

    def __init__(self, device: torch.device) -> None:
        import torch

        self.event: Any = None
        self.t = time.perf_counter()
        if device.type == "cuda":
            self.event = torch.cuda.Event(enable_timing=True)
            self.event.record(torch.cuda.current_stream(device))

    def seconds_to(self, later: _Clock) -> float:
        """Seconds from this point to ``later`` (events must have completed: synchronise first)."""
        if self.event is not None and later.event is not None:
            return float(self.event.elapsed_time(later.event)) / 1000.0
        return later.t - self.t


@dataclass
class Tracker:
    """Collects per-phase seconds, per-step seconds and per-phase memory peaks for one call.

    Attributes:
        phases: seconds per phase name (summed when a phase repeats).
        steps: seconds of each denoising step, in order (the first step is measured from the
            start of the phase that runs the loop, so it includes the pipeline's set-up).
        memory: ``{phase: {"allocated_gib": .., "reserved_gib": ..}}`` (CUDA only).
    """

    device: torch.device
    phases: dict[str, float] = field(default_factory=dict)
    steps: list[float] = field(default_factory=list)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    _step_start: _Clock | None = None
    _step_spans: list[tuple[_Clock, _Clock]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import torch

        self.device = torch.device(self.device)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (synchronising the device before and after).

        Step spans recorded by :meth:`step_callback` inside the block are turned into
        :attr:`steps` when the block ends.
        """
        import torch

        cuda = self.device.type == "cuda"
        _sync(self.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        start = _Clock(self.device)
        self._step_start, self._step_spans = start, []
        try:
            yield
        finally:
            end = _Clock(self.device)
            _sync(self.device)
            self.phases[name] = self.phases.get(name, 0.0) + start.seconds_to(end)
            self.steps += [a.seconds_to(b) for a, b in self._step_spans]
            self._step_start, self._step_spans = None, []
            if cuda:
                self.memory[name] = {
                    "allocated_gib": torch.cuda.max_memory_allocated(self.device) / GIB,
                    "reserved_gib": torch.cuda.max_memory_reserved(self.device) / GIB,
                }

    def step_callback(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A diffusers ``callback_on_step_end`` marking the end of each step (no synchronisation)."""
        if self._step_start is not None:
            now = _Clock(self.device)
            self._step_spans.append((self._step_start, now))
            self._step_start = now
        return {}

    def restart_step_clock(self) -> None:
        """Start the next step's clock now, so work done inside the phase before it (e.g. a VAE
        encode a pipeline runs before its loop) is not counted as part of a step."""
        if self._step_start is not None:
            self._step_start = _Clock(self.device)

    def peak_memory_gib(self) -> dict[str, float]:
        """Largest allocated/reserved peak over all phases (empty on CPU)."""
        if not self.memory:
            return {}
        return {
            "peak_allocated_gib": max(m["allocated_gib"] for m in self.memory.values()),
            "peak_reserved_gib": max(m["reserved_gib"] for m in self.memory.values()),
        }


# -- NVML / host sampling ------------------------------------------------------------------


def host_rss_bytes() -> int:
    """Resident set size of this process in bytes (psutil)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def _nvml_handle(device: torch.device) -> tuple[Any, Any]:
    """``(pynvml module, handle)`` for a CUDA device (by UUID, so CUDA_VISIBLE_DEVICES is honoured).

    Raises:
        RuntimeError: with the reason NVML cannot be used.
    """
    import torch

    if device.type != "cuda":
        raise RuntimeError(f"device is {device.type}, NVML measures NVIDIA GPUs only")
    try:
        import pynvml
    except ImportError as exc:
        raise RuntimeError(f"nvidia-ml-py is not installed ({exc}); pip install nvidia-ml-py") from exc
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        raise RuntimeError(f"nvmlInit failed: {exc}") from exc
    idx = device.index if device.index is not None else torch.cuda.current_device()
    try:
        uuid = str(torch.cuda.get_device_properties(idx).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:
        handle = pynvml.nvmlDeviceGetHandleByIndex(idx)
    return pynvml, handle


def nvml_memory_reader(device: torch.device) -> Callable[[], int]:
    """A function returning the device's used memory in bytes (NVML, all processes).

    Raises:
        RuntimeError: with the reason when NVML is unavailable (CPU device, no driver, no package).
    """
    nv, handle = _nvml_handle(device)
    return lambda: int(nv.nvmlDeviceGetMemoryInfo(handle).used)


def nvml_energy_reader(device: torch.device) -> Callable[[], float]:
    """A function returning the GPU's total energy counter in joules.

    Raises:
        RuntimeError: when NVML is unavailable or the GPU does not support the counter (pre-Volta,
            some virtualised GPUs).
    """
    nv, handle = _nvml_handle(device)
    try:
        nv.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:
        raise RuntimeError(f"nvmlDeviceGetTotalEnergyConsumption not supported on this GPU: {exc}") from exc
    return lambda: float(nv.nvmlDeviceGetTotalEnergyConsumption(handle)) / 1000.0


class Sampler:
    """A background thread that calls ``read()`` every ``interval_s`` and keeps the maximum.

    Args:
        read: returns the current value (e.g. bytes in use); exceptions stop the thread and are
            kept in :attr:`error`.
        interval_s: sampling period in seconds.

    Use as a context manager or with :meth:`start` / :meth:`stop`; :meth:`stop` takes a final
    sample, joins the thread and returns the peak (``None`` if no sample succeeded).
    """

    def __init__(self, read: Callable[[], float], interval_s: float = 0.01) -> None:
        self.read = read
        self.interval_s = interval_s
        self.peak: float | None = None
        self.samples = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        v = float(self.read())
        self.peak = v if self.peak is None else max(self.peak, v)
        self.samples += 1

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._sample()
                self._stop.wait(self.interval_s)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def start(self) -> Sampler:
        """Start sampling (raises ``RuntimeError`` if already running)."""
        if self.running:
            raise RuntimeError("sampler already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="evalsuite-sampler", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> float | None:
        """Stop the thread (joined), take one last sample, return the peak."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 10 * self.interval_s))
            self._thread = None
        if self.error is None:
            try:
                self._sample()
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
        return self.peak

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class DeviceMonitor:
    """Wall time, device memory peak (NVML), host RSS peak and energy around one block.

    Args:
        device: the device the work runs on.
        interval_s: sampling period of the background thread.
        gpu_reader / energy_reader / host_reader: stand-ins for the NVML and psutil readers
            (tests); by default NVML on CUDA devices and psutil for the host.

    After the block, :attr:`result` holds ``wall_s``, ``host_peak_rss_gib`` and, where
    available, ``nvml_peak_gib`` and ``energy_j``; :attr:`reasons` says why something is missing.
    """

    device: torch.device
    interval_s: float = 0.02
    gpu_reader: Callable[[], float] | None = None
    energy_reader: Callable[[], float] | None = None
    host_reader: Callable[[], float] | None = None
    result: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import torch

        self.device = torch.device(self.device)
        if self.gpu_reader is None:
            try:
                self.gpu_reader = nvml_memory_reader(self.device)
            except RuntimeError as exc:
                self.reasons["nvml_peak_gib"] = str(exc)
        if self.energy_reader is None:
            try:
                self.energy_reader = nvml_energy_reader(self.device)
            except RuntimeError as exc:
                self.reasons["energy_j"] = str(exc)
        if self.host_reader is None:
            self.host_reader = host_rss_bytes

    @contextmanager
    def watch(self) -> Iterator[DeviceMonitor]:
        """Measure the block; results land in :attr:`result` (also on exceptions)."""
        samplers: dict[str, Sampler] = {}
        if self.gpu_reader is not None:
            samplers["nvml_peak_gib"] = Sampler(self.gpu_reader, self.interval_s)
        if self.host_reader is not None:
            samplers["host_peak_rss_gib"] = Sampler(self.host_reader, self.interval_s)
        for s in samplers.values():
            s.start()
        _sync(self.device)
        e0 = self.energy_reader() if self.energy_reader is not None else None
        t0 = time.perf_counter()
        try:
            yield self
        finally:
            _sync(self.device)
            self.result["wall_s"] = time.perf_counter() - t0
            if e0 is not None and self.energy_reader is not None:
                self.result["energy_j"] = self.energy_reader() - e0
            for key, s in samplers.items():
                peak = s.stop()
                if peak is not None and s.error is None:
                    self.result[key] = peak / GIB
                else:
                    self.reasons[key] = s.error or "no sample"


# -- repetitions and statistics ------------------------------------------------------------


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    With sorted values x₍₁₎ ≤ … ≤ x₍ₙ₎ and B ~ Binomial(n, ½) (the number of samples below the
    true median), [x₍ⱼ₎, x₍ₖ₎] covers the median with probability P(j ≤ B < k). The interval is
    the narrowest symmetric one (k = n + 1 − j) whose coverage is ≥ ``confidence``. With fewer
    than 6 samples no such interval exists at 95 %: the full range is returned with its actual
    coverage 1 − 2·0.5ⁿ.

    Returns:
        ``(low, high, coverage)``.

    Raises:
        ValueError: for an empty sequence.
    """
    x = sorted(float(v) for v in values)
    n = len(x)
    if n == 0:
        raise ValueError("median_ci needs at least one value")
    import numpy as np
    from scipy.stats import binom

    best = (x[0], x[-1], 1.0 - 2.0 * 0.5**n)
    j = np.arange(1, n // 2 + 1)  # 1-based rank of the lower bound; upper rank k = n + 1 - j
    coverage = binom.cdf(n - j, n, 0.5) - binom.cdf(j - 1, n, 0.5)
    good = np.nonzero(coverage >= confidence)[0]
    if len(good):
        i = int(good[-1])  # coverage falls as j grows: the last good j is the narrowest interval
        best = (x[i], x[n - 1 - i], float(coverage[i]))
    return best


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0–1): evalsuite's one percentile definition, linear interpolation
    (:func:`evalsuite.trackers.stats.quantile`, where the choice is explained)."""
    from evalsuite.trackers.stats import quantile

    return quantile(values, q)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """``median``, ``p90``, ``ci_low``/``ci_high`` (95 % CI of the median), ``ci_coverage``, ``n``."""
    import statistics

    if not values:
        return {
            "n": 0,
            "median": math.nan,
            "p90": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "ci_coverage": math.nan,
        }
    lo, hi, cov = median_ci(values)
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": percentile(values, 0.9),
        "ci_low": lo,
        "ci_high": hi,
        "ci_coverage": cov,
    }


@dataclass
class Measurement:
    """Results of :func:`measure`: the cold call and the warm repetitions, in order."""

    first: Any
    first_s: float
    warm: list[Any]
    warm_s: list[float]


def measure(
    fn: Callable[[], Any],
    device: torch.device | str = "cpu",
    min_reps: int = 3,
    min_seconds: float = 0.0,
    max_reps: int = 1000,
    warmup: int = 1,
) -> Measurement:
    """Call ``fn`` once cold (plus ``warmup - 1`` further unrecorded calls), then repeat it until
    at least ``min_reps`` warm calls *and* ``min_seconds`` of warm time are reached (capped at
    ``max_reps``). Each call is timed between device synchronisations.

    Returns:
        A :class:`Measurement` holding every call's return value and seconds.

    Raises:
        ValueError: for ``min_reps < 1``, ``warmup < 1`` or ``max_reps < min_reps``.
    """
    import torch

    if min_reps < 1 or warmup < 1 or max_reps < min_reps:
        raise ValueError(
            f"need min_reps ≥ 1, warmup ≥ 1, max_reps ≥ min_reps (got {min_reps}, {warmup}, {max_reps})"
        )
    dev = torch.device(device)

    def timed() -> tuple[Any, float]:
        _sync(dev)
        t0 = time.perf_counter()
        out = fn()
        _sync(dev)
        return out, time.perf_counter() - t0

    first, first_s = timed()
    for _ in range(warmup - 1):
        timed()
    warm: list[Any] = []
    warm_s: list[float] = []
    while len(warm) < max_reps and (len(warm) < min_reps or sum(warm_s) < min_seconds):
        out, s = timed()
        warm.append(out)
        warm_s.append(s)
    return Measurement(first, first_s, warm, warm_s)


@dataclass
class Call:
    """One monitored call of :func:`cold_then_warm`.

    Attributes:
        out: the call's return value.
        seconds: wall seconds between device synchronisations (the monitor's ``wall_s``).
        readings: the :class:`DeviceMonitor` result (``nvml_peak_gib``, ``host_peak_rss_gib``,
            ``energy_j`` where measured) and, on CUDA, the allocator's ``alloc_peak_gib`` /
            ``reserved_peak_gib`` of this call (the peak counters are reset before it).
    """

    out: Any
    seconds: float
    readings: dict[str, float]


@dataclass
class ColdWarm:
    """Results of :func:`cold_then_warm`: the cold call kept apart, then the warm calls in order."""

    cold: Call
    warm: list[Call]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def warm_s(self) -> list[float]:
        return [c.seconds for c in self.warm]

    def peak(self, key: str, cold: bool = False) -> float | None:
        """The largest reading ``key`` over the warm calls (and the cold one with ``cold``), or ``None``."""
        calls = ([self.cold] if cold else []) + self.warm
        vals = [c.readings[key] for c in calls if key in c.readings]
        return max(vals) if vals else None

    def unavailable(self) -> str | None:
        """Why some reading is missing (``"nvml_peak_gib: …; energy_j: …"``), or ``None``."""
        return "; ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items())) or None


def cold_then_warm(
    device: torch.device | str,
    call: Callable[[], Any],
    warm_calls: Sequence[Callable[[], Any]] | None = None,
    *,
    min_reps: int = 1,
    min_seconds: float = 0.0,
    max_reps: int = 1000,
    before_each: Callable[[int], None] | None = None,
    after_each: Callable[[int, Call], None] | None = None,
) -> ColdWarm:
    """Call ``call`` once cold, then the warm calls: each of ``warm_calls`` once (e.g. one per
    case and seed), or — without ``warm_calls`` — ``call`` again until at least ``min_reps`` calls
    *and* ``min_seconds`` of warm time are reached (capped at ``max_reps``). Every call runs inside
    its own :class:`DeviceMonitor` (the NVML readers are made once) and is timed between device
    synchronisations; ``before_each(i)`` / ``after_each(i, call)`` run outside the timed block
    (``i`` = 0 for the cold call). This is how ``evalsuite profile``, ``frontier`` and ``plan``
    measure a point.

    Raises:
        ValueError: for ``min_reps < 1`` or ``max_reps < min_reps`` (repeating ``call``).
    """
    import torch

    if warm_calls is None and (min_reps < 1 or max_reps < min_reps):
        raise ValueError(f"need 1 ≤ min_reps ≤ max_reps (got {min_reps}, {max_reps})")
    dev = torch.device(device)
    probe = DeviceMonitor(dev)

    def timed(i: int, fn: Callable[[], Any]) -> Call:
        if before_each is not None:
            before_each(i)
        mon = DeviceMonitor(dev, gpu_reader=probe.gpu_reader, energy_reader=probe.energy_reader)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        with mon.watch():
            out = fn()
        readings = dict(mon.result)
        if dev.type == "cuda":
            readings["alloc_peak_gib"] = torch.cuda.max_memory_allocated(dev) / GIB
            readings["reserved_peak_gib"] = torch.cuda.max_memory_reserved(dev) / GIB
        done = Call(out, readings["wall_s"], readings)
        if after_each is not None:
            after_each(i, done)
        return done

    cold = timed(0, call)
    warm: list[Call] = []
    if warm_calls is not None:
        warm = [timed(i, fn) for i, fn in enumerate(warm_calls, 1)]
    else:
        while len(warm) < max_reps and (len(warm) < min_reps or sum(c.seconds for c in warm) < min_seconds):
            warm.append(timed(len(warm) + 1, call))
    return ColdWarm(cold, warm, dict(probe.reasons))
