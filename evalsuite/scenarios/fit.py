"""Refuse what cannot fit: full-size weights estimated before anything is built (issue 29, item 17).

``--weights random`` and ``--weights hub`` build the published full-size architectures (FLUX.1-dev:
about 31 GiB of bf16 weights). On a CUDA device that is what they are for; on a CPU they take the
machine's memory (and minutes per call), and a build that does not fit starves the machine before
any signal can stop it. So, before the run lock and before any weight is allocated:

* :func:`estimated_weights_gib` builds the configuration's components on PyTorch's ``meta`` device
  (shapes only, no memory; about a second) and sums their sizes per component, as the planner's
  component sizes do (:func:`evalsuite.accel.memory.component_sizes`); under ``hub`` the published
  architecture of the same runner is the estimate.
* :func:`check_fits` refuses (:class:`DoesNotFitError`, a usage error: exit 2) with those numbers,
  the machine's memory and the alternatives (``--weights tiny``, a GPU, ``--force``):

  - ``evalsuite profile``, ``frontier`` and ``plan`` (speed sweeps): any ``random``/``hub`` weights on
    the CPU;
  - ``evalsuite run``: ``random``/``hub`` weights on the CPU whose estimate exceeds the memory
    available now.

  ``--force`` (``force=True`` in Python) builds them anyway, with a warning. ``tiny`` weights and
  CUDA/MPS devices are never checked here (a GPU's own out-of-memory errors are recorded per row).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalsuite.config.runconfig import RunConfigError

if TYPE_CHECKING:
    import torch

    from evalsuite.config.configuration import Configuration

log = logging.getLogger(__name__)
GIB = float(1 << 30)


class DoesNotFitError(RunConfigError):
    """Full-size weights that would land on a CPU without the memory (or the purpose) for them."""


def host_memory_gib() -> tuple[float, float]:
    """(total, available) GiB of this machine's memory (``psutil.virtual_memory``)."""
    import psutil

    vm = psutil.virtual_memory()
    return vm.total / GIB, vm.available / GIB


def estimated_weights_gib(runner: str, params: Any) -> dict[str, float] | None:
    """GiB of weights per component of ``runner`` built full size with ``params`` (dtype included),
    measured on the ``meta`` device (nothing allocated); ``None`` when the runner cannot be built
    there (a plugin runner that needs real tensors while loading).

    A LoRA is left out (it is fused into the same weights; its file is not read here).
    """
    import torch

    from evalsuite.accel.memory import component_sizes
    from evalsuite.registry import RUNNERS
    from evalsuite.runners.weights import Weights

    if dataclasses.is_dataclass(params) and bool(getattr(params, "lora", None)):
        params = dataclasses.replace(params, lora="")  # type: ignore[type-var]
    try:
        built = RUNNERS.get(runner)(params, Weights("random"), torch.device("meta"))
        built.load()
        sizes = component_sizes(built)
    except Exception as exc:  # an estimate only: unknown, said so by the caller
        log.debug("no meta-device estimate for %s: %s", runner, exc)
        return None
    return sizes if sizes else None


def _sizes_text(sizes: dict[str, float]) -> str:
    parts = sorted(sizes.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.1f} GiB" for k, v in parts if v >= 0.05)


def check_fits(
    command: str,
    confs: Sequence[tuple[str, Configuration, Any]],
    policy: str,
    device: torch.device,
    force: bool = False,
    sweep: bool = True,
) -> None:
    """Refuse full-size ``random``/``hub`` weights on a CPU before anything is built (module docstring).

    Args:
        command: ``profile``, ``frontier``, ``plan`` or ``run`` (named in the message).
        confs: ``(label, configuration, params)``: the parameters each build would use (a profile
            point's dtype included).
        policy: the weights policy.
        device: the resolved device.
        force: build anyway (logged).
        sweep: a speed sweep (refused on any CPU), else ``run`` (refused when the estimate exceeds
            the available memory).

    Raises:
        DoesNotFitError: naming the configuration, the estimate per component, the machine's memory
            and the alternatives.
    """
    if policy == "tiny" or device.type != "cpu" or not confs:
        return
    total, avail = host_memory_gib()
    estimates = [(label, estimated_weights_gib(conf.runner, params)) for label, conf, params in confs]
    known = [(label, s, sum(s.values())) for label, s in estimates if s]
    largest = max(known, key=lambda t: t[2]) if known else None
    too_big = largest is not None and largest[2] > avail
    if not sweep and not too_big:
        return
    verb = "loads" if policy == "hub" else "builds"
    if largest is not None:
        label, sizes, gib = largest
        what = f"about {gib:.1f} GiB of weights ({_sizes_text(sizes)})"
    else:
        label, what = confs[0][0], "weights of unknown size (no estimate for this runner)"
    memory = f"this machine has {total:.1f} GiB of memory, {avail:.1f} GiB available now"
    if too_big:
        why = f"{what} > the {avail:.1f} GiB available ({total:.1f} GiB in all): it would not fit"
    else:
        why = (
            f"{what}; {memory}. Full-size models on a CPU take minutes per call and their speed says "
            "nothing about a GPU"
        )
    message = (
        f"{command}: --weights {policy} {verb} {label} at full size on the CPU: {why}. Use --weights tiny "
        "(the same architectures, small: seconds on a CPU), run on a GPU (--device cuda), or pass --force "
        "to build it anyway"
    )
    if force:
        log.warning("--force: %s", message.split(". Use --weights tiny")[0])
        return
    raise DoesNotFitError(message)
