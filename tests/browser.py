"""Rendering a local HTML file in headless Chromium (Debian's ``chromium``) for report tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def chromium() -> str | None:
    """The Chromium executable, or ``None`` when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class Rendered:
    screenshot: np.ndarray  # greyscale (H, W) float32
    console: list[str]  # console messages and uncaught errors logged by the page
    dom: str  # the DOM after loading (--dump-dom)
    stderr: str


def render(page: Path, work: Path, width: int = 1280, height: int = 2000) -> Rendered:
    """Screenshot ``page`` and dump its DOM with networking, GPU, sync and updates off."""
    exe = chromium()
    assert exe is not None
    flags = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={work / 'profile'}",
        "--hide-scrollbars",
    ]
    url = page.resolve().as_uri()
    env = {**os.environ, "HOME": str(work)}
    shot = work / "shot.png"
    res = subprocess.run(
        [*flags, f"--screenshot={shot}", f"--window-size={width},{height}", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert shot.is_file(), res.stderr[-3000:]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr[-3000:]
    stderr = res.stderr + dom.stderr
    console = [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    return Rendered(img, console, dom.stdout, stderr)
