"""Shared fixtures of the pytest-benchmark benches (run with `pytest benchmarks --benchmark-only`)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Sequence  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from evalsuite.data.cases import Case  # noqa: E402
from evalsuite.registry import RUNNERS  # noqa: E402
from evalsuite.runners.base import GenerationOutput, Runner  # noqa: E402
from evalsuite.trackers.tracking import Tracker  # noqa: E402


class NullRunner(Runner):
    """A runner that generates nothing: a fixed 64² image, a few tracked phases and steps.

    Benches through it measure what the suite itself adds per case (trackers, monitor thread,
    PNG writing, journal append) — the part that must stay far below a model's step time.
    """

    task = "t2i"

    def load(self) -> None:
        self.image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))

    def generate(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[GenerationOutput]:
        tr = Tracker(self.device)
        with tr.phase("text_encode"):
            pass
        with tr.phase("denoise"):
            for i in range(4):
                tr.step_callback(None, i, 0, {})
        with tr.phase("vae_decode"):
            pass
        return [
            GenerationOutput(self.image, dict(tr.phases), list(tr.steps), tr.peak_memory_gib()) for _ in cases
        ]


if "bench-null" not in RUNNERS:
    RUNNERS.register("bench-null")(NullRunner)


@pytest.fixture
def null_runner():
    from evalsuite.runners.base import RunnerParams
    from evalsuite.runners.weights import Weights

    r = NullRunner(RunnerParams(steps=4), Weights("tiny"), torch.device("cpu"))
    r.load()
    return r
