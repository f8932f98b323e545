"""Renders the OCR test images of this folder once (they are committed: a fresh machine may lack a
CJK font). Not a test; run from the repository root:

    python tests/data/ocr/make_images.py LATIN_FONT CJK_FONT

(used: DejaVuSans.ttf of Debian's fonts-dejavu-core 2.37 and NotoSansCJK-Regular.ttc of
fonts-noto-cjk 20220127). Each image is one line of dark text on a light background, 40 px text, 8-bit
greyscale PNG; ``strings.json`` maps file name → the string drawn.
"""

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
EN = [
    "Hello World",
    "OPEN 24 HOURS",
    "Fresh Bread",
    "EXIT 12",
    "Coffee & Tea",
    "Main Street 42",
    "Bus Stop",
    "SALE 50% OFF",
    "Library",
    "Gate B7",
]
ZH = [
    "你好世界",
    "欢迎光临",
    "新鲜面包",
    "出口",
    "咖啡馆",
    "中山路",
    "公交车站",
    "图书馆",
    "全场五折",
    "火车站",
]


def main(latin: str, cjk: str) -> None:
    out = {}
    for lang, font_path, strings in (("en", latin, EN), ("zh", cjk, ZH)):
        font = ImageFont.truetype(font_path, 40)
        for i, s in enumerate(strings):
            probe = ImageDraw.Draw(Image.new("L", (1, 1)))
            x_l, t, r, b = probe.textbbox((0, 0), s, font=font)
            img = Image.new("L", (r - x_l + 48, b - t + 40), 236)
            ImageDraw.Draw(img).text((24 - x_l, 20 - t), s, font=font, fill=24)
            name = f"{lang}-{i:02d}.png"
            img.save(HERE / name, optimize=True)
            out[name] = s
    (HERE / "strings.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
