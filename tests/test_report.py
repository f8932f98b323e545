import html.parser
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as sps

from evalsuite.report.grids import paste_back
from evalsuite.report.plots import pareto_front
from evalsuite.report.report import build, render_markdown, write_report
from evalsuite.trackers import stats as stats
from tests.browser import chromium, render
from tests.runfactory import XSS_PROMPT, make_dataset, make_run


def _make(root: Path) -> Path:
    ds = make_dataset(root / "ds", prompt=lambda i: XSS_PROMPT if i == 0 else f"prompt {i} | with pipe")
    return make_run(
        root / "run",
        ds,
        weights="tiny",
        statuses={
            ("cfg-slow", "case-3"): ("error", "generate: RuntimeError: CUDA out of memory <b>boom</b>"),
            ("cfg-slow", "case-5"): ("skipped", "mask is empty"),
        },
    )


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic run (XSS prompt, an error, a skip) whose report has been written once."""
    run = _make(tmp_path_factory.mktemp("reported"))
    write_report(run)
    return run


# -- statistics ------------------------------------------------------------------------------------
def test_bootstrap_mean_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(3).gamma(2.0, 1.5, size=60)
    est = stats.bootstrap_mean(x, n_boot=4000)
    ref = sps.bootstrap(
        (x,), np.mean, n_resamples=4000, method="percentile", random_state=1
    ).confidence_interval
    assert est.value == pytest.approx(x.mean()) and est.n == 60
    width = ref.high - ref.low
    assert est.low == pytest.approx(ref.low, abs=0.1 * width)
    assert est.high == pytest.approx(ref.high, abs=0.1 * width)
    assert est.low < est.value < est.high


def test_bootstrap_mean_edge_cases():
    assert math.isnan(stats.bootstrap_mean([]).value)
    one = stats.bootstrap_mean([2.0, float("nan")])
    assert one.value == 2.0 and one.n == 1 and math.isnan(one.low)
    const = stats.bootstrap_mean([1.5] * 10)
    assert const.low == const.high == 1.5


def test_sign_flip_pvalue_matches_scipy_exact_permutation_test():
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.4, -0.05, 0.25, 0.1])
    ref = sps.permutation_test(
        (d,), np.mean, permutation_type="samples", alternative="two-sided", n_resamples=np.inf
    ).pvalue
    assert stats.sign_flip_pvalue(d) == pytest.approx(ref)
    assert stats.sign_flip_pvalue(np.zeros(5)) == 1.0
    big = np.random.default_rng(0).normal(1.0, 0.5, 40)
    assert stats.sign_flip_pvalue(big) < 0.001
    noise = np.random.default_rng(1).normal(0.0, 1.0, 40)
    assert stats.sign_flip_pvalue(noise) > 0.05


def test_paired_ratio_of_medians():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    est = stats.paired_ratio_of_medians(a, 2 * a)
    assert (
        est.value == pytest.approx(2.0) and est.low == pytest.approx(2.0) and est.high == pytest.approx(2.0)
    )
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_ratio_of_medians(a, a[:3])


def test_pareto_front():
    # (latency, quality↑): B dominates D; A fastest; C best
    xs, ys = [1.0, 2.0, 3.0, 2.5], [0.5, 0.7, 0.9, 0.6]
    assert pareto_front(xs, ys, higher_is_better=True) == [0, 1, 2]
    assert pareto_front(xs, ys, higher_is_better=False) == [0]
    assert pareto_front([1.0, float("nan")], [1.0, 2.0], True) == [0]


def test_paste_back_keeps_source_outside_mask():
    img, src = np.full((4, 4, 3), 9), np.zeros((4, 4, 3))
    m = np.zeros((4, 4), bool)
    m[1:3, 1:3] = True
    out = paste_back(img, src, m)
    assert (out[m] == 9).all() and (out[~m] == 0).all()
    with pytest.raises(ValueError, match="shapes differ"):
        paste_back(img, src[:2], m)


# -- the report ------------------------------------------------------------------------------------
def test_report_writes_every_file(reported: Path):
    run_dir = reported
    md_path = run_dir / "report.md"
    for f in (
        "report.md",
        "report.html",
        "summary.csv",
        "grids/grid_inpaint.png",
        "grids/grid_inpaint_pasteback.png",
        "grids/grid_t2i.png",
    ):
        assert (run_dir / f).stat().st_size > 0, f
    for stem in (
        "quality_vs_latency_clip_score",
        "quality_vs_latency_lpips",
        "vram",
        "step_latency",
        "dist_clip_score",
        "dist_lpips",
        "dist_latency_s",
    ):
        for ext in ("png", "svg"):
            assert (run_dir / "plots" / f"{stem}.{ext}").stat().st_size > 0, stem
        png = np.asarray(Image.open(run_dir / "plots" / f"{stem}.png").convert("L"))
        assert png.std() > 5  # not a blank canvas
    text = md_path.read_text()
    # every plot / grid referenced by the Markdown exists
    import re

    for ref in re.findall(r"\]\(([^)]+\.(?:png|svg))\)", text):
        assert (run_dir / ref).is_file(), ref
    assert "NO quality evidence" in text.splitlines()[0]


def test_summary_csv_means_cis_and_groups(reported: Path):
    run_dir = reported
    s = pd.read_csv(run_dir / "summary.csv")
    df = pd.read_parquet(run_dir / "samples.parquet")
    ok = df[(df.status == "ok") & (df.config == "cfg-slow")]
    row = s[(s.config == "cfg-slow") & (s.group_by == "all") & (s.quantity == "clip_score")].iloc[0]
    assert row["n"] == len(ok) == 6
    assert row["mean"] == pytest.approx(ok["clip_score"].mean())
    assert row["ci95_low"] < row["mean"] < row["ci95_high"]
    assert row["higher_is_better"] and row["kind"] == "metric" and not row["quality_evidence"]  # tiny weights
    cat = s[(s.config == "cfg-slow") & (s.group_by == "category") & (s.quantity == "lpips")]
    for _, r in cat.iterrows():
        assert r["mean"] == pytest.approx(ok[ok.category == r["group"]]["lpips"].mean())
    fam = s[(s.group_by == "mask_family") & (s.quantity == "clip_score")]
    assert set(fam["group"]) == {"rectangle", "ellipse", "none"}
    assert {"latency_s", "peak_allocated_gib", "denoise_s"} <= set(s["quantity"])
    lat = s[(s.config == "cfg-fast") & (s.group_by == "all") & (s.quantity == "latency")].iloc[0]
    assert lat["headline"] == pytest.approx(df[(df.config == "cfg-fast")]["latency_s"].median())


def test_markdown_sections_failures_and_speed(reported: Path):
    run_dir = reported
    text = (run_dir / "report.md").read_text()
    for section in (
        "## Configurations",
        "### Metrics: mean [bootstrap 95 % CI] N",
        "### Speed and memory",
        "## Failures and skips",
        "## By category",
        "## By mask family",
        "## Plots",
        "## Image grids",
    ):
        assert section in text, section
    assert "CUDA out of memory &lt;b&gt;boom&lt;/b&gt;" in text and "mask is empty" in text
    assert "case-3#103" in text
    df = pd.read_parquet(run_dir / "samples.parquet")
    lat = df[(df.config == "cfg-slow") & (df.status == "ok")]["latency_s"]
    speed_line = next(
        x for x in text.split("### Speed and memory")[1].splitlines() if x.startswith("| cfg-slow |")
    )
    cells = [c.strip() for c in speed_line.strip("|").split("|")]
    assert cells[1] == "6" and float(cells[2]) == pytest.approx(lat.median(), rel=1e-3)
    assert float(cells[5]) == pytest.approx(15.0)  # peak VRAM allocated, max over rows
    assert "Fake GPU" in text and "abc123" in text and "fingerprint" in text


def test_banner_for_random_metric_networks_and_none_for_hub(tmp_path: Path):
    ds = make_dataset(tmp_path / "ds", n=4)
    weak = build(make_run(tmp_path / "r1", ds, weights="hub", quality_evidence=False), assets=False)
    text = render_markdown(weak.meta, weak)
    assert "random metric feature networks" in text.splitlines()[0] and "clip_score" in text.splitlines()[1]
    good = build(make_run(tmp_path / "r2", ds, weights="hub"), assets=False)
    assert "WARNING" not in render_markdown(good.meta, good)


def test_meta_only_markdown_still_renders(reported: Path):
    from evalsuite.results.store import RunStore

    text = render_markdown(RunStore(reported).read_meta())
    assert text.startswith("> **WARNING") and "## Summary (run.json)" in text


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_escapes_user_text(reported: Path):
    run_dir = reported
    page = (run_dir / "report.html").read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;console.error(&#34;XSS-SCRIPT&#34;)&lt;/script&gt;" in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page
    p = _Tags()
    p.feed(page)
    assert not any(t == "script" for t, _ in p.tags)
    assert not any(k.startswith("on") for _, a in p.tags for k in a)
    imgs = [a["src"] for t, a in p.tags if t == "img"]
    assert imgs and all((run_dir / s).is_file() for s in imgs)
    assert not any(s.startswith(("http:", "https:", "//")) for s in imgs)
    assert "<style>" in page and "<link" not in page


def test_html_embed_images_is_a_single_file(reported: Path):
    from evalsuite.report.plots import Plot
    from evalsuite.report.report import render_html

    data = build(reported, assets=False)
    data.plots = [Plot("vram", "VRAM", "plots/vram.png", "plots/vram.svg", "caption")]
    data.grids = [("grid_inpaint", "grids/grid_inpaint.png", "grid caption")]
    p = _Tags()
    p.feed(render_html(data, embed=True))
    srcs = [a["src"] for t, a in p.tags if t == "img"]
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_report_without_dataset_or_cuda_columns(tmp_path: Path):
    ds = make_dataset(tmp_path / "ds", n=4)
    run = make_run(tmp_path / "run", ds, cuda=False)
    shutil.rmtree(tmp_path / "ds")
    text = write_report(run).read_text()
    assert not (run / "plots" / "vram.png").exists()
    assert "could not be loaded" in text and not (run / "grids").exists()
    assert "peak VRAM alloc." not in text


def test_report_of_empty_and_all_failed_runs(tmp_path: Path):
    from evalsuite.results.store import RunStore

    ds = make_dataset(tmp_path / "ds", n=2)
    failed = make_run(
        tmp_path / "failed",
        ds,
        configs=("only",),
        statuses={("only", f"case-{i}"): ("error", "load: OSError: no weights") for i in range(2)},
    )
    text = write_report(failed).read_text()
    # failures grouped by reason: status, count, reason, configurations (with counts), cases
    assert "| error | 2 | load: OSError: no weights | only ×2 | case-0#100, case-1#101 |" in text
    assert not (failed / "plots").exists() or not any((failed / "plots").iterdir())
    empty = RunStore(tmp_path / "empty")
    empty.path.mkdir()
    empty.write_meta(
        {
            "run_id": "empty",
            "weights": {"x": "hub"},
            "configs": {"x": {"runner": "r", "params": {}, "load_error": "OSError: nope"}},
        }
    )
    text = write_report(empty.path).read_text()
    assert "| error | 0 | load: OSError: nope | x |" in text and (empty.path / "report.html").is_file()


# -- headless browser --------------------------------------------------------------------------------
@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(reported: Path, tmp_path: Path):
    r = render(reported / "report.html", tmp_path)
    assert r.screenshot.shape == (2000, 1280)
    assert r.screenshot.std() > 10 and (r.screenshot < 128).mean() > 0.01  # text, banner, figures: not blank
    assert not r.console, (
        r.console
    )  # console errors and CSP violations (image files: test_html_escapes_user_text)
    assert "XSS" not in r.stderr
    assert "WARNING" in r.dom and "<script" not in r.dom.lower()


@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_browser_check_detects_console_errors(tmp_path: Path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><p>x</p><img src="missing.png">'
        '<script>console.error("planted-error")</script></body></html>'
    )
    r = render(page, tmp_path)
    assert any("planted-error" in line for line in r.console), r.stderr[-2000:]


# -- writing: nothing half-written (issue 17) ---------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_failing_report_leaves_the_previous_files_untouched(tmp_path: Path, monkeypatch):
    import evalsuite.report.report as R

    run = _make(tmp_path)
    write_report(run)
    before = _tree(run)
    assert "report.html" in before and any(k.startswith("plots/") for k in before)

    def boom(*a, **k):
        raise RuntimeError("disk full while rendering")

    from evalsuite.results.store import RunStore

    store = RunStore(run)
    meta = store.read_meta()
    old_name, meta["run_id"] = meta["run_id"], "renamed-run"  # the next report differs
    store.write_meta(meta)
    before["run.json"] = store.run_json.read_bytes()
    monkeypatch.setattr(R, "render_html", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(run)
    assert _tree(run) == before  # plots, grids, report.md and summary.csv were only staged
    assert (
        old_name in (run / "report.md").read_text() and "renamed-run" not in (run / "report.md").read_text()
    )
    monkeypatch.undo()
    assert "renamed-run" in write_report(run).read_text()
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # the staging folder is gone


def test_staging_left_by_a_killed_report_is_removed_later(tmp_path: Path):
    import os
    import time

    run = _make(tmp_path)
    stale, fresh = run / ".report.killed", run / ".report.running"
    for d in (stale, fresh):
        (d / "plots").mkdir(parents=True)
        (d / "plots" / "x.png").write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    write_report(run)
    assert not stale.exists() and fresh.is_dir()  # a staging folder younger than an hour may be in use
    assert not (run / "plots" / "x.png").exists()
