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


def no_space_cause(exc: BaseException) -> OSError | None:
    """The ``OSError`` saying the disk (or a quota) is full that ``exc`` is or was raised from, if any."""
    import errno

    codes = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in codes:
            return e
        e = e.__cause__ or e.__context__
    return None


def is_no_space(exc: BaseException) -> bool:
    """True for an ``OSError`` that says the disk (or a quota) is full, or an error raised from one."""
    return no_space_cause(exc) is not None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def _mount_point(path: Path) -> Path:
    p = path.resolve()
    while not p.exists():
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def no_space_error(
    exc: BaseException, folder: str | os.PathLike[str], doing: str, needed: int, out: bool = True
) -> Exception:
    """The one-line :class:`~evalsuite.errors.DiskFullError` of a write that ran out of space in
    ``folder`` while ``doing`` (``generating``, ``writing the report``...); ``needed`` is about how
    many more bytes it takes (the message rounds it up, with a margin); ``out``: the command takes
    ``--out`` (another folder is an alternative)."""
    import shutil

    from evalsuite.errors import DiskFullError

    folder = Path(folder)
    where = folder
    try:
        mount = _mount_point(folder)
        free = shutil.disk_usage(mount).free
        disk = f"the file system mounted at {mount}, {_human(free)} free"
    except OSError:
        disk = "its file system"
    failed = getattr(exc, "filename", None)
    named = f" ({failed})" if failed else ""
    want = max(int(needed * 1.2) + (1 << 20), 1 << 20)
    alt = " (or give another folder with --out)" if out else ""
    return DiskFullError(
        f"no space left on device{named} while {doing} in {where} ({disk}): free about {_human(want)} "
        f"there{alt} and rerun the same command; everything written before is kept"
    )


def folder_size(path: str | os.PathLike[str], *names: str) -> int:
    """Bytes of the files ``names`` (files or folders) in ``path``; what a rewrite of them needs."""
    return sum(_size(Path(path) / n) for n in names)


_WARNED_FOLDERS: set[str] = set()


def search_folders(variable: str, what: str) -> list[Path]:
    """The existing folders of the ``os.pathsep``-separated environment ``variable``
    (``EVALSUITE_CONFIG_DIRS``, ``EVALSUITE_DATASETS``); a listed folder that does not exist is named
    in one warning per process (``what`` says what would have been read from it)."""
    out = []
    for p in os.environ.get(variable, "").split(os.pathsep):
        if not p:
            continue
        if Path(p).is_dir():
            out.append(Path(p))
            continue
        message = f"{variable}: {p} is not a folder; no {what} are read from it"
        if message not in _WARNED_FOLDERS:
            _WARNED_FOLDERS.add(message)
            log.warning("%s", message)
    return out


def is_folder_name(value: object) -> bool:
    """Whether ``value`` can name one folder: a non-empty string, not ``.`` or ``..``, without path
    separators or NUL (the rule of run ids and configuration names)."""
    seps = {"/", "\\", os.sep, *([os.altsep] if os.altsep else [])}
    return (
        isinstance(value, str)
        and bool(value.strip())
        and value not in (".", "..")
        and not any(sep in value for sep in seps)
        and "\0" not in value
    )
