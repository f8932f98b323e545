"""Timing and memory trackers used around runners (never inside metric code).

On CUDA a phase is timed with CUDA events after a synchronisation; on CPU with
``time.perf_counter``. Memory peaks are ``torch.cuda.max_memory_allocated`` /
``max_memory_reserved`` since the phase began (reset at each phase start).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

GIB = float(1 << 30)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Tracker:
    """Collects per-phase seconds, per-step seconds and per-phase memory peaks for one call.

    Attributes:
        phases: seconds per phase name (summed when a phase repeats).
        steps: seconds of each denoising step, in order.
        memory: ``{phase: {"allocated_gib": .., "reserved_gib": ..}}`` (CUDA only).
    """

    device: torch.device
    phases: dict[str, float] = field(default_factory=dict)
    steps: list[float] = field(default_factory=list)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    _step_t0: float | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (synchronising the device before and after)."""
        cuda = self.device.type == "cuda"
        _sync(self.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        self._step_t0 = t0
        try:
            yield
        finally:
            _sync(self.device)
            dt = time.perf_counter() - t0
            self.phases[name] = self.phases.get(name, 0.0) + dt
            if cuda:
                self.memory[name] = {
                    "allocated_gib": torch.cuda.max_memory_allocated(self.device) / GIB,
                    "reserved_gib": torch.cuda.max_memory_reserved(self.device) / GIB,
                }

    def step_callback(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A diffusers ``callback_on_step_end`` recording the duration of each step."""
        _sync(self.device)
        now = time.perf_counter()
        if self._step_t0 is not None:
            self.steps.append(now - self._step_t0)
        self._step_t0 = now
        return {}

    def peak_memory_gib(self) -> dict[str, float]:
        """Largest allocated/reserved peak over all phases (empty on CPU)."""
        if not self.memory:
            return {}
        return {
            "peak_allocated_gib": max(m["allocated_gib"] for m in self.memory.values()),
            "peak_reserved_gib": max(m["reserved_gib"] for m in self.memory.values()),
        }
