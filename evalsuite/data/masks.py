"""Mask families: deterministic inpainting masks from a seed, saved as 1-bit PNG.

Every generator takes ``(width, height, seed)`` and returns a boolean ``(height, width)`` array,
``True`` = region to regenerate. The same arguments give the same mask on every machine: the
randomness comes only from ``numpy.random.default_rng(seed)`` and the shapes are drawn with
Pillow's ``ImageDraw`` on an integer grid.

Families (:data:`FAMILIES`):

=================  ==========================================================================
``rectangle``      one axis-aligned rectangle covering 10–35 % of the image
``brush-thin``     LaMa-style free-form strokes, width 1–2.5 % of the short side
``brush-medium``   free-form strokes, width 3–6 % of the short side
``brush-thick``    free-form strokes, width 7–12 % of the short side
``object``         an object-shaped blob: an ellipse or an irregular polygon, 10–35 %
``outpaint``       everything except a kept centre region (50–80 % of each side)
``coverage-NN``    a rectangle of NN % of the image (NN = 10, 20, …, 60; ±1 %)
=================  ==========================================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MaskFn = Callable[[int, int, int], np.ndarray]

COVERAGE_LEVELS = (10, 20, 30, 40, 50, 60)


def _canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("L", (width, height), 0)
    return img, ImageDraw.Draw(img)


def _done(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.uint8) >= 128


def rectangle(width: int, height: int, seed: int) -> np.ndarray:
    """One rectangle of 10–35 % of the area, aspect ratio 0.5–2, placed uniformly at random."""
    rng = np.random.default_rng(seed)
    return _rect_of_area(width, height, float(rng.uniform(0.10, 0.35)), rng)


def _rect_of_area(width: int, height: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    area = frac * width * height
    aspect = float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))  # w / h
    w = min(width, max(1, round(math.sqrt(area * aspect))))
    h = min(height, max(1, round(area / w)))
    w = min(width, max(1, round(area / h)))  # correct w after clipping h
    x0 = int(rng.integers(0, width - w + 1))
    y0 = int(rng.integers(0, height - h + 1))
    m = np.zeros((height, width), dtype=bool)
    m[y0 : y0 + h, x0 : x0 + w] = True
    return m


def _brush(width: int, height: int, seed: int, wmin: float, wmax: float) -> np.ndarray:
    """Free-form strokes (a LaMa-style random walk of thick line segments with round joints)."""
    rng = np.random.default_rng(seed)
    img, draw = _canvas(width, height)
    short = min(width, height)
    n_strokes = int(rng.integers(2, 6))
    for _ in range(n_strokes):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        stroke_w = max(1, round(float(rng.uniform(wmin, wmax)) * short))
        n_vertices = int(rng.integers(4, 11))
        angle = float(rng.uniform(0, 2 * math.pi))
        for _ in range(n_vertices):
            angle += float(rng.uniform(-math.pi / 3, math.pi / 3))
            length = float(rng.uniform(0.05, 0.2)) * short
            nx = min(max(x + length * math.cos(angle), 0.0), width - 1.0)
            ny = min(max(y + length * math.sin(angle), 0.0), height - 1.0)
            draw.line([(round(x), round(y)), (round(nx), round(ny))], fill=255, width=stroke_w)
            r = stroke_w / 2
            draw.ellipse([round(nx - r), round(ny - r), round(nx + r), round(ny + r)], fill=255)
            x, y = nx, ny
    return _done(img)


def brush_thin(width: int, height: int, seed: int) -> np.ndarray:
    """Thin free-form strokes: width 1–2.5 % of the short side."""
    return _brush(width, height, seed, 0.01, 0.025)


def brush_medium(width: int, height: int, seed: int) -> np.ndarray:
    """Medium free-form strokes: width 3–6 % of the short side."""
    return _brush(width, height, seed, 0.03, 0.06)


def brush_thick(width: int, height: int, seed: int) -> np.ndarray:
    """Thick free-form strokes: width 7–12 % of the short side."""
    return _brush(width, height, seed, 0.07, 0.12)


def object_blob(width: int, height: int, seed: int) -> np.ndarray:
    """An object-shaped region: an ellipse or an irregular star-shaped polygon of 10–35 % area."""
    rng = np.random.default_rng(seed)
    img, draw = _canvas(width, height)
    frac = float(rng.uniform(0.10, 0.35))
    aspect = float(np.exp(rng.uniform(math.log(0.6), math.log(1.6))))
    # ellipse area = pi * a * b; a = half-width, b = half-height
    b = math.sqrt(frac * width * height / (math.pi * aspect))
    a = min(aspect * b, width / 2 - 1)
    b = min(b, height / 2 - 1)
    cx = float(rng.uniform(a, width - a))
    cy = float(rng.uniform(b, height - b))
    if rng.random() < 0.5:
        draw.ellipse([round(cx - a), round(cy - b), round(cx + a), round(cy + b)], fill=255)
    else:
        n = int(rng.integers(6, 13))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.7, 1.15, n)
        pts = [
            (
                round(min(max(cx + a * r * math.cos(t), 0), width - 1)),
                round(min(max(cy + b * r * math.sin(t), 0), height - 1)),
            )
            for t, r in zip(angles.tolist(), radii.tolist(), strict=True)
        ]
        draw.polygon(pts, fill=255)
    return _done(img)


def outpaint(width: int, height: int, seed: int) -> np.ndarray:
    """Outpainting: the whole image except a kept centre region of 50–80 % of each side."""
    rng = np.random.default_rng(seed)
    kw = round(float(rng.uniform(0.5, 0.8)) * width)
    kh = round(float(rng.uniform(0.5, 0.8)) * height)
    x0, y0 = (width - kw) // 2, (height - kh) // 2
    m = np.ones((height, width), dtype=bool)
    m[y0 : y0 + kh, x0 : x0 + kw] = False
    return m


def coverage(percent: int) -> MaskFn:
    """A generator of rectangles covering ``percent`` % of the image (aspect 0.5–2, random place)."""

    def gen(width: int, height: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return _rect_of_area(width, height, percent / 100.0, rng)

    gen.__name__ = f"coverage_{percent}"
    gen.__doc__ = f"A rectangle covering {percent} % of the image."
    return gen


FAMILIES: dict[str, MaskFn] = {
    "rectangle": rectangle,
    "brush-thin": brush_thin,
    "brush-medium": brush_medium,
    "brush-thick": brush_thick,
    "object": object_blob,
    "outpaint": outpaint,
    **{f"coverage-{p}": coverage(p) for p in COVERAGE_LEVELS},
}


def make_mask(family: str, width: int, height: int, seed: int) -> np.ndarray:
    """The ``family`` mask of ``width`` × ``height`` pixels for ``seed`` (bool, True = regenerate).

    Raises:
        KeyError: naming the unknown family and the known ones.
    """
    if family not in FAMILIES:
        raise KeyError(f"unknown mask family {family!r}; known: {', '.join(FAMILIES)}")
    if width < 8 or height < 8:
        raise ValueError(f"mask size must be at least 8x8 pixels, got {width}x{height}")
    m = FAMILIES[family](width, height, seed)
    if not m.any():  # degenerate draw (cannot happen for valid sizes, kept as a guard)
        m[height // 2, width // 2] = True
    return m


def save_mask_png(mask: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a boolean mask as a 1-bit PNG (white = regenerate) with fixed encoder settings.

    The bytes depend only on the mask and on Pillow's PNG/zlib encoder (pinned in
    ``constraints.txt``), so regenerated masks are byte-identical.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=bool))  # mode "1"
    img.save(path, format="PNG", optimize=False, compress_level=9)
