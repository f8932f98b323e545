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
import struct
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
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
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
}


@pytest.mark.parametrize("name", list(ARG_CASES))
def test_unusable_argument_is_refused_before_generating(name: str, tmp_path: Path, capsys):
    ds = _manifest_case(tmp_path, _lines(GOOD_LINE))
    args, fragments = ARG_CASES[name]
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
