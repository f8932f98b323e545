"""Deterministic builder of the shipped datasets ``smoke``, ``inpaint-core`` and ``t2i-core``.

Source photographs come from files bundled inside installed packages (scikit-image's sample
data and matplotlib's ``grace_hopper.jpg``), so a build needs no network. Each photo is centre-
cropped to a square and resized with Lanczos to the set's side (1024 for ``inpaint-core``,
256 for ``smoke``), then stored once; cases combine photos with different masks (from
:mod:`evalsuite.data.masks`), prompts (from :mod:`evalsuite.data.prompts`), categories and seeds.

``evalsuite datasets build`` rewrites all three sets; ``evalsuite datasets build-masks`` rewrites
only the masks, bit-identically (tested against the committed files).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from evalsuite.data.masks import COVERAGE_LEVELS, make_mask, save_mask_png
from evalsuite.data.prompts import CATEGORIES, PHOTO_PROMPTS, t2i_prompts

log = logging.getLogger(__name__)

CORE_SIZE = 1024
SMOKE_SIZE = 256
JPEG_QUALITY = 95

#: Mask family of each of the 12 cases of one photo in ``inpaint-core`` (rotated per photo).
CORE_FAMILIES = (
    "rectangle",
    "brush-thin",
    "brush-medium",
    "brush-thick",
    "object",
    "outpaint",
    *(f"coverage-{p}" for p in COVERAGE_LEVELS),
)


@dataclass(frozen=True)
class Source:
    """A bundled source photograph.

    Attributes:
        name: short name used in file names and case ids.
        load: returns the photo as an (H, W, 3) uint8 array.
        origin: where the file ships (package and function/path).
        provenance: who made it and where it was published.
        licence: its licence as stated by the shipping package.
    """

    name: str
    load: Callable[[], np.ndarray]
    origin: str
    provenance: str
    licence: str


def _skimage(fn: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        arr = getattr(skimage.data, fn)()
        if isinstance(arr, tuple):  # stereo_motorcycle returns (left, right, disparity)
            arr = arr[0]
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        return arr[..., :3].astype(np.uint8)

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "astronaut",
            _skimage("astronaut"),
            "scikit-image `skimage.data.astronaut()`",
            "Eileen Collins, NASA Great Images database (https://flic.kr/p/r9qvLn)",
            "public domain (no known copyright restrictions, per scikit-image)",
        ),
        Source(
            "chelsea",
            _skimage("chelsea"),
            "scikit-image `skimage.data.chelsea()`",
            "Chelsea the cat, photographed by Stefan van der Walt",
            "CC0 (per scikit-image)",
        ),
        Source(
            "coffee",
            _skimage("coffee"),
            "scikit-image `skimage.data.coffee()`",
            "coffee cup courtesy of Pikolo Espresso Bar, photographed by Rachel Michetti",
            "CC0 (per scikit-image)",
        ),
        Source(
            "rocket",
            _skimage("rocket"),
            "scikit-image `skimage.data.rocket()`",
            "launch of DSCOVR on Falcon 9, SpaceX Photos (flickr.com/photos/spacexphotos/16511594820)",
            "public domain (released by SpaceX, per scikit-image)",
        ),
        Source(
            "hubble",
            _skimage("hubble_deep_field"),
            "scikit-image `skimage.data.hubble_deep_field()`",
            "Hubble eXtreme Deep Field, NASA / HubbleSite release 2012-37",
            "public domain (NASA media guidelines, per scikit-image)",
        ),
        Source(
            "ihc",
            _skimage("immunohistochemistry"),
            "scikit-image `skimage.data.immunohistochemistry()`",
            "IHC staining of colonic glands, Center for Microscopy And Molecular Imaging (CMMI)",
            "no known copyright restrictions (per scikit-image)",
        ),
        Source(
            "retina",
            _skimage("retina"),
            "scikit-image `skimage.data.retina()`",
            "fundus photograph of a normal left eye, Mikael Häggström, Wikimedia Commons",
            "CC0 1.0 (per scikit-image)",
        ),
        Source(
            "motorcycle",
            _skimage("stereo_motorcycle"),
            "scikit-image `skimage.data.stereo_motorcycle()` (left view)",
            "Middlebury 2014 stereo benchmark (Scharstein et al., GCPR 2014), down-sampled by scikit-image",
            "distributed in scikit-image (BSD-3-Clause package); scikit-image states no separate licence — "
            "cite Scharstein et al. 2014 when publishing results",
        ),
        Source(
            "grace_hopper",
            _grace_hopper,
            "matplotlib `mpl-data/sample_data/grace_hopper.jpg`",
            "official U.S. Navy portrait of Commodore Grace M. Hopper",
            "public domain (work of the U.S. federal government); shipped as matplotlib sample data",
        ),
        Source(
            "camera",
            _skimage("camera"),
            "scikit-image `skimage.data.camera()` (greyscale, stored as RGB)",
            "photographer with a camera, photographed by Lav Varshney",
            "CC0 (per scikit-image)",
        ),
    ]
}

SMOKE_INPAINT = [  # (id, source, mask family, category, seed, prompt) — ids stable since v0
    (
        "inpaint-astronaut",
        "astronaut",
        "rectangle",
        "portrait",
        1000,
        "a smiling astronaut wearing a red scarf, studio portrait",
    ),
    (
        "inpaint-chelsea",
        "chelsea",
        "object",
        "object-replacement",
        1001,
        "a small white puppy sitting on the floor",
    ),
    (
        "inpaint-coffee",
        "coffee",
        "object",
        "e-commerce",
        1002,
        "a glass of iced latte on a saucer, product photo, soft light",
    ),
    (
        "inpaint-rocket",
        "rocket",
        "rectangle",
        "text-rendering",
        1003,
        'a launch pad sign that reads "EVALSUITE" in bold white letters',
    ),
]
SMOKE_T2I = [
    ("t2i-0", "general", 2000, "a quiet harbour at dawn with fishing boats, photograph"),
    ("t2i-1", "portrait", 2001, "portrait of an elderly woman with silver hair, natural window light"),
    ("t2i-2", "e-commerce", 2002, "a leather backpack on a white background, product shot"),
    ("t2i-3", "text-rendering", 2003, 'a neon sign that says "OPEN LATE" above a diner door'),
]


def square(arr: np.ndarray, side: int) -> Image.Image:
    """Centre-crop ``arr`` to a square (the short side) and resize it to ``side`` with Lanczos."""
    h, w = arr.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = Image.fromarray(np.ascontiguousarray(arr[y0 : y0 + s, x0 : x0 + s]))
    return img if s == side else img.resize((side, side), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class CaseSpec:
    """One inpainting case of a shipped set, before its files are written."""

    id: str
    source: str
    family: str
    category: str
    seed: int
    prompt: str


def core_cases() -> list[CaseSpec]:
    """The 120 ``inpaint-core`` cases: 12 per photo, one per category × 2, families rotated per photo.

    The mask of a case is ``make_mask(family, 1024, 1024, seed)``.
    """
    out = []
    for p, name in enumerate(SOURCES):
        for j in range(12):
            cat = CATEGORIES[j % len(CATEGORIES)]
            fam = CORE_FAMILIES[(p + j) % len(CORE_FAMILIES)]
            options = PHOTO_PROMPTS[name][cat]
            prompt = options[(j // len(CATEGORIES)) % len(options)]
            if fam == "outpaint":
                prompt = f"{prompt}, the scene extended naturally beyond the original frame"
            out.append(CaseSpec(f"{name}-{j:02d}-{fam}", name, fam, cat, 10_000 + 100 * p + j, prompt))
    return out


def smoke_cases() -> list[CaseSpec]:
    """The four ``smoke`` inpainting cases (masks made at 256 px)."""
    return [CaseSpec(i, s, f, c, seed, pr) for i, s, f, c, seed, pr in SMOKE_INPAINT]


def _write_manifest(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def _inpaint_rows(specs: list[CaseSpec], image_ext: str) -> list[dict]:
    return [
        {
            "id": c.id,
            "prompt": c.prompt,
            "image": f"images/{c.source}.{image_ext}",
            "mask": f"masks/{c.id}.png",
            "category": c.category,
            "seed": c.seed,
            "mask_family": c.family,
        }
        for c in specs
    ]


def build_masks(root: str | os.PathLike[str]) -> list[Path]:
    """(Re)write every mask of ``smoke`` and ``inpaint-core`` under ``root``; returns the paths.

    Bit-identical: each mask depends only on (family, size, seed).
    """
    root = Path(root)
    written = []
    for set_name, specs, side in (
        ("smoke", smoke_cases(), SMOKE_SIZE),
        ("inpaint-core", core_cases(), CORE_SIZE),
    ):
        for c in specs:
            path = root / set_name / "masks" / f"{c.id}.png"
            save_mask_png(make_mask(c.family, side, side, c.seed), path)
            written.append(path)
    return written


def _readme(
    title: str, intro: str, sources: list[str], rows: list[tuple[str, ...]], header: tuple[str, ...]
) -> str:
    lines = [f"# {title}", "", intro, ""]
    if sources:
        lines += [
            "## Images: provenance and licence",
            "",
            "| file | source | provenance | licence |",
            "|---|---|---|---|",
        ]
        for name in sources:
            s = SOURCES[name]
            lines.append(f"| {name} | {s.origin} | {s.provenance} | {s.licence} |")
        lines.append("")
    lines += [
        "## Rules",
        "",
        "* Regenerate with `evalsuite datasets build` (everything) or `evalsuite datasets build-masks` "
        "(masks only, bit-identical; `tests/test_datasets_shipped.py` checks it). Code: "
        "`evalsuite/dataset_build.py`, `evalsuite/masks.py`, `evalsuite/prompts.py`.",
        "* Photos: centre crop to the short side, Lanczos resize to the set's side, stored once.",
        "* Masks: 1-bit PNG, white = regenerate; `mask_family` names the generator and `seed` seeds it.",
        "* Other resolutions (e.g. 768² for the ControlNet Alpha configurations): the runner resizes "
        "the image with Lanczos and the mask with nearest neighbour to the configuration's size — resize, "
        "never crop (`evalsuite.data.imageio.resize_image` / `resize_mask`, called from "
        "`Runner.load_inputs`). Sources smaller than the configuration's size are upscaled by the same rule.",
        "* Text prompts and all manifest text are released with the suite under its licence.",
        "",
        "## Counts",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    return "\n".join(lines)


def _counts(specs: list[CaseSpec] | list[tuple[str, str]], key: Callable) -> list[tuple[str, ...]]:
    counts: dict[str, int] = {}
    for s in specs:
        counts[key(s)] = counts.get(key(s), 0) + 1
    return [(k, str(v)) for k, v in sorted(counts.items())]


def build_all(root: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``smoke``, ``inpaint-core`` and ``t2i-core`` under ``root`` (overwriting); returns their folders."""
    root = Path(root)
    out = {}
    # inpaint-core
    core = root / "inpaint-core"
    specs = core_cases()
    for name in SOURCES:
        path = core / "images" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        square(SOURCES[name].load(), CORE_SIZE).save(
            path, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False, progressive=False
        )
    _write_manifest(core / "manifest.jsonl", _inpaint_rows(specs, "jpg"))
    (core / "README.md").write_text(
        _readme(
            "inpaint-core",
            f"{len(specs)} inpainting cases at {CORE_SIZE}×{CORE_SIZE}: {len(SOURCES)} photographs × 12 cases, "
            "each with a `category` ("
            + ", ".join(CATEGORIES)
            + "), a `mask_family` ("
            + ", ".join(CORE_FAMILIES)
            + ") and a `seed`. Photos are stored once as JPEG (quality "
            f"{JPEG_QUALITY}, 4:4:4); sources smaller than {CORE_SIZE} px were upscaled with Lanczos.",
            list(SOURCES),
            _counts(specs, lambda s: f"category {s.category}")
            + _counts(specs, lambda s: f"mask_family {s.family}"),
            ("group", "cases"),
        ),
        encoding="utf-8",
    )
    out["inpaint-core"] = core
    # smoke
    smoke = root / "smoke"
    sm = smoke_cases()
    for c in sm:
        img = square(SOURCES[c.source].load(), SMOKE_SIZE)
        path = smoke / "images" / f"{c.source}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format="PNG", optimize=False, compress_level=9)
    rows = _inpaint_rows(sm, "png")
    rows += [{"id": i, "prompt": p, "category": cat, "seed": seed} for i, cat, seed, p in SMOKE_T2I]
    _write_manifest(smoke / "manifest.jsonl", rows)
    (smoke / "README.md").write_text(
        _readme(
            "smoke",
            f"{len(sm)} inpainting cases at {SMOKE_SIZE}×{SMOKE_SIZE} and {len(SMOKE_T2I)} text prompts, for CPU tests "
            "and the demo (tiny weights). Not a quality benchmark.",
            [c.source for c in sm],
            [(r["id"], r["category"], r.get("mask_family", "-")) for r in rows],
            ("id", "category", "mask_family"),
        ),
        encoding="utf-8",
    )
    out["smoke"] = smoke
    # t2i-core
    t2i = root / "t2i-core"
    prompts = t2i_prompts()
    _write_manifest(
        t2i / "manifest.jsonl",
        [
            {"id": f"t2i-{cat}-{k:02d}", "prompt": p, "category": cat, "seed": 20_000 + n}
            for n, (cat, p) in enumerate(prompts)
            for k in [sum(1 for c2, _ in prompts[:n] if c2 == cat)]
        ],
    )
    (t2i / "README.md").write_text(
        _readme(
            "t2i-core",
            f"{len(prompts)} fixed text prompts for the text-to-image configurations (flux-dev vs flux-dev-turbo8), "
            f"{len(prompts) // len(CATEGORIES)} per category. Every third prompt of a category is long (more than 77 CLIP "
            "tokens: CLIP truncates it, T5 reads all of it). No images: FID references come from a COCO loader.",
            [],
            _counts(prompts, lambda s: s[0]),
            ("category", "prompts"),
        ),
        encoding="utf-8",
    )
    out["t2i-core"] = t2i
    build_masks(root)
    return out
