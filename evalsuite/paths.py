"""Where evalsuite keeps things on disk: the one cache root, and the one atomic-write helper.

Cache root: ``$EVALSUITE_CACHE_DIR`` if set, else the deprecated ``$EVALSUITE_CACHE`` (honoured
with a warning), else the platform's user cache folder (``platformdirs.user_cache_dir("evalsuite")``,
``~/.cache/evalsuite`` on Linux). Never inside the installed package.

Atomic writes go through a temporary file in the target's folder and :func:`os.replace`, so a
reader sees the old file or the new one, never half of one; the result gets the mode the user's
umask gives a new file (``tempfile.mkstemp`` alone would leave it 0600).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)

ENV_CACHE = "EVALSUITE_CACHE_DIR"
ENV_CACHE_OLD = "EVALSUITE_CACHE"


def cache_root() -> Path:
    """The cache root (not created): see the module docstring for the order."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    if os.environ.get(ENV_CACHE_OLD):
        warnings.warn(
            f"{ENV_CACHE_OLD} is deprecated; set {ENV_CACHE} instead (same meaning)",
            DeprecationWarning,
            stacklevel=2,
        )
        return Path(os.environ[ENV_CACHE_OLD]).expanduser()
    return Path(platformdirs.user_cache_dir("evalsuite", appauthor=False))


def cache_dir(*parts: str) -> Path | None:
    """``cache_root()/parts...``, created; ``None`` (with a warning) when it cannot be created or
    written, so that callers compute without caching instead of failing."""
    d = cache_root().joinpath(*parts)
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        log.warning(
            "cache folder %s cannot be used (%s); computing without caching (set %s)", d, exc, ENV_CACHE
        )
        return None
    return d


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename, fsync'd); returns the path.

    Raises ``OSError`` when the folder cannot be written; nothing is left behind then.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """:func:`atomic_write` of ``data`` as indented JSON (non-JSON values through ``str``)."""
    return atomic_write(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def atomic_writer_path(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """For writers that need a file name (parquet, PNG): ``(tmp, final)``; write ``tmp``, then call
    :func:`commit_tmp`. The temporary file is in the same folder, so the rename is atomic."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    return Path(tmp), final


def commit_tmp(tmp: Path, final: Path) -> Path:
    """Give ``tmp`` the umask mode and rename it onto ``final``."""
    try:
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final
