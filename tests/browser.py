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


MEASURE_JS = """
<script>
(function () {
  function bottom(sel) {
    var el = document.querySelector(sel);
    if (!el) return null;
    var r = el.getBoundingClientRect();
    return r.bottom + window.scrollY;
  }
  var head = document.querySelector('#headline + .tw table');
  var out = {
    scrollWidth: document.scrollingElement.scrollWidth,
    innerWidth: window.innerWidth,
    headlineBottom: bottom('#headline + .tw table'),
    claimsBottom: bottom('#claims + .tw table'),
    headlineHeads: head ? Array.from(head.querySelectorAll('th')).map(function (t) { return t.textContent; }) : [],
    height: document.scrollingElement.scrollHeight
  };
  document.body.setAttribute('data-measure', JSON.stringify(out));
})();
</script>
"""


def measure(page: Path, work: Path, width: int = 1400, height: int = 900) -> dict[str, object]:
    """Layout figures of ``page`` at ``width`` × ``height`` in headless Chromium: ``scrollWidth``
    (of ``document.scrollingElement``), the bottoms of the headline and claims tables, the headline's
    column heads and the page height.

    A copy of the page without its Content-Security-Policy and with a measuring script is written
    beside it (so relative images resolve) and loaded with ``--dump-dom``.
    """
    import html
    import json
    import re

    exe = chromium()
    assert exe is not None
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    text = text.replace("</body>", MEASURE_JS + "</body>")
    copy = page.with_name(f".measure-{page.name}")
    copy.write_text(text, encoding="utf-8")
    try:
        res = subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                f"--user-data-dir={work / 'profile-measure'}",
                f"--window-size={width},{height}",
                "--dump-dom",
                copy.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOME": str(work)},
        )
    finally:
        copy.unlink()
    m = re.search(r'data-measure="([^"]*)"', res.stdout)
    assert m, res.stderr[-3000:]
    return json.loads(html.unescape(m.group(1)))
