"""Each external-data loader on a small fixture written by the test."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalsuite.data.cases import ManifestError
from evalsuite.data.imageio import load_mask
from evalsuite.data.loaders import LoaderNotConfigured, load_brushbench, load_coco2014, load_csv, load_folder
from evalsuite.data.loaders.brushbench import rle_decode, rle_encode
from evalsuite.data.masks import make_mask
from evalsuite.data.registry import load_dataset
from evalsuite.data.validate import validate_dataset
from evalsuite.registry import DATASETS


def _img(path: Path, w: int = 40, h: int = 32, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    for var in (
        "EVALSUITE_BRUSHBENCH",
        "EVALSUITE_COCO2014",
        "EVALSUITE_COCO2014_IDS",
        "EVALSUITE_COCO2014_IMAGES",
    ):
        monkeypatch.delenv(var, raising=False)


def test_loaders_are_registered():
    assert {"brushbench", "coco2014", "csv", "folder"} <= set(DATASETS.names())


# --- BrushBench ----------------------------------------------------------------------------
def test_rle_roundtrip_matches_brushnet_convention():
    m = np.zeros((3, 4), bool)
    m[0, 1:3] = True  # flat indices 1, 2 -> 1-based start 2, length 2
    m[2, 3] = True  # flat index 11 -> start 12, length 1
    assert rle_encode(m) == [2, 2, 12, 1]
    assert np.array_equal(rle_decode([2, 2, 12, 1], 4, 3), m)
    k = make_mask("brush-medium", 40, 32, 5)
    assert np.array_equal(rle_decode(rle_encode(k), 40, 32), k)
    with pytest.raises(ValueError, match="outside"):
        rle_decode([10, 5], 3, 3)


def _brushbench(root: Path) -> tuple[Path, dict]:
    masks = {k: make_mask("object", 40, 32, i) for i, k in enumerate(["000000001", "000000002"])}
    _img(root / "images" / "animal" / "a.jpg")
    _img(root / "images" / "indoor" / "b.jpg", seed=1)
    file_mask = root / "masks" / "b.png"
    file_mask.parent.mkdir(parents=True)
    Image.fromarray(masks["000000002"]).save(file_mask)
    mapping = {
        "000000001": {
            "image": "images/animal/a.jpg",
            "caption": "a cat",
            "inpainting_mask": rle_encode(masks["000000001"]),
            "outpainting_mask": rle_encode(~masks["000000001"]),
        },
        "000000002": {
            "image": "images/indoor/b.jpg",
            "caption": "a lamp",
            "inpainting_mask": "masks/b.png",
            "outpainting_mask": rle_encode(~masks["000000002"]),
        },
    }
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root, masks


def test_brushbench_loads_rle_and_file_masks(tmp_path):
    root, masks = _brushbench(tmp_path / "BrushBench")
    ds = load_brushbench(root)
    assert [c.id for c in ds] == ["000000001", "000000002"] and ds.name == "brushbench"
    a, b = ds.cases
    assert (
        a.prompt == "a cat"
        and a.is_inpainting
        and a.extra["group"] == "animal"
        and a.mask_family == "inpainting_mask"
    )
    assert np.array_equal(load_mask(a.mask), masks["000000001"])
    assert np.array_equal(load_mask(b.mask), masks["000000002"])
    assert validate_dataset(ds).ok
    out = load_dataset(f"brushbench:{root}?mask_key=outpainting_mask")
    assert np.array_equal(load_mask(out.cases[0].mask), ~masks["000000001"])
    assert out.fingerprint != ds.fingerprint and load_brushbench(root).fingerprint == ds.fingerprint
    _img(root / "images" / "animal" / "a.jpg", seed=9)  # image bytes change -> fingerprint changes
    assert load_brushbench(root).fingerprint != ds.fingerprint


def test_brushbench_errors_name_file_and_entry(tmp_path, monkeypatch):
    root, _ = _brushbench(tmp_path / "bb")
    data = json.loads((root / "mapping_file.json").read_text())
    data["000000002"]["inpainting_mask"] = [1, 2, 3]
    (root / "mapping_file.json").write_text(json.dumps(data))
    with pytest.raises(
        ManifestError, match=r"mapping_file.json:000000002: field 'inpainting_mask': RLE must be"
    ):
        load_brushbench(root)
    data["000000002"]["image"] = "images/missing.jpg"
    (root / "mapping_file.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"000000002: image file not found: .*missing.jpg"):
        load_brushbench(root)
    with pytest.raises(LoaderNotConfigured, match="EVALSUITE_BRUSHBENCH"):
        load_brushbench()
    monkeypatch.setenv("EVALSUITE_BRUSHBENCH", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_dataset("brushbench")


# --- COCO-2014 -----------------------------------------------------------------------------
def _coco(root: Path) -> Path:
    data = {
        "images": [
            {"id": 7, "file_name": "COCO_val2014_000000000007.jpg"},
            {"id": 9, "file_name": "COCO_val2014_000000000009.jpg"},
        ],
        "annotations": [
            {"id": 101, "image_id": 7, "caption": "A dog on a couch. "},
            {"id": 100, "image_id": 7, "caption": "A brown dog sleeping."},
            {"id": 205, "image_id": 9, "caption": "Two trains at a station."},
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "captions_val2014.json").write_text(json.dumps(data))
    for im in data["images"]:
        _img(root / "val2014" / im["file_name"], seed=im["id"])
    return root / "captions_val2014.json"


def test_coco_one_caption_per_image_by_default(tmp_path):
    cap = _coco(tmp_path)
    ds = load_coco2014(cap)
    assert [(c.id, c.prompt, c.seed) for c in ds] == [
        ("coco-100", "A brown dog sleeping.", 7),
        ("coco-205", "Two trains at a station.", 9),
    ]
    assert all(c.reference is None and c.image is None for c in ds)


def test_coco_id_list_txt_and_mlperf_tsv_with_images(tmp_path):
    cap = _coco(tmp_path)
    (tmp_path / "ids.txt").write_text("# ids\n205\n101\n")
    ds = load_coco2014(cap, ids=tmp_path / "ids.txt", images=tmp_path / "val2014")
    assert [c.id for c in ds] == ["coco-205", "coco-101"]
    assert ds.cases[0].reference == tmp_path / "val2014" / "COCO_val2014_000000000009.jpg"
    (tmp_path / "captions_source.tsv").write_text(
        "id\timage_id\tcaption\n101\t7\tA dog on a couch.\n205\t9\tx\n"
    )
    tsv = load_dataset(f"coco2014:{cap}?ids={tmp_path / 'captions_source.tsv'}")
    assert [c.id for c in tsv] == ["coco-101", "coco-205"]
    assert tsv.fingerprint != ds.fingerprint and len(tsv.fingerprint) == 64


def test_coco_errors(tmp_path):
    cap = _coco(tmp_path)
    (tmp_path / "ids.txt").write_text("205\nabc\n")
    with pytest.raises(ManifestError, match=r"ids.txt:2: expected an integer"):
        load_coco2014(cap, ids=tmp_path / "ids.txt")
    (tmp_path / "ids.txt").write_text("205\n999\n")
    with pytest.raises(ManifestError, match=r"1 caption ids not in captions_val2014.json \(first: \[999\]\)"):
        load_coco2014(cap, ids=tmp_path / "ids.txt")
    (tmp_path / "val2014" / "COCO_val2014_000000000009.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="reference image not found: .*000000000009.jpg"):
        load_coco2014(cap, images=tmp_path / "val2014")
    (tmp_path / "bad.json").write_text('{"images": []}')
    with pytest.raises(ManifestError, match="not a COCO captions file"):
        load_coco2014(tmp_path / "bad.json")


# --- CSV and folder ------------------------------------------------------------------------
def _pair(root: Path, stem: str, seed: int = 0) -> None:
    _img(root / "images" / f"{stem}.jpg", seed=seed)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_mask("rectangle", 40, 32, seed)).save(root / "masks" / f"{stem}.png")


def test_csv_loader(tmp_path):
    _pair(tmp_path, "shoe")
    _pair(tmp_path, "mug", 1)
    (tmp_path / "cases.csv").write_text(
        "image,mask,prompt,category,seed\n"
        'images/shoe.jpg,masks/shoe.png,"a red shoe, product shot",e-commerce,5\n'
        "images/mug.jpg,masks/mug.png,a mug,,\n"
        ",,a text-only prompt,general,3\n"
    )
    ds = load_dataset(str(tmp_path / "cases.csv"))
    assert [c.id for c in ds] == ["shoe", "mug", "row4"] and ds.name == "cases"
    assert ds.cases[0].prompt == "a red shoe, product shot" and ds.cases[0].seed == 5
    assert ds.cases[0].category == "e-commerce" and ds.cases[1].category == "general"
    assert ds.cases[0].is_inpainting and not ds.cases[2].is_inpainting
    assert validate_dataset(ds).ok and load_csv(tmp_path / "cases.csv").fingerprint == ds.fingerprint


@pytest.mark.parametrize(
    "body, match",
    [
        ("image,prompt\nimages/a.jpg,x\n", r"cases.csv:1: missing column\(s\) mask"),
        ("image,mask,prompt\nimages/shoe.jpg,masks/shoe.png\n", r"cases.csv:2: expected 3 fields"),
        (
            "image,mask,prompt,seed\nimages/shoe.jpg,masks/shoe.png,x,abc\n",
            r"cases.csv:2: field 'seed' must be an integer",
        ),
        (
            "image,mask,prompt\nimages/shoe.jpg,masks/shoe.png,x\nimages/gone.jpg,masks/shoe.png,y\n",
            r"cases.csv:3: field 'image': file not found: .*gone.jpg",
        ),
        (
            "image,mask,prompt\nimages/shoe.jpg,masks/shoe.png,x\nimages/shoe.jpg,masks/shoe.png,y\n",
            r"cases.csv:3: duplicate id 'shoe'",
        ),
        (
            'image,mask,prompt\nimages/shoe.jpg,masks/shoe.png,"unterminated\n',
            r"cases.csv:\d+: malformed CSV",
        ),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, body, match):
    _pair(tmp_path, "shoe")
    (tmp_path / "cases.csv").write_text(body)
    with pytest.raises(ManifestError, match=match):
        load_csv(tmp_path / "cases.csv")


def test_folder_loader(tmp_path):
    root = tmp_path / "shots"
    _pair(root, "a")
    _pair(root, "b", 1)
    (root / "prompts.csv").write_text("id,prompt,category,seed\nb,a blue vase,e-commerce,4\n")
    ds = load_dataset(f"folder:{root}")
    assert [c.id for c in ds] == ["a", "b"] and ds.name == "shots"
    assert ds.cases[0].prompt == "" and ds.cases[1].prompt == "a blue vase" and ds.cases[1].seed == 4
    assert validate_dataset(ds).ok and load_folder(root).fingerprint == ds.fingerprint
    (root / "masks" / "a.png").unlink()
    with pytest.raises(ManifestError, match=r"a.jpg: image without a mask; expected .*masks/a.png"):
        load_folder(root)
    (root / "prompts.csv").write_text("id,prompt\nzzz,x\n")
    _pair(root, "a")
    with pytest.raises(ManifestError, match=r"prompts.csv:2: id 'zzz' has no image"):
        load_folder(root)


# --- line separators, long ids, letter case (issue 17) ---------------------------------------
def test_coco_id_list_splits_on_newlines_only_and_accepts_a_bom(tmp_path):
    cap = _coco(tmp_path)
    (tmp_path / "ids.txt").write_bytes("\ufeff205\r\n101 \u2028 a note\n".encode())
    ds = load_coco2014(cap, ids=tmp_path / "ids.txt")
    assert [c.id for c in ds] == ["coco-205", "coco-101"]
    (tmp_path / "ids.txt").write_bytes(b"205\n\xff\n")
    with pytest.raises(ManifestError, match=r"ids.txt:2: not valid UTF-8"):
        load_coco2014(cap, ids=tmp_path / "ids.txt")


def test_csv_prompt_with_unicode_line_separators_is_kept(tmp_path):
    _pair(tmp_path, "shoe")
    prompt = "a red shoe\u2028on a table\u0085studio light\x1cmatte"
    (tmp_path / "cases.csv").write_text(f'image,mask,prompt\nimages/shoe.jpg,masks/shoe.png,"{prompt}"\n')
    assert load_csv(tmp_path / "cases.csv").cases[0].prompt == prompt


def test_csv_ids_that_differ_only_in_case_are_refused(tmp_path):
    _pair(tmp_path, "Shoe")
    _pair(tmp_path, "shoe", 1)
    (tmp_path / "cases.csv").write_text(
        "image,mask,prompt\nimages/Shoe.jpg,masks/Shoe.png,a\nimages/shoe.jpg,masks/shoe.png,b\n"
    )
    with pytest.raises(ManifestError, match=r"cases.csv:3: id 'shoe' differs from 'Shoe' \(line 2\) only"):
        load_csv(tmp_path / "cases.csv")


def test_folder_stem_too_long_for_an_image_file_name_is_refused(tmp_path):
    _pair(tmp_path, "x" * 200)
    with pytest.raises(ManifestError, match=r"field 'id' is 200 characters long \(at most 128\)"):
        load_folder(tmp_path)


def test_brushbench_key_too_long_is_refused_before_writing_its_mask(tmp_path):
    root, _ = _brushbench(tmp_path / "bb")
    data = json.loads((root / "mapping_file.json").read_text())
    data["k" * 300] = data.pop("000000001")
    (root / "mapping_file.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"mapping_file.json:k{300}: the entry key gives a case id"):
        load_brushbench(root)
