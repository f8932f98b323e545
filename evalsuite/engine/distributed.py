"""Sharding a run across processes started by ``torchrun`` or ``accelerate launch``.

Both launchers set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
When ``WORLD_SIZE > 1`` evalsuite joins a ``gloo`` process group (used only for coordination:
barriers only — nothing is broadcast: every rank computes the same pending work list from the
journals on the shared run directory —, so it works the same on CPU and GPU hosts and needs no NCCL), picks ``cuda:LOCAL_RANK`` as its device when the device is ``auto``/``cuda``,
and takes every ``world_size``-th pending work item, counted from ``rank``.

The work list is computed from the journals of *all* ranks before sharding, so finished rows
are never recomputed — also when a run is resumed with a different number of ranks. Each rank
appends to its own journal (``rows.rank-<r>.jsonl``), so ranks never write the same file; images
have one path per (configuration, case, seed). Rank 0 waits for all ranks, then merges the
journals, scores and writes the report. The run directory must be on a filesystem that every
rank sees (a shared/network filesystem on multi-host runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Coordination timeout: ranks wait this long at a barrier (a slow configuration on one rank).
TIMEOUT = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Dist:
    """This process's place in the launch: ``rank`` of ``world_size`` (``local_rank`` on its host)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (which writes run.json, merges, scores and reports)."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: every ``world_size``-th item starting at ``rank``."""
        return list(items[self.rank :: self.world_size])

    def barrier(self) -> None:
        """Wait for every rank (no-op without a process group)."""
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.barrier()


def from_env() -> Dist:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun and accelerate launch).

    Raises:
        RunConfigError: (a ValueError) when the variables are not integers or are inconsistent.
    """
    from evalsuite.config.runconfig import RunConfigError

    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise RunConfigError(
            f"invalid launch environment: RANK, WORLD_SIZE and LOCAL_RANK must be integers ({exc})"
        ) from exc
    if world < 1 or not 0 <= rank < world:
        raise RunConfigError(f"invalid launch environment: RANK={rank} WORLD_SIZE={world}")
    return Dist(rank, world, local)


def init() -> Dist:
    """Join the gloo process group when launched with several processes; returns :class:`Dist`."""
    d = from_env()
    if d.enabled and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo", rank=d.rank, world_size=d.world_size, timeout=TIMEOUT)
        log.info("rank %d of %d joined the process group", d.rank, d.world_size)
    return d


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
