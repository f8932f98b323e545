"""Reading source images and masks, and writing output images atomically.

Rules (documented behaviour, each tested):

* Images are decoded with Pillow, EXIF orientation applied, and converted to 8-bit RGB
  (RGBA is composited on white; palette, CMYK, greyscale and 16-bit inputs are converted and a
  warning is logged).
* Images larger than :data:`MAX_PIXELS` are refused before decoding (no out-of-memory).
* Masks are converted to greyscale and binarised at ≥ 0.5 (≥ 128 of 255) — white = regenerate.
  A mask must have its image's size (after EXIF orientation); a different size is refused.
* Resizing to a configuration's resolution: images with Lanczos, masks with nearest neighbour.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

MAX_PIXELS = 64 * 1024 * 1024  # 8192², refused above this


class ImageError(ValueError):
    """An image or mask file that cannot be used; the message names the file and the fix."""


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
        raise ImageError(f"{path}: cannot decode image ({exc}); the file is corrupt or truncated") from None
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
        if img.mode not in ("L", "P", "RGBA", "LA"):
            log.warning("%s: converting image mode %s to RGB", path, img.mode)
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


def load_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a mask as a boolean (H, W) array: True where the pixel is ≥ 0.5 (regenerate).

    Raises:
        ImageError: missing, empty, undecodable or oversized file.
    """
    path = Path(path)
    img = _open(path)
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64) / 65535.0
        return arr >= 0.5
    if img.mode in ("RGBA", "LA"):
        img = img.convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.uint8) >= 128


def check_mask_size(image: Image.Image, mask: np.ndarray, image_path: str | os.PathLike[str],
                    mask_path: str | os.PathLike[str]) -> None:
    """Refuse a mask whose size differs from its image's (both after EXIF orientation).

    Raises:
        ImageError: naming both files and sizes.
    """
    mh, mw = mask.shape[:2]
    if (mw, mh) != image.size:
        raise ImageError(
            f"{mask_path}: mask is {mw}x{mh} but its image {image_path} is {image.size[0]}x{image.size[1]}; "
            "a mask must have its image's size (resize the mask with nearest-neighbour interpolation)"
        )


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
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
