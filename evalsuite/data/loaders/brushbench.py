"""BrushBench (TencentARC BrushNet's benchmark) from its ``mapping_file.json`` layout.

Layout::

    BrushBench/
      mapping_file.json      {"KEY": {"image": "images/…/x.jpg", "caption": "...",
                                      "inpainting_mask": [start, length, start, length, ...],
                                      "outpainting_mask": [...]}, ...}
      images/...

A mask is either run-length encoded — a flat list of (1-based start, run length) pairs over the
image's pixels in row-major order, the encoding BrushNet's evaluation script decodes — or a path to
a mask file relative to the base folder. RLE masks are written once as 1-bit PNGs to a cache folder
(``$EVALSUITE_CACHE/brushbench/<hash of the mapping file>/``) so cases point at files like every
other dataset. ``mask_key`` picks ``inpainting_mask`` (default) or ``outpainting_mask``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.data.cases import Case, Dataset, DatasetNotFoundError, ManifestError, check_case_id
from evalsuite.data.imageio import ImageError
from evalsuite.data.loaders.common import cache_dir, err, file_fingerprint, locate
from evalsuite.data.masks import save_mask_png

MAPPING = "mapping_file.json"
_BAD_ID = re.compile(r"[^A-Za-z0-9_.\-]")


def rle_decode(rle: Any, width: int, height: int) -> np.ndarray:
    """Decode BrushBench's RLE (1-based start, length pairs; row-major) to a bool (H, W) mask.

    Raises:
        ValueError: not a flat list of non-negative integers of even length, or a run outside the image.
    """
    if (
        not isinstance(rle, list)
        or len(rle) % 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in rle)
    ):
        raise ValueError("RLE must be a flat list of integers (start, length, start, length, ...)")
    arr = np.asarray(rle, dtype=np.int64).reshape(-1, 2)
    starts, lengths = arr[:, 0] - 1, arr[:, 1]
    n = width * height
    if (starts < 0).any() or (lengths < 0).any() or (starts + lengths > n).any():
        raise ValueError(f"RLE run outside the {width}x{height} image")
    flat = np.zeros(n, dtype=bool)
    for s, ln in zip(starts.tolist(), lengths.tolist(), strict=True):
        flat[s : s + ln] = True
    return flat.reshape(height, width)


def rle_encode(mask: np.ndarray) -> list[int]:
    """The inverse of :func:`rle_decode` (used to write fixtures and tests)."""
    flat = np.concatenate([[False], np.asarray(mask, dtype=bool).ravel(), [False]])
    d = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = d[0::2], d[1::2]
    out: list[int] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        out += [s + 1, e - s]
    return out


def load_brushbench(
    path: str | os.PathLike[str] | None = None, mask_key: str = "inpainting_mask", limit: int | None = None
) -> Dataset:
    """Load BrushBench from its folder (or its ``mapping_file.json``).

    Args:
        path: the BrushBench folder or mapping file; default ``$EVALSUITE_BRUSHBENCH``.
        mask_key: ``inpainting_mask`` or ``outpainting_mask``.
        limit: only the first N entries (in file order).

    Raises:
        LoaderNotConfigured: no path and no environment variable.
        ManifestError: malformed mapping file or entry (naming the file and the entry key).
        DatasetNotFoundError: a missing folder/file (naming the path).
    """
    p = locate(path, "EVALSUITE_BRUSHBENCH", "brushbench", f"the BrushBench folder (with {MAPPING})")
    mapping = p / MAPPING if p.is_dir() else p
    if not mapping.is_file():
        raise DatasetNotFoundError(
            f"brushbench: {mapping} not found (expected the BrushBench folder holding {MAPPING})"
        )
    base = mapping.parent
    raw = mapping.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{mapping}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise ManifestError(f"{mapping}: expected a non-empty JSON object of entries keyed by id")
    masks_dir = cache_dir("brushbench", hashlib.sha256(raw).hexdigest()[:16] + "-" + mask_key)
    cases: list[Case] = []
    mask_files: list[Path] = []  # masks given as files (RLE masks are covered by the mapping's bytes)
    seen: set[str] = set()
    for key, item in data.items():
        if limit is not None and len(cases) >= limit:
            break
        if not isinstance(item, dict):
            raise err(mapping, key, "entry must be an object with image, caption and a mask")
        for f in ("image", "caption", mask_key):
            if f not in item:
                raise err(mapping, key, f"missing field {f!r}")
        if not isinstance(item["caption"], str):
            raise err(mapping, key, "field 'caption' must be a string")
        cid = _BAD_ID.sub("_", str(key)).lstrip("_.-") or "case"
        bad_id = check_case_id(cid)
        if bad_id:
            raise err(mapping, key, f"the entry key gives a case id that is not usable: {bad_id}")
        if cid in seen:
            raise err(mapping, key, f"duplicate case id {cid!r} after sanitising the key")
        seen.add(cid)
        image = (base / str(item["image"])).resolve()
        if not image.is_file():
            raise err(mapping, key, f"image file not found: {image}")
        m = item[mask_key]
        if isinstance(m, str):
            mask = (base / m).resolve()
            if not mask.is_file():
                raise err(mapping, key, f"mask file not found: {mask}")
            mask_files.append(mask)
        else:
            try:
                with Image.open(image) as im:
                    w, h = im.size
            except Exception as exc:
                raise ImageError(f"{image}: cannot read the image header ({exc})") from exc
            try:
                arr = rle_decode(m, w, h)
            except ValueError as exc:
                raise err(mapping, key, f"field {mask_key!r}: {exc}") from exc
            mask = masks_dir / (_BAD_ID.sub("_", str(key)) + ".png")
            if not mask.is_file():
                save_mask_png(arr, mask)
        rel = Path(str(item["image"])).parts
        extra = {"brushbench_key": str(key)}
        if len(rel) > 2:
            extra["group"] = "/".join(rel[1:-1])
        cases.append(
            Case(
                id=cid,
                prompt=item["caption"],
                image=image,
                mask=mask,
                category=str(item.get("category", "general")),
                seed=0,
                mask_family=mask_key,
                extra=extra,
            )
        )
    fp = file_fingerprint(
        "brushbench:" + mask_key, [raw], base, [*(c.image for c in cases if c.image), *mask_files]
    )
    return Dataset(name="brushbench", root=base, cases=cases, fingerprint=fp, source=f"brushbench:{mapping}")
