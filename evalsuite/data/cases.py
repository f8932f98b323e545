"""Cases and datasets: the manifest format, its validation, and the dataset fingerprint.

A dataset is a folder holding ``manifest.jsonl``: one JSON object per line with the fields

=============  ========  ==============================================================
field          required  meaning
=============  ========  ==============================================================
``id``         yes       unique case id (letters, digits, ``-``, ``_``, ``.``)
``prompt``     yes       text prompt (string, may be empty)
``image``      no        source image path, relative to the manifest's folder (inpainting)
``mask``       no        mask path (white/≥ 0.5 = region to regenerate)
``reference``  no        reference image path (e.g. for text-to-image FID)
``category``   no        free label used to group results (default ``general``)
``seed``       no        integer seed in [0, 2**63 - 1] (default 0)
``mask_family`` no       label of the mask generator that made ``mask``
=============  ========  ==============================================================

Other layouts (BrushBench, COCO-2014 captions, CSV, image/mask folders) are read by
:mod:`evalsuite.loaders` into the same :class:`Case` objects; :func:`evalsuite.validate.validate_dataset`
checks every file of a dataset (see ``docs/datasets.md``). Mask generators named by ``mask_family``
live in :mod:`evalsuite.masks`.

The fingerprint is the sha256 of the manifest bytes followed by, for every referenced file in
sorted order, its relative path and its bytes: any change to the prompts, masks or images changes
it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"
MAX_SEED = 2**63 - 1
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PATH_FIELDS = ("image", "mask", "reference")
_KNOWN_FIELDS = {"id", "prompt", "category", "seed", "mask_family", *_PATH_FIELDS}


class ManifestError(ValueError):
    """A manifest line that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Case:
    """One evaluation case.

    Attributes:
        id: unique id inside its dataset.
        prompt: text prompt.
        image: absolute path of the source image, or ``None`` (text-to-image).
        mask: absolute path of the mask (white = regenerate), or ``None``.
        reference: absolute path of a reference image, or ``None``.
        category: grouping label for reports.
        seed: the case's seed, used when the run is given no ``seeds`` (``--seeds`` replaces it, it
            is not added to it).
        mask_family: name of the mask generator, or ``None``.
        extra: any further manifest fields, kept verbatim.
    """

    id: str
    prompt: str
    image: Path | None = None
    mask: Path | None = None
    reference: Path | None = None
    category: str = "general"
    seed: int = 0
    mask_family: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_inpainting(self) -> bool:
        """True when the case has both an image and a mask."""
        return self.image is not None and self.mask is not None


@dataclass
class Dataset:
    """A named list of cases with its fingerprint.

    Attributes:
        name: dataset name (folder name for shipped sets).
        root: folder the manifest's paths are relative to.
        cases: the cases in manifest order.
        fingerprint: sha256 hex digest (see module doc).
        source: where it was read from (manifest path or loader description).
    """

    name: str
    root: Path
    cases: list[Case]
    fingerprint: str
    source: str = ""

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def select(self, ids: Sequence[str] | None = None, limit: int | None = None) -> Dataset:
        """A copy restricted to ``ids`` (in the given order) and/or the first ``limit`` cases.

        The fingerprint is kept: it identifies the data the subset was drawn from.

        Raises:
            KeyError: naming ids that are not in the dataset.
        """
        cases = self.cases
        if ids:
            by_id = {c.id: c for c in cases}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise KeyError(f"case ids not in dataset {self.name!r}: {', '.join(missing)}")
            cases = [by_id[i] for i in ids]
        if limit is not None:
            cases = cases[:limit]
        return Dataset(self.name, self.root, list(cases), self.fingerprint, self.source)


def _err(path: Path, lineno: int, msg: str) -> ManifestError:
    return ManifestError(f"{path}:{lineno}: {msg}")


def _resolve(root: Path, value: Any, key: str, path: Path, lineno: int, allow_outside: bool) -> Path:
    if not isinstance(value, str) or not value:
        raise _err(path, lineno, f"field {key!r} must be a non-empty path string, got {value!r}")
    p = Path(value)
    full = (p if p.is_absolute() else root / p).resolve()
    if not allow_outside and not full.is_relative_to(root.resolve()):
        raise _err(
            path,
            lineno,
            f"field {key!r} = {value!r} points outside the dataset folder {root}; "
            "move the file into the dataset or pass --allow-outside-paths",
        )
    if not full.is_file():
        raise _err(path, lineno, f"field {key!r}: file not found: {full}")
    return full


