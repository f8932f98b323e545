"""Runner plugins used by the reliability tests: real tiny FLUX pipelines with one extra behaviour.

* ``test-inpaint-probe``: an inpainting runner (reads image and mask through the package's
  :meth:`Runner.load_inputs`, so every image/mask rule applies), generates with the tiny FLUX
  model and pastes the result into the masked region. It records the source image's size after
  EXIF orientation and the fraction of masked pixels, so tests can see how inputs were read.
* ``test-oom``: the tiny FLUX text-to-image runner that raises a real ``torch.cuda.OutOfMemoryError``
  for any batch of more than one case, and for every batch holding a case whose prompt contains
  ``always-oom``; a prompt containing ``boom`` raises ``RuntimeError`` (a plain per-case failure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from evalsuite.data.cases import Case
from evalsuite.data.imageio import load_image
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import GenerationOutput
from evalsuite.runners.flux import FluxText2Image


class InpaintProbe(FluxText2Image):
    """Tiny FLUX generation pasted into the mask of the case's image (see module doc)."""

    task = "inpaint"

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        inputs = [self.load_inputs(c) for c in cases]
        outs = super().generate(cases, seeds)
        for case, (image, mask), out in zip(cases, inputs, outs, strict=True):
            assert case.image is not None
            src_w, src_h = load_image(case.image).size
            gen = np.asarray(out.image.convert("RGB").resize(image.size))
            out.image = Image.fromarray(np.where(mask[..., None], gen, np.asarray(image)))
            out.info.update(source_w=src_w, source_h=src_h, mask_fraction=float(mask.mean()))
        return outs


class OomProbe(FluxText2Image):
    """Tiny FLUX text-to-image that runs out of memory above batch size 1 (see module doc)."""

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        if len(cases) > 1 or any("always-oom" in c.prompt for c in cases):
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 20.00 GiB (batch of {len(cases)})"
            )
        if any("boom" in c.prompt for c in cases):
            raise RuntimeError("boom: the model failed on this prompt")
        return super().generate(cases, seeds)


for _name, _cls in (("test-inpaint-probe", InpaintProbe), ("test-oom", OomProbe)):
    if _name not in RUNNERS:
        RUNNERS.add(_name, _cls, origin="tests/reliability_runners.py")
