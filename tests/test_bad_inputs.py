"""The bad-input corpus: every bad input with the exact behaviour it must produce.

Three kinds, each exercised through the public entry points (``evalsuite run`` via
:func:`evalsuite.cli.main`, and :func:`evalsuite.run`):

* per-case inputs (broken images and masks, odd prompts, a LoRA that matches nothing): the run
  goes on; the case's row gets ``status`` ``error``/``skipped`` with the message, or ``ok`` with
  the documented handling; the good cases are byte-identical to a run without the bad ones;
* manifest problems: the run is refused before anything is generated (exit 2, no run directory),
  with one message naming ``file:line``, the field and the fix;
* unusable arguments (unknown configuration/metric, invalid ``--set``/``--seeds``, missing weights
  offline): exit 2 before generating, or — for weights, which are only looked for when loading —
  every row of that configuration records the error (exit 1).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import evalsuite
import tests.reliability_runners  # noqa: F401  (registers test-inpaint-probe)
from evalsuite.cli.main import main

# the 12,000² header makes Pillow warn on open; evalsuite then refuses it before decoding
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

SIZE = 64
RNG = np.random.default_rng(1234)


def _png(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format="PNG")
    return b.getvalue()


def _jpeg(arr: np.ndarray, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format="JPEG", **kw)
    return b.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _huge_png(side: int) -> bytes:
    """A valid PNG header declaring side×side RGB pixels (the pixel data is never needed)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def _rgb(h: int = SIZE, w: int = SIZE) -> np.ndarray:
    return RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _rect_mask(h: int = SIZE, w: int = SIZE) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    return m


