import json
from pathlib import Path

import pytest

from evalsuite.data.cases import ManifestError, load_manifest
from tests.conftest import write_dataset


def test_manifest_parses_fields(tiny_dataset: Path):
    ds = load_manifest(tiny_dataset)
    assert [c.id for c in ds] == ["a", "b", "c"]
    a, b, c = ds.cases
    assert a.is_inpainting and a.image == (tiny_dataset / "img/a.png").resolve()
    assert b.category == "e-commerce" and b.seed == 2
    assert not c.is_inpainting and c.image is None and c.category == "general"
    assert ds.name == "ds" and len(ds.fingerprint) == 64


def _manifest(tmp_path: Path, lines: list[str] | bytes) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "manifest.jsonl"
    p.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode())
    return p


@pytest.mark.parametrize(
    "lines, match",
    [
        (
            ['{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}'],
            r":2: duplicate id 'a' \(first on line 1\)",
        ),
        (['{"prompt": "x"}'], r":1: missing required field 'id'"),
        (['{"id": "a"}'], r":1: missing required field 'prompt'"),
        (['{"id": "a", "prompt": 3}'], r":1: field 'prompt' must be a string"),
        (['{"id": "a", "prompt": "x", "seed": "7"}'], r":1: field 'seed' must be an integer"),
        (['{"id": "a", "prompt": "x", "seed": -1}'], r"out of range"),
        (['{"id": "a", "prompt": "x"}', '{"id": "b", "prompt": '], r":2: invalid JSON"),
        (["[1, 2]"], r":1: expected a JSON object"),
        (['{"id": "a", "prompt": "x", "image": "nope.png", "mask": "nope.png"}'], r"file not found"),
        (
            ['{"id": "a", "prompt": "x", "image": "../../etc/passwd", "mask": "m.png"}'],
            r"outside the dataset folder",
        ),
        (['{"id": "a b", "prompt": "x"}'], r"field 'id' must be"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path: Path, lines, match):
    p = _manifest(tmp_path, lines)
    with pytest.raises(ManifestError, match=match) as err:
        load_manifest(p)
    assert str(p) in str(err.value)


def test_non_utf8_manifest(tmp_path: Path):
    p = _manifest(tmp_path, b'{"id": "a", "prompt": "caf\xe9"}\n')
    with pytest.raises(ManifestError, match=r":1: not valid UTF-8"):
        load_manifest(p)


def test_image_without_mask_is_an_error(tmp_path: Path):
    root = write_dataset(tmp_path / "d", [{"id": "a", "prompt": "x", "image": "i.png"}])
    with pytest.raises(ManifestError, match="needs both 'image' and 'mask'"):
        load_manifest(root)


def test_fingerprint_changes_with_manifest_and_file_bytes(tmp_path: Path):
    rows = [{"id": "a", "prompt": "x", "image": "i.png", "mask": "m.png"}]
    root = write_dataset(tmp_path / "d", rows)
    f0 = load_manifest(root).fingerprint
    assert load_manifest(root).fingerprint == f0  # stable
    (root / "i.png").write_bytes((root / "i.png").read_bytes() + b"\0")
    f1 = load_manifest(root).fingerprint
    assert f1 != f0
    (root / "manifest.jsonl").write_text(json.dumps({**rows[0], "prompt": "y"}) + "\n")
    assert load_manifest(root).fingerprint not in (f0, f1)


def test_missing_manifest(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="manifest.jsonl"):
        load_manifest(tmp_path)
