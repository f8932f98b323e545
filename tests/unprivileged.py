"""Run a command as a non-root user, so the tests of read-only folders run where the suite runs as
root (CI does): root's capabilities let it write into any folder, whatever its mode.

As root the command runs in a new user namespace as uid 1000 (``unshare --user --map-user=1000``):
the kernel then applies file modes to it as to any user (a folder of mode 0555 refuses a new file),
while the interpreter and the checkout, which belong to root, stay readable. Where this process is
not root the command runs unchanged.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-user=1000", "id", "-u"], capture_output=True, text=True
    )
    return probe.returncode == 0 and probe.stdout.strip() == "1000"


def non_root(cmd: list[str]) -> list[str]:
    """``cmd`` to run as a non-root user (see the module docstring); skips the test where neither
    this process is non-root nor a user namespace can be made."""
    if os.geteuid() != 0:
        return cmd
    if not _can_unshare():
        pytest.skip("running as root and no user namespace can be made (unshare --user) for a non-root user")
    return ["unshare", "--user", "--map-user=1000", *cmd]


def evalsuite_as_non_root(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m evalsuite ARGS`` as a non-root user (this checkout first on the path)."""
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **env}
    cmd = non_root([sys.executable, "-m", "evalsuite", *args])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=full)
