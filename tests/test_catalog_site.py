"""``evalsuite catalog site``: the static dashboard renders in headless Chromium, shows a planted
regression first and draws the trend sparklines (issue 25)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.browser import chromium, render
from tests.test_catalog import runs  # noqa: F401  (the module's run directories)
from tests.test_cli import cli


@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_site_renders_trends_and_the_planted_regression(runs, tmp_path: Path):  # noqa: F811
    tree = tmp_path / "out"
    shutil.copytree(runs["r1"].parent, tree)
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0
    xss = '<script>console.error("XSS-LABEL")</script>'
    assert cli("catalog", "label", "r1", xss, "--catalog", path, cwd=tree).returncode == 0
    ths = tree / "thresholds.yaml"
    ths.write_text("- {metric: latency, max_regression: 0.1, mode: relative}\n")
    (tree / "r2" / "report.html").write_text("<p>the report</p>")
    site = tmp_path / "site"
    res = cli("catalog", "site", str(site), "--thresholds", str(ths), "--catalog", path, cwd=tree)
    assert res.returncode == 0, res.stderr
    index = site / "index.html"
    html = index.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    r = render(index, tmp_path / "w1", height=1600)
    assert not r.console, r.console
    assert "XSS-LABEL" not in r.stderr and "<script" not in r.dom.lower()
    dom = r.dom
    # the regressions list comes first and shows the planted one (cfg-fast latency, r2 → r3) only
    assert dom.index('id="regressions"') < dom.index('id="metrics"') < dom.index('id="runs"')
    regs = dom[dom.index('id="regressions"') : dom.index('id="metrics"')]
    assert "1 regression(s)" in regs
    (bad,) = re.findall(r'<tr class="bad">(.*?)</tr>', regs)
    assert "cfg-fast" in bad and "latency_s" in bad and "commit02 → commit03" in bad
    # the trend chart: one sparkline per (series, metric); the first series has r1, old-v1, r2, r3
    lines = re.findall(r'<polyline[^>]*points="([^"]+)"', dom)
    assert len(lines) == 12 and max(len(p.split()) for p in lines) == 4
    # … and it is drawn: the page without its SVGs differs where the sparklines were
    bare = site / "bare.html"
    bare.write_text(re.sub(r"<svg.*?</svg>", "", html, flags=re.S))
    r2 = render(bare, tmp_path / "w2", height=1600)
    changed = np.abs(r.screenshot - r2.screenshot) > 40
    assert changed.sum() > 500
    # per-run links to the runs' report.html (relative, opening from file://)
    assert 'href="../out/r2/report.html"' in dom and 'href="../out/r3/report.html"' not in dom
    assert "frontier points per GPU".lower() in dom.lower() and "NVIDIA H100 80GB HBM3" in dom
    assert "te_cpu" in dom
