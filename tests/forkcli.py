"""``evalsuite ARGS`` in a separate process that starts in milliseconds instead of ~10 s.

The process is forked from a :mod:`multiprocessing` fork server: a fresh interpreter, started once
per test process, that imports evalsuite, torch, diffusers and torchmetrics and nothing else (no
pytest state, no built model). Each child is a process of its own — its own pid, signals delivered
by the kernel, a SIGKILL leaves behind what it leaves — and runs what the ``evalsuite`` entry point
runs, :func:`evalsuite.cli.main.main`, with stdout and stderr in files of its own. What it shares is
the import work a fresh ``python -m evalsuite`` pays for every command: on a 2-core machine the
signal and kill tests started six such interpreters, about a minute of CPU.

Tests of what only a fresh interpreter shows (the entry point, ``--help`` importing no torch, plugin
entry points, an installed wheel) start ``python -m evalsuite`` with :mod:`subprocess` instead.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

# what `evalsuite run` on a tiny FLUX configuration imports before its first image
PRELOAD = [
    "evalsuite.cli.main",
    "evalsuite.cli.run",
    "evalsuite.scenarios.generate",
    "evalsuite.runners.flux",
    "evalsuite.metrics.latency",
    "evalsuite.report.report",
    "diffusers",
    "transformers",
]

_context: multiprocessing.context.ForkServerContext | None = None


def _server() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


def _child(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    os.chdir(cwd)
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    from evalsuite.cli.main import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class Evalsuite:
    """A running ``evalsuite ARGV``, with the parts of :class:`subprocess.Popen` the tests use
    (``pid``, ``poll``, ``send_signal``, ``kill``, ``wait``, ``communicate``, ``returncode``: the exit
    code, or minus the signal number that ended it)."""

    def __init__(self, argv: list[str], cwd: str | Path, env: Mapping[str, str] | None = None) -> None:
        self._files = Path(tempfile.mkdtemp(prefix="evalsuite-child-"))
        self._out, self._err = self._files / "stdout", self._files / "stderr"
        self._output: tuple[str, str] | None = None
        self._proc = _server().Process(
            target=_child,
            args=(list(argv), str(cwd), dict(env or {}), str(self._out), str(self._err)),
            name="evalsuite " + " ".join(argv[:1]),
        )
        self._proc.start()
        assert self._proc.pid is not None
        self.pid: int = self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.exitcode

    def poll(self) -> int | None:
        return self._proc.exitcode

    def send_signal(self, sig: int) -> None:
        if self._proc.exitcode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        if self._proc.exitcode is None:
            self._proc.kill()

    def wait(self, timeout: float | None = None) -> int:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired(f"evalsuite (pid {self.pid})", timeout or 0.0)
        if self._output is None:  # read once, then the files go
            self._output = (self._read(self._out), self._read(self._err))
            shutil.rmtree(self._files, ignore_errors=True)
        return self._proc.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Wait for the end; (stdout, stderr)."""
        self.wait(timeout)
        assert self._output is not None
        return self._output

    @staticmethod
    def _read(path: Path) -> str:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
