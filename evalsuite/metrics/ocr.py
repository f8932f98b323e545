"""Text rendering: the string a case asks for, read back by OCR inside the case's text region.

``ocr_sentence_accuracy``
    1 when the text read in the region equals the case's ``text`` after normalisation
    (:func:`~evalsuite.metrics.functional.normalize_text`: NFKC, case folded, whitespace removed),
    else 0 — AnyText's ``sen_acc`` (``eval/eval_dgocr.py``).
``ocr_ned``
    1 − Levenshtein(read, target) / max(|read|, |target|) on the normalised strings — AnyText's
    normalised edit distance, reported as a similarity (1 = exact).

Both also read the **source image** in the same region and write it beside the value
(``ocr_sentence_accuracy_source``, ``ocr_ned_source``): on a dataset whose sources show the target
string (``text-inpaint``) that is the ceiling the OCR engine reaches on legible, undamaged text.

The region is the case's ``text_box`` (fractions of width and height) or else the bounding box of
its mask, at the generated image's size, padded by ``pad`` × its height on every side (clipped to
the image). A case without ``text`` is not scored (NaN, counted as ``no target text``); one with
text but no region (no ``text_box``, no mask) is NaN counted as ``no text region``; one whose
target holds characters the engine's recogniser cannot output is NaN counted as ``unreadable
characters`` (it could never score 1). An image with no legible text reads as the empty string:
accuracy 0 and NED 0, a measured failure, not a missing value.

Engines (option ``engine``): ``rapidocr`` (default) — RapidOCR on ONNX Runtime with PaddleOCR's
PP-OCRv4 Chinese/English detection and recognition models, which ship inside the
``rapidocr-onnxruntime`` wheel (nothing is downloaded; real weights everywhere, CI included); or
``module:Class`` naming any class with the :class:`OCREngine` interface. ``read = detect`` finds
the text lines in the region and joins them top to bottom, left to right; ``read = line``
recognises the whole region as one line (AnyText's protocol: faster, but the region must hold one
line of text that fills it).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch

from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import (
    Column,
    Metric,
    MetricBatch,
    MetricOptionError,
    MetricResult,
    ScoringContext,
)
from evalsuite.registry import METRICS

log = logging.getLogger(__name__)

RAPIDOCR_PACKAGE = "rapidocr-onnxruntime"
NO_TEXT = "no target text"
NO_REGION = "no text region"
UNREADABLE = "unreadable characters"
NO_CASE = "case not in the dataset"


class OCREngine(Protocol):
    """What an OCR engine offers the ``ocr_*`` metrics.

    Attributes:
        id: identity recorded beside the numbers (package, version, models).
    """

    id: str

    def read(self, image: np.ndarray, mode: str = "detect") -> str:
        """The text in ``image`` (uint8 RGB, (H, W, 3)); lines joined with a space in reading
        order; ``""`` when nothing legible. ``mode``: ``detect`` or ``line``."""
        ...

    def charset(self) -> frozenset[str] | None:
        """The characters the recogniser can output (``None``: unknown, not checked)."""
        ...


class RapidOCREngine:
    """RapidOCR (``rapidocr-onnxruntime``) with the PP-OCRv4 models bundled in its wheel.

    Detection runs on the region scaled so that its long side is at most ``det_side`` pixels
    (RapidOCR's default scales the *short* side up to 736 px: slow and pointless on a crop).
    """

    def __init__(self, threads: int = 0, det_side: int = 960) -> None:
        from importlib.metadata import version

        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            from evalsuite.metrics.features import MetricWeightsError

            raise MetricWeightsError(
                f"OCR engine 'rapidocr' unavailable: {exc}. Install it with "
                f"`pip install {RAPIDOCR_PACKAGE}` (its models ship inside the wheel; an ImportError of "
                "libGL.so.1 needs `apt-get install libgl1`), or choose another engine with "
                "--metric-option ocr_ned.engine=module:Class"
            ) from exc
        kw: dict[str, Any] = {"det_limit_type": "max", "det_limit_side_len": det_side}
        if threads > 0:
            kw["intra_op_num_threads"] = threads
            kw["inter_op_num_threads"] = 1
        self._ocr = RapidOCR(**kw)
        self.id = f"rapidocr-onnxruntime-{version(RAPIDOCR_PACKAGE)}/PP-OCRv4-ch-det+rec"
        self._chars: frozenset[str] | None = None

    def read(self, image: np.ndarray, mode: str = "detect") -> str:
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        if mode == "line":
            res, _ = self._ocr(bgr, use_det=False, use_cls=False, use_rec=True)
            return " ".join(str(r[0]) for r in res or [] if float(r[1]) >= self._ocr.text_score)
        res, _ = self._ocr(bgr, use_cls=False)
        return " ".join(str(r[1]) for r in res or [])

    def charset(self) -> frozenset[str] | None:
        if self._chars is None:
            chars = getattr(getattr(self._ocr.text_rec, "postprocess_op", None), "character", None)
            self._chars = frozenset(c for c in chars or [] if len(c) == 1) or None
        return self._chars


ENGINES: dict[str, type] = {"rapidocr": RapidOCREngine}
_ENGINE_CACHE: dict[tuple[str, int], Any] = {}
_READS: OrderedDict[str, str] = OrderedDict()
_READS_MAX = 4096


def get_engine(name: str, threads: int = 0) -> Any:
    """The engine ``name`` (``rapidocr`` or ``module:Class``), built once per process.

    Raises:
        MetricOptionError: ``module:Class`` cannot be imported.
        MetricWeightsError: the engine's package is missing.
    """
    key = (name, threads)
    if key not in _ENGINE_CACHE:
        if name in ENGINES:
            _ENGINE_CACHE[key] = ENGINES[name](threads=threads)
        else:
            module, _, attr = name.partition(":")
            try:
                cls = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError, ValueError) as exc:
                raise MetricOptionError(
                    f"OCR engine {name!r}: not one of {', '.join(ENGINES)} and not an importable "
                    f"'module:Class' ({exc})"
                ) from None
            _ENGINE_CACHE[key] = cls()
    return _ENGINE_CACHE[key]


def read_text(engine: Any, image: np.ndarray, mode: str = "detect") -> str:
    """``engine.read(image, mode)``, memoised on the pixels (both ``ocr_*`` metrics read each
    region once between them)."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"{getattr(engine, 'id', type(engine).__name__)}|{mode}|{image.shape}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    key = h.hexdigest()
    if key in _READS:
        _READS.move_to_end(key)
        return _READS[key]
    text = str(engine.read(image, mode))
    _READS[key] = text
    if len(_READS) > _READS_MAX:
        _READS.popitem(last=False)
    return text


def text_region(
    size: tuple[int, int],
    text_box: Sequence[float] | None = None,
    mask: np.ndarray | None = None,
    pad: float = 0.1,
) -> tuple[int, int, int, int] | None:
    """The pixel box ``(x0, y0, x1, y1)`` (exclusive ends) to read in an image of ``size`` =
    (width, height): ``text_box`` (fractions) if given, else the bounding box of ``mask``
    (boolean (H, W) at that size), grown by ``pad`` × its height on each side and clipped to the
    image; ``None`` when neither is given or the mask is empty."""
    w, h = size
    if text_box is not None:
        x0, y0, x1, y1 = (
            text_box[0] * w,
            text_box[1] * h,
            text_box[2] * w,
            text_box[3] * h,
        )
    elif mask is not None and mask.any():
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    else:
        return None
    m = pad * (y1 - y0)
    box = (
        max(0, math.floor(x0 - m)),
        max(0, math.floor(y0 - m)),
        min(w, math.ceil(x1 + m)),
        min(h, math.ceil(y1 + m)),
    )
    return box if box[2] > box[0] and box[3] > box[1] else None


def unreadable(text: str, charset: frozenset[str] | None, **norm: bool) -> str:
    """The characters of normalised ``text`` that ``charset`` lacks (``""``: all readable)."""
    if charset is None:
        return ""
    t = fn.normalize_text(text, **norm)
    # the recogniser's dictionary holds both cases of Latin letters; compare case-insensitively
    lower = {c.casefold() for c in charset}
    return "".join(sorted({c for c in t if c not in charset and c.casefold() not in lower}))


@dataclass(frozen=True)
class OCROptions:
    """Options of the ``ocr_*`` metrics.

    Attributes:
        engine: ``rapidocr`` or ``module:Class`` (an :class:`OCREngine`).
        read: ``detect`` (find lines in the region, then recognise) or ``line`` (recognise the
            region as one line, AnyText's protocol).
        case_sensitive: compare letter case (default: folded).
        keep_spaces: compare spaces (default: all whitespace removed).
        pad: the region grows by this fraction of its height on each side.
        source_ceiling: also read the source image in the same region (the ``*_source`` column).
        threads: ONNX Runtime threads (0: its default, all cores).
    """

    engine: str = "rapidocr"
    read: Literal["detect", "line"] = "detect"
    case_sensitive: bool = False
    keep_spaces: bool = False
    pad: float = 0.1
    source_ceiling: bool = True
    threads: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.pad <= 1:
            raise MetricOptionError(f"pad must be in [0, 1], got {self.pad}")
        if self.threads < 0:
            raise MetricOptionError(f"threads must be ≥ 0, got {self.threads}")
        if self.engine not in ENGINES and ":" not in self.engine:
            raise MetricOptionError(
                f"engine must be one of {', '.join(ENGINES)} or 'module:Class', got {self.engine!r}"
            )


class _OCRMetric(Metric):
    """Reads each sample's text region (and the source's) and scores it against the case's text."""

    higher_is_better = True  # type: ignore[misc]
    unit = ""
    needs = frozenset({"images"})
    Options = OCROptions
    source_column: ClassVar[str] = ""

    def setup_states(self) -> None:
        self._cases: dict[str, Any] | None = None
        self._reasons: dict[str, int] = {}
        self._examples: list[dict[str, str]] = []
        self.check_available({"engine": self.options.engine})

    @classmethod
    def check_available(cls, options: dict[str, Any]) -> None:
        """Refuse to start (before any generation: :func:`evalsuite.metrics.features.check_metric_weights`
        calls it) when the default engine's package is not installed.

        Raises:
            MetricWeightsError: naming the ``pip install``.
        """
        from importlib.util import find_spec

        if str(options.get("engine", "rapidocr")) != "rapidocr":
            return
        try:
            missing = find_spec("rapidocr_onnxruntime") is None
        except ValueError:  # in sys.modules as None: import disabled
            missing = True
        if missing:
            from evalsuite.metrics.features import MetricWeightsError

            raise MetricWeightsError(
                f"{cls.name}: OCR engine 'rapidocr' unavailable: the package {RAPIDOCR_PACKAGE} is not "
                f"installed; `pip install {RAPIDOCR_PACKAGE}` (its models ship inside the wheel)"
            )

    @staticmethod
    @abstractmethod
    def score(pred: str, target: str, **norm: bool) -> float:
        """The metric's value for one text read (``pred``) against its target."""

    def prepare(self, context: ScoringContext) -> None:
        ds = context.dataset
        self._cases = {c.id: c for c in ds.cases} if ds is not None else None

    def reset(self) -> None:
        super().reset()
        self._reasons = {}
        self._examples = []

    def _norm(self) -> dict[str, bool]:
        return {"case_sensitive": self.options.case_sensitive, "keep_spaces": self.options.keep_spaces}

    def _nan(self, reason: str) -> float:
        self._reasons[reason] = self._reasons.get(reason, 0) + 1
        return math.nan

    def _crop(self, image: torch.Tensor, box: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        arr = (image[:, y0:y1, x0:x1].float().clamp(0, 1) * 255).round().to(torch.uint8)
        return arr.permute(1, 2, 0).cpu().numpy()

    def _source_mask(self, case: Any, size: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray | None]:
        from evalsuite.data.imageio import load_image, load_mask, resize_image, resize_mask

        mask = resize_mask(load_mask(case.mask), size) if case.mask is not None else None
        src = None
        if case.image is not None and self.options.source_ceiling:
            src = np.asarray(resize_image(load_image(case.image), size), dtype=np.uint8)
        return src, mask

    def update(self, batch: MetricBatch) -> list[float]:  # type: ignore[override]
        if batch.images is None:
            raise ValueError(f"{self.name} needs images")
        engine = get_engine(self.options.engine, self.options.threads)
        norm = self._norm()
        vals: list[float] = []
        ceil: list[float] = []
        for row, img in zip(batch.rows, batch.images, strict=True):
            case = None if self._cases is None else self._cases.get(str(row.get("case_id")))
            if case is None:
                vals.append(self._nan(NO_CASE if self._cases is not None else "dataset unknown"))
                ceil.append(math.nan)
                continue
            if not case.text:
                vals.append(self._nan(NO_TEXT))
                ceil.append(math.nan)
                continue
            size = (int(img.shape[-1]), int(img.shape[-2]))
            src, mask = self._source_mask(case, size)
            box = text_region(size, case.text_box, mask, self.options.pad)
            if box is None:
                vals.append(self._nan(NO_REGION))
                ceil.append(math.nan)
                continue
            bad = unreadable(case.text, engine.charset(), **norm)
            if bad:
                if UNREADABLE not in self._reasons:
                    log.warning(
                        "%s: case %s: the OCR engine cannot output %r; such cases are NaN",
                        self.name,
                        case.id,
                        bad,
                    )
                vals.append(self._nan(UNREADABLE))
                ceil.append(math.nan)
                continue
            read = read_text(engine, self._crop(img, box), self.options.read)
            vals.append(self.score(read, case.text, **norm))
            if len(self._examples) < 8:
                self._examples.append({"case": case.id, "target": case.text, "read": read})
            if src is not None:
                x0, y0, x1, y1 = box
                sread = read_text(engine, np.ascontiguousarray(src[y0:y1, x0:x1]), self.options.read)
                ceil.append(self.score(sread, case.text, **norm))
            else:
                ceil.append(math.nan)
        return self.add_samples(vals, **{self.source_column: ceil})

    def compute(self) -> MetricResult:
        src = [x for x in self.samples(self.source_column) if not math.isnan(x)]
        engine = get_engine(self.options.engine, self.options.threads)
        return self.mean_of_samples(
            engine=getattr(engine, "id", self.options.engine),
            read=self.options.read,
            normalisation="NFKC"
            + ("" if self.options.case_sensitive else ", casefold")
            + (", spaces collapsed" if self.options.keep_spaces else ", whitespace removed"),
            region=f"text_box or mask bounding box, padded {self.options.pad:g} x height",
            source_ceiling=float(sum(src) / len(src)) if src else math.nan,
            n_source=len(src),
            nan_reasons=dict(self._reasons),
            examples=list(self._examples),
        )


@METRICS.register("ocr_sentence_accuracy")
class OCRSentenceAccuracy(_OCRMetric):
    """Share of samples whose text region reads exactly the case's ``text`` (normalised), with the
    source image's reading as a ceiling (``ocr_sentence_accuracy_source``)."""

    name = "ocr_sentence_accuracy"
    source_column = "ocr_sentence_accuracy_source"
    columns = {"ocr_sentence_accuracy_source": Column("", True)}

    @staticmethod
    def score(pred: str, target: str, **norm: bool) -> float:
        return fn.sentence_accuracy(pred, target, **norm)


@METRICS.register("ocr_ned")
class OCRNed(_OCRMetric):
    """1 − normalised edit distance between the text read in the region and the case's ``text``,
    with the source image's reading as a ceiling (``ocr_ned_source``)."""

    name = "ocr_ned"
    source_column = "ocr_ned_source"
    columns = {"ocr_ned_source": Column("", True)}

    @staticmethod
    def score(pred: str, target: str, **norm: bool) -> float:
        return fn.normalized_edit_similarity(pred, target, **norm)
