"""Human-preference metrics: LAION aesthetic v2, PickScore v1, HPS v2.1, ImageReward v1.0 — each on
the whole image and (``*_masked``) on the regenerated region.

Thin wrappers over :mod:`evalsuite.metrics.preference_nets` (networks, weights, preprocessing and
scoring live there). Options (:class:`PreferenceOptions`): ``metric_weights``
(``real``/``random``/``random_full``), ``metric_weights_dir``, ``batch_size`` (images per network
call, default 32). Higher is better for all of them (unitless); values are per image (the
per-sample list state of :class:`~evalsuite.metrics.base.Metric`), the aggregate is their mean. Prompts longer than the text
context (77 CLIP tokens; 35 BERT tokens for ImageReward) are cut by the tokenizer, as in the
reference code; ``extra.truncated_prompts`` counts them.

The masked variants crop each image to the bounding box of its mask and pad it to a square with
black (:func:`~evalsuite.metrics.functional.mask_bbox_square_crop`, as ``clip_score_masked``), then
score the crop like a whole image: "does the regenerated content match the prompt / look good".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics import preference_nets as pn
from evalsuite.metrics.base import MetricBatch, MetricOptionError, MetricResult, NetOptions
from evalsuite.metrics.quality import _NetMetric
from evalsuite.registry import METRICS


@dataclass(frozen=True)
class PreferenceOptions(NetOptions):
    """Options of the preference metrics.

    Attributes:
        batch_size: images per network call (≥ 1; the values do not depend on it).
    """

    batch_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1:
            raise MetricOptionError(f"batch_size must be ≥ 1, got {self.batch_size}")


class _Preference(_NetMetric):
    family: ClassVar[str] = ""
    definition: ClassVar[str] = ""
    masked: ClassVar[bool] = False
    higher_is_better = True  # type: ignore[misc]  # torchmetrics declares it an instance attribute
    unit = ""
    truncated: torch.Tensor  # state: prompts cut by the tokenizer (sum over shards)
    needs = frozenset({"images", "prompts"})
    feature_nets = frozenset({fx.PREFERENCE_NETS})  # files checked before generation (features.py)
    Options = PreferenceOptions

    def setup_states(self) -> None:
        self.add_state("truncated", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _net(self) -> pn.PrefNet:
        net = pn.LOADERS[self.family](self._mode(), self.device, self._wdir())
        self.quality_evidence = net.quality_evidence
        return net

    @property
    def _uses_prompts(self) -> bool:
        return "prompts" in self.needs

    @torch.no_grad()
    def update(self, batch: MetricBatch) -> list[float]:  # type: ignore[override]
        if batch.images is None or (self.masked and batch.masks is None):
            raise ValueError(f"{self.name} needs {', '.join(sorted(self.needs))}")
        net = self._net()
        regions: Any = batch.images
        if self.masked:
            assert batch.masks is not None
            regions = [fn.mask_bbox_square_crop(i, m) for i, m in zip(batch.images, batch.masks, strict=True)]
        prompts = list(batch.prompts) if self._uses_prompts else [""] * len(batch)
        vals = pn.score(
            self.family,
            regions,
            prompts,
            self._mode(),
            self.device,
            self._wdir(),
            self.options.batch_size,
        )
        if self._uses_prompts:
            self.truncated += int(sum(pn.truncated(net, prompts)))
        return self.add_samples(vals)

    def compute(self) -> MetricResult:
        r = self.mean_of_samples()
        if r.n == 0:
            return r
        net = self._net()
        r.extra.update(
            {
                "feature_network": net.id,
                "definition": self.definition,
                "region": "mask bounding box, black-padded square" if self.masked else "whole image",
                "preprocessing": net.pre.describe(),
                "weights": net.weights,
            }
        )
        if self._uses_prompts:
            r.extra["truncated_prompts"] = int(self.truncated)
            r.extra["context_length"] = getattr(net.tokenize, "context_length", None)
        return r


class _Masked:
    masked = True
    tasks = frozenset({"inpaint"})


@METRICS.register("aesthetic")
class Aesthetic(_Preference):
    """LAION aesthetic predictor v2 (``sac+logos+ava1-l14-linearMSE``) on CLIP ViT-L/14: ≈ 1–10."""

    name = "aesthetic"
    family = "aesthetic"
    needs = frozenset({"images"})
    # the ViT-L-14/openai CLIP file of clip_score (checked as a "clip" net), plus the head
    feature_nets = frozenset({"clip", fx.PREFERENCE_NETS})
    default_clip = pn.AESTHETIC_CLIP  # read by features.required_weights for the "clip" file
    definition = "MLP(E/‖E‖), E = CLIP ViT-L/14 (OpenAI) image embedding; LAION aesthetic v2 (≈ 1–10)"


@METRICS.register("aesthetic_masked")
class AestheticMasked(_Masked, Aesthetic):
    """:class:`Aesthetic` of the regenerated region (mask bounding box)."""

    name = "aesthetic_masked"
    needs = frozenset({"images", "masks"})


@METRICS.register("pickscore")
class PickScore(_Preference):
    """PickScore v1: exp(logit_scale) · cos(image, prompt) of the Pick-a-Pic CLIP ViT-H-14 fine-tune."""

    name = "pickscore"
    family = "pickscore"
    definition = "exp(logit_scale) · cos(E_img, E_txt), PickScore v1 (CLIP ViT-H-14 fine-tune)"


@METRICS.register("pickscore_masked")
class PickScoreMasked(_Masked, PickScore):
    """:class:`PickScore` of the regenerated region (mask bounding box) vs the prompt."""

    name = "pickscore_masked"
    needs = frozenset({"images", "prompts", "masks"})


@METRICS.register("hpsv21")
class HPSv21(_Preference):
    """Human Preference Score v2.1: cos(image, prompt) of the HPS v2.1 ViT-H-14 (≈ 0.2–0.35; papers
    often print ×100)."""

    name = "hpsv21"
    family = "hpsv21"
    definition = "cos(E_img, E_txt), HPS v2.1 (open_clip ViT-H-14), not scaled"


@METRICS.register("hpsv21_masked")
class HPSv21Masked(_Masked, HPSv21):
    """:class:`HPSv21` of the regenerated region (mask bounding box) vs the prompt."""

    name = "hpsv21_masked"
    needs = frozenset({"images", "prompts", "masks"})


@METRICS.register("imagereward")
class ImageReward(_Preference):
    """ImageReward v1.0 (BLIP ViT-L + cross-attending BERT + MLP), standardised: (r − μ)/σ with the
    published μ = 0.16717362830052426, σ = 1.0333394966054072 (papers often print ×10)."""

    name = "imagereward"
    family = "imagereward"
    definition = "(MLP(BERT_[CLS](prompt | BLIP ViT-L image tokens)) − 0.16717) / 1.03334, ImageReward v1.0"


@METRICS.register("imagereward_masked")
class ImageRewardMasked(_Masked, ImageReward):
    """:class:`ImageReward` of the regenerated region (mask bounding box) vs the prompt."""

    name = "imagereward_masked"
    needs = frozenset({"images", "prompts", "masks"})


PREFERENCE_METRICS = tuple(
    n for c in ("aesthetic", "pickscore", "hpsv21", "imagereward") for n in (c, f"{c}_masked")
)
