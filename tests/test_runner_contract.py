"""The runner contract (:class:`evalsuite.testing.contract.RunnerContract`) applied to every runner
registered in :data:`evalsuite.registry.RUNNERS` — built-in and any installed plugin's.

One test class per registered runner is generated below, so a new runner is covered without
touching this file. Runners whose checkpoints are not one ``save_pretrained`` folder say here how
their hub layout is written (the ControlNet port: the base FLUX pipeline plus the ControlNet folder).
"""

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# evalsuite.runners imports register the built-in runners
import evalsuite.runners  # noqa: F401, I001
from evalsuite.registry import RUNNERS
from evalsuite.testing.contract import PixelTolerance, RunnerContract, pixel_difference


class _ControlNetLayout:
    """The published layout of the ControlNet runner: FLUX.1-dev's pipeline folder plus the
    ControlNet's own folder (what tests/test_runner_controlnet.py checks in detail)."""

    def save_hub_layout(self, runner: Any, root: Path) -> bool:
        from diffusers import FluxPipeline

        from evalsuite.runners.controlnet_inpaint import save_controlnet
        from evalsuite.runners.flux_controlnet import BASE_COMPONENTS

        FluxPipeline(**{k: runner.pipe.components[k] for k in BASE_COMPONENTS}).save_pretrained(
            root / runner.params.model, safe_serialization=True
        )
        save_controlnet(runner.pipe.controlnet, root / runner.params.controlnet)
        return True


LAYOUTS: dict[str, type] = {"flux-cn-inpaint": _ControlNetLayout}


def _class_name(runner: str) -> str:
    return "TestContract_" + re.sub(r"\W", "_", runner)


def _contract_names() -> list[str]:
    """Built-in and installed plugins' runners; not the stand-ins other test modules register."""
    return [n for n in RUNNERS.names() if not RUNNERS.get(n).__module__.startswith("tests.")]


for _name in _contract_names():
    _bases = (LAYOUTS[_name], RunnerContract) if _name in LAYOUTS else (RunnerContract,)
    globals()[_class_name(_name)] = type(_class_name(_name), _bases, {"runner_name": _name})


def test_every_registered_runner_has_a_contract_class():
    names = _contract_names()
    assert {"flux-t2i", "flux-inpaint", "flux-fill", "flux-cn-inpaint", "sdxl-inpaint"} <= set(names)
    for name in names:
        assert issubclass(globals()[_class_name(name)], RunnerContract)


class _IgnoresTheSeed(RunnerContract):
    """A runner whose seeds do not matter: the contract must catch it."""

    runner_name = "flux-t2i"


def test_the_contract_catches_a_runner_that_ignores_its_seed(monkeypatch, tmp_path):
    contract = _IgnoresTheSeed()
    runner = contract.make_runner()
    real = runner.generate
    monkeypatch.setattr(runner, "generate", lambda cases, seeds: real(cases, [0] * len(seeds)))
    from evalsuite.data.cases import Case

    cases = [Case("x", "a red apple"), Case("y", "a blue car")]
    single = runner.generate(cases[:1], [7])[0]
    with pytest.raises(AssertionError, match="seeds 7 and 8 give nearly the same image"):
        contract.test_same_seed_same_image_other_seed_differs(runner, cases, single)
    runner.close()


def test_pixel_difference_and_tolerance_on_known_images():
    from PIL import Image

    a = np.zeros((2, 3, 3), np.uint8)
    b = a.copy()
    b[1, 2, 0] = 6  # one channel of one pixel, 6 levels: max 6, mean 6 / 18
    ia, ib = Image.fromarray(a), Image.fromarray(b)
    assert pixel_difference(ia, ib) == (6, pytest.approx(6 / 18))
    PixelTolerance(max_abs=6, mean_abs=0.34).check(ia, ib, "within")
    with pytest.raises(AssertionError, match=r"too far: max \|Δ\| 6 levels \(allowed 5\)"):
        PixelTolerance(max_abs=5, mean_abs=1.0).check(ia, ib, "too far")
    with pytest.raises(AssertionError, match="image sizes differ"):
        pixel_difference(ia, Image.fromarray(a[:1]))
