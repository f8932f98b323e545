"""Two small real runners for scoring tests: no diffusion model, deterministic images.

``noise-inpaint`` returns the source with seeded noise of amplitude ``noise`` inside the mask
(and ``leak`` outside it); ``noise-t2i`` returns a seeded noise image. They exercise the whole
harness → store → scoring path in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from evalsuite.registry import RUNNERS
from evalsuite.runners.base import GenerationOutput, Runner, RunnerParams


@dataclass
class NoiseParams(RunnerParams):
    noise: float = 0.5
    leak: float = 0.0


class _Noise(Runner):
    Params = NoiseParams

    def load(self) -> None:
        self.pipe = object()

    def _rng(self, seed: int) -> np.random.Generator:
        return np.random.default_rng(int(seed))


class NoiseInpaint(_Noise):
    task = "inpaint"

    def generate(self, cases: Sequence, seeds: Sequence[int]) -> list[GenerationOutput]:
        outs = []
        for case, seed in zip(cases, seeds, strict=True):
            image, mask = self.load_inputs(case)
            x = np.asarray(image, np.float32) / 255
            n = self._rng(seed).uniform(-1, 1, x.shape).astype(np.float32)
            amp = np.where(mask[..., None], self.params.noise, self.params.leak)
            y = np.clip(x + amp * n, 0, 1)
            outs.append(
                GenerationOutput(Image.fromarray((y * 255).round().astype(np.uint8)), {"denoise": 0.01})
            )
        return outs


class NoiseT2I(_Noise):
    task = "t2i"

    def generate(self, cases: Sequence, seeds: Sequence[int]) -> list[GenerationOutput]:
        w, h = self.size
        return [
            GenerationOutput(
                Image.fromarray(self._rng(s).integers(0, 255, (h, w, 3), dtype=np.uint8)), {"denoise": 0.01}
            )
            for s in seeds
        ]


def register() -> None:
    for name, cls in (("noise-inpaint", NoiseInpaint), ("noise-t2i", NoiseT2I)):
        if name not in RUNNERS:
            RUNNERS.add(name, cls, origin="tests")


def write_configs(folder: Path) -> Path:
    """YAML for noise-inp, noise-inp-turbo8 (more leak), noise-t2i."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "noise-inp": ("noise-inpaint", "noise: 0.5\n  leak: 0.02"),
        "noise-inp-turbo8": ("noise-inpaint", "noise: 0.5\n  leak: 0.05"),
        "noise-t2i": ("noise-t2i", "noise: 0.0"),
    }
    for name, (runner, params) in specs.items():
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nrunner: {runner}\nparams:\n  {params}\n  tiny_size: 64\n", encoding="utf-8"
        )
    return folder
