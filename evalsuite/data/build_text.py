"""The ``text-inpaint`` set: signs on the bundled photographs, the text masked, the prompt asking for it.

Each case's source is one of the bundled photographs (:data:`evalsuite.data.build.SOURCES`), centre
cropped and resized to 512², with a sign board drawn on it that shows the case's ``text`` in a
font; the mask covers the board's face (so the model must re-render the text), and the prompt
asks for the string. Half the strings are English, half Chinese (simplified).

The sources are rendered **once**, with fonts, and shipped (JPEG): rendering needs a Latin and a
CJK font that a fresh machine may lack. Rebuild with::

    python -m evalsuite.data.build_text --out DIR --latin-font DejaVuSans-Bold.ttf \\
        --cjk-font NotoSansCJK-Bold.ttc

The layout (board and mask rectangles, colours, prompts, manifest) depends on nothing but this
module: :func:`layout` and :func:`manifest_rows` rebuild it without a font, and
``tests/test_metrics_ocr.py`` checks the shipped manifest and masks against them. The pixels of
the text depend on the font (and FreeType) version; the shipped files are the reference.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from evalsuite.data.build import SOURCES, square
from evalsuite.data.masks import save_mask_png

SIZE = 512
JPEG_QUALITY = 85
BLUR = 2.5  # the photograph behind the board, out of focus (and 3x smaller as JPEG)
NAME = "text-inpaint"

ENGLISH = (
    "OPEN 24 HOURS",
    "FRESH BREAD",
    "NO PARKING",
    "EXIT",
    "COFFEE & TEA",
    "SALE 50% OFF",
    "Welcome Home",
    "BOOK SHOP",
    "PHARMACY",
    "City Library",
    "BUS STOP",
    "HOTEL ROYAL",
    "Flower Market",
    "GRAND OPENING",
    "ICE CREAM",
    "PIZZA 2 GO",
    "Station Road",
    "KEEP OUT",
    "LIVE MUSIC",
    "FARM EGGS",
    "BIKE REPAIR",
    "Sushi Bar",
    "GATE 7",
    "MAIN STREET",
)
CHINESE = (
    "欢迎光临",
    "营业中",
    "新鲜面包",
    "禁止停车",
    "出口",
    "咖啡馆",
    "全场五折",
    "书店",
    "药房",
    "图书馆",
    "公交车站",
    "大酒店",
    "花市",
    "盛大开业",
    "冰淇淋",
    "火车站",
    "请勿入内",
    "现场音乐",
    "农家鸡蛋",
    "自行车修理",
    "寿司",
    "七号门",
    "中山路",
    "茶馆",
)
# (board colour, text colour, description used in the prompt)
BOARDS = (
    ((245, 243, 232), (25, 25, 25), "white"),
    ((24, 82, 52), (250, 250, 250), "dark green"),
    ((176, 30, 36), (255, 255, 255), "red"),
    ((250, 210, 40), (20, 20, 20), "yellow"),
    ((28, 60, 140), (255, 255, 255), "blue"),
    ((40, 40, 40), (255, 236, 150), "black"),
)


@dataclass(frozen=True)
class TextCase:
    """One case before its files are written: board and face are (x0, y0, x1, y1) pixel boxes
    (exclusive ends) at :data:`SIZE`; the mask is the face."""

    id: str
    text: str
    lang: str
    source: str
    seed: int
    board: tuple[int, int, int, int]
    face: tuple[int, int, int, int]
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    prompt: str


def layout() -> list[TextCase]:
    """The 48 cases, deterministic (no font, no randomness beyond a seeded generator)."""
    rng = np.random.default_rng(27)
    names = list(SOURCES)
    out = []
    for i, (lang, text) in enumerate([("en", t) for t in ENGLISH] + [("zh", t) for t in CHINESE]):
        src = names[i % len(names)]
        bw = int(rng.integers(300, 440))
        bh = int(rng.integers(96, 128))
        x0 = int(rng.integers(24, SIZE - bw - 24))
        y0 = int(rng.integers(40, SIZE - bh - 40))
        board = (x0, y0, x0 + bw, y0 + bh)
        inset = 10
        face = (x0 + inset, y0 + inset, x0 + bw - inset, y0 + bh - inset)
        bg, fg, desc = BOARDS[i % len(BOARDS)]
        if lang == "en":
            prompt = f'a {desc} sign board with the words "{text}" in bold letters'
        else:
            prompt = f'a {desc} sign board with the Chinese characters "{text}" in bold'
        out.append(
            TextCase(
                f"text-{lang}-{i % 24:02d}-{src}", text, lang, src, 30_000 + i, board, face, (bg, fg), prompt
            )
        )
    return out


def manifest_rows(cases: list[TextCase]) -> list[dict]:
    return [
        {
            "id": c.id,
            "prompt": c.prompt,
            "image": f"images/{c.id}.jpg",
            "mask": f"masks/{c.id}.png",
            "category": f"text-rendering-{c.lang}",
            "seed": c.seed,
            "mask_family": "text-board",
            "text": c.text,
        }
        for c in cases
    ]


def face_mask(c: TextCase) -> np.ndarray:
    """The case's mask: True over the board's face."""
    m = np.zeros((SIZE, SIZE), bool)
    x0, y0, x1, y1 = c.face
    m[y0:y1, x0:x1] = True
    return m


def render(c: TextCase, latin_font: str, cjk_font: str) -> Image.Image:
    """The source image: the photograph with the board and its text (the largest font size that
    fits 85 % of the face's width and 62 % of its height)."""
    img = square(SOURCES[c.source].load(), SIZE).convert("RGB").filter(ImageFilter.GaussianBlur(BLUR))
    d = ImageDraw.Draw(img)
    bg, fg = c.colours
    x0, y0, x1, y1 = c.board
    d.rectangle((x0 + 4, y0 + 6, x1 + 4, y1 + 6), fill=(30, 30, 30))  # shadow
    d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=tuple(int(v * 0.7) for v in bg))  # frame
    fx0, fy0, fx1, fy1 = c.face
    d.rectangle((fx0, fy0, fx1 - 1, fy1 - 1), fill=bg)
    path = latin_font if c.lang == "en" else cjk_font
    fw, fh = fx1 - fx0, fy1 - fy0
    size = int(fh * 0.62)
    while size > 8:
        font = ImageFont.truetype(path, size)
        x_l, t, r, b = d.textbbox((0, 0), c.text, font=font)
        if r - x_l <= 0.85 * fw and b - t <= 0.62 * fh:
            break
        size -= 1
    x_l, t, r, b = d.textbbox((0, 0), c.text, font=font)
    d.text((fx0 + (fw - (r - x_l)) / 2 - x_l, fy0 + (fh - (b - t)) / 2 - t), c.text, font=font, fill=fg)
    return img


