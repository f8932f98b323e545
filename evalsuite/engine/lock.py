"""An exclusive lock on a run directory, so two processes never write the same run.

The lock is ``<run-dir>/run.lock``: a small JSON file naming the holder (pid, host, start time,
command) on which the holder keeps an exclusive ``flock``. The kernel drops a ``flock`` when its
process dies, however it dies (SIGKILL, OOM killer, power loss of a client), so a lock file left
behind by a killed run is *stale*: the next run finds it unlocked, logs that it takes it over
(naming the dead holder) and proceeds. A run that finds the lock held refuses to start with
:class:`RunLockedError`, naming the holder's pid and host.

Where the filesystem does not support ``flock`` (some network filesystems), the lock falls back to
the pid in the file: the holder is considered alive when that pid exists on this host and its
process start time matches the one recorded (so a reused pid is not mistaken for the holder).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunLockedError(RuntimeError):
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_alive(holder: dict[str, Any]) -> bool:
    """Fallback liveness check (no ``flock``): same host, pid exists, same process start time."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return isinstance(pid, int)  # another host: cannot check, assume alive
    if not _pid_alive(pid):
        return False
    started = holder.get("process_start")
    now = _process_start_time(pid)
    return started is None or now is None or abs(now - float(started)) < 1.0


class RunLock:
    """Exclusive lock on one run directory (see module doc).

    Use as a context manager, or call :meth:`acquire` / :meth:`release`.

    Attributes:
        path: the lock file.
        took_over: the stale holder's record when the lock was taken over from a dead run.
    """

    def __init__(self, run_dir: str | os.PathLike[str], name: str = LOCK_FILE) -> None:
        self.path = Path(run_dir) / name
        self._fd: int | None = None
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
        return RunLockedError(
            f"run directory {self.path.parent} is in use by another evalsuite run (pid {pid} on {host}, "
            f"since {since}); wait for it to finish or stop it, or choose another --run-dir/--run-id",
            holder,
        )

    def acquire(self) -> RunLock:
        """Take the lock, taking over a stale one.

        Raises:
            RunLockedError: when another live process holds it (message names its pid).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            use_pid_check = False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.read_holder()
                os.close(fd)
                raise self._refuse(holder) from None
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise
                use_pid_check = True
            # the file may have been unlinked by a releasing holder between our open and flock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self.read_holder()
            if use_pid_check and previous and previous.get("pid") != os.getpid() and _holder_alive(previous):
                os.close(fd)
                raise self._refuse(previous)
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
                "argv": sys.argv,
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
            os.fsync(fd)
            self._fd = fd
            return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