def parse_manifest_line(obj: Any, path: Path, lineno: int, root: Path, allow_outside: bool = False) -> Case:
    """Validate one decoded manifest object and build its :class:`Case`.

    Raises:
        ManifestError: naming ``path:lineno`` and the field at fault.
    """
    if not isinstance(obj, dict):
        raise _err(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
    for key in ("id", "prompt"):
        if key not in obj:
            raise _err(path, lineno, f"missing required field {key!r}")
    cid, prompt = obj["id"], obj["prompt"]
    if not isinstance(cid, str) or not _ID_RE.match(cid):
        raise _err(
            path, lineno, f"field 'id' must be a string of letters, digits, '-', '_', '.', got {cid!r}"
        )
    if not isinstance(prompt, str):
        raise _err(path, lineno, f"field 'prompt' must be a string, got {type(prompt).__name__}")
    seed = obj.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _err(path, lineno, f"field 'seed' must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise _err(path, lineno, f"field 'seed' = {seed} is out of range [0, 2**63-1]")
    category = obj.get("category", "general")
    if not isinstance(category, str):
        raise _err(path, lineno, f"field 'category' must be a string, got {category!r}")
    mask_family = obj.get("mask_family")
    if mask_family is not None and not isinstance(mask_family, str):
        raise _err(path, lineno, f"field 'mask_family' must be a string, got {mask_family!r}")
    paths = {
        k: _resolve(root, obj[k], k, path, lineno, allow_outside)
        for k in _PATH_FIELDS
        if obj.get(k) is not None
    }
    if ("mask" in paths) != ("image" in paths):
        raise _err(path, lineno, "an inpainting case needs both 'image' and 'mask' (one is missing)")
    extra = {k: v for k, v in obj.items() if k not in _KNOWN_FIELDS}
    return Case(
        id=cid,
        prompt=prompt,
        image=paths.get("image"),
        mask=paths.get("mask"),
        reference=paths.get("reference"),
        category=category,
        seed=seed,
        mask_family=mask_family,
        extra=extra,
    )


def fingerprint(manifest_bytes: bytes, root: Path, cases: Sequence[Case]) -> str:
    """sha256 over the manifest bytes and every referenced file (path and bytes), sorted by path."""
    h = hashlib.sha256()
    h.update(manifest_bytes)
    files = sorted(
        {p for c in cases for p in (c.image, c.mask, c.reference) if p is not None},
        key=lambda p: os.path.relpath(p, root),
    )
    for p in files:
        h.update(b"\0" + os.path.relpath(p, root).encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load_manifest(
    path: str | os.PathLike[str], name: str | None = None, allow_outside: bool = False
) -> Dataset:
    """Read a ``manifest.jsonl`` (or a folder holding one) into a :class:`Dataset`.

    Blank lines and lines starting with ``#`` are skipped.

    Raises:
        FileNotFoundError: if the manifest does not exist.
        ManifestError: for invalid UTF-8, invalid JSON, a bad field, a missing file, a path
            outside the dataset folder, or a duplicate id — naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"dataset manifest not found: {path} (expected a folder with {MANIFEST})")
    root = path.parent
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise _err(path, bad_line, f"not valid UTF-8 ({exc.reason}); save the manifest as UTF-8") from None
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as exc:
            raise _err(path, lineno, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
        case = parse_manifest_line(obj, path, lineno, root, allow_outside)
        if case.id in seen:
            raise _err(path, lineno, f"duplicate id {case.id!r} (first on line {seen[case.id]})")
        seen[case.id] = lineno
        cases.append(case)
    if not cases:
        raise ManifestError(f"{path}: the manifest has no cases")
    return Dataset(
        name=name or root.name,
        root=root,
        cases=cases,
        fingerprint=fingerprint(raw, root, cases),
        source=str(path),
    )
