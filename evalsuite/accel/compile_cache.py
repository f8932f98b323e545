"""A folder of ``torch.compile`` cache artifacts carried from one run (or machine) to the next: the
cold start of a compiled point without its compile (``evalsuite frontier --compile-cache DIR``).

Inductor keeps what it compiled in a local on-disk cache (``TORCHINDUCTOR_CACHE_DIR``), which a
fresh machine or container does not have: there, a compiled point's first call compiles everything
again (tens of seconds for FLUX's blocks). torch's portable cache artifacts
(``torch.compiler.save_cache_artifacts`` / ``load_cache_artifacts``) hold the compiled graphs and
kernels of one process as bytes; loaded into another process before it compiles, its compiles turn
into cache hits, provided torch, Triton and the GPU are the same (the cache keys include them; a
mismatch only means misses, never other results).

The folder holds ``<name>-<k>.bin`` files. :meth:`CompileCache.load` loads every ``.bin`` in it, once,
before the first compile; :meth:`CompileCache.save` writes the artifacts torch recorded since the last
save, when they hold one that no loaded or written file had. Two properties of torch's API shape this
(both seen with torch 2.14): each ``save_cache_artifacts`` call serialises only what was recorded since
the previous call, and a process records only the artifacts it used, not every one it loaded. So each
save gets a file of its own, and nothing is ever rewritten or merged.

The files hold compiled code and pickled graphs that torch executes on load: load only folders that
your own runs wrote (as with Inductor's own cache directory).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def _keys(info: Any) -> set[tuple[str, str]]:
    """(artifact type, key) pairs of a ``torch.compiler`` CacheInfo (None: none)."""
    arts = getattr(info, "artifacts", None) or {}
    return {(str(kind), str(key)) for kind, keys in arts.items() for key in keys}


class CompileCache:
    """The artifact folder of one run (see the module docstring).

    Args:
        folder: the folder; created on the first save.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(
                f"--compile-cache {self.folder}: is a file; name a folder (it holds .bin files of artifacts)"
            )
        self.loaded: dict[str, Any] | None = None
        self._known: set[tuple[str, str]] = set()
        self.written: list[Path] = []

    def load(self) -> dict[str, Any]:
        """Load every ``*.bin`` of the folder into this process's compile caches (once; later calls return
        the first summary). A file torch cannot load is skipped with a warning naming it.

        Returns:
            ``{"folder", "files", "artifacts", "seconds", "skipped": [{"file", "reason"}]}``.
        """
        if self.loaded is not None:
            return self.loaded
        t0 = time.perf_counter()
        files, skipped = 0, []
        for path in sorted(self.folder.glob("*.bin")) if self.folder.is_dir() else []:
            try:
                info = torch.compiler.load_cache_artifacts(path.read_bytes())
                reason = "" if info is not None else "torch could not read it (damaged, or not a cache file)"
            except Exception as exc:  # a damaged or foreign file: this run compiles instead
                reason = f"{type(exc).__name__}: {exc}"[:300]
            if reason:
                log.warning(
                    "compile cache %s: not loaded (%s); delete the file to stop this warning", path, reason
                )
                skipped.append({"file": str(path), "reason": reason})
                continue
            files += 1
            self._known |= _keys(info)
        self.loaded = {
            "folder": str(self.folder),
            "files": files,
            "artifacts": len(self._known),
            "seconds": time.perf_counter() - t0,
            "skipped": skipped,
        }
        log.info(
            "compile cache %s: %d artifact(s) from %d file(s) in %.2f s",
            self.folder,
            len(self._known),
            files,
            self.loaded["seconds"],
        )
        return self.loaded

    def save(self, name: str) -> Path | None:
        """Write the artifacts recorded since the last save to ``<folder>/<name>-<k>.bin`` (atomically; k
        counts this object's files), when they hold one that no loaded or written file had; returns the
        path, or None when nothing was new."""
        got = torch.compiler.save_cache_artifacts()
        if not got:
            return None
        data, info = got
        keys = _keys(info)
        new = keys - self._known
        if not new:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}-{len(self.written) + 1}.bin"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._known |= keys
        self.written.append(path)
        log.info("compile cache: %s written, with %d new artifact(s)", path, len(new))
        return path
