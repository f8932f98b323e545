"""COCO-2014 captions for text-to-image evaluation (FID/CLIP on COCO prompts).

Input: the official captions JSON (``captions_val2014.json``: ``images`` with ``id`` and
``file_name``, ``annotations`` with ``id``, ``image_id`` and ``caption``), optionally

* ``ids``: a list of caption (annotation) ids selecting the subset, in that order — a text file
  with one integer per line, or a TSV/CSV with a header holding an ``id`` column (the layout of
  MLPerf's 5,000-caption ``captions_source.tsv``);
* ``images``: the folder of the COCO images; each case's ``reference`` is then its image (for FID).

Without ``ids`` there is one case per image: the caption with the lowest annotation id.
Case ids are ``coco-<annotation id>``; the seed is the image id; the category is ``general``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from evalsuite.data.cases import Case, Dataset, DatasetNotFoundError, ManifestError
from evalsuite.data.loaders.common import err, file_fingerprint, locate


def _read_ids(path: Path) -> list[int]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise err(
            path, raw[: exc.start].count(b"\n") + 1, "not valid UTF-8; save the id list as UTF-8"
        ) from exc
    lines = text.split("\n")  # "\n" only: str.splitlines() also splits on U+2028, U+0085...
    first = lines[0].strip("\r") if text.strip() else ""
    ids: list[int] = []
    if (
        any(sep in first for sep in ("\t", ","))
        and not first.replace("\t", "").replace(",", "").strip().isdigit()
    ):
        dialect = "excel-tab" if "\t" in first else "excel"
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        if "id" not in (reader.fieldnames or []):
            raise err(path, 1, f"the header has no 'id' column (columns: {reader.fieldnames})")
        for row in reader:
            try:
                ids.append(int(row["id"]))
            except (TypeError, ValueError) as exc:
                raise err(path, reader.line_num, f"id {row.get('id')!r} is not an integer") from exc
        return ids
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            ids.append(int(s.split()[0].split(",")[0]))
        except ValueError as exc:
            raise err(path, lineno, f"expected an integer caption id, got {s[:40]!r}") from exc
    return ids


def load_coco2014(
    path: str | os.PathLike[str] | None = None,
    ids: str | os.PathLike[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """Load COCO-2014 captions as text-to-image cases.

    Args:
        path: the captions JSON (default ``$EVALSUITE_COCO2014``).
        ids: optional id-list file (see module doc); default ``$EVALSUITE_COCO2014_IDS`` if set.
        images: optional COCO image folder for references; default ``$EVALSUITE_COCO2014_IMAGES``.
        limit: only the first N cases.

    Raises:
        LoaderNotConfigured: no path and no environment variable.
        ManifestError: malformed JSON, unknown ids (naming the id file and line), missing fields.
        DatasetNotFoundError: a missing captions file, id file or reference image (naming the path).
    """
    cap = locate(
        path,
        "EVALSUITE_COCO2014",
        "coco2014",
        "the COCO captions JSON (captions_val2014.json)",
        expect="file",
    )
    raw = cap.read_bytes()
    try:
        data: Any = json.loads(raw)
        anns = data["annotations"]
        imgs = {int(im["id"]): im for im in data.get("images", [])}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ManifestError(
            f"{cap}: not a COCO captions file ({type(exc).__name__}: {exc}); "
            "expected JSON with 'annotations' (id, image_id, caption) and 'images'"
        ) from exc
    by_id: dict[int, dict] = {}
    for a in anns:
        try:
            by_id[int(a["id"])] = a
            a["image_id"] = int(a["image_id"])
            if not isinstance(a["caption"], str):
                raise TypeError("caption is not a string")
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{cap}: annotation {a!r:.80} is malformed ({exc})") from exc
    index = [raw]
    ids_path = ids if ids is not None else os.environ.get("EVALSUITE_COCO2014_IDS")
    if ids_path:
        idp = Path(ids_path)
        if not idp.is_file():
            raise DatasetNotFoundError(f"coco2014: id list not found: {idp}")
        index.append(idp.read_bytes())
        chosen = _read_ids(idp)
        missing = [i for i in chosen if i not in by_id]
        if missing:
            raise ManifestError(
                f"{idp}: {len(missing)} caption ids not in {cap.name} (first: {missing[:5]}); "
                "the list must hold COCO caption (annotation) ids of this split"
            )
    else:
        first: dict[int, int] = {}
        for aid in sorted(by_id):
            first.setdefault(by_id[aid]["image_id"], aid)
        chosen = sorted(first.values())
    img_dir_v = images if images is not None else os.environ.get("EVALSUITE_COCO2014_IMAGES")
    img_dir = Path(img_dir_v) if img_dir_v else None
    if img_dir is not None and not img_dir.is_dir():
        raise DatasetNotFoundError(f"coco2014: image folder not found: {img_dir}")
    cases: list[Case] = []
    seen: set[int] = set()
    for aid in chosen:
        if limit is not None and len(cases) >= limit:
            break
        if aid in seen:
            raise ManifestError(f"{ids_path}: duplicate caption id {aid}")
        seen.add(aid)
        a = by_id[aid]
        ref = None
        if img_dir is not None:
            im = imgs.get(a["image_id"])
            if im is None:
                raise ManifestError(f"{cap}: image id {a['image_id']} (caption {aid}) is not in 'images'")
            ref = img_dir / str(im["file_name"])
            if not ref.is_file():
                raise DatasetNotFoundError(f"coco2014: reference image not found: {ref}")
        cases.append(
            Case(
                id=f"coco-{aid}",
                prompt=a["caption"].strip(),
                reference=ref,
                category="general",
                seed=a["image_id"],
                extra={"coco_image_id": a["image_id"]},
            )
        )
    if not cases:
        raise ManifestError(f"{cap}: no captions selected")
    files = [c.reference for c in cases if c.reference is not None]
    fp = file_fingerprint("coco2014", index, img_dir or cap.parent, files)
    return Dataset(name="coco2014", root=cap.parent, cases=cases, fingerprint=fp, source=f"coco2014:{cap}")
