"""The runner contract: how one model family is loaded and called.

A runner class is registered in :data:`evalsuite.registry.RUNNERS` and declares a ``Params``
dataclass (every parameter a configuration may set). The harness creates it with resolved
params, a :class:`~evalsuite.runners.weights.Weights` policy and a device, calls :meth:`Runner.load`
once, :meth:`Runner.generate` per batch, and :meth:`Runner.close` at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
from PIL import Image

from evalsuite.data.cases import Case
from evalsuite.data.imageio import check_mask_size, load_image, load_mask, resize_image, resize_mask
from evalsuite.errors import UsageError
from evalsuite.runners.weights import Weights

if TYPE_CHECKING:
    import torch

# torch is imported inside the methods that need it: listing runners and their parameters
# (``evalsuite runners``) imports this module and must not import torch.
DTYPES = ("float32", "bfloat16", "float16")  # names of torch dtypes (``getattr(torch, name)``)
MAX_STEPS = 1000  # schedulers are trained on 1000 timesteps; more steps are no real setting
MAX_SIDE = 8192  # output side limit: the input pixel limit is 8192² (evalsuite.data.imageio.MAX_PIXELS)

F = TypeVar("F", bound=Any)

# The libraries' own warnings about a long prompt: one per encoder and prompt, each quoting the cut
# text (a 100,000-character prompt printed ~200 KB). :func:`folded_truncation` folds them into one line.
_TRUNCATION = re.compile(
    r"^(The following part of your input was truncated because .*?(?P<n>\d+)\s+tokens"
    r"|Token indices sequence length is longer than the specified maximum sequence length)",
    re.S,
)
_LIBRARIES = ("diffusers", "transformers")


class _FoldTruncation(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.limits: set[int] = set()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        m = _TRUNCATION.match(str(record.msg))
        if m is None:
            return True
        self.count += 1
        if m.group("n"):
            self.limits.add(int(m.group("n")))
        return False


@contextlib.contextmanager
def folded_truncation(where: str) -> Iterator[None]:
    """Fold diffusers' and transformers' prompt-truncation warnings raised inside the block into one
    line (``where``: the configuration and cases): "prompt(s) longer than the text encoders'
    context: truncated to 77/512 tokens"."""
    fold = _FoldTruncation()
    loggers = [
        logging.getLogger(name)
        for name in list(logging.Logger.manager.loggerDict)
        if name.split(".")[0] in _LIBRARIES
    ]
    for lg in loggers:
        lg.addFilter(fold)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(fold)
        if fold.count:
            limits = "/".join(str(n) for n in sorted(fold.limits)) or "the encoders' maximum"
            logging.getLogger(__name__).warning(
                "%s: prompt longer than the text encoders' context: truncated to %s tokens "
                "(the libraries' %d warning(s) quoting the cut text are left out)",
                where,
                limits,
                fold.count,
            )


