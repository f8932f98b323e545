"""An exclusive lock on a run directory, so two processes never write the same run.

The kernel lock is taken with :mod:`filelock` (``flock`` on POSIX, ``msvcrt.locking`` on Windows)
on ``<run-dir>/.run.lock``; the kernel drops it when its process dies, however it dies (SIGKILL,
OOM killer), so a dead run never blocks the next one. Beside it the holder writes ``run.lock``, a
small JSON record naming it (pid, host, start time, process start, command), and removes it when
it releases the lock. So:

* a run that finds the kernel lock free but a ``run.lock`` record left behind logs that it takes
  over the dead run's lock (naming its pid, host and time) and proceeds (``took_over``);
* a run that finds the kernel lock held refuses to start with :class:`RunLockedError`, naming the
  holder's pid, host and since-when from the record.

``evalsuite run``, ``profile``, ``frontier``, ``plan``, ``score`` (through the run lifecycle) and
``report`` (:func:`locked_run`) all take it.
Where the filesystem has no kernel locks, :mod:`filelock` falls back to its own soft lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import filelock

from evalsuite.errors import LockedError

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunLockedError(LockedError, RuntimeError):
    """The run directory is locked by another live process; the message names its pid and host."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def _process_start_time(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


class RunLock:
    """Exclusive lock on one run directory (see module doc).

    Use as a context manager, or call :meth:`acquire` / :meth:`release`.

    Attributes:
        path: the holder record (``run.lock``).
        purpose: what the holder does (``run``, ``profile``, ``score``, ``report``), in the record.
        took_over: the stale holder's record when the lock was taken over from a dead run.
    """

    def __init__(self, run_dir: str | os.PathLike[str], name: str = LOCK_FILE, purpose: str = "run") -> None:
        self.path = Path(run_dir) / name
        self.purpose = purpose
        self._lock = filelock.FileLock(str(self.path.with_name(f".{name}")), timeout=0)
        self._held = False
        self.took_over: dict[str, Any] | None = None

    def read_holder(self) -> dict[str, Any]:
        """The record in the lock file (``{}`` when absent or unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict[str, Any]) -> RunLockedError:
        pid = holder.get("pid", "unknown")
        host = holder.get("host", "unknown host")
        since = holder.get("since", "an unknown time")
        what = holder.get("purpose", "run")
        return RunLockedError(
            f"run directory {self.path.parent} is in use by another evalsuite run (pid {pid} on {host}, "
            f"evalsuite {what}, since {since}); wait for it to finish or stop it, or choose another "
            "--run-dir/--run-id",
            holder,
        )

    def acquire(self) -> RunLock:
        """Take the lock, taking over a stale one.

        Raises:
            RunLockedError: when another live process holds it (message names its pid).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout as exc:
            raise self._refuse(self.read_holder()) from exc
        self._held = True
        try:
            previous = self.read_holder()
            if previous and previous.get("pid") is not None:
                self.took_over = previous
                log.warning(
                    "run directory %s: taking over a stale lock from pid %s on %s (since %s), which is no "
                    "longer running; resuming its run",
                    self.path.parent,
                    previous.get("pid"),
                    previous.get("host"),
                    previous.get("since"),
                )
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "process_start": _process_start_time(os.getpid()),
                "purpose": self.purpose,
                "argv": sys.argv,
            }
            from evalsuite.paths import atomic_write

            atomic_write(self.path, json.dumps(record) + "\n")
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        """Remove the holder record and drop the lock (idempotent)."""
        if not self._held:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._lock.release(force=True)
            self._held = False

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._held

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@contextlib.contextmanager
def locked_run(run_dir: str | os.PathLike[str], purpose: str) -> Iterator[RunLock]:
    """Hold the lock of an existing run directory while a command rewrites files in it (``evalsuite
    report``; ``evalsuite score`` takes it through the run lifecycle): refused with :class:`RunLockedError` naming the holder while a run
    writes the directory.

    Raises:
        NotARunDirError: ``run_dir`` is not a run directory.
        RunConfigError: the run directory cannot be written (nothing is written then).
        RunLockedError: another live process holds it.
    """
    path = Path(run_dir)
    if not (path / "run.json").is_file():
        from evalsuite.results.store import NotARunDirError

        raise NotARunDirError(f"{path} is not a run directory (no run.json)")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        from evalsuite.config.runconfig import RunConfigError

        raise RunConfigError(
            f"cannot write into the run directory {path} ({exc.strerror or exc}): 'evalsuite {purpose}' "
            f"writes its results there. Nothing was written. Copy the run to a writable folder "
            f"(cp -r {path} COPY) and run 'evalsuite {purpose} COPY'"
        ) from exc
    with RunLock(path, purpose=purpose) as lock:
        yield lock


def live_holder(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The holder record of a run directory that a live process holds now, else ``None``; writes
    nothing (a read-only directory works). ``{}`` when the kernel lock is held but the record is
    unreadable."""
    if os.name != "posix":
        return None
    import fcntl

    try:
        fd = os.open(Path(run_dir) / f".{LOCK_FILE}", os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return RunLock(run_dir).read_holder()
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_if_live(run_dir: str | os.PathLike[str], purpose: str) -> None:
    """Refuse (:class:`RunLockedError`, exit 3) while a live process writes ``run_dir``, for commands
    that only read it (``evalsuite compare``)."""
    holder = live_holder(run_dir)
    if holder is not None:
        err = RunLock(run_dir)._refuse(holder)
        raise RunLockedError(
            f"{err} — 'evalsuite {purpose}' reads a finished run; run it when that one has finished", holder
        )