def _exif_rotated_jpeg() -> bytes:
    """Stored 64 wide × 32 high with EXIF orientation 6 (display rotated 90°: 32 wide × 64 high)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(_rgb(32, 64), exif=exif.tobytes())


def _gif_animated() -> bytes:
    b = io.BytesIO()
    frames = [Image.fromarray(_rgb()).convert("P") for _ in range(3)]
    frames[0].save(b, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return b.getvalue()


def _one_pixel_mask(side: int) -> bytes:
    """A side×side mask whose only white pixel (1, 1) vanishes when resized (nearest) to 64×64."""
    m = np.zeros((side, side), np.uint8)
    m[1, 1] = 255
    return _png(m)


def _image_bytes(img: Image.Image, fmt: str) -> bytes:
    b = io.BytesIO()
    img.save(b, format=fmt)
    return b.getvalue()


GOOD_PNG = _png(_rgb())
GOOD_JPEG = _jpeg(_rgb())
RECT_MASK = _png(_rect_mask())
GRADIENT_MASK = _png(np.tile((np.arange(SIZE) * 4).astype(np.uint8), (SIZE, 1)))  # 0..252 left to right

# name: (files {relative path: bytes}, manifest fields, expected status, expected message fragments)
PER_CASE: dict[str, tuple[dict[str, bytes], dict, str, list[str]]] = {
    "good1": ({"img/good1.png": GOOD_PNG, "mask/good1.png": RECT_MASK}, {}, "ok", []),
    "good2": ({"img/good2.jpg": GOOD_JPEG, "mask/good2.png": RECT_MASK}, {}, "ok", []),
    "corrupt-png": (
        {"img/corrupt-png.png": RNG.bytes(600), "mask/corrupt-png.png": RECT_MASK},
        {},
        "error",
        [
            "generate: ImageError: ",
            "corrupt-png.png: cannot decode image (cannot identify image file",
            "the file is corrupt or truncated",
        ],
    ),
    "truncated-png": (
        {"img/truncated-png.png": GOOD_PNG[: len(GOOD_PNG) // 2], "mask/truncated-png.png": RECT_MASK},
        {},
        "error",
        ["truncated-png.png: cannot decode image (image file is truncated)"],
    ),
    "corrupt-jpeg": (
        {"img/corrupt-jpeg.jpg": b"\xff\xd8\xff\xe0" + RNG.bytes(600), "mask/corrupt-jpeg.png": RECT_MASK},
        {},
        "error",
        ["corrupt-jpeg.jpg: cannot decode image (", "); the file is corrupt or truncated"],
    ),
    "truncated-jpeg": (
        {"img/truncated-jpeg.jpg": GOOD_JPEG[: len(GOOD_JPEG) // 2], "mask/truncated-jpeg.png": RECT_MASK},
        {},
        "error",
        ["truncated-jpeg.jpg: cannot decode image (image file is truncated"],
    ),
    "zero-byte-image": (
        {"img/zero-byte-image.png": b"", "mask/zero-byte-image.png": RECT_MASK},
        {},
        "error",
        ["zero-byte-image.png: file is empty (0 bytes); replace it with a valid PNG/JPEG"],
    ),
    "corrupt-mask": (
        {"img/corrupt-mask.png": GOOD_PNG, "mask/corrupt-mask.png": GOOD_PNG[:-40]},
        {},
        "error",
        ["mask/corrupt-mask.png: cannot decode image"],
    ),
    "huge-image": (
        {"img/huge-image.png": _huge_png(12_000), "mask/huge-image.png": RECT_MASK},
        {},
        "error",
        ["huge-image.png: 12000x12000 is larger than the 67108864 pixel limit; downscale it first"],
    ),
    "mask-size-mismatch": (
        {"img/mask-size-mismatch.png": GOOD_PNG, "mask/mask-size-mismatch.png": _png(_rect_mask(32, 32))},
        {},
        "error",
        ["mask-size-mismatch.png: mask is 32x32 but its image is 64x64; save the mask at the image's size"],
    ),
    "empty-mask": (
        {"img/empty-mask.png": GOOD_PNG, "mask/empty-mask.png": _png(np.zeros((SIZE, SIZE), np.uint8))},
        {},
        "skipped",
        ["case 'empty-mask': mask ", "is empty (nothing to inpaint) at 64x64"],
    ),
    "full-mask": (
        {"img/full-mask.png": GOOD_PNG, "mask/full-mask.png": _png(np.full((SIZE, SIZE), 255, np.uint8))},
        {},
        "skipped",
        ["case 'full-mask': mask ", "is full (no region to keep) at 64x64"],
    ),
    # documented handling (status ok): EXIF orientation applied; masks binarised at >= 128;
    # RGBA composited on white; prompts truncated to the encoders' lengths (and counted); "" allowed
    "exif-rotation": (
        {"img/exif-rotation.jpg": _exif_rotated_jpeg(), "mask/exif-rotation.png": _png(_rect_mask(64, 32))},
        {},
        "ok",
        [],
    ),
    "non-binary-mask": (
        {"img/non-binary-mask.png": GOOD_PNG, "mask/non-binary-mask.png": GRADIENT_MASK},
        {},
        "ok",
        [],
    ),
    "rgba-image": (
        {
            "img/rgba-image.png": _png(np.dstack([_rgb(), np.full((SIZE, SIZE), 128, np.uint8)])),
            "mask/rgba-image.png": RECT_MASK,
        },
        {},
        "ok",
        [],
    ),
    "prompt-10000-chars": (
        {"img/prompt-10000-chars.png": GOOD_PNG, "mask/prompt-10000-chars.png": RECT_MASK},
        {"prompt": ("a very long prompt " * 600)[:10_000]},
        "ok",
        [],
    ),
    "empty-prompt": (
        {"img/empty-prompt.png": GOOD_PNG, "mask/empty-prompt.png": RECT_MASK},
        {"prompt": ""},
        "ok",
        [],
    ),
    # issue 17: prompts holding Unicode line separators are one JSON Lines line each (split on \n only)
    "prompt-u2028": (
        {"img/prompt-u2028.png": GOOD_PNG, "mask/prompt-u2028.png": RECT_MASK},
        {"prompt": "a cat\u2028on a mat\u2029in the sun"},
        "ok",
        [],
    ),
    "prompt-u0085-x1c": (
        {"img/prompt-u0085-x1c.png": GOOD_PNG, "mask/prompt-u0085-x1c.png": RECT_MASK},
        {"prompt": "a dog\u0085on grass\x1cat noon\x1d\x1e\x0b\x0c"},
        "ok",
        [],
    ),
    "prompt-control-chars": (
        {"img/prompt-control-chars.png": GOOD_PNG, "mask/prompt-control-chars.png": RECT_MASK},
        {"prompt": "a red\x00 car\x07\x1b[31m on a road"},
        "ok",
        [],
    ),
    # issue 13 item 11: empty at the size the runner uses, not only at the source size
    "mask-vanishes-at-output-size": (
        {
            "img/mask-vanishes-at-output-size.png": _png(_rgb(256, 256)),
            "mask/mask-vanishes-at-output-size.png": _one_pixel_mask(256),
        },
        {},
        "skipped",
        ["case 'mask-vanishes-at-output-size': mask ", "is empty (nothing to inpaint) at 64x64"],
    ),
    "image-is-a-text-file": (
        {
            "img/image-is-a-text-file.png": b"this is not a picture, it is a note\n" * 20,
            "mask/image-is-a-text-file.png": RECT_MASK,
        },
        {},
        "error",
        ["image-is-a-text-file.png: cannot decode image (cannot identify image file", "corrupt or truncated"],
    ),
    "huge-mask": (
        {"img/huge-mask.png": GOOD_PNG, "mask/huge-mask.png": _huge_png(12_000)},
        {},
        "error",
        ["mask/huge-mask.png: 12000x12000 is larger than the 67108864 pixel limit; downscale it first"],
    ),
    # documented handling (status ok): the format is sniffed, not taken from the extension; masks of
    # any mode are read as grey levels; small and oddly shaped images are resized to the output size
    "jpeg-named-png": (
        {"img/jpeg-named-png.png": GOOD_JPEG, "mask/jpeg-named-png.png": RECT_MASK},
        {},
        "ok",
        [],
    ),
    "rgb-mask": (
        {"img/rgb-mask.png": GOOD_PNG, "mask/rgb-mask.png": _png(np.dstack([_rect_mask()] * 3))},
        {},
        "ok",
        [],
    ),
    "16-bit-mask": (
        {
            "img/16-bit-mask.png": GOOD_PNG,
            "mask/16-bit-mask.png": _png((_rect_mask().astype(np.uint16) * 257).astype(np.uint16)),
        },
        {},
        "ok",
        [],
    ),
    "grayscale-image": (
        {"img/grayscale-image.png": _png(_rgb()[..., 0]), "mask/grayscale-image.png": RECT_MASK},
        {},
        "ok",
        [],
    ),
    "cmyk-jpeg": (
        {
            "img/cmyk-jpeg.jpg": _image_bytes(Image.fromarray(_rgb()).convert("CMYK"), "JPEG"),
            "mask/cmyk-jpeg.png": RECT_MASK,
        },
        {},
        "ok",
        [],
    ),
    "animated-gif": (
        {"img/animated-gif.gif": _gif_animated(), "mask/animated-gif.png": RECT_MASK},
        {},
        "ok",
        [],
    ),
    "tiny-image-2x2": (
        {
            "img/tiny-image-2x2.png": _png(_rgb(2, 2)),
            "mask/tiny-image-2x2.png": _png(np.array([[255, 0], [0, 0]], np.uint8)),
        },
        {},
        "ok",
        [],
    ),
    "extreme-aspect-ratio": (
        {
            "img/extreme-aspect-ratio.png": _png(_rgb(8, 1024)),
            "mask/extreme-aspect-ratio.png": _png(_rect_mask(8, 1024)),
        },
        {},
        "ok",
        [],
    ),
}
assert len(PER_CASE["prompt-10000-chars"][1]["prompt"]) == 10_000


def _write_dataset(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True)
    lines = []
    for seed, name in enumerate(names):
        files, fields, _, _ = PER_CASE[name]
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        image, mask = list(files)
        lines.append(
            {"id": name, "prompt": f"case {name}", "image": image, "mask": mask, "seed": seed, **fields}
        )
    # ensure_ascii=False: U+2028/U+0085 in prompts reach the file as such (JSON escapes only < U+0020)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
    (root / "manifest.jsonl").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[evalsuite.RunResult, int, str]:
    """One run over every per-case input plus a configuration whose LoRA matches nothing."""
    tmp = tmp_path_factory.mktemp("corpus")
    ds = _write_dataset(tmp / "ds", list(PER_CASE))
    lora = tmp / "unrelated-lora.safetensors"
    save_file(
        {
            "unet.down_blocks.0.lora_A.weight": torch.zeros(2, 8),
            "unet.down_blocks.0.lora_B.weight": torch.zeros(8, 2),
        },
        str(lora),
    )
    (tmp / "configs").mkdir()
    (tmp / "configs" / "probe-badlora.yaml").write_text(
        f"name: probe-badlora\nrunner: test-inpaint-probe\nparams:\n  lora: {lora}\n", encoding="utf-8"
    )
    code = main(
        [
            "run",
            "--configs",
            "test-inpaint-probe",
            "probe-badlora",
            "--dataset",
            str(ds),
            "--set",
            "steps=1",
            "--config-dir",
            str(tmp / "configs"),
            "--run-dir",
            str(tmp / "run"),
            "--no-progress",
        ]
    )
    return evalsuite.load_run(tmp / "run"), code, str(ds)


def _row(result: evalsuite.RunResult, name: str, config: str = "test-inpaint-probe") -> dict:
    df = result.samples
    rows = df[(df.config == config) & (df.case_id == name)].to_dict("records")
    assert len(rows) == 1, f"{config}/{name}: {len(rows)} rows"
    return rows[0]


@pytest.mark.parametrize("name", list(PER_CASE))
def test_per_case_input(corpus_run, name: str):
    result, _, _ = corpus_run
    _, _, status, fragments = PER_CASE[name]
    row = _row(result, name)
    assert row["status"] == status, row["error"]
    for frag in fragments:
        assert frag in str(row["error"]), f"{frag!r} not in {row['error']!r}"
    fields = PER_CASE[name][1]
    if "prompt" in fields:
        assert row["prompt"] == fields["prompt"]  # kept verbatim, separators and control characters too
    if status == "ok":
        assert pd.isna(row["error"])
        with Image.open(result.run_dir / row["image"]) as im:
            assert im.size == (SIZE, SIZE) and im.mode == "RGB"
    else:
        assert pd.isna(row["image"])


def test_documented_handling_is_visible_in_the_rows(corpus_run):
    result, _, _ = corpus_run
    exif = _row(result, "exif-rotation")
    assert (exif["source_w"], exif["source_h"]) == (32, 64)  # EXIF orientation applied before use
    assert _row(result, "non-binary-mask")["mask_fraction"] == 0.5  # 4*col >= 128 ⇔ col >= 32
    assert _row(result, "good1")["mask_fraction"] == 0.25
    long = _row(result, "prompt-10000-chars")
    assert long["t5_truncated"] == 1 and long["clip_truncated"] == 1
    assert _row(result, "good1")["t5_truncated"] == 0 and _row(result, "empty-prompt")["t5_truncated"] == 0
    for name in ("rgb-mask", "16-bit-mask", "jpeg-named-png", "grayscale-image", "cmyk-jpeg"):
        assert _row(result, name)["mask_fraction"] == 0.25, name
    assert _row(result, "tiny-image-2x2")["mask_fraction"] == 0.25  # one of 4 pixels, upscaled nearest
    assert (_row(result, "tiny-image-2x2")["source_w"], _row(result, "tiny-image-2x2")["source_h"]) == (2, 2)


def test_lora_with_no_matching_keys_fails_its_configuration_only(corpus_run):
    result, code, _ = corpus_run
    bad = result.samples[result.samples.config == "probe-badlora"]
    assert len(bad) == len(PER_CASE) and set(bad.status) == {"error"}
    assert all(
        e.startswith("load: LoraError: LoRA ")
        and "unrelated-lora.safetensors: none of its 2 keys match" in e
        and "check that the file is a FLUX LoRA" in e
        for e in bad.error
    )
    assert result.meta["configs"]["probe-badlora"]["load_error"].startswith("LoraError: ")
    assert code == 1  # failed rows → exit code 1


def test_the_rest_of_the_run_is_unaffected(corpus_run, tmp_path: Path):
    result, _, _ = corpus_run
    counts = result.samples[result.samples.config == "test-inpaint-probe"].status.value_counts().to_dict()
    expected = pd.Series([v[2] for v in PER_CASE.values()]).value_counts().to_dict()
    assert counts == expected
    clean = evalsuite.run(
        configs=["test-inpaint-probe"],
        dataset=str(_write_dataset(tmp_path / "ds", ["good1", "good2"])),
        overrides=["steps=1"],
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert clean.ok
    for name in ("good1", "good2"):
        a = result.run_dir / _row(result, name)["image"]
        b = clean.run_dir / _row(clean, name)["image"]
        assert a.read_bytes() == b.read_bytes(), name


# -- refused before generating: manifest problems and unusable arguments ---------------------------

GOOD_LINE = {"id": "ok1", "prompt": "a cat"}


def _manifest_case(tmp: Path, text: bytes) -> Path:
    ds = tmp / "ds"
    ds.mkdir()
    (ds / "manifest.jsonl").write_bytes(text)
    return ds


def _lines(*objs) -> bytes:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs).encode()


MANIFEST_CASES: dict[str, tuple[bytes, list[str]]] = {
    "duplicate-id": (
        _lines(GOOD_LINE, {"id": "ok1", "prompt": "a dog"}),
        ["manifest.jsonl:2: duplicate id 'ok1' (first on line 1)"],
    ),
    "missing-field": (_lines(GOOD_LINE, {"id": "x"}), ["manifest.jsonl:2: missing required field 'prompt'"]),
    "wrong-type": (
        _lines(GOOD_LINE, {"id": "x", "prompt": "p", "seed": "7"}),
        ["manifest.jsonl:2: field 'seed' must be an integer, got '7'"],
    ),
    "invalid-json-line": (
        _lines(GOOD_LINE, '{"id": "x", "prompt": '),
        ["manifest.jsonl:2: invalid JSON (Expecting value at column"],
    ),
    "seed-out-of-range": (
        _lines(GOOD_LINE, {"id": "x", "prompt": "p", "seed": 2**63}),
        [f"manifest.jsonl:2: field 'seed' = {2**63} is out of range [0, 2**63-1]"],
    ),
    "negative-seed": (
        _lines({"id": "x", "prompt": "p", "seed": -1}),
        ["manifest.jsonl:1: field 'seed' = -1 is out of range [0, 2**63-1]"],
    ),
    "non-utf8": (
        _lines(GOOD_LINE) + b'{"id": "x", "prompt": "caf\xe9"}\n',
        ["manifest.jsonl:2: not valid UTF-8 (invalid continuation byte); save the manifest as UTF-8"],
    ),
    "path-traversal": (
        _lines(GOOD_LINE, {"id": "x", "prompt": "p", "image": "../../etc/passwd", "mask": "m.png"}),
        [
            "manifest.jsonl:2: field 'image' = '../../etc/passwd' points outside the dataset folder",
            "move the file into the dataset or pass --allow-outside-paths",
        ],
    ),
    "missing-file": (
        _lines({"id": "x", "prompt": "p", "image": "nope.png", "mask": "nope-mask.png"}),
        ["manifest.jsonl:1: field 'image': file not found: "],
    ),
    "empty-manifest": (b"\n# only a comment\n", ["manifest.jsonl: the manifest has no cases"]),
    # issue 17 item 4: ids name image files (<case-id>-<seed>.png), which must fit NAME_MAX (255 bytes)
    "id-300-chars": (
        _lines({"id": "a" * 300, "prompt": "p"}),
        [
            "manifest.jsonl:1: field 'id' is 300 characters long (at most 128): its image file name",
            "must fit the file system's 255-byte limit; shorten the id",
        ],
    ),
    "id-with-path-separator": (
        _lines(GOOD_LINE, {"id": "../escape", "prompt": "p"}),
        ["manifest.jsonl:2: field 'id' must be a string of letters, digits, '-', '_', '.'", "'../escape'"],
    ),
    "id-trailing-newline": (
        _lines({"id": "abc\n", "prompt": "p"}),
        ["manifest.jsonl:1: field 'id' must be a string of letters", "got 'abc\\n'"],
    ),
    "id-not-a-string": (
        _lines({"id": 5, "prompt": "p"}),
        ["manifest.jsonl:1: field 'id' must be a string", "got 5"],
    ),
    "ids-differ-only-in-case": (
        _lines({"id": "Cat", "prompt": "p"}, {"id": "cat", "prompt": "q"}),
        [
            "manifest.jsonl:2: id 'cat' differs from 'Cat' (line 1) only in letter case",
            "would overwrite each other on case-insensitive file systems (macOS, Windows); rename one",
        ],
    ),
    "duplicate-key-on-a-line": (
        _lines('{"id": "a", "prompt": "p", "seed": 1, "seed": 2}'),
        ["manifest.jsonl:1: field 'seed' is given twice on this line; keep one"],
    ),
    "json-array-line": (_lines(GOOD_LINE, "[1, 2]"), ["manifest.jsonl:2: expected a JSON object, got list"]),
    "missing-id": (_lines({"prompt": "p"}), ["manifest.jsonl:1: missing required field 'id'"]),
    "prompt-null": (
        _lines({"id": "x", "prompt": None}),
        ["manifest.jsonl:1: field 'prompt' must be a string, got NoneType"],
    ),
    "seed-float": (
        _lines({"id": "x", "prompt": "p", "seed": 1.5}),
        ["manifest.jsonl:1: field 'seed' must be an integer, got 1.5"],
    ),
    "seed-bool": (
        _lines({"id": "x", "prompt": "p", "seed": True}),
        ["manifest.jsonl:1: field 'seed' must be an integer, got True"],
    ),
    "seed-nan": (
        _lines('{"id": "x", "prompt": "p", "seed": NaN}'),
        ["manifest.jsonl:1: field 'seed' must be an integer, got nan"],
    ),
    "integer-of-5000-digits": (
        _lines('{"id": "x", "prompt": "p", "seed": ' + "9" * 5000 + "}"),
        ["manifest.jsonl:1: invalid JSON (Exceeds the limit (4300 digits) for integer string conversion"],
    ),
    "nested-too-deeply": (
        _lines('{"id": "x", "prompt": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ["manifest.jsonl:1: invalid JSON (nested too deeply)"],
    ),
    "category-not-a-string": (
        _lines({"id": "x", "prompt": "p", "category": ["a"]}),
        ["manifest.jsonl:1: field 'category' must be a string, got ['a']"],
    ),
    "mask-without-image": (
        _lines({"id": "x", "prompt": "p", "mask": "manifest.jsonl"}),
        ["manifest.jsonl:1: an inpainting case needs both 'image' and 'mask' (one is missing)"],
    ),
    "empty-image-path": (
        _lines({"id": "x", "prompt": "p", "image": "", "mask": "m.png"}),
        ["manifest.jsonl:1: field 'image' must be a non-empty path string, got ''"],
    ),
    "image-is-a-folder": (
        _lines({"id": "x", "prompt": "p", "image": ".", "mask": "manifest.jsonl"}),
        ["manifest.jsonl:1: field 'image': ", " is a folder, not an image file"],
    ),
    "image-path-with-nul": (
        _lines({"id": "x", "prompt": "p", "image": "a\u0000.png", "mask": "m.png"}),
        ["manifest.jsonl:1: field 'image' = 'a\\x00.png' contains a NUL character; fix the path"],
    ),
    "image-path-too-long": (
        _lines({"id": "x", "prompt": "p", "image": "x" * 5000 + ".png", "mask": "m.png"}),
        ["manifest.jsonl:1: field 'image' = 'xxxx", "…': unusable path (File name too long)"],
    ),
    "raw-control-character-in-prompt": (
        b'{"id": "x", "prompt": "a\x1cb"}\n',
        [
            "manifest.jsonl:1: invalid JSON (Invalid control character (characters below U+0020 must be "
            "escaped inside strings, e.g. \\u001c) at column 25)"
        ],
    ),
    "utf16-manifest": (
        json.dumps(GOOD_LINE).encode("utf-16"),
        [
            "manifest.jsonl:1: the manifest is UTF-16 (it starts with a UTF-16 byte-order mark",
            "save it as UTF-8",
        ],
    ),
}


@pytest.mark.parametrize("name", list(MANIFEST_CASES))
def test_manifest_problem_is_refused_before_generating(name: str, tmp_path: Path, capsys):
    text, fragments = MANIFEST_CASES[name]
    ds = _manifest_case(tmp_path, text)
    code = main(["run", "--configs", "flux-dev", "--dataset", str(ds), "--out", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if "error" in line.lower()] == [
        err.strip()
    ]  # one clear message
    assert err.startswith("evalsuite: error: ")
    for frag in fragments:
        assert frag in err, f"{frag!r} not in {err!r}"
    assert not (tmp_path / "reports").exists()
    with pytest.raises(evalsuite.ManifestError):
        evalsuite.run(configs=["flux-dev"], dataset=str(ds), out=tmp_path / "reports")


# -- read, with the documented handling: the manifest loads, `datasets validate` exits 0 ----------------
# name: (manifest bytes, expected (id, prompt, seed, category) per case, expected warning fragments)
KNOWN = "Known fields: id, prompt, image, mask, reference, category, seed, mask_family, text, text_box"
ACCEPTED_MANIFESTS: dict[str, tuple[bytes, list[tuple[str, str, int, str]], list[str]]] = {
    # issue 17 item 10: U+2028/U+0085 are valid inside JSON strings; JSON Lines splits on \n only
    "prompt-with-u2028": (
        '{"id": "a", "prompt": "line one\u2028line two"}\n'.encode(),
        [("a", "line one\u2028line two", 0, "general")],
        [],
    ),
    "prompt-with-u0085-u2029": (
        '{"id": "a", "prompt": "x\u0085y\u2029z", "seed": 3}\n{"id": "b", "prompt": "q"}\n'.encode(),
        [("a", "x\u0085y\u2029z", 3, "general"), ("b", "q", 0, "general")],
        [],
    ),
    "crlf-line-endings": (
        b'{"id": "a", "prompt": "p"}\r\n{"id": "b", "prompt": "q"}\r\n',
        [("a", "p", 0, "general"), ("b", "q", 0, "general")],
        [],
    ),
    "utf8-bom": (
        b'\xef\xbb\xbf{"id": "a", "prompt": "caf\xc3\xa9"}\n',
        [("a", "café", 0, "general")],
        [],
    ),
    # issue 17 item 0c: unknown fields are warned about once per name, with the field they resemble
    "unknown-field-sed": (
        _lines({"id": "a", "prompt": "p", "sed": 77}, {"id": "b", "prompt": "q", "sed": 78}),
        [("a", "p", 0, "general"), ("b", "q", 0, "general")],
        [
            "manifest.jsonl:1: unknown field 'sed' (2 lines, first on line 1) is ignored. Did you mean 'seed'? "
            + KNOWN
        ],
    ),
    "unknown-field-categroy": (
        _lines(GOOD_LINE, {"id": "b", "prompt": "q", "categroy": "food"}),
        [("ok1", "a cat", 0, "general"), ("b", "q", 0, "general")],
        ["manifest.jsonl:2: unknown field 'categroy' (line 2) is ignored. Did you mean 'category'? " + KNOWN],
    ),
    "id-of-128-chars": (_lines({"id": "i" * 128, "prompt": "p"}), [("i" * 128, "p", 0, "general")], []),
}


@pytest.mark.parametrize("name", list(ACCEPTED_MANIFESTS))
def test_manifest_input_is_read_with_the_documented_handling(name: str, tmp_path: Path, capsys, caplog):
    text, expected, warnings = ACCEPTED_MANIFESTS[name]
    ds = _manifest_case(tmp_path, text)
    loaded = evalsuite.load_manifest(ds)
    assert [(c.id, c.prompt, c.seed, c.category) for c in loaded] == expected
    assert [w.removeprefix(str(ds) + "/") for w in loaded.warnings] == warnings
    assert main(["datasets", "validate", str(ds)]) == 0
    out = capsys.readouterr().out
    assert f"0 errors, {len(warnings)} warnings" in out
    for w in warnings:
        assert w in out and w in caplog.text  # logged when read, listed by validate


ARG_CASES: dict[str, tuple[list[str], list[str]]] = {
    "unknown-configuration": (
        ["--configs", "flux-dve"],
        ["unknown configuration 'flux-dve'. Did you mean 'flux-dev'"],
    ),
    "unknown-metric": (
        ["--configs", "flux-dev", "--metrics", "latncy"],
        ["unknown metric 'latncy'. Did you mean 'latency'"],
    ),
    "set-wrong-type": (
        ["--configs", "flux-dev", "--set", "steps=abc"],
        ["configuration 'flux-dev' (", "parameter 'steps': expected an integer, got 'abc'"],
    ),
    "set-unknown-field": (
        ["--configs", "flux-dev", "--set", "flux-dev.stpes=4"],
        ["unknown parameter 'stpes'. Did you mean 'steps'", "Parameters: model, steps,"],
    ),
    "set-no-equals": (
        ["--configs", "flux-dev", "--set", "steps"],
        ["invalid --set 'steps': expected [CONFIG.]FIELD=VALUE"],
    ),
    "set-invalid-value": (["--configs", "flux-dev", "--set", "steps=0"], ["steps must be ≥ 1, got 0"]),
    "seeds-out-of-range": (
        ["--configs", "flux-dev", "--seeds", "0", str(2**63)],
        [f"--seeds: {2**63} is not an integer in [0, 2**63-1]"],
    ),
    "seeds-negative": (
        ["--configs", "flux-dev", "--seeds", "-5"],
        ["--seeds: -5 is not an integer in [0, 2**63-1]"],
    ),
    "seeds-repeated": (["--configs", "flux-dev", "--seeds", "1", "1"], ["--seeds: [1, 1] repeats a seed"]),
    "unknown-dataset": (
        ["--configs", "flux-dev", "--dataset", "smok"],
        ["unknown dataset 'smok'. Did you mean 'smoke'?"],
    ),
    "dataset-folder-without-manifest": (
        ["--configs", "flux-dev", "--dataset", "{tmp}"],
        ["dataset manifest not found: ", "(expected a folder with manifest.jsonl)"],
    ),
    # issue 17 item 8: numeric ranges, like the width check
    "set-negative-guidance": (
        ["--configs", "flux-dev", "--set", "guidance=-3"],
        ["guidance must be ≥ 0, got -3.0"],
    ),
    "set-nan-guidance": (
        ["--configs", "flux-dev", "--set", "guidance=.nan"],
        ["guidance must be a finite number, got nan"],
    ),
    "set-infinite-guidance": (
        ["--configs", "flux-dev", "--set", "guidance=.inf"],
        ["guidance must be a finite number, got inf"],
    ),
    "set-negative-lora-scale": (
        ["--configs", "flux-dev-turbo8", "--set", "lora_scale=-1"],
        ["configuration 'flux-dev-turbo8' (", "lora_scale must be ≥ 0, got -1.0"],
    ),
    "set-negative-conditioning-scale": (
        ["--configs", "flux-cn-beta", "--set", "conditioning_scale=-0.5"],
        ["conditioning_scale must be ≥ 0, got -0.5"],
    ),
    "set-true-guidance-below-one": (
        ["--configs", "flux-cn-beta", "--set", "true_guidance=0.5"],
        ["true_guidance must be ≥ 1 (1 = off), got 0.5"],
    ),
    "set-strength-zero": (
        ["--configs", "flux-dev-inpaint", "--set", "strength=0"],
        ["strength must be in (0, 1], got 0.0"],
    ),
    "set-strength-above-one": (
        ["--configs", "sdxl-inpaint", "--set", "strength=1.5"],
        ["strength must be in (0, 1], got 1.5"],
    ),
    "set-strength-leaves-no-step": (
        ["--configs", "flux-dev-inpaint", "--set", "strength=1.0e-20"],
        ["strength 1e-20 × steps 28 leaves no denoising step; raise either"],
    ),
    "set-batch-size-zero": (
        ["--configs", "flux-dev", "--set", "batch_size=0"],
        ["batch_size must be ≥ 1, got 0"],
    ),
    "set-too-many-steps": (
        ["--configs", "flux-dev", "--set", "steps=5000"],
        ["steps must be ≤ 1000 (a scheduler's training timesteps), got 5000"],
    ),
    "set-huge-width": (
        ["--configs", "flux-dev", "--set", "width=16384"],
        ["width must be ≤ 8192 (the 8192² pixel limit), got 16384"],
    ),
    "set-width-not-multiple-of-16": (
        ["--configs", "flux-dev", "--set", "width=1000"],
        ["width must be a positive multiple of 16, got 1000"],
    ),
    "set-unknown-dtype": (
        ["--configs", "flux-dev", "--set", "dtype=int8"],
        ["dtype must be one of float32, bfloat16, float16, got 'int8'"],
    ),
}


@pytest.mark.parametrize("name", list(ARG_CASES))
def test_unusable_argument_is_refused_before_generating(name: str, tmp_path: Path, capsys):
    ds = _manifest_case(tmp_path, _lines(GOOD_LINE))
    args, fragments = ARG_CASES[name]
    (tmp_path / "no-manifest").mkdir()
    args = [a.replace("{tmp}", str(tmp_path / "no-manifest")) for a in args]
    code = main(["run", "--dataset", str(ds), "--out", str(tmp_path / "reports"), *args])
    err = capsys.readouterr().err
    assert code == 2
    for frag in fragments:
        assert frag in err, f"{frag!r} not in {err!r}"
    assert not (tmp_path / "reports").exists()


def test_outside_paths_need_the_flag(tmp_path: Path, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "img.png").write_bytes(GOOD_PNG)
    (outside / "mask.png").write_bytes(RECT_MASK)
    ds = _manifest_case(
        tmp_path,
        _lines({"id": "x", "prompt": "p", "image": "../elsewhere/img.png", "mask": "../elsewhere/mask.png"}),
    )
    base = [
        "run",
        "--configs",
        "test-inpaint-probe",
        "--dataset",
        str(ds),
        "--set",
        "steps=1",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert main(base) == 2
    assert "points outside the dataset folder" in capsys.readouterr().err
    assert main([*base, "--allow-outside-paths"]) == 0
    assert evalsuite.load_run(tmp_path / "run").samples.status.tolist() == ["ok"]


def test_missing_weights_offline_fails_every_row_of_the_configuration(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.delenv("EVALSUITE_WEIGHTS_DIR", raising=False)
    ds = _manifest_case(tmp_path, _lines(GOOD_LINE, {"id": "ok2", "prompt": "a dog"}))
    code = main(
        [
            "run",
            "--configs",
            "flux-dev",
            "--weights",
            "hub",
            "--device",
            "cpu",
            "--dataset",
            str(ds),
            "--set",
            "model=example-org/not-downloaded",
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
            "--metrics",
            "latency",
        ]
    )
    assert code == 1
    assert "FAILED: 2 of 2 rows failed" in capsys.readouterr().err
    df = evalsuite.load_run(tmp_path / "run").samples
    assert set(df.status) == {"error"} and len(df) == 2
    for e in df.error:
        assert e.startswith("load: WeightsError: model 'example-org/not-downloaded' is not a local folder")
        assert "HF_HUB_OFFLINE is set" in e and "--weights-dir WEIGHTS_DIR" in e


def test_empty_mask_runs_when_the_configuration_allows_it(tmp_path):
    ds = _write_dataset(tmp_path / "ds", ["empty-mask", "good1"])
    result = evalsuite.run(
        configs=["flux-dev-inpaint"],
        dataset=str(ds),
        out=tmp_path / "out",
        progress=False,
        overrides=["steps=1", "flux-dev-inpaint.allow_empty_masks=true"],
        metrics=["latency"],
    )
    assert set(result.samples["status"]) == {"ok"}
    skipped = evalsuite.run(
        configs=["flux-dev-inpaint"],
        dataset=str(ds),
        out=tmp_path / "out2",
        progress=False,
        overrides=["steps=1"],
        metrics=["latency"],
    )
    row = skipped.samples.set_index("case_id").loc["empty-mask"]
    assert row["status"] == "skipped" and "is empty (nothing to inpaint)" in row["error"]


# -- `evalsuite report` / `evalsuite score` on run directories they cannot use -------------------------
def _read_only_command(path: Path, cmd: list[str]) -> list[str] | None:
    """``cmd`` run with ``path`` read-only: a read-only bind mount in a private mount namespace for
    root (whom file modes do not stop), else the caller removes the write bits; ``None`` if neither."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, str(path), "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "-m", "sh", "-c", script, str(path), *cmd]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    from tests.runfactory import make_dataset, make_run

    tmp = tmp_path_factory.mktemp("synthetic")
    run = make_run(tmp / "run", make_dataset(tmp / "ds", n=4))
    from evalsuite.report.report import write_report

    write_report(run)
    return run


