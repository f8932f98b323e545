"""Image grids built from a run's data: source | mask overlay | each configuration, side by side.

The paste-back variant shows each output composited onto the source outside the mask
(``out · m + src · (1 − m)``, at the output's size), which is what a user of an inpainting
model sees after the usual paste-back step.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from evalsuite.data.cases import Case
from evalsuite.data.imageio import ImageError, load_image, load_mask, resize_image, resize_mask

log = logging.getLogger(__name__)

CELL = 192
_PAD = 4
_HEAD = 34
_LABEL_W = 150
_BG = (255, 255, 255)
_MISSING = (220, 220, 220)


def paste_back(image: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` inside ``mask`` and ``source`` outside it.

    Args:
        image, source: uint8 or float arrays (H, W, 3) of the same size.
        mask: boolean (H, W), True = regenerated region.

    Raises:
        ValueError: when the shapes differ.
    """
    if image.shape != source.shape or image.shape[:2] != mask.shape:
        raise ValueError(
            f"paste_back: shapes differ: image {image.shape}, source {source.shape}, mask {mask.shape}"
        )
    return np.where(mask[..., None], image, source)


def mask_overlay(
    source: Image.Image, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 64), alpha: float = 0.45
) -> Image.Image:
    """``source`` with the masked region tinted by ``color`` and its outline drawn."""
    mask = resize_mask(mask, source.size)
    src = np.asarray(source.convert("RGB"), dtype=np.float32)
    tint = np.array(color, dtype=np.float32)
    out = np.where(mask[..., None], (1 - alpha) * src + alpha * tint, src)
    edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
    out[edge] = tint
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


@dataclass
class Tile:
    """One cell: an image or, when missing, a short reason shown in grey."""

    image: Image.Image | None
    note: str = ""


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


#: System fonts tried, in this order, for text the built-in font cannot draw (Chinese, Arabic,
#: Hebrew, emoji...): the first whose character map covers the whole text is used.
FONT_HINTS = (
    "DejaVuSans.ttf",
    "NotoSansCJK-Regular",
    "NotoSans-Regular",
    "wqy",
    "NotoSansArabic",
    "NotoSansHebrew",
    "FreeSans.ttf",
    "NotoColorEmoji",
    "Symbola",
)


@functools.lru_cache(maxsize=1)
def _system_fonts() -> tuple[tuple[str, frozenset[int]], ...]:
    """(font file, the code points it covers) of the machine's fonts named by :data:`FONT_HINTS`."""
    try:
        from fontTools.ttLib import TTCollection, TTFont
        from matplotlib import font_manager
    except ImportError:
        return ()
    files = font_manager.findSystemFonts(fontext="ttf")  # .ttf, .otf and .ttc
    out = []
    for hint in FONT_HINTS:
        for f in sorted(set(files)):
            if hint.lower() not in Path(f).name.lower() or "bold" in f.lower() or "italic" in f.lower():
                continue
            try:
                font = TTCollection(f).fonts[0] if f.lower().endswith(".ttc") else TTFont(f, lazy=True)
                cmap = frozenset(font.getBestCmap() or {})
            except Exception:  # an unreadable font file is skipped
                continue
            out.append((f, cmap))
            break
    return tuple(out)


def _ascii(text: str) -> bool:
    return all(ord(ch) < 128 for ch in text)


@functools.lru_cache(maxsize=256)
def _font_for(text: str, size: int) -> Any | None:
    """A font that draws every character of ``text`` (``None`` when the machine has none)."""
    if _ascii(text):
        return _font(size)
    need = {ord(ch) for ch in text if not ch.isspace()}
    for path, cmap in _system_fonts():
        if need <= cmap:
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return None


def _draw_text(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, fill: Any, fallback: str = ""
) -> None:
    """Draw ``text`` in a font that covers it; with none, draw ``fallback`` (or the text's ASCII
    part) — the full text is in the HTML report's tables."""
    font = _font_for(text, size)
    if font is None:
        text = fallback or "".join(ch if ord(ch) < 128 else "?" for ch in text)
        font = _font(size)
    draw.text(xy, text, fill=fill, font=font)


