"""Generic loaders: a CSV of cases, or a folder of images and masks.

CSV (``csv:FILE`` or a path ending in ``.csv``): a header row, then one case per row; columns
``image, mask, prompt`` are required, ``category, seed, id, mask_family`` optional. Paths are
relative to the CSV's folder (absolute paths are allowed). ``image`` and ``mask`` may both be empty
for a text-to-image case. The id defaults to the image's file stem (``row<N>`` without an image).

Folder (``folder:DIR``): ``DIR/images/<stem>.<png|jpg|jpeg|webp|bmp|tif|tiff>`` and
``DIR/masks/<stem>.png`` (or any of those extensions), plus optional ``DIR/prompts.csv`` with
columns ``id, prompt[, category, seed]`` (``id`` = stem). A stem without a prompt gets ``""``.

Both validate each row like a manifest line (errors name the file and line) and fingerprint the
index file plus every referenced file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path
from typing import Any

from evalsuite.data.cases import (
    Case,
    Dataset,
    DatasetNotFoundError,
    IdIndex,
    ManifestError,
    fingerprint,
    parse_manifest_line,
    unknown_field_warnings,
)
from evalsuite.data.loaders.common import err, locate

log = logging.getLogger(__name__)

REQUIRED = ("image", "mask", "prompt")
OPTIONAL = ("category", "seed", "id", "mask_family")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_BAD_ID = re.compile(r"[^A-Za-z0-9_.\-]")


def _rows(path: Path) -> tuple[bytes, list[tuple[int, dict[str, str]]], list[str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise err(path, raw[: exc.start].count(b"\n") + 1, "not valid UTF-8; save the CSV as UTF-8") from exc
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        raise err(path, 1, "empty CSV; expected a header row") from exc
    except csv.Error as exc:
        raise err(path, 1, f"malformed CSV ({exc})") from exc
    out = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise err(path, reader.line_num, f"malformed CSV ({exc})") from exc
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise err(
                path, reader.line_num, f"expected {len(header)} fields ({', '.join(header)}), got {len(row)}"
            )
        out.append((reader.line_num, dict(zip(header, (c.strip() for c in row), strict=True))))
    return raw, out, header


def _obj(row: dict[str, str], path: Path, lineno: int, default_id: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": row.get("id") or default_id, "prompt": row.get("prompt", "")}
    for k in ("image", "mask"):
        if row.get(k):
            obj[k] = row[k]
    if row.get("category"):
        obj["category"] = row["category"]
    if row.get("mask_family"):
        obj["mask_family"] = row["mask_family"]
    if row.get("seed"):
        try:
            obj["seed"] = int(row["seed"])
        except ValueError as exc:
            raise err(path, lineno, f"field 'seed' must be an integer, got {row['seed']!r}") from exc
    return obj


def _finish(
    name: str,
    root: Path,
    raw: bytes,
    cases: list[Case],
    index: Path,
    source: str,
    warnings: list[str] | None = None,
) -> Dataset:
    if not cases:
        raise ManifestError(f"{index}: no cases")
    for w in warnings or []:
        log.warning("%s", w)
    return Dataset(
        name=name,
        root=root,
        cases=cases,
        fingerprint=fingerprint(raw, root, cases),
        source=source,
        warnings=list(warnings or []),
    )


def _unknown_columns(header: list[str], known: tuple[str, ...], path: Path) -> list[str]:
    unknown = {h: [1] for h in header if h not in known}
    return unknown_field_warnings(unknown, path, what="column")


def load_csv(path: str | os.PathLike[str] | None = None, name: str | None = None) -> Dataset:
    """Load a CSV of cases (see module doc).

    Raises:
        LoaderNotConfigured: no path and ``$EVALSUITE_CSV`` unset.
        ManifestError: a missing column, a malformed row, a bad field, a missing file or a duplicate
            id — naming the CSV and the line.
    """
    p = locate(path, "EVALSUITE_CSV", "csv", "a CSV file of cases", expect="file")
    raw, rows, header = _rows(p)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise err(
            p,
            1,
            f"missing column(s) {', '.join(missing)}; the header must hold image, mask, prompt "
            f"[, {', '.join(OPTIONAL)}]",
        )
    cases: list[Case] = []
    seen = IdIndex()
    for lineno, row in rows:
        default_id = _BAD_ID.sub("_", Path(row["image"]).stem) if row.get("image") else f"row{lineno}"
        case = parse_manifest_line(_obj(row, p, lineno, default_id), p, lineno, p.parent, allow_outside=True)
        seen.add(case.id, p, lineno, fix="; add an 'id' column")
        cases.append(case)
    warnings = _unknown_columns(header, (*REQUIRED, *OPTIONAL), p)
    return _finish(name or p.stem, p.parent, raw, cases, p, f"csv:{p}", warnings)


def _by_stem(d: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in sorted(d.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
            if f.stem in out:
                raise ManifestError(
                    f"{d}: two files share the stem {f.stem!r} ({out[f.stem].name}, {f.name})"
                )
            out[f.stem] = f
    return out


def load_folder(path: str | os.PathLike[str] | None = None, name: str | None = None) -> Dataset:
    """Load a folder of ``images/`` and ``masks/`` matched by file stem, with optional ``prompts.csv``.

    Raises:
        LoaderNotConfigured: no path and ``$EVALSUITE_FOLDER`` unset.
        ManifestError: an image without a mask (naming the expected path), a mask without an image,
            or a malformed ``prompts.csv`` (naming the line).
    """
    root = locate(path, "EVALSUITE_FOLDER", "folder", "a folder with images/ and masks/", expect="folder")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise DatasetNotFoundError(
                f"folder: {root / sub} not found (expected images/ and masks/ with matching stems)"
            )
    images, masks = _by_stem(root / "images"), _by_stem(root / "masks")
    for stem in masks:
        if stem not in images:
            raise ManifestError(
                f"{masks[stem]}: mask without an image (expected {root / 'images' / stem}.png or .jpg)"
            )
    prompts: dict[str, tuple[int, dict[str, str]]] = {}
    raw = b""
    pfile = root / "prompts.csv"
    warnings: list[str] = []
    if pfile.is_file():
        raw, rows, header = _rows(pfile)
        if "id" not in header or "prompt" not in header:
            raise err(pfile, 1, "the header must hold id, prompt[, category, seed]")
        warnings = _unknown_columns(header, ("id", "prompt", "category", "seed", "mask_family"), pfile)
        for lineno, row in rows:
            if row["id"] not in images:
                raise err(pfile, lineno, f"id {row['id']!r} has no image in {root / 'images'}")
            prompts[row["id"]] = (lineno, row)
    cases: list[Case] = []
    seen = IdIndex()
    for stem, img in images.items():
        if stem not in masks:
            raise ManifestError(f"{img}: image without a mask; expected {root / 'masks' / stem}.png")
        lineno, row = prompts.get(stem, (0, {}))
        obj = _obj({**row, "id": _BAD_ID.sub("_", stem)}, pfile, lineno, stem)
        obj["image"], obj["mask"] = str(img.relative_to(root)), str(masks[stem].relative_to(root))
        case = parse_manifest_line(obj, pfile if lineno else img, lineno, root)
        seen.add(case.id, img, "", fix=" after replacing characters other than letters, digits, '-_.'")
        cases.append(case)
    listing = "\n".join(
        f"{Path(str(c.image)).relative_to(root.resolve())}\t{Path(str(c.mask)).relative_to(root.resolve())}"
        for c in cases
    ).encode()
    return _finish(name or root.name, root, raw + b"\0" + listing, cases, root, f"folder:{root}", warnings)
