"""Helpers shared by the loaders: fingerprints, locations, cache folders."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from evalsuite.data.cases import DatasetNotFoundError, ManifestError


class LoaderNotConfigured(DatasetNotFoundError):
    """A registered loader was called without a location and its environment variable is unset."""


def locate(
    path: str | os.PathLike[str] | None, env: str, name: str, what: str, expect: str | None = None
) -> Path:
    """The loader's input: ``path`` if given, else ``$env``; ``expect`` (``"file"`` or ``"folder"``)
    says what it must be.

    Raises:
        LoaderNotConfigured: neither is set.
        DatasetNotFoundError: the location does not exist (naming it).
        ManifestError: it is a folder where a file is expected, or the other way round.
    """
    value = path if path is not None else os.environ.get(env)
    if not value:
        raise LoaderNotConfigured(
            f"{name}: no location given; use --dataset {name}:PATH or set ${env} to {what}"
        )
    p = Path(value).expanduser()
    if not p.exists():
        raise DatasetNotFoundError(f"{name}: {what} not found: {p}")
    if expect == "file" and p.is_dir():
        raise ManifestError(f"{name}: {p} is a folder; pass {what}")
    if expect == "folder" and not p.is_dir():
        raise ManifestError(f"{name}: {p} is a file, not a folder; pass {what}")
    return p


def file_fingerprint(loader: str, index_bytes: Iterable[bytes], root: Path, files: Iterable[Path]) -> str:
    """sha256 over the loader name, its index files' bytes, then each file's name (relative to
    ``root`` when inside it) and bytes in sorted order."""
    h = hashlib.sha256(loader.encode() + b"\0")
    for b in index_bytes:
        h.update(hashlib.sha256(b).digest())
    rootr = root.resolve()

    def rel(p: Path) -> str:
        pr = p.resolve()
        return str(pr.relative_to(rootr)) if pr.is_relative_to(rootr) else pr.name

    for p in sorted(set(files), key=rel):
        h.update(b"\0" + rel(p).encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def cache_dir(kind: str, key: str) -> Path:
    """``<cache root>/kind/key``, created (the one cache root of :func:`evalsuite.paths.cache_root`:
    ``$EVALSUITE_CACHE_DIR``, else the deprecated ``$EVALSUITE_CACHE``, else the user cache folder).

    When the cache root cannot be written, a fresh temporary folder is used instead (the files
    are then rebuilt on the next run).
    """
    from evalsuite import paths

    d = paths.cache_dir(kind, key)
    if d is None:
        return Path(tempfile.mkdtemp(prefix=f"evalsuite-{kind}-{key}-"))
    return d


def err(path: Path, where: int | str, msg: str) -> ManifestError:
    """A :class:`ManifestError` naming ``path:where``."""
    return ManifestError(f"{path}:{where}: {msg}")
