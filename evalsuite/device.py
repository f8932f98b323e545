"""The one ``--device`` resolver of every command (light: torch is imported inside the functions).

``run``, ``score``, ``profile``, ``frontier``, ``plan``, the pytest plugin and multi-process runs
all turn the user's ``--device`` into a :class:`torch.device` here:

* :func:`check_device` refuses, before anything is loaded, a value evalsuite does not accept or this
  machine lacks (:class:`DeviceError`, a usage error: exit 2), naming what the machine has;
* :func:`resolve_device` checks, then resolves ``auto`` (or ``None``): ``cuda`` when CUDA is
  available (``cuda:LOCAL_RANK`` in a multi-process launch), except under the ``tiny`` weights policy,
  whose models are faster on the CPU; else ``cpu``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from evalsuite.errors import UsageError

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceError", "accepted_devices", "check_device", "resolve_device"]

log = logging.getLogger(__name__)


class DeviceError(UsageError, ValueError):
    """A ``--device`` evalsuite does not accept or this machine lacks; the message names what it has."""


def accepted_devices() -> list[str]:
    """The ``--device`` values evalsuite accepts on this machine's torch."""
    import torch

    out = ["auto", "cpu", "cuda", "cuda:N"]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_built():
        out.append("mps")
    return out


def check_device(device: Any, option: str = "--device") -> None:
    """Accept ``None``, a :class:`torch.device`, ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (and ``mps``
    where torch has it).

    Raises:
        DeviceError: another value; ``cuda`` without CUDA, or an index past the last GPU; ``mps``
            where MPS is not available — naming ``option`` and what this machine has.
    """
    import torch

    if device is None or isinstance(device, torch.device):
        return
    d = str(device).strip().lower()
    allowed = accepted_devices()
    if d in ("auto", "cpu"):
        return
    kind, _, index = d.partition(":")
    if kind == "mps" and "mps" in allowed and not index:
        if not torch.backends.mps.is_available():
            raise DeviceError(f"{option} mps: MPS is not available on this machine; use {option} cpu or auto")
        return
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"{option} {device!r}: evalsuite accepts {', '.join(allowed)}")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{option} {device}: CUDA is not available on this machine (torch {torch.__version__}"
            f"{', built without CUDA' if torch.version.cuda is None else ', no usable GPU'}); use {option} cpu or auto"
        )
    n = torch.cuda.device_count()
    if index and int(index) >= n:
        raise DeviceError(
            f"{option} {device}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1}); "
            f"use one of them, {option} cpu or auto"
        )


def resolve_device(
    device: str | torch.device | None,
    policy: str | None = None,
    local_rank: int | None = None,
    option: str = "--device",
) -> torch.device:
    """The :class:`torch.device` for ``device`` (see the module docstring).

    Args:
        device: ``None``/``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a :class:`torch.device`.
        policy: the weights policy; under ``tiny``, ``auto`` is the CPU. ``None`` (e.g. ``score``,
            which runs feature networks, not the run's models): ``auto`` is CUDA when available.
        local_rank: this process's local rank in a multi-process launch (``None`` otherwise): ``auto``
            and a bare ``cuda`` become ``cuda:LOCAL_RANK`` on a CUDA host.
        option: the option's name in messages (``--device``, the pytest plugin's ``--evalsuite-device``).

    Raises:
        DeviceError: see :func:`check_device`.
    """
    import torch

    check_device(device, option)
    if isinstance(device, torch.device):
        return device
    d = "auto" if device is None else str(device).strip().lower()
    cuda = torch.cuda.is_available()
    if local_rank is not None and cuda and d in ("auto", "cuda"):
        return torch.device(f"cuda:{local_rank}")
    if d == "auto":
        out = torch.device("cuda" if cuda and policy != "tiny" else "cpu")
        log.log(
            logging.INFO if policy else logging.DEBUG,
            "device: %s (auto%s)",
            out,
            f": {policy} weights" if policy else "",
        )
        return out
    return torch.device(d)
