"""Reading source images and masks, and writing output images atomically.

Rules (documented behaviour, each tested):

* Images are decoded with Pillow, EXIF orientation applied, and converted to 8-bit RGB
  (RGBA is composited on white; palette, CMYK, greyscale and 16-bit inputs are converted and a
  warning is logged).
* Images larger than :data:`MAX_PIXELS` are refused before decoding (no out-of-memory).
* Masks are converted to greyscale and binarised at ≥ 0.5 (≥ 128 of 255) — white = regenerate;
  the number of non-binary pixels is logged (and counted by :func:`mask_stats`).
* A mask whose size differs from its image is an error unless the caller opts in to resizing
  it with nearest neighbour (:func:`check_mask_size`).
* Resizing to a configuration's resolution: images with Lanczos, masks with nearest neighbour.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from evalsuite.errors import UsageError
from evalsuite.paths import atomic_writer_path, commit_tmp

log = logging.getLogger(__name__)

MAX_PIXELS = 64 * 1024 * 1024  # 8192², refused above this


class ImageError(UsageError, ValueError):
    """An image or mask file that cannot be used; the message names the file and the fix."""


_CONVERSION_NOTE = {
    "RGBA": " (transparent pixels composited on white)",
    "LA": " (transparent pixels composited on white)",
    "P": " (palette expanded)",
    "CMYK": " (naive CMYK→RGB, no colour profile)",
    "I;16": " (16-bit scaled to 8-bit)",
    "I;16B": " (16-bit scaled to 8-bit)",
    "I;16L": " (16-bit scaled to 8-bit)",
    "I": " (32-bit integer scaled as 16-bit to 8-bit)",
    "L": " (greyscale copied to three channels)",
}


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty (0 bytes); replace it with a valid PNG/JPEG")
    try:
        img = Image.open(path)
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageError(
                f"{path}: {w}x{h} is larger than the {MAX_PIXELS} pixel limit; downscale it first"
            )
        img.load()
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{path}: cannot decode image ({exc}); the file is corrupt or truncated") from exc
    return img


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Load ``path`` as 8-bit RGB with EXIF orientation applied.

    Raises:
        ImageError: missing, empty, undecodable or oversized file.
    """
    path = Path(path)
    img = _open(path)
    img = ImageOps.exif_transpose(img) or img
    if img.mode != "RGB":
        log.warning(
            "%s: converting image mode %s to 8-bit RGB%s", path, img.mode, _CONVERSION_NOTE.get(img.mode, "")
        )
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, rgba).convert("RGB")
        elif img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            img = Image.fromarray(np.clip(arr / 257.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
        else:
            img = img.convert("RGB")
    return img


def _read_mask_levels(path: Path) -> np.ndarray:
    """The mask file's grey levels in [0, 1] (H, W), EXIF orientation applied."""
    img = _open(path)
    return _mask_levels(ImageOps.exif_transpose(img) or img)


_ZERO_ONE_WARNED: set[str] = set()


def _is_zero_one(levels: np.ndarray) -> bool:
    """A 0/1 mask saved as 8-bit grey: its top level is 1/255 (every pixel would read < 0.5)."""
    top = float(levels.max()) if levels.size else 0.0
    return 0.0 < top <= 1.0 / 255 + 1e-9


def load_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a mask as a boolean (H, W) array: True where the pixel is ≥ 0.5 (regenerate). A mask
    whose only levels are 0 and 1 (of 255: a 0/1 array saved as 8-bit grey) is read as 0/1, with a
    warning.

    Raises:
        ImageError: missing, empty, undecodable or oversized file.
    """
    path = Path(path)
    lv = _read_mask_levels(path)
    if _is_zero_one(lv):
        if str(path) not in _ZERO_ONE_WARNED:
            _ZERO_ONE_WARNED.add(str(path))
            log.warning(
                "%s: the mask's levels are 0 and 1 (not 0 and 255); reading 1 as 'regenerate' "
                "(save masks as 0/255 to silence this)",
                path,
            )
        return lv > 0
    n_soft = int(((lv > 0) & (lv < 1)).sum())
    if n_soft:
        log.info(
            "%s: %d non-binary mask pixels (%.2f %%) binarised at 0.5", path, n_soft, 100.0 * n_soft / lv.size
        )
    return lv >= 0.5


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_image` learns from a file without converting it.

    Attributes:
        path: the file.
        size: (width, height) in pixels after EXIF orientation.
        mode: Pillow mode of the decoded file (``RGB``, ``RGBA``, ``P``, ``CMYK``, ``I;16``, ``L``...).
        format: file format reported by Pillow (``PNG``, ``JPEG``...).
    """

    path: Path
    size: tuple[int, int]
    mode: str
    format: str | None

    @property
    def needs_conversion(self) -> bool:
        """True when loading converts the pixels (anything but 8-bit RGB)."""
        return self.mode != "RGB"


def inspect_image(path: str | os.PathLike[str]) -> ImageInfo:
    """Decode ``path`` fully (so truncation is caught) and report its size and mode.

    Raises:
        ImageError: missing, empty, undecodable, truncated or oversized file.
    """
    path = Path(path)
    img = _open(path)
    fmt = img.format
    img = ImageOps.exif_transpose(img) or img
    return ImageInfo(path, img.size, img.mode, fmt)


@dataclass(frozen=True)
class MaskStats:
    """Counts from :func:`mask_stats` for one mask file.

    Attributes:
        size: (width, height) in pixels.
        n_pixels: width × height.
        n_masked: pixels ≥ 0.5 (to regenerate).
        n_nonbinary: pixels strictly between black and white (binarised at 0.5 on load).
    """

    size: tuple[int, int]
    n_pixels: int
    n_masked: int
    n_nonbinary: int

    @property
    def empty(self) -> bool:
        """No pixel to regenerate."""
        return self.n_masked == 0

    @property
    def full(self) -> bool:
        """Every pixel to regenerate (nothing kept)."""
        return self.n_masked == self.n_pixels

    @property
    def coverage(self) -> float:
        """Fraction of pixels to regenerate, in [0, 1]."""
        return self.n_masked / self.n_pixels if self.n_pixels else 0.0


def _mask_levels(img: Image.Image) -> np.ndarray:
    """Mask grey levels as float in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img, dtype=np.float64) / 65535.0
    if img.mode in ("RGBA", "LA"):
        img = img.convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def mask_stats(path: str | os.PathLike[str]) -> MaskStats:
    """Size, coverage and the number of non-binary pixels of the mask at ``path``.

    Raises:
        ImageError: missing, empty, undecodable or oversized file.
    """
    path = Path(path)
    lv = _read_mask_levels(path)
    zero_one = _is_zero_one(lv)
    return MaskStats(
        size=(lv.shape[1], lv.shape[0]),
        n_pixels=int(lv.size),
        n_masked=int((lv > 0).sum() if zero_one else (lv >= 0.5).sum()),
        n_nonbinary=0 if zero_one else int(((lv > 0) & (lv < 1)).sum()),
    )


def check_mask_size(
    image_size: tuple[int, int],
    mask: np.ndarray,
    mask_path: str | os.PathLike[str],
    allow_resize: bool = False,
) -> np.ndarray:
    """Return ``mask`` at ``image_size`` = (width, height).

    A mask whose size differs from its image is an error unless ``allow_resize`` is set, in which
    case it is resized with nearest neighbour to the image's size (the documented rule).

    Raises:
        ImageError: naming the mask file, both sizes and the fix.
    """
    msize = (mask.shape[1], mask.shape[0])
    if msize == tuple(image_size):
        return mask
    if not allow_resize:
        raise ImageError(
            f"{mask_path}: mask is {msize[0]}x{msize[1]} but its image is {image_size[0]}x{image_size[1]}; "
            "save the mask at the image's size (a run does not resize masks; 'evalsuite datasets validate' lists "
            "every such case)"
        )
    log.warning("%s: mask %dx%d resized (nearest) to the image's %dx%d", mask_path, *msize, *image_size)
    return resize_mask(mask, (int(image_size[0]), int(image_size[1])))


def resize_image(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` = (width, height) with Lanczos (no crop); returns ``img`` if already that size."""
    return img if img.size == size else img.resize(size, Image.Resampling.LANCZOS)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a boolean mask to ``size`` = (width, height) with nearest neighbour."""
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
    return np.asarray(img) >= 128


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """A boolean mask as an ``L`` image (255 = regenerate)."""
    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L")


def save_png_atomic(img: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write ``img`` as PNG to ``path`` via a temporary file and an atomic rename.

    A reader never sees a partial file: either the old file (or none) or the complete new one.
    The file gets the mode the umask gives a new file (:mod:`evalsuite.paths`' atomic writer).
    """
    tmp, final = atomic_writer_path(path)
    try:
        with open(tmp, "wb") as f:
            img.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    commit_tmp(tmp, final)