def readme(cases: list[TextCase]) -> str:
    srcs = sorted({c.source for c in cases})
    lines = [
        f"# {NAME}",
        "",
        f"{len(cases)} text-rendering inpainting cases at {SIZE}×{SIZE}: "
        f"{sum(c.lang == 'en' for c in cases)} English and {sum(c.lang == 'zh' for c in cases)} Chinese "
        "strings on sign boards drawn over the bundled photographs. The mask covers the board's face; "
        "the prompt asks for the string; the manifest's `text` field is what the `ocr_sentence_accuracy` "
        "and `ocr_ned` metrics read back inside the mask's bounding box (and on the source, as a ceiling).",
        "",
        "## Images: provenance and licence",
        "",
        "| file | source | provenance | licence |",
        "|---|---|---|---|",
        *(f"| {n} | {SOURCES[n].origin} | {SOURCES[n].provenance} | {SOURCES[n].licence} |" for n in srcs),
        "",
        f"Each source is the photograph centre-cropped, Lanczos-resized to 512² and blurred (Gaussian, radius {BLUR}: "
        "the background out of focus), with a board and its text "
        "drawn in DejaVu Sans Bold (English; Bitstream Vera / DejaVu licence) or Noto Sans CJK SC Bold "
        f"(Chinese; SIL Open Font License 1.1), stored as JPEG (quality {JPEG_QUALITY}, 4:2:0).",
        "",
        "## Rules",
        "",
        "* Rebuild with `python -m evalsuite.data.build_text --out DIR --latin-font F --cjk-font F` "
        "(code: `evalsuite/data/build_text.py`); manifest and masks rebuild bit-identically without a font "
        "(`tests/test_metrics_ocr.py` checks them), the text pixels depend on the font version.",
        "* Masks: 1-bit PNG, white = regenerate (the board's face).",
        "* Other resolutions (e.g. 1024² for flux-cn-beta, 768² for the ControlNet Alpha configurations): the "
        "runner resizes the image with Lanczos and the mask with nearest neighbour — resize, never crop.",
        "* Text prompts and all manifest text are released with the suite under its licence.",
        "",
        "## Counts",
        "",
        "| group | cases |",
        "|---|---|",
        f"| category text-rendering-en | {sum(c.lang == 'en' for c in cases)} |",
        f"| category text-rendering-zh | {sum(c.lang == 'zh' for c in cases)} |",
        "",
    ]
    return "\n".join(lines)


def build_text_inpaint(root: str | Path, latin_font: str, cjk_font: str) -> Path:
    """Write the set under ``root/text-inpaint`` (overwriting); returns its folder."""
    out = Path(root) / NAME
    cases = layout()
    (out / "images").mkdir(parents=True, exist_ok=True)
    for c in cases:
        render(c, latin_font, cjk_font).save(
            out / "images" / f"{c.id}.jpg", format="JPEG", quality=JPEG_QUALITY, subsampling=2
        )
        save_mask_png(face_mask(c), out / "masks" / f"{c.id}.png")
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in manifest_rows(cases))
    (out / "manifest.jsonl").write_text(text, encoding="utf-8")
    (out / "README.md").write_text(readme(cases), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--latin-font", required=True)
    ap.add_argument("--cjk-font", required=True)
    a = ap.parse_args(argv)
    print(build_text_inpaint(a.out, a.latin_font, a.cjk_font))


if __name__ == "__main__":
    main()
