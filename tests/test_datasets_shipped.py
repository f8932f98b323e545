"""The three shipped sets: contents, READMEs, validation, and bit-identical regeneration."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.data.build import CORE_FAMILIES, SOURCES, build_all, build_masks
from evalsuite.data.prompts import CATEGORIES
from evalsuite.data.registry import load_dataset
from evalsuite.data.validate import validate_dataset
from tests.conftest import REPO

DATASETS = REPO / "evalsuite" / "data" / "sets"
SETS = ("smoke", "inpaint-core", "t2i-core")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_masks_is_bit_identical_to_committed(tmp_path):
    written = build_masks(tmp_path)
    assert len(written) == 4 + 120
    for name in ("smoke", "inpaint-core"):
        new, old = _files(tmp_path / name / "masks"), _files(DATASETS / name / "masks")
        assert new.keys() == old.keys()
        diff = [k for k in new if new[k] != old[k]]
        assert not diff, f"regenerated masks differ from the committed ones: {diff[:5]}"


def test_cli_build_masks(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "evalsuite", "datasets", "build-masks", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "124 masks written" in res.stdout
    assert _files(tmp_path / "inpaint-core" / "masks") == _files(DATASETS / "inpaint-core" / "masks")


@pytest.mark.slow
def test_full_build_reproduces_the_committed_sets(tmp_path):
    build_all(tmp_path)
    for name in SETS:
        new, old = _files(tmp_path / name), _files(DATASETS / name)
        assert new.keys() == old.keys(), name
        for k in new:
            if k.endswith(".jpg") and new[k] != old[k]:  # JPEG encoder may differ: compare pixels
                a = np.asarray(Image.open(tmp_path / name / k), dtype=np.int16)
                b = np.asarray(Image.open(DATASETS / name / k), dtype=np.int16)
                assert np.abs(a - b).max() <= 2, k
            else:
                assert new[k] == old[k], f"{name}/{k} differs from a fresh build"


@pytest.mark.parametrize("name", SETS)
def test_shipped_set_validates_clean(name):
    ds = load_dataset(name)
    rep = validate_dataset(ds)
    assert rep.ok and not rep.warnings, rep.to_text()
    readme = (DATASETS / name / "README.md").read_text(encoding="utf-8")
    assert "768" in readme and "nearest" in readme and "Lanczos" in readme
    for c in ds.cases:
        if c.image is not None:
            src = c.image.stem
            assert src in SOURCES and f"| {src} |" in readme  # provenance + licence row for every image
            assert SOURCES[src].licence in readme


def test_inpaint_core_contents():
    ds = load_dataset("inpaint-core")
    assert len(ds) >= 120
    assert {c.category for c in ds} == set(CATEGORIES)
    assert {c.mask_family for c in ds} == set(CORE_FAMILIES)
    assert len({c.seed for c in ds}) == len(ds)
    images = {c.image for c in ds}
    assert len(images) == len(SOURCES)
    for img in images:
        with Image.open(img) as im:
            assert im.size == (1024, 1024) and im.mode == "RGB"
    for c in ds.cases[:12]:
        with Image.open(c.mask) as im:
            assert im.mode == "1" and im.size == (1024, 1024)


def test_t2i_core_has_short_and_long_prompts():
    from open_clip.tokenizer import SimpleTokenizer

    ds = load_dataset("t2i-core")
    assert len(ds) >= 200 and all(not c.is_inpainting for c in ds)
    assert {c.category for c in ds} == set(CATEGORIES)
    assert len({c.prompt for c in ds}) == len(ds)
    tok = SimpleTokenizer()
    lengths = [len(tok.encode(c.prompt)) + 2 for c in ds]  # + start/end tokens
    assert sum(n > 77 for n in lengths) >= 30
    assert sum(n <= 30 for n in lengths) >= 100


def test_smoke_ids_are_stable_and_small():
    ds = load_dataset("smoke")
    assert [c.id for c in ds] == [
        "inpaint-astronaut",
        "inpaint-chelsea",
        "inpaint-coffee",
        "inpaint-rocket",
        "t2i-0",
        "t2i-1",
        "t2i-2",
        "t2i-3",
    ]
    for c in ds:
        if c.image is not None:
            with Image.open(c.image) as im:
                assert max(im.size) <= 256


def test_datasets_folder_is_small():
    total = sum(p.stat().st_size for p in DATASETS.rglob("*") if p.is_file())
    assert total < 15 * 1024 * 1024


def test_cli_lists_shipped_sets_and_loaders(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "evalsuite", "datasets", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["inpaint-core"]["cases"] == len(load_dataset("inpaint-core"))
    assert rows["t2i-core"]["fingerprint"] == load_dataset("t2i-core").fingerprint
    for loader in ("brushbench", "coco2014", "csv", "folder"):
        assert rows[loader]["kind"] == "loader" and "not configured" in rows[loader]["source"]
