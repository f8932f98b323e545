"""Cases and datasets: the manifest format, its validation, and the dataset fingerprint.

A dataset is a folder holding ``manifest.jsonl``: one JSON object per line with the fields

=============  ========  ==============================================================
field          required  meaning
=============  ========  ==============================================================
``id``         yes       unique case id: 1–128 letters, digits, ``-``, ``_``, ``.`` (starting with a
                         letter or digit; unique ignoring letter case)
``prompt``     yes       text prompt (string, may be empty)
``image``      no        source image path, relative to the manifest's folder (inpainting)
``mask``       no        mask path (white/≥ 0.5 = region to regenerate)
``reference``  no        reference image path (e.g. for text-to-image FID)
``category``   no        free label used to group results (default ``general``)
``seed``       no        integer seed in [0, 2**63 - 1] (default 0)
``mask_family`` no       label of the mask generator that made ``mask``
``text``       no        the string the image must show (text-rendering metrics, ``ocr_*``)
``text_box``   no        where it must show it: ``[x0, y0, x1, y1]`` as fractions of the width
                         and height (default: the bounding box of ``mask``)
=============  ========  ==============================================================

Any other field is kept in :attr:`Case.extra` and otherwise unused; each unknown field name is
reported once per manifest as a warning (with the known field it is closest to, e.g. ``sed`` →
``seed``), in the log and by ``evalsuite datasets validate``.

Lines are separated by ``\n`` only (JSON Lines): characters such as U+2028 or U+0085 inside a
prompt are part of the prompt. A UTF-8 byte-order mark at the start is ignored.

Other layouts (BrushBench, COCO-2014 captions, CSV, image/mask folders) are read by
:mod:`evalsuite.data.loaders` into the same :class:`Case` objects; :func:`evalsuite.data.validate.validate_dataset`
checks every file of a dataset (see ``docs/datasets.md``). Mask generators named by ``mask_family``
live in :mod:`evalsuite.data.masks`.

The fingerprint is the sha256 of the manifest bytes followed by, for every referenced file in
sorted order, its relative path and its bytes: any change to the prompts, masks or images changes
it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import UsageError

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
MAX_SEED = 2**63 - 1
#: longest case id: output images are named ``<case-id>-<seed>.png`` (and written through a
#: temporary ``.<name>.XXXXXXXX.tmp``), which must fit the usual 255-byte file-name limit (NAME_MAX)
MAX_ID_LEN = 128
NAME_MAX = 255
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_PATH_FIELDS = ("image", "mask", "reference")
KNOWN_FIELDS = (
    "id",
    "prompt",
    "image",
    "mask",
    "reference",
    "category",
    "seed",
    "mask_family",
    "text",
    "text_box",
)


def image_file_name(case_id: str, seed: int) -> str:
    """The file name of a generated image (the run directory's ``images/<config>/`` entries)."""
    return f"{case_id}-{seed}.png"


# the longest name a valid id can produce, with the temporary-file wrapper: fits NAME_MAX with margin
_LONGEST_NAME = len(f".{image_file_name('x' * MAX_ID_LEN, MAX_SEED)}.XXXXXXXX.tmp".encode())
assert _LONGEST_NAME <= NAME_MAX - 64, _LONGEST_NAME


def check_case_id(cid: Any) -> str | None:
    """Why ``cid`` is not a usable case id (``None`` when it is).

    A case id names files (``images/<config>/<case-id>-<seed>.png``), so it is 1–128 ASCII
    letters, digits, ``-``, ``_`` and ``.``, starting with a letter or digit.
    """
    if not isinstance(cid, str) or not _ID_RE.fullmatch(cid):
        return (
            "field 'id' must be a string of letters, digits, '-', '_', '.' starting with a letter or "
            f"digit, got {_short(cid) if isinstance(cid, str) else repr(cid)}"
        )
    if len(cid) > MAX_ID_LEN:
        name = image_file_name(cid, MAX_SEED)
        return (
            f"field 'id' is {len(cid)} characters long (at most {MAX_ID_LEN}): its image file name "
            f"'{cid[:20]}…-<seed>.png' would be up to {len(name)} bytes and must fit the file system's "
            f"{NAME_MAX}-byte limit; shorten the id"
        )
    return None


def unknown_field_warnings(unknown: dict[str, list[int]], path: Path, what: str = "field") -> list[str]:
    """One warning per unknown field name (``{name: [line numbers]}``), with a did-you-mean hint."""
    out = []
    for key, lines in unknown.items():
        close = difflib.get_close_matches(key, KNOWN_FIELDS, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f"line {lines[0]}" if len(lines) == 1 else f"{len(lines)} lines, first on line {lines[0]}"
        out.append(
            f"{path}:{lines[0]}: unknown {what} {key!r} ({where}) is ignored.{hint} "
            f"Known fields: {', '.join(KNOWN_FIELDS)}"
        )
    return out


class ManifestError(UsageError, ValueError):
    """A manifest line that cannot be used; the message names the file, the line and the fix."""


class DatasetNotFoundError(UsageError, FileNotFoundError):
    """A dataset file or folder that does not exist (a manifest, a loader's input); the message names
    the path and what was expected there."""


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
        text: the string the image must show (read back by the ``ocr_*`` metrics), or ``None``.
        text_box: the region it must show it in, ``(x0, y0, x1, y1)`` as fractions of the image's
            width and height, or ``None`` (the metrics then use the mask's bounding box).
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
    text: str | None = None
    text_box: tuple[float, float, float, float] | None = None

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
        warnings: problems that do not stop a run (e.g. unknown manifest fields), one line each;
            they are logged when read and reported by :func:`evalsuite.data.validate.validate_dataset`.
    """

    name: str
    root: Path
    cases: list[Case]
    fingerprint: str
    source: str = ""
    warnings: list[str] = field(default_factory=list)

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
        return Dataset(self.name, self.root, list(cases), self.fingerprint, self.source, list(self.warnings))


def _err(path: Path, lineno: int | str, msg: str) -> ManifestError:
    return ManifestError(f"{path}:{lineno}: {msg}")


def _short(value: str, n: int = 60) -> str:
    return repr(value if len(value) <= n else value[: n - 1] + "…")


def _first_link(given: Path, root: Path) -> Path | None:
    """The first symbolic link on the way from ``root`` to ``given`` (``given`` itself included)."""
    try:
        parts = given.relative_to(root).parts if given.is_relative_to(root) else given.parts
        base = root if given.is_relative_to(root) else Path(given.anchor)
    except ValueError:
        return None
    cur = base
    for part in parts:
        cur = cur / part
        if cur.is_symlink():
            return cur
    return None


def _resolve(root: Path, value: Any, key: str, path: Path, lineno: int, allow_outside: bool) -> Path:
    if not isinstance(value, str) or not value:
        raise _err(path, lineno, f"field {key!r} must be a non-empty path string, got {value!r}")
    if "\0" in value:
        raise _err(path, lineno, f"field {key!r} = {_short(value)} contains a NUL character; fix the path")
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme:
        raise _err(
            path,
            lineno,
            f"field {key!r} = {_short(value)} is a URL ({scheme}://); URLs are not supported: download the "
            "file into the dataset folder and give its path",
        )
    p = Path(value)
    try:
        given = p if p.is_absolute() else root / p
        full = given.resolve()
        if not allow_outside and not full.is_relative_to(root.resolve()):
            link = _first_link(given, root)
            via = f" through the symbolic link {link} → {os.readlink(link)}" if link is not None else ""
            raise _err(
                path,
                lineno,
                f"field {key!r} = {value!r} points outside the dataset folder {root}{via} (resolves to "
                f"{full}); move the file into the dataset or pass --allow-outside-paths",
            )
        if full.is_dir():
            raise _err(path, lineno, f"field {key!r}: {full} is a folder, not an image file")
        if not full.is_file():
            raise _err(path, lineno, f"field {key!r}: file not found: {full}")
    except OSError as exc:  # e.g. a name longer than the file system allows, a symlink loop
        raise _err(path, lineno, f"field {key!r} = {_short(value)}: unusable path ({exc.strerror})") from exc
    return full


def parse_manifest_line(
    obj: Any,
    path: Path,
    lineno: int,
    root: Path,
    allow_outside: bool = False,
    unknown: dict[str, list[int]] | None = None,
) -> Case:
    """Validate one decoded manifest object and build its :class:`Case`.

    Args:
        unknown: when given, the line number is appended under each field name that is not a
            known field (see :func:`unknown_field_warnings`).

    Raises:
        ManifestError: naming ``path:lineno`` and the field at fault.
    """
    if not isinstance(obj, dict):
        raise _err(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
    for key in ("id", "prompt"):
        if key not in obj:
            raise _err(path, lineno, f"missing required field {key!r}")
    cid, prompt = obj["id"], obj["prompt"]
    bad_id = check_case_id(cid)
    if bad_id:
        raise _err(path, lineno, bad_id)
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
    text = obj.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise _err(path, lineno, f"field 'text' must be a non-empty string, got {text!r}")
    text_box = _text_box(obj.get("text_box"), path, lineno)
    paths = {
        k: _resolve(root, obj[k], k, path, lineno, allow_outside)
        for k in _PATH_FIELDS
        if obj.get(k) is not None
    }
    if ("mask" in paths) != ("image" in paths):
        raise _err(path, lineno, "an inpainting case needs both 'image' and 'mask' (one is missing)")
    extra = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS}
    if unknown is not None:
        for k in extra:
            unknown.setdefault(k, []).append(lineno)
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
        text=text,
        text_box=text_box,
    )


def _text_box(box: Any, path: Path, lineno: int) -> tuple[float, float, float, float] | None:
    if box is None:
        return None
    ok = (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
    )
    if ok:
        x0, y0, x1, y1 = (float(v) for v in box)
        if 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1:
            return (x0, y0, x1, y1)
    raise _err(
        path,
        lineno,
        f"field 'text_box' must be [x0, y0, x1, y1], fractions of the width and height with "
        f"0 ≤ x0 < x1 ≤ 1 and 0 ≤ y0 < y1 ≤ 1, got {box!r}",
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
        DatasetNotFoundError: (a FileNotFoundError) if the manifest does not exist.
        ManifestError: for invalid UTF-8, invalid JSON, a bad field, a missing file, a path
            outside the dataset folder, or a duplicate id — naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset manifest not found: {path} (expected a folder with {MANIFEST})")
    root = path.parent
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _err(
            path,
            1,
            "the manifest is UTF-16 (it starts with a UTF-16 byte-order mark, as Windows PowerShell "
            "writes by default); save it as UTF-8",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise _err(path, bad_line, f"not valid UTF-8 ({exc.reason}); save the manifest as UTF-8") from exc
    cases: list[Case] = []
    seen = IdIndex()
    unknown: dict[str, list[int]] = {}
    # JSON Lines: "\n" ends a line; str.splitlines() would also split on U+2028, U+0085, \x1c...,
    # which are valid inside JSON strings
    for lineno, line in enumerate(text.split("\n"), start=1):
        s = line.strip(" \t\r")
        if not s or s.startswith("#"):
            continue
        obj = decode_json_line(s, path, lineno)
        case = parse_manifest_line(obj, path, lineno, root, allow_outside, unknown)
        seen.add(case.id, path, lineno)
        cases.append(case)
    if not cases:
        raise ManifestError(f"{path}: the manifest has no cases")
    warnings = unknown_field_warnings(unknown, path)
    for w in warnings:
        log.warning("%s", w)
    return Dataset(
        name=name or root.name,
        root=root,
        cases=cases,
        fingerprint=fingerprint(raw, root, cases),
        source=str(path),
        warnings=warnings,
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _DuplicateKey(ManifestError):
    """A key given twice in one manifest line (turned into a :class:`ManifestError` naming the line)."""


def decode_json_line(s: str, path: Path, lineno: int) -> Any:
    """``json.loads`` of one manifest line; every failure becomes a :class:`ManifestError` naming
    ``path:lineno`` (invalid JSON, a key given twice, nesting too deep, an integer too long)."""
    try:
        return json.loads(s, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        msg = exc.msg.removesuffix(" at")
        if msg == "Invalid control character":
            msg += " (characters below U+0020 must be escaped inside strings, e.g. \\u001c)"
        raise _err(path, lineno, f"invalid JSON ({msg} at column {exc.colno})") from exc
    except _DuplicateKey as exc:
        raise _err(path, lineno, f"field {exc.args[0]!r} is given twice on this line; keep one") from exc
    except RecursionError as exc:
        raise _err(path, lineno, "invalid JSON (nested too deeply)") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _err(path, lineno, f"invalid JSON ({str(exc).split(';')[0]})") from exc


class IdIndex:
    """Case ids seen so far: refuses a duplicate, and ids that differ only in letter case (their
    image files would overwrite each other on case-insensitive file systems such as macOS's and
    Windows')."""

    def __init__(self) -> None:
        self._lines: dict[str, tuple[str, int | str]] = {}

    def add(self, cid: str, path: Path, lineno: int | str, fix: str = "") -> None:
        """Record ``cid`` found at ``path:lineno``.

        Raises:
            ManifestError: a duplicate (or case-insensitive duplicate) naming both lines.
        """
        prev = self._lines.get(cid.casefold())
        if prev is not None:
            first, at = prev
            if first == cid:
                raise _err(path, lineno, f"duplicate id {cid!r} (first on line {at}){fix}")
            raise _err(
                path,
                lineno,
                f"id {cid!r} differs from {first!r} (line {at}) only in letter case: their image files "
                "would overwrite each other on case-insensitive file systems (macOS, Windows); rename one",
            )
        self._lines[cid.casefold()] = (cid, lineno)