def stamp_png(path: Path, text: str) -> None:
    """Write ``text`` on a red band across the top of the PNG at ``path`` (the image grows by the
    band): the "no quality evidence" mark that stays with a plot or grid shared alone."""
    img = Image.open(path).convert("RGB")
    band = 22
    out = Image.new("RGB", (img.width, img.height + band), (176, 0, 32))
    out.paste(img, (0, band))
    draw = ImageDraw.Draw(out)
    _draw_text(draw, (6, 4), _short(_plain(text), max(20, img.width // 7)), 13, (255, 255, 255))
    out.save(path)


def _fit(img: Image.Image, cell: int) -> Image.Image:
    img = img.convert("RGB")
    scale = cell / max(img.size)
    size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
    canvas = Image.new("RGB", (cell, cell), _BG)
    canvas.paste(img.resize(size, Image.Resampling.LANCZOS), ((cell - size[0]) // 2, (cell - size[1]) // 2))
    return canvas


_PLAIN = str.maketrans({"−": "-", "×": "x", "…": "...", "—": "-", "–": "-", "·": "-", "²": "^2"})


def _plain(s: str) -> str:
    """Text the bitmap font can draw (a few typographic characters replaced by ASCII)."""
    return s.translate(_PLAIN)


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "..."


def compose(
    headers: Sequence[str], rows: Sequence[tuple[str, Sequence[Tile]]], title: str = "", cell: int = CELL
) -> Image.Image:
    """A labelled grid: a header row of column names, then per row a label and its tiles."""
    ncol = len(headers)
    title_h = 26 if title else 0
    w = _LABEL_W + ncol * (cell + _PAD) + _PAD
    h = title_h + _HEAD + len(rows) * (cell + _PAD) + _PAD
    canvas = Image.new("RGB", (w, h), _BG)
    draw = ImageDraw.Draw(canvas)
    title, headers = _plain(title), [_plain(h) for h in headers]
    rows = [(_plain(label), tiles) for label, tiles in rows]
    if title:
        _draw_text(draw, (_PAD, 5), _short(title, 160), 15, (0, 0, 0))
    for j, head in enumerate(headers):
        x = _LABEL_W + _PAD + j * (cell + _PAD)
        _draw_text(draw, (x + 2, title_h + 10), _short(head, cell // 7), 12, (0, 0, 0))
    for i, (label, tiles) in enumerate(rows):
        y = title_h + _HEAD + i * (cell + _PAD)
        font = _font_for(label, 12)
        if font is None:  # no font here draws this prompt: the id, and the prompt is left to the HTML
            label = label.split(" ")[0] + " (prompt: see the report's Cases shown)"
            font = _font(12)
        wide = any(unicodedata.east_asian_width(ch) in "WF" for ch in label)  # CJK: ~2 Latin widths
        for k, line in enumerate(_wrap(label, 11 if wide else 20, 6)):
            draw.text((_PAD, y + 4 + 15 * k), line, fill=(0, 0, 0), font=font)
        for j, tile in enumerate(tiles):
            x = _LABEL_W + _PAD + j * (cell + _PAD)
            if tile.image is not None:
                canvas.paste(_fit(tile.image, cell), (x, y))
            else:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=_MISSING)
                for k, line in enumerate(_wrap(_plain(tile.note or "missing"), 24, 8)):
                    _draw_text(draw, (x + 6, y + 6 + 15 * k), line, 12, (90, 90, 90))
    return canvas


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for word in words:
        while len(word) > width:
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(word[:width])
            word = word[width:]
        if len(cur) + len(word) + (1 if cur else 0) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [_short(lines[max_lines - 1], width - 2) + "..."]
    return lines


def select_cases(cases: Sequence[Case], present: set[str], k: int = 6, inpainting: bool = True) -> list[Case]:
    """A fixed, diverse selection: round-robin over categories in manifest order, up to ``k`` cases.

    Only cases in ``present`` (case ids that have rows) and of the asked kind are considered.
    """
    pool = [c for c in cases if c.id in present and c.is_inpainting == inpainting]
    by_cat: dict[str, list[Case]] = {}
    for c in pool:
        by_cat.setdefault(c.category, []).append(c)
    out: list[Case] = []
    while len(out) < k and any(by_cat.values()):
        for cat in list(by_cat):
            if by_cat[cat] and len(out) < k:
                out.append(by_cat[cat].pop(0))
    order = {c.id: i for i, c in enumerate(cases)}
    return sorted(out, key=lambda c: order[c.id])


def _row_image(run_dir: Path, row: dict[str, Any] | None) -> Tile:
    if row is None:
        return Tile(None, "no row")
    if row.get("status") != "ok" or not row.get("image"):
        return Tile(None, f"{row.get('status')}: {row.get('error') or ''}")
    try:
        return Tile(load_image(run_dir / str(row["image"])))
    except ImageError as exc:
        return Tile(None, f"image unreadable: {exc}")


def case_rows(
    run_dir: Path,
    rows: dict[tuple[str, str], dict[str, Any]],
    configs: Sequence[str],
    cases: Sequence[Case],
    paste: bool = False,
) -> list[tuple[str, list[Tile]]]:
    """Grid rows for inpainting ``cases``: source, mask overlay, then each configuration's output.

    ``rows`` maps (config, case_id) to the row shown (one seed per case).
    """
    out = []
    for case in cases:
        tiles: list[Tile] = []
        try:
            src = load_image(case.image) if case.image else None
            mask = load_mask(case.mask) if case.mask is not None else None
        except ImageError as exc:
            src, mask = None, None
            log.warning("grid: %s", exc)
        tiles.append(Tile(src, "source unreadable"))
        tiles.append(
            Tile(mask_overlay(src, mask) if src is not None and mask is not None else None, "mask unreadable")
        )
        for config in configs:
            tile = _row_image(run_dir, rows.get((config, case.id)))
            if paste and tile.image is not None and src is not None and mask is not None:
                size = tile.image.size
                pasted = paste_back(
                    np.asarray(tile.image), np.asarray(resize_image(src, size)), resize_mask(mask, size)
                )
                tile = Tile(Image.fromarray(pasted.astype(np.uint8)))
            tiles.append(tile)
        seed = next((r.get("seed") for (c, cid), r in rows.items() if cid == case.id), case.seed)
        out.append((f"{case.id} (seed {seed}) [{case.category}] {case.prompt}", tiles))
    return out


def t2i_rows(
    run_dir: Path, rows: dict[tuple[str, str], dict[str, Any]], configs: Sequence[str], cases: Sequence[Case]
) -> list[tuple[str, list[Tile]]]:
    """Grid rows for text-to-image ``cases``: each configuration's output."""
    return [
        (f"{c.id} [{c.category}] {c.prompt}", [_row_image(run_dir, rows.get((cfg, c.id))) for cfg in configs])
        for c in cases
    ]


def first_seed_rows(samples: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(config, case_id) → the row of the smallest seed (a fixed choice per case)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in samples.sort_values(["case_id", "seed"]).to_dict("records"):
        out.setdefault((str(r["config"]), str(r["case_id"])), r)
    return out


def evaluated_on(
    rows: dict[tuple[str, str], dict[str, Any]],
    configs: Sequence[str],
    cases: Sequence[Case],
    prompt_only: set[str] | None = None,
) -> list[str]:
    """The configurations evaluated on ``cases`` (a row that was not skipped on one of them): a grid
    compares only those.

    With ``prompt_only`` (the ids of the dataset's text-to-image cases): when some of those
    configurations ran prompt-only cases and others did not (a run of text-to-image and inpainting
    configurations), the ones that did are text-to-image configurations and are left out — they are
    no columns of the inpainting grid.
    """
    ids = {c.id for c in cases}

    def ran(cfg: str, on: set[str]) -> bool:
        return any(r.get("status") != "skipped" for (c, cid), r in rows.items() if c == cfg and cid in on)

    out = [cfg for cfg in configs if ran(cfg, ids)]
    t2i = [cfg for cfg in out if prompt_only and ran(cfg, prompt_only)]
    return [cfg for cfg in out if cfg not in t2i] if 0 < len(t2i) < len(out) else out


def run_grids(
    run_dir: Path,
    samples: Any,
    configs: Sequence[str],
    cases: Sequence[Case] | None,
    out_dir: Path,
    k: int = 6,
    cell: int = CELL,
) -> list[tuple[str, str, str]]:
    """Write ``grid_inpaint.png``, ``grid_inpaint_pasteback.png`` and ``grid_t2i.png`` when they have content.

    Args:
        cases: the run's cases in generation (manifest) order, with their source and mask paths
            (:func:`evalsuite.report.report.run_cases`); ``None`` when they are unknown (no grid).

    Returns:
        (key, file name, caption) per written grid.
    """
    if cases is None or not len(samples):
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = first_seed_rows(samples)
    present = {str(c) for c in samples["case_id"]}
    written = []
    all_configs = configs
    inp = select_cases(cases, present, k, inpainting=True)
    prompt_only = {c.id for c in cases if not c.is_inpainting}
    configs = evaluated_on(rows, all_configs, inp, prompt_only)
    if inp and configs:
        heads = ["source", "mask (red)", *configs]
        compose(heads, case_rows(run_dir, rows, configs, inp), "Raw outputs", cell).save(
            out_dir / "grid_inpaint.png"
        )
        written.append(
            (
                "grid_inpaint",
                "grid_inpaint.png",
                "Raw outputs: source | mask overlay | each configuration (the whole image as generated).",
            )
        )
        compose(
            heads, case_rows(run_dir, rows, configs, inp, paste=True), "Pasted back onto the source", cell
        ).save(out_dir / "grid_inpaint_pasteback.png")
        written.append(
            (
                "grid_inpaint_pasteback",
                "grid_inpaint_pasteback.png",
                "Paste-back: each output inside the mask, the source outside it (output resolution).",
            )
        )
    t2i = select_cases(cases, present, k, inpainting=False)
    configs = evaluated_on(rows, all_configs, t2i)
    if t2i and configs:
        compose(list(configs), t2i_rows(run_dir, rows, configs, t2i), "Text-to-image cases", cell).save(
            out_dir / "grid_t2i.png"
        )
        written.append(("grid_t2i", "grid_t2i.png", "Text-to-image cases: each configuration's output."))
    return written
