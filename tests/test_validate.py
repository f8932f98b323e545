"""Validation on load: each bad-input rule of issue #4."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.data.cases import Case, Dataset, ManifestError, load_manifest
from evalsuite.data.imageio import ImageError, check_mask_size, load_image, load_mask, mask_stats
from evalsuite.data.validate import validate_dataset
from tests.conftest import write_dataset


def _ds(tmp_path: Path, n: int = 2, size: int = 32) -> Dataset:
    rows = [{"id": f"c{i}", "prompt": "p", "image": f"i{i}.png", "mask": f"m{i}.png"} for i in range(n)]
    return load_manifest(write_dataset(tmp_path / "d", rows, size=size))


def _codes(rep) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in rep.issues:
        out.setdefault(i.code, []).append(i.case)
    return out


def test_clean_dataset_has_no_issues(tmp_path):
    rep = validate_dataset(_ds(tmp_path))
    assert rep.ok and rep.issues == [] and rep.n_cases == 2


def test_truncated_image_is_an_error_for_that_case_only(tmp_path):
    ds = _ds(tmp_path)
    p = ds.cases[0].image
    p.write_bytes(p.read_bytes()[:100])
    rep = validate_dataset(ds)
    assert not rep.ok and _codes(rep) == {"bad_image": ["c0"]}
    assert str(p) in rep.errors[0].message and "truncated" in rep.errors[0].message
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(p)


def test_unreadable_mask(tmp_path):
    ds = _ds(tmp_path)
    ds.cases[1].mask.write_bytes(b"not a png")
    assert _codes(validate_dataset(ds)) == {"bad_mask": ["c1"]}


def test_mask_size_mismatch_error_or_opt_in_resize(tmp_path):
    ds = _ds(tmp_path)
    half = np.zeros((16, 20), np.uint8)
    half[:, :10] = 255
    Image.fromarray(half).save(ds.cases[0].mask)
    rep = validate_dataset(ds)
    assert _codes(rep) == {"mask_size_mismatch": ["c0"]}
    assert "20x16" in rep.errors[0].message and "32x32" in rep.errors[0].message
    rep2 = validate_dataset(ds, allow_mask_resize=True)
    assert rep2.ok and _codes(rep2) == {"mask_resized": ["c0"]}
    m = load_mask(ds.cases[0].mask)
    with pytest.raises(ImageError, match="a run does not resize masks"):
        check_mask_size((32, 32), m, ds.cases[0].mask)
    assert check_mask_size((32, 32), m, ds.cases[0].mask, allow_resize=True).shape == (32, 32)


def test_non_binary_mask_is_binarised_counted_and_reported(tmp_path, caplog):
    ds = _ds(tmp_path)
    grad = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))  # 0..248: 31 columns non-binary
    Image.fromarray(grad).save(ds.cases[0].mask)
    st = mask_stats(ds.cases[0].mask)
    assert st.n_nonbinary == 31 * 32 and st.n_masked == 16 * 32  # values ≥ 128 (columns 16..31)
    with caplog.at_level(logging.INFO, logger="evalsuite.data.imageio"):
        m = load_mask(ds.cases[0].mask)
    assert m.sum() == 16 * 32 and "binarised at 0.5" in caplog.text
    rep = validate_dataset(ds)
    assert rep.ok and _codes(rep) == {"nonbinary_masks": ["c0"]} and rep.counts["nonbinary_pixels"] == 992
    assert "992 non-binary mask pixels" in rep.to_text()


@pytest.mark.parametrize("value, code", [(0, "empty_masks"), (255, "full_masks")])
def test_empty_and_full_masks_are_flagged(tmp_path, value, code):
    ds = _ds(tmp_path)
    Image.fromarray(np.full((32, 32), value, np.uint8)).save(ds.cases[1].mask)
    rep = validate_dataset(ds)
    assert rep.ok and _codes(rep) == {code: ["c1"]} and "skipped" in rep.warnings[0].message
    assert validate_dataset(ds, allow_empty_masks=True).issues == []


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK", "I;16", "L"])
def test_non_rgb_images_are_converted_with_a_warning(tmp_path, mode, caplog):
    ds = _ds(tmp_path)
    p = ds.cases[0].image
    rgb = Image.open(p).convert("RGB")
    if mode == "I;16":
        img = Image.fromarray((np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
        assert img.mode in ("I;16", "I")
    else:
        img = rgb.convert(mode)
    path = p.with_suffix(".tif") if mode == "CMYK" else p
    img.save(path)
    if path != p:
        ds = Dataset(ds.name, ds.root, [Case("c0", "p", path, ds.cases[0].mask)], ds.fingerprint)
    with caplog.at_level(logging.WARNING, logger="evalsuite.data.imageio"):
        out = load_image(path)
    assert out.mode == "RGB" and out.size == (32, 32)
    assert "converting image mode" in caplog.text
    rep = validate_dataset(ds)
    assert rep.ok and _codes(rep) == {"converted_images": ["c0"]}


def test_sixteen_bit_image_scaled_not_clipped(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(p)
    assert np.asarray(load_image(p)).min() == 255


def test_small_image_gets_the_upscale_warning(tmp_path):
    ds = _ds(tmp_path, size=32)
    rep = validate_dataset(ds, resolution=64)
    assert rep.ok and _codes(rep) == {"upscaled_images": ["c0", "c1"]}
    assert "Lanczos" in rep.warnings[0].message
    assert validate_dataset(ds, resolution=32).issues == []


def test_duplicate_ids_and_mask_without_image(tmp_path):
    ds = _ds(tmp_path)
    c0 = ds.cases[0]
    bad = Dataset("x", ds.root, [c0, c0, Case("m", "p", None, c0.mask)], "0" * 64)
    codes = _codes(validate_dataset(bad))
    assert codes["duplicate_id"] == ["c0"] and codes["mask_without_image"] == ["m"]


def test_malformed_line_and_missing_file_name_file_line_and_path(tmp_path):
    root = write_dataset(tmp_path / "d", [{"id": "a", "prompt": "x", "image": "i.png", "mask": "m.png"}])
    (root / "manifest.jsonl").write_text(
        '{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": "y", "image": "gone.png", '
        '"mask": "m.png"}\n{oops\n'
    )
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: field 'image': file not found: .*gone.png"):
        load_manifest(root)
    (root / "manifest.jsonl").write_text('{"id": "a", "prompt": "x"}\n{oops\n')
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: invalid JSON"):
        load_manifest(root)


def test_cli_validate_reports_and_exits_1_on_errors(tmp_path):
    ds = _ds(tmp_path)
    ds.cases[0].image.write_bytes(b"")
    cmd = [sys.executable, "-m", "evalsuite", "datasets", "validate", str(ds.root)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert "1 errors" in res.stdout and "c0" in res.stdout and "empty (0 bytes)" in res.stdout
    ok = subprocess.run(
        [sys.executable, "-m", "evalsuite", "datasets", "validate", "smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0 and "0 errors, 0 warnings" in ok.stdout


def test_unknown_manifest_fields_are_warnings_with_did_you_mean(tmp_path, caplog):
    rows = [
        {"id": "a", "prompt": "x", "image": "i.png", "mask": "m.png", "sed": 77},
        {"id": "b", "prompt": "y", "image": "i.png", "mask": "m.png", "sed": 78, "categroy": "food"},
        {"id": "c", "prompt": "z", "image": "i.png", "mask": "m.png", "source_url": "https://example.org"},
    ]
    with caplog.at_level(logging.WARNING, logger="evalsuite.data.cases"):
        ds = load_manifest(write_dataset(tmp_path / "d", rows))
    assert [c.seed for c in ds] == [0, 0, 0] and {c.category for c in ds} == {"general"}
    assert ds.cases[1].extra == {"sed": 78, "categroy": "food"}  # kept verbatim, otherwise unused
    m = str(tmp_path / "d" / "manifest.jsonl")
    assert ds.warnings == [
        f"{m}:1: unknown field 'sed' (2 lines, first on line 1) is ignored. Did you mean 'seed'? "
        "Known fields: id, prompt, image, mask, reference, category, seed, mask_family, text, text_box",
        f"{m}:2: unknown field 'categroy' (line 2) is ignored. Did you mean 'category'? "
        "Known fields: id, prompt, image, mask, reference, category, seed, mask_family, text, text_box",
        f"{m}:3: unknown field 'source_url' (line 3) is ignored. "
        "Known fields: id, prompt, image, mask, reference, category, seed, mask_family, text, text_box",
    ]
    assert caplog.text.count("unknown field") == 3
    rep = validate_dataset(ds)
    assert rep.ok and _codes(rep) == {"unknown_fields": [None, None, None]}
    assert "0 errors, 3 warnings" in rep.to_text() and "Did you mean 'seed'?" in rep.to_text()
    assert validate_dataset(ds.select(limit=1)).counts["unknown_fields"] == 3  # a subset keeps them


def test_unknown_csv_columns_are_warnings(tmp_path):
    from evalsuite.data.loaders import load_csv

    root = write_dataset(tmp_path / "d", [{"id": "a", "prompt": "x", "image": "i.png", "mask": "m.png"}])
    (root / "cases.csv").write_text("image,mask,prompt,categroy\ni.png,m.png,a cat,food\n")
    ds = load_csv(root / "cases.csv")
    assert ds.cases[0].category == "general"
    assert len(ds.warnings) == 1 and "unknown column 'categroy'" in ds.warnings[0]
    assert "Did you mean 'category'?" in ds.warnings[0]
    assert _codes(validate_dataset(ds)) == {"unknown_fields": [None]}


def _one_pixel_mask(path: Path, size: int, at: tuple[int, int]) -> None:
    m = np.zeros((size, size), np.uint8)
    m[at] = 255
    Image.fromarray(m).save(path)


def test_masks_are_checked_at_the_output_size_runners_use(tmp_path):
    """A mask whose only region vanishes when resized (nearest) to the output size: fine at its
    source size, empty at 64x64, exactly as the runner sees it."""
    from evalsuite.data.imageio import resize_mask

    ds = _ds(tmp_path, size=256)
    _one_pixel_mask(ds.cases[0].mask, 256, (1, 1))  # nearest to 64: samples rows/cols 2, 6, 10, …
    assert not resize_mask(load_mask(ds.cases[0].mask), (64, 64)).any()
    assert validate_dataset(ds).issues == []  # at source size: one masked pixel, not empty
    rep = validate_dataset(ds, resolution=64)
    assert rep.ok and _codes(rep) == {"empty_masks": ["c0"]}
    msg = rep.warnings[0].message
    assert "mask is empty (nothing to inpaint) at the output size 64x64" in msg
    assert "its 1 masked pixels of 256x256 vanish when resized with nearest neighbour" in msg
    assert validate_dataset(ds, resolution=(256, 256)).issues == []
    assert validate_dataset(ds, resolution=64, allow_empty_masks=True).issues == []
    full = np.full((256, 256), 255, np.uint8)
    full[1, 1] = 0
    Image.fromarray(full).save(ds.cases[1].mask)
    rep = validate_dataset(ds, resolution=64)
    assert _codes(rep) == {"empty_masks": ["c0"], "full_masks": ["c1"]}
    assert "full (no region to keep) at the output size 64x64" in rep.warnings[1].message


def test_source_size_empty_mask_names_the_size(tmp_path):
    ds = _ds(tmp_path)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(ds.cases[0].mask)
    rep = validate_dataset(ds, resolution=64)
    empty = [i for i in rep.issues if i.code == "empty_masks"]
    assert len(empty) == 1 and "is empty (nothing to inpaint) at its source size 32x32" in empty[0].message


def test_cli_validate_resolution_and_unknown_field_warnings(tmp_path, capsys):
    from evalsuite.cli.main import main

    ds = _ds(tmp_path, size=256)
    _one_pixel_mask(ds.cases[0].mask, 256, (1, 1))
    lines = (ds.root / "manifest.jsonl").read_text().splitlines()
    lines[1] = lines[1][:-1] + ', "sed": 77}'
    (ds.root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["datasets", "validate", str(ds.root)]) == 0
    out = capsys.readouterr().out
    assert "0 errors, 1 warnings" in out and "unknown field 'sed'" in out and "Did you mean 'seed'?" in out
    assert main(["datasets", "validate", str(ds.root), "--resolution", "64x64"]) == 0
    out = capsys.readouterr().out
    assert "0 errors, 2 warnings" in out and "at the output size 64x64" in out
    with pytest.raises(SystemExit) as exc:
        main(["datasets", "validate", str(ds.root), "--resolution", "100"])
    assert exc.value.code == 2
    assert "each side must be a positive multiple of 16, got '100'" in capsys.readouterr().err
