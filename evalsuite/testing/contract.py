"""The runner contract as a reusable pytest test class.

Every runner registered in :data:`evalsuite.registry.RUNNERS` — built-in or a plugin's — must
behave the same way towards the engine. Subclass :class:`RunnerContract` in a test module, name
the runner, and pytest collects the whole contract for it::

    from evalsuite.testing.contract import RunnerContract

    class TestMyRunner(RunnerContract):
        runner_name = "my-runner"        # its name in evalsuite.registry.RUNNERS
        params = {"steps": 2}            # fast on CPU under tiny weights

What it checks (tiny weights on CPU, 2 steps, 64 px by default; tolerances, never bitwise
identity, since CPU kernels round differently across machines and batch sizes):

* one image per (case, seed), RGB, at :attr:`Runner.size <evalsuite.runners.base.Runner.size>`,
  with non-negative phase and step timings;
* a case alone and the same case inside a batch of two give the same image within
  :attr:`RunnerContract.batch_tolerance` (per-sample generators make the noise batch-independent:
  the idea of diffusers' ``PipelineTesterMixin.test_inference_batch_single_identical``);
* the same seed twice gives the same image within :attr:`RunnerContract.seed_tolerance`; two
  seeds give clearly different images;
* bad cases: an inpainting runner given a case without image/mask or with an empty mask raises
  :class:`~evalsuite.runners.base.CaseError` (the row is skipped with the reason); a mask whose
  size differs from its image raises :class:`~evalsuite.data.imageio.ImageError` (a bad file: an
  error row); a text-to-image runner uses the prompt only, so an inpainting case gives the image
  of the same prompt without image and mask;
* the ``hub`` policy loads a saved copy of the tiny pipeline from a weights folder offline and
  generates the same image within :attr:`RunnerContract.reload_tolerance`
  (:meth:`RunnerContract.save_hub_layout` writes the layout; override it for runners whose
  checkpoints are not one ``save_pretrained`` folder, or return ``False`` to skip).

Override :meth:`RunnerContract.make_runner` to build a runner some other way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

__all__ = ["ContractCases", "PixelTolerance", "RunnerContract", "pixel_difference"]


@dataclass(frozen=True)
class PixelTolerance:
    """How close two 8-bit RGB images must be: the largest absolute difference of any channel of
    any pixel (``max_abs``, levels 0–255) and the mean absolute difference (``mean_abs``)."""

    max_abs: int
    mean_abs: float

    def check(self, a: Any, b: Any, what: str) -> None:
        """Fail (``AssertionError``) naming ``what`` and both figures when ``a`` and ``b`` differ more."""
        mx, mean = pixel_difference(a, b)
        assert mx <= self.max_abs and mean <= self.mean_abs, (
            f"{what}: max |Δ| {mx} levels (allowed {self.max_abs}), mean |Δ| {mean:.4f} (allowed "
            f"{self.mean_abs:g})"
        )


def pixel_difference(a: Any, b: Any) -> tuple[int, float]:
    """(max, mean) absolute difference of two images of the same size in 0–255 levels.

    Raises:
        AssertionError: when the sizes differ.
    """
    x, y = np.asarray(a.convert("RGB"), np.int16), np.asarray(b.convert("RGB"), np.int16)
    assert x.shape == y.shape, f"image sizes differ: {x.shape} vs {y.shape}"
    d = np.abs(x - y)
    return int(d.max()), float(d.mean())


@dataclass
class ContractCases:
    """The cases the contract uses (files written once per test class).

    Attributes:
        inpaint: two inpainting cases (image + mask, mask covering part of the image).
        prompt_only: the first inpainting case's prompt without image and mask.
        no_mask: an image without a mask.
        empty_mask: a mask with nothing to inpaint.
        wrong_mask: a mask whose size differs from its image's.
    """

    inpaint: list[Any]
    prompt_only: Any
    no_mask: Any
    empty_mask: Any
    wrong_mask: Any


def _write_cases(root: Path, size: int = 80) -> ContractCases:
    from PIL import Image

    from evalsuite.data.cases import Case

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = {}
    for name in ("a", "b"):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"{name}.png")
        paths[name] = root / f"{name}.png"
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 8 : size // 2] = 255
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(np.zeros((size, size), np.uint8)).save(root / "empty.png")
    Image.fromarray(mask[: size // 2, : size // 2]).save(root / "small.png")
    a = Case("contract-a", "a red apple on a wooden table", image=paths["a"], mask=root / "mask.png", seed=1)
    b = Case("contract-b", "a blue car in the rain", image=paths["b"], mask=root / "mask.png", seed=2)
    return ContractCases(
        inpaint=[a, b],
        prompt_only=Case("contract-t2i", a.prompt, seed=1),
        no_mask=Case("contract-no-mask", a.prompt, image=paths["a"]),
        empty_mask=Case("contract-empty", a.prompt, image=paths["a"], mask=root / "empty.png"),
        wrong_mask=Case("contract-wrong", a.prompt, image=paths["a"], mask=root / "small.png"),
    )


class RunnerContract:
    """Base test class: the runner contract for :attr:`runner_name` (see the module doc).

    Class attributes:
        runner_name: the runner's name in :data:`evalsuite.registry.RUNNERS` (required).
        params: parameter values the runner is built with (its ``Params`` fields).
        device: where it runs (``cpu`` keeps the contract runnable anywhere).
        batch_tolerance: single vs batch of two.
        seed_tolerance: the same seed twice.
        reload_tolerance: tiny pipeline vs its saved copy loaded under the ``hub`` policy.
        min_seed_difference: the least mean |Δ| (levels) between two seeds' images.
    """

    runner_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {"steps": 2}
    device: ClassVar[str] = "cpu"
    batch_tolerance: ClassVar[PixelTolerance] = PixelTolerance(max_abs=2, mean_abs=0.05)
    seed_tolerance: ClassVar[PixelTolerance] = PixelTolerance(max_abs=1, mean_abs=0.01)
    reload_tolerance: ClassVar[PixelTolerance] = PixelTolerance(max_abs=3, mean_abs=0.05)
    min_seed_difference: ClassVar[float] = 0.5

    # -- building -----------------------------------------------------------------------------
    def make_runner(self, policy: str = "tiny", weights_dir: Path | None = None, **overrides: Any) -> Any:
        """A loaded runner of :attr:`runner_name` with :attr:`params` and ``overrides``.

        Raises:
            pytest.fail: when :attr:`runner_name` is not set.
        """
        from evalsuite.registry import RUNNERS
        from evalsuite.runners.weights import Weights

        if not self.runner_name:
            pytest.fail(f"{type(self).__name__}: set runner_name to a name in evalsuite.registry.RUNNERS")
        cls = RUNNERS.get(self.runner_name)
        p = cls.Params(**{**self.params, **overrides})
        p.validate()
        runner = cls(p, Weights(policy, weights_dir), self.device)  # type: ignore[arg-type]
        runner.load()
        return runner

    def save_hub_layout(self, runner: Any, root: Path) -> bool:
        """Write ``runner``'s loaded pipeline under ``root`` where the ``hub`` policy looks for
        ``params.model`` (``root/<org>/<name>``), as safetensors. Returns ``False`` (the round-trip
        test is skipped) when the pipeline cannot save itself."""
        model = getattr(runner.params, "model", "")
        if not model or not hasattr(runner.pipe, "save_pretrained"):
            return False
        variant = getattr(runner.params, "variant", "") or None
        runner.pipe.save_pretrained(root / model, safe_serialization=True, variant=variant)
        return True

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    def runner(self) -> Iterator[Any]:
        """The runner under test (tiny weights), loaded once per class."""
        r = self.make_runner()
        yield r
        r.close()

    @pytest.fixture(scope="class")
    def contract_cases(self, tmp_path_factory: pytest.TempPathFactory) -> ContractCases:
        return _write_cases(tmp_path_factory.mktemp("contract-cases"))

    @pytest.fixture(scope="class")
    def cases(self, runner: Any, contract_cases: ContractCases) -> list[Any]:
        """Two cases the runner can use: inpainting cases, or prompt-only ones for text-to-image."""
        if runner.task == "inpaint":
            return list(contract_cases.inpaint)
        from evalsuite.data.cases import Case

        return [Case(f"{c.id}-t2i", c.prompt, seed=c.seed) for c in contract_cases.inpaint]

    @pytest.fixture(scope="class")
    def single(self, runner: Any, cases: list[Any]) -> Any:
        """The first case alone at seed 7."""
        return runner.generate(cases[:1], [7])[0]

    # -- the contract -------------------------------------------------------------------------
    def test_one_image_per_case_at_the_runner_size(self, runner: Any, cases: list[Any], single: Any) -> None:
        from evalsuite.runners.base import GenerationOutput

        assert isinstance(single, GenerationOutput)
        assert single.image.mode == "RGB" and single.image.size == runner.size
        assert all(v >= 0 for v in single.phases.values()) and all(s >= 0 for s in single.steps)
        assert runner.task in ("t2i", "inpaint")

    def test_single_and_batch_agree_within_tolerance(
        self, runner: Any, cases: list[Any], single: Any
    ) -> None:
        both = runner.generate(cases, [7, 9])
        assert len(both) == 2 and all(o.image.size == runner.size for o in both)
        self.batch_tolerance.check(single.image, both[0].image, f"{self.runner_name}: single vs batch of 2")

    def test_same_seed_same_image_other_seed_differs(
        self, runner: Any, cases: list[Any], single: Any
    ) -> None:
        again = runner.generate(cases[:1], [7])[0]
        self.seed_tolerance.check(single.image, again.image, f"{self.runner_name}: seed 7 twice")
        other = runner.generate(cases[:1], [8])[0]
        _mx, mean = pixel_difference(single.image, other.image)
        assert mean > self.min_seed_difference, (
            f"{self.runner_name}: seeds 7 and 8 give nearly the same image (mean |Δ| {mean:.3f} ≤ "
            f"{self.min_seed_difference}): is the generator ignored?"
        )

    def test_bad_cases_raise_case_error(self, runner: Any, contract_cases: ContractCases) -> None:
        from evalsuite.data.imageio import ImageError
        from evalsuite.runners.base import CaseError

        if runner.task != "inpaint":
            pytest.skip("text-to-image runner: it uses the prompt only (see the prompt-only test)")
        for case, text in (
            (contract_cases.prompt_only, "no image and mask"),
            (contract_cases.no_mask, "no mask"),
            (contract_cases.empty_mask, "empty"),
        ):
            with pytest.raises(CaseError, match=text):
                runner.generate([case], [1])
        with pytest.raises(ImageError, match="mask is 40x40 but its image is 80x80"):
            runner.generate([contract_cases.wrong_mask], [1])

    def test_text_to_image_uses_the_prompt_only(self, runner: Any, contract_cases: ContractCases) -> None:
        if runner.task != "t2i":
            pytest.skip("inpainting runner: image and mask are required (see the bad-case test)")
        with_inputs = runner.generate([contract_cases.inpaint[0]], [3])[0]
        prompt_only = runner.generate([contract_cases.prompt_only], [3])[0]
        self.seed_tolerance.check(
            with_inputs.image, prompt_only.image, f"{self.runner_name}: inpainting case vs its prompt alone"
        )

    def test_hub_policy_loads_a_saved_copy_offline(
        self, runner: Any, cases: list[Any], single: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path / "weights"
        if not self.save_hub_layout(runner, root):
            pytest.skip(f"{self.runner_name}: its pipeline cannot be saved as a hub layout")
        assert not list(root.rglob("*.bin")), "weights must be saved as safetensors"
        w, h = runner.size
        hub = self.make_runner("hub", root, width=w, height=h, dtype="float32")
        try:
            assert type(hub.pipe) is type(runner.pipe)
            assert hub.size == runner.size
            again = hub.generate(cases[:1], [7])[0]
            self.reload_tolerance.check(single.image, again.image, f"{self.runner_name}: tiny vs saved copy")
        finally:
            hub.close()