# issue 17 item 2 (report/score side): one line, exit 2, nothing written, the folder and the fix named
READ_ONLY_CASES: dict[str, tuple[list[str], list[str]]] = {
    "report-on-read-only-run": (
        ["report", "{run}"],
        [
            "'evalsuite report' writes report.md, report.html, summary.csv, plots/ and grids/ there",
            "Nothing was written. Copy the run to a writable folder (cp -r {run} COPY) and run "
            "'evalsuite report COPY'",
        ],
    ),
    "score-on-read-only-run": (
        ["score", "{run}", "--metrics", "latency"],
        [
            "'evalsuite score' writes scores into rows.jsonl, run.json and samples.parquet, and the report,",
            "Nothing was written. Copy the run to a writable folder (cp -r {run} COPY) and run "
            "'evalsuite score COPY'",
        ],
    ),
}


@pytest.mark.parametrize("name", list(READ_ONLY_CASES))
def test_read_only_run_directory_is_refused_in_one_line(name: str, synthetic_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    before = _tree(run)
    args, fragments = READ_ONLY_CASES[name]
    args = [a.replace("{run}", str(run)) for a in args]
    cmd = _read_only_command(run, [sys.executable, "-m", "evalsuite", *args])
    if cmd is None:
        pytest.skip("cannot make a folder read-only here (root without mount namespaces)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if os.geteuid() != 0:
        for p in [run, *run.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    finally:
        for p in [run, *run.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        f"evalsuite: error: cannot write into the run directory {run} ("
    )
    for frag in fragments:
        assert frag.replace("{run}", str(run)) in lines[0], lines[0]
    assert _tree(run) == before


def _damage(run: Path, what: str) -> None:
    if what == "invalid-json":
        (run / "run.json").write_text('{"run_id": "x", ')
    elif what == "not-an-object":
        (run / "run.json").write_text("[1, 2]")


# name: (command after the run directory, damage, exit code, message fragments)
RUN_DIR_CASES: dict[str, tuple[list[str], str, int, list[str]]] = {
    "report-run-json-invalid": (
        ["report"],
        "invalid-json",
        2,
        ["run.json: not valid JSON (", "the run's metadata is damaged: restore it from a copy"],
    ),
    "score-run-json-not-an-object": (
        ["score", "--metrics", "latency"],
        "not-an-object",
        2,
        ["run.json: expected a JSON object, got list; the run's metadata is damaged"],
    ),
    "report-not-a-run-directory": (["report"], "no-run", 2, ["is not a run directory (no run.json)"]),
    "score-device-tpu": (
        ["score", "--metrics", "latency", "--device", "tpu"],
        "",
        2,
        ["--device 'tpu': evalsuite accepts auto, cpu, cuda, cuda:N"],
    ),
    "score-batch-size-zero": (
        ["score", "--metrics", "latency", "--batch-size", "0"],
        "",
        2,
        ["argument --batch-size: must be ≥ 1, got 0"],
    ),
}


@pytest.mark.parametrize("name", list(RUN_DIR_CASES))
def test_unusable_run_directory_or_option_is_one_line(name: str, synthetic_run: Path, tmp_path: Path, capsys):
    sub, damage, code, fragments = RUN_DIR_CASES[name]
    run = tmp_path / "run"
    if damage == "no-run":
        run.mkdir()
    else:
        shutil.copytree(synthetic_run, run)
        _damage(run, damage)
    before = _tree(run)
    try:
        got = main([sub[0], str(run), *sub[1:]])
    except SystemExit as exc:  # argparse's own usage errors
        got = exc.code
    err = capsys.readouterr().err
    assert got == code
    lines = [ln for ln in err.splitlines() if ln.strip() and "usage:" not in ln and not ln.startswith(" ")]
    assert len(lines) == 1 and "error: " in lines[0], err
    for frag in fragments:
        assert frag in lines[0], lines[0]
    assert _tree(run) == before


def test_longest_case_id_and_seed_save_their_image(tmp_path: Path):
    """The limits fit: a 128-character id with the largest seed gives a file name that saves."""
    from evalsuite.data.cases import MAX_ID_LEN, MAX_SEED

    cid = "L" * MAX_ID_LEN
    (tmp_path / "ds" / "img").mkdir(parents=True)
    (tmp_path / "ds" / "img" / "a.png").write_bytes(GOOD_PNG)
    (tmp_path / "ds" / "img" / "m.png").write_bytes(RECT_MASK)
    row = {"id": cid, "prompt": "p", "image": "img/a.png", "mask": "img/m.png"}
    (tmp_path / "ds" / "manifest.jsonl").write_text(json.dumps(row) + "\n")
    result = evalsuite.run(
        configs=["test-inpaint-probe"],
        dataset=str(tmp_path / "ds"),
        seeds=[MAX_SEED],
        overrides=["steps=1"],
        run_dir=tmp_path / "run",
        progress=False,
        metrics=[],
    )
    assert result.ok
    image = result.run_dir / result.samples.iloc[0]["image"]
    assert image.name == f"{cid}-{MAX_SEED}.png" and len(image.name) == 152 and image.is_file()