def no_grad(fn: F) -> F:
    """``@torch.no_grad()`` that imports torch when the decorated function is called, not defined."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class CaseError(UsageError, ValueError):
    """A case this runner cannot use (e.g. an inpainting runner given a case without a mask).

    The harness records such a row with ``status == "skipped"`` and the message as its reason;
    it is not counted as a failure.
    """


@dataclass
class RunnerParams:
    """Parameters common to every runner.

    Attributes:
        model: Hugging Face id or local folder of the base model (``hub`` policy).
        steps: number of denoising steps.
        guidance: guidance scale (distilled guidance for FLUX, CFG for SDXL).
        width: output width in pixels at ``hub``/``random`` weights.
        height: output height in pixels at ``hub``/``random`` weights.
        dtype: ``bfloat16``, ``float16`` or ``float32`` (``tiny`` always runs float32).
        batch_size: cases per ``generate`` call.
        tiny_size: output side in pixels under the ``tiny`` policy (keeps CPU runs in seconds).
        allow_empty_masks: run cases whose mask is empty or full (at the output size) instead of
            skipping them with a reason (e.g. to measure how a model treats "nothing to inpaint").
    """

    model: str = ""
    steps: int = 28
    guidance: float = 3.5
    width: int = 1024
    height: int = 1024
    dtype: str = "bfloat16"
    batch_size: int = 1
    tiny_size: int = 64
    allow_empty_masks: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` for values no pipeline accepts.

        Rules (every runner): each number is finite (no ``.nan``/``.inf``); ``steps`` in
        [1, 1000]; ``guidance`` ≥ 0; ``batch_size`` ≥ 1; ``width``/``height``/``tiny_size`` positive
        multiples of 16 up to 8192 (the input pixel limit, 8192²); every ``*scale`` field (e.g.
        ``lora_scale``, ``conditioning_scale``) ≥ 0; ``dtype`` one of :data:`DTYPES`. Runners add
        their own (``strength`` in (0, 1], ``true_guidance`` ≥ 1...).
        """
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v}")
        if self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        if self.steps > MAX_STEPS:
            raise ValueError(
                f"steps must be ≤ {MAX_STEPS} (a scheduler's training timesteps), got {self.steps}"
            )
        if self.guidance < 0:
            raise ValueError(f"guidance must be ≥ 0, got {self.guidance}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        for k in ("width", "height", "tiny_size"):
            v = getattr(self, k)
            if v < 16 or v % 16:
                raise ValueError(f"{k} must be a positive multiple of 16, got {v}")
            if v > MAX_SIDE:
                raise ValueError(f"{k} must be ≤ {MAX_SIDE} (the {MAX_SIDE}² pixel limit), got {v}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("scale") and isinstance(v, int | float) and v < 0:
                raise ValueError(f"{f.name} must be ≥ 0, got {v}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


@dataclass
class GenerationOutput:
    """What a runner returns for one (case, seed).

    Attributes:
        image: the generated image (RGB).
        phases: seconds per phase (``text_encode``, ``vae_encode``, ``denoise``, ``vae_decode``)
            for the batch this image was generated in, divided by the batch size.
        steps: seconds of each denoising step for the batch (not divided).
        memory: peak allocated/reserved GiB (CUDA only).
        info: anything else worth recording (e.g. the number of prompt tokens truncated).
    """

    image: Image.Image
    phases: dict[str, float] = field(default_factory=dict)
    steps: list[float] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Runner(ABC):
    """Base class of every runner: one model family (FLUX t2i, FLUX inpaint, SDXL inpaint...).

    Class attributes:
        Params: the dataclass of parameters.
        task: ``"t2i"`` (uses the prompt only) or ``"inpaint"`` (needs image and mask).
    """

    Params: ClassVar[type[RunnerParams]] = RunnerParams
    task: ClassVar[str] = "t2i"

    def __init__(self, params: RunnerParams, weights: Weights, device: torch.device | str = "cpu") -> None:
        import torch

        self.params: Any = params
        self.weights = weights
        self.device = torch.device(device)
        self.pipe: Any = None

    # -- effective values ------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: float32 under ``tiny`` weights, else the configured dtype."""
        import torch

        return torch.float32 if self.weights.policy == "tiny" else getattr(torch, self.params.dtype)

    @property
    def size(self) -> tuple[int, int]:
        """Output (width, height): ``tiny_size`` square under ``tiny`` weights, else the configured size."""
        if self.weights.policy == "tiny":
            return (self.params.tiny_size, self.params.tiny_size)
        return (self.params.width, self.params.height)

    def effective(self) -> dict[str, Any]:
        """Values that the weights policy changed, recorded in ``run.json``."""
        w, h = self.size
        return {"width": w, "height": h, "dtype": str(self.dtype).removeprefix("torch.")}

    # -- inputs ----------------------------------------------------------------------------
    def check_case(self, case: Case) -> None:
        """Raise :class:`CaseError` if this runner cannot use ``case``."""
        if self.task == "inpaint" and not case.is_inpainting:
            missing = " and ".join(k for k in ("image", "mask") if getattr(case, k) is None)
            raise CaseError(
                f"case {case.id!r} has no {missing}: {type(self).__name__} is an inpainting runner "
                "and needs both; use an inpainting dataset (e.g. smoke or inpaint-core)"
            )

    def load_inputs(self, case: Case) -> tuple[Image.Image, np.ndarray]:
        """The case's image (RGB, resized with Lanczos) and mask (bool, resized nearest) at :attr:`size`.

        Raises:
            CaseError: if the case lacks an image or mask.
            ImageError: if a file cannot be read, or the mask's size differs from the image's.
        """
        self.check_case(case)
        assert case.image is not None and case.mask is not None
        source = load_image(case.image)
        full_mask = check_mask_size(source.size, load_mask(case.mask), case.mask)
        image, mask = resize_image(source, self.size), resize_mask(full_mask, self.size)
        if (not mask.any() or mask.all()) and not self.params.allow_empty_masks:
            kind = "empty (nothing to inpaint)" if not mask.any() else "full (no region to keep)"
            raise CaseError(f"case {case.id!r}: mask {case.mask} is {kind} at {self.size[0]}x{self.size[1]}")
        return image, mask

    @staticmethod
    def generators(seeds: Sequence[int]) -> list[torch.Generator]:
        """One CPU generator per sample, seeded: the noise does not depend on device or batch size."""
        import torch

        return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]

    # -- lifecycle -------------------------------------------------------------------------
    @abstractmethod
    def load(self) -> None:
        """Build or load the model components on :attr:`device` (raises on missing weights)."""

    @abstractmethod
    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        """Generate one image per ``(cases[i], seeds[i])``.

        Raises:
            CaseError, ImageError: for unusable inputs (the harness records them per row).
        """

    # -- hooks for the engine's scenarios (profile, frontier, budget): the engine never branches on
    # -- model families; a runner says what its model is made of here --------------------------
    def denoisers(self) -> dict[str, torch.nn.Module]:
        """The modules that run once per denoising step, by role, after :meth:`load`: what a scenario
        compiles, quantizes, casts or caches. Default: the pipeline's ``transformer`` or ``unet``, and
        its ``controlnet`` when it has one. Roles: ``"transformer"``, ``"unet"``, ``"controlnet"``."""
        import torch

        out: dict[str, torch.nn.Module] = {}
        for role in ("transformer", "unet", "controlnet"):
            mod = getattr(self.pipe, role, None)
            if isinstance(mod, torch.nn.Module):
                out[role] = mod
        return out

    def components(self) -> dict[str, torch.nn.Module]:
        """Every ``nn.Module`` component of the loaded pipeline by name (denoisers, text encoders, VAE):
        what memory accounting measures and memory strategies move. Default: the pipeline's
        ``components`` mapping, modules only."""
        import torch

        comps = getattr(self.pipe, "components", None) or {}
        return {k: v for k, v in comps.items() if isinstance(v, torch.nn.Module)}

    def cfg_batch_multiplier(self) -> int:
        """How many denoiser passes one image costs per step (2 with classifier-free or true CFG that
        runs a negative batch, else 1). Default 1; runners with CFG override it."""
        return 1

    def bare_call(self, cases: Sequence[Case], seeds: Sequence[int]) -> Any:
        """Call the loaded pipeline directly for ``cases``/``seeds``, the way a user of the library would,
        without evalsuite's trackers or phase split: the baseline that ``evalsuite profile`` measures
        the harness overhead against. It must do the same work as :meth:`generate` (same size, steps,
        guidance, inputs and seeds; decoded images). Every built-in runner overrides it; the default
        raises ``NotImplementedError`` (the profile then records the baseline as unavailable)."""
        raise NotImplementedError(f"{type(self).__name__} defines no bare pipeline call (Runner.bare_call)")

    def flop_inputs(self) -> list[Any]:
        """What the FLOP model needs, after :meth:`load`: one :class:`~evalsuite.trackers.flops.FlopInput`
        per denoiser forward of a step, for one sample at the current :attr:`size` (the engine scales by
        batch × :meth:`cfg_batch_multiplier`). Default ``[]``: no FLOP model (MFU is reported as NaN)."""
        return []

    def close(self) -> None:
        """Release the model and free device memory."""
        self.pipe = None
        if self.weights.policy != "tiny" or self.device.type != "cpu":
            gc.collect()  # a full collection costs ~0.5 s with torch and diffusers loaded: not for tiny CPU models
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
