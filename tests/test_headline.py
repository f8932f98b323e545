"""The headline (report/headline.py), the claims (claims/check.py, ``evalsuite claims``) and the report
that fits (issue 26): planted numbers, real verdicts, and the first screen of report.html in Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from evalsuite.claims.check import ClaimsError, evaluate_claims, load_claims
from evalsuite.report.headline import ReferenceConfigError, build_headline, pick_references
from evalsuite.report.report import write_report
from evalsuite.report.tables import load_view
from evalsuite.results.store import RunStore
from tests.browser import chromium, measure, render
from tests.runfactory import make_dataset, make_run
from tests.test_cli import cli

CONFIGS = ("base-28", "fast-8", "other")


def _noise(i: int) -> float:
    return [0.3, -0.25, 0.2, -0.35, 0.28, -0.22, 0.31, -0.27][i % 8]


def _run(root: Path, weights: str = "hub") -> Path:
    """Three configurations: base-28 (28 steps), fast-8 (its 8-step sibling, planted: CLIP +1 per
    image, 2× slower, aesthetic ±0.3 around the base's) and other (another runner)."""
    ds = make_dataset(root / "ds")
    updates = {}
    for k, case in enumerate(ds.cases):
        updates[("base-28", case.id)] = {"aesthetic": 5.0 + 0.1 * k}
        updates[("fast-8", case.id)] = {"aesthetic": 5.0 + 0.1 * k + _noise(k)}
        updates[("other", case.id)] = {"aesthetic": 4.0}
    run = make_run(root / "run", ds, configs=CONFIGS, weights=weights, row_updates=updates)
    store = RunStore(run)
    meta = store.read_meta()
    meta["configs"]["base-28"].update(runner="fam", params={"steps": 28, "guidance": 3.5, "width": 64})
    meta["configs"]["fast-8"].update(runner="fam", params={"steps": 8, "guidance": 3.5, "width": 64})
    meta["configs"]["other"].update(runner="other-fam", params={"steps": 20, "guidance": 8.0})
    meta["summary"]["base-28"]["metrics"]["fid"] = {
        "value": 12.5,
        "kid": 0.01,
        "n": 8,
        "higher_is_better": False,
    }
    meta["summary"]["fast-8"]["metrics"]["fid"] = {
        "value": 14.0,
        "kid": 0.02,
        "n": 8,
        "higher_is_better": False,
    }
    store.write_meta(meta)
    return run


CLAIMS = {
    "name": "planted",
    "claims": [
        {
            "id": "fast-prompt",
            "text": "fast-8 follows prompts better than base-28",
            "config": "fast-8",
            "reference": "base-28",
            "metric": "clip_score",
            "test": "paired_delta",
            "expect": "better",
            "margin": 0.5,
        },
        {
            "id": "fast-speed",
            "text": "fast-8 is at least 2x faster than base-28",
            "config": "fast-8",
            "reference": "base-28",
            "metric": "latency_s",
            "test": "ratio",
            "at_most": 0.5,
        },
        {
            "id": "fast-aesthetic",
            "text": "fast-8 looks no worse than base-28",
            "config": "fast-8",
            "reference": "base-28",
            "metric": "aesthetic",
            "higher_is_better": True,
            "test": "paired_delta",
            "expect": "not_worse",
            "margin": 0.05,
        },
        {
            "id": "missing",
            "text": "a configuration this run lacks",
            "config": "nope",
            "metric": "clip_score",
            "test": "value",
            "at_least": 1.0,
        },
    ],
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    run = _run(root)
    (run / "claims.yaml").write_text(yaml.safe_dump(CLAIMS), encoding="utf-8")
    return run


def _verdicts(run: Path, claims: object) -> dict[str, str]:
    view = load_view(run)
    cf = load_claims(claims) if isinstance(claims, (str, Path)) else claims
    return {r.claim.id: r.verdict for r in evaluate_claims(cf, view.samples, view.meta)}


# -- claims --------------------------------------------------------------------------------------------
def test_planted_numbers_give_supported_contradicted_inconclusive(planted: Path):
    v = _verdicts(planted, planted / "claims.yaml")
    assert v == {
        "fast-prompt": "supported",  # +1 per paired image, margin 0.5
        "fast-speed": "contradicted",  # fast-8 is ~2x slower, claimed ≥ 2x faster
        "fast-aesthetic": "inconclusive",  # ±0.3 around 0 on 8 pairs, margin 0.05
        "missing": "not measurable",
    }
    view = load_view(planted)
    res = {
        r.claim.id: r for r in evaluate_claims(load_claims(planted / "claims.yaml"), view.samples, view.meta)
    }
    inc = res["fast-aesthetic"].reason
    assert "N=8" in inc and "would decide it" in inc and "N≈" in inc
    assert "nope is not in this run" in res["missing"].reason


def test_quality_claims_are_not_measurable_on_tiny_and_random_weights(tmp_path: Path):
    tiny = _verdicts(_run(tmp_path / "t", weights="tiny"), _claims_file(tmp_path))
    assert set(tiny.values()) == {"not measurable"}
    rnd_run = _run(tmp_path / "r", weights="random")
    view = load_view(rnd_run)
    res = {
        r.claim.id: r for r in evaluate_claims(load_claims(_claims_file(tmp_path)), view.samples, view.meta)
    }
    assert res["fast-prompt"].verdict == "not measurable" and "random weights" in res["fast-prompt"].reason
    assert res["fast-speed"].verdict == "contradicted"  # speed stays measurable on random weights


def _claims_file(tmp_path: Path) -> Path:
    p = tmp_path / "claims.yaml"
    p.write_text(yaml.safe_dump(CLAIMS), encoding="utf-8")
    return p


def test_claims_command_exit_codes(planted: Path, tmp_path: Path):
    r = cli("claims", str(planted), "--claims", str(planted / "claims.yaml"), cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # one claim contradicted
    assert "CONTRADICTED" in r.stdout and "SUPPORTED" in r.stdout and "INCONCLUSIVE" in r.stdout
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"claims": [CLAIMS["claims"][0]]}), encoding="utf-8")
    assert cli("claims", str(planted), "--claims", str(ok), cwd=tmp_path).returncode == 0
    inc = tmp_path / "inc.yaml"
    inc.write_text(yaml.safe_dump({"claims": [CLAIMS["claims"][2]]}), encoding="utf-8")
    assert cli("claims", str(planted), "--claims", str(inc), cwd=tmp_path).returncode == 0
    assert cli("claims", str(planted), "--claims", str(inc), "--strict", cwd=tmp_path).returncode == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "claims:\n  - {id: x, config: a, reference: b, metric: m, test: ratio}\n", encoding="utf-8"
    )
    r = cli("claims", str(planted), "--claims", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "needs 'at_most' and/or 'at_least'" in r.stderr
    assert cli("claims", str(tmp_path / "no-run"), cwd=tmp_path).returncode == 2


@pytest.mark.parametrize(
    "claim, message",
    [
        ({"config": "a", "metric": "m"}, "needs an 'id'"),
        ({"id": "x", "config": "a", "metric": "m", "metrics": ["m"]}, "exactly one of"),
        ({"id": "x", "config": "a", "metric": "m", "test": "paired_delta"}, "give 'reference'"),
        ({"id": "x", "config": "a", "metric": "m", "test": "value", "at_most": "big"}, "finite number"),
        ({"id": "x", "config": "a", "metric": "m", "tset": "value"}, "unknown field(s) tset"),
    ],
)
def test_bad_claims_are_refused_naming_the_claim(tmp_path: Path, claim: dict, message: str):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"claims": [claim]}), encoding="utf-8")
    with pytest.raises(ClaimsError, match="claims\\[0\\]") as exc:
        load_claims(p)
    assert message in str(exc.value)


def test_shipped_claims_load():
    cf = load_claims("alimama-flux")
    assert cf.name == "alimama-flux" and len(cf.claims) >= 6
    ids = {c.id for c in cf.claims}
    assert {"turbo-speed", "turbo-small-loss", "fits-22gib", "unmasked-fidelity"} <= ids


# -- headline ------------------------------------------------------------------------------------------
def test_headline_orders_pairs_and_measures(planted: Path):
    view = load_view(planted)
    head = build_headline(view.samples, view.meta)
    assert [r.config for r in head.rows] == ["base-28", "fast-8", "other"]  # family, then steps
    fast = head.row("fast-8")
    assert fast is not None and fast.reference == "base-28" and fast.n_pairs == 8
    assert fast.speedup is not None and fast.speedup.value == pytest.approx(0.5, rel=0.1)  # 2x slower
    clip = next(d for d in fast.deltas if d.metric == "clip_score")
    assert clip.value == pytest.approx(1.0, abs=0.05) and clip.low > 0.9
    assert "slower than base-28" in fast.verdict and "CLIP +" in fast.verdict and "(better)" in fast.verdict
    assert fast.cells["fid"].value == 14.0 and fast.cells["kid"].value == 0.02
    assert head.row("other").reference is None  # type: ignore[union-attr]
    assert head.row("base-28").verdict.startswith("base-28: reference of fast-8; ")  # type: ignore[union-attr]
    assert head.row("other").verdict.startswith("other: no sibling to compare with")  # type: ignore[union-attr]
    assert any(h.startswith("FID") for _, h in head.metrics)
    forced = build_headline(view.samples, view.meta, reference="other")
    assert forced.row("base-28").reference == "other"  # type: ignore[union-attr]
    with pytest.raises(ReferenceConfigError, match="nope"):
        build_headline(view.samples, view.meta, reference="nope")


def test_pick_references_takes_the_28_step_sibling():
    configs = {
        "a": {"runner": "r", "params": {"steps": 28, "cn": "alpha", "w": 768}},
        "b": {"runner": "r", "params": {"steps": 28, "cn": "beta", "w": 1024}},
        "b8": {"runner": "r", "params": {"steps": 8, "cn": "beta", "w": 1024, "lora": "turbo"}},
        "x": {"runner": "s", "params": {"steps": 20}},
    }
    assert pick_references(configs) == {"a": None, "b": None, "b8": "b", "x": None}


# -- the report ----------------------------------------------------------------------------------------
def test_report_opens_on_headline_and_claims(planted: Path):
    md = write_report(planted).read_text(encoding="utf-8")
    assert (
        md.index("## Headline")
        < md.index("## Claims (planted)")
        < md.index("## Run")
        < md.index("## Summary")
    )
    assert "**contradicted**" in md and "**supported**" in md and "**inconclusive**" in md
    heads = md.split("## Headline")[1].splitlines()[2]
    assert "FID" in heads and "KID" in heads
    assert "| rank" not in md and "first_call" not in md and "_truncated" not in md
    # parameters that differ only; all of them in a collapsed block
    conf = md.split("## Configurations")[1].split("<details>")[0]
    metrics = md.split("### Metrics: mean")[1].split("\n\n")[1]
    assert (
        "| fid ↓ |" in metrics.splitlines()[0] and "| 12.5 (set, N=8) |" in metrics
    )  # FID in the main table
    base_row = conf.split("| base-28 |")[1].split("\n")[0]
    assert "steps=28, guidance=3.5" in base_row and "width" not in base_row  # same in all that have it


def test_intervals_from_fewer_than_5_values_are_marked(tmp_path: Path):
    run = make_run(tmp_path / "run", make_dataset(tmp_path / "ds", n=4))
    md = write_report(run).read_text(encoding="utf-8")
    metrics = md.split("### Metrics: mean")[1].split("\n\n")[1]
    assert "N=4†" in metrics and "† N < 5: the interval is not reliable." in md
    head = md.split("## Headline")[1].split("## Claims")[0]
    assert "†" in head


def test_skips_are_grouped_by_reason(tmp_path: Path):
    ds = make_dataset(tmp_path / "ds")
    statuses = {
        (cfg, c.id): ("skipped", f"case {c.id!r} has no image and mask: X is an inpainting runner")
        for cfg in ("cfg-fast", "cfg-slow")
        for c in ds.cases
        if c.image is None
    }
    run = make_run(tmp_path / "run", ds, statuses=statuses)
    md = write_report(run).read_text(encoding="utf-8")
    section = md.split("## Failures and skips")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| skipped")]
    assert len(rows) == 1 and "| 8 |" in rows[0] and "cfg-fast ×4, cfg-slow ×4" in rows[0]


def test_pngs_carry_the_no_quality_evidence_mark(tmp_path: Path):
    run = _run(tmp_path, weights="tiny")
    write_report(run)
    pngs = sorted((run / "plots").glob("*.png")) + sorted((run / "grids").glob("*.png"))
    assert pngs
    for p in pngs:
        band = np.asarray(Image.open(p).convert("RGB"))[:18, :, :].reshape(-1, 3)
        red = (band[:, 0] > 150) & (band[:, 1] < 40) & (band[:, 2] < 60)
        assert red.mean() > 0.5, p.name
    hub = _run(tmp_path / "hub", weights="hub")
    write_report(hub)
    top = np.asarray(Image.open(next((hub / "grids").glob("*.png"))).convert("RGB"))[:18].reshape(-1, 3)
    assert ((top[:, 0] > 150) & (top[:, 1] < 40)).mean() < 0.1


def test_grid_labels_in_any_script(tmp_path: Path, monkeypatch):
    from evalsuite.report import grids

    cjk = "一只戴着红围巾的宇航员"
    if any(ord(cjk[0]) in cmap for _, cmap in grids._system_fonts()):  # a CJK font on this machine
        font = grids._font_for(cjk, 12)
        assert font is not None and font.getlength(cjk) > 0
    ds = make_dataset(tmp_path / "ds", prompt=lambda i: cjk if i == 0 else "ok")
    run = make_run(tmp_path / "run", ds)
    write_report(run)
    assert (run / "grids" / "grid_inpaint.png").is_file()
    # no font covers the text: the grid shows the case id and leaves the prompt to the HTML
    monkeypatch.setattr(grids, "_system_fonts", lambda: ())
    grids._font_for.cache_clear()
    try:
        assert grids._font_for(cjk, 12) is None and grids._font_for("plain", 12) is not None
        tile = grids.Tile(Image.new("RGB", (8, 8)))
        img = grids.compose(["a"], [(f"case-0 {cjk}", [tile])], "t", 32)
        assert img.size[0] > 0
    finally:
        grids._font_for.cache_clear()


# -- the browser: the first screen ---------------------------------------------------------------------
@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_first_screen_at_1400px_shows_headline_and_claims(planted: Path, tmp_path: Path):
    write_report(planted)
    m = measure(planted / "report.html", tmp_path, 1400, 900)
    assert m["scrollWidth"] <= 1400, m  # no horizontal scroll
    assert m["headlineBottom"] is not None and m["headlineBottom"] <= 900, m
    assert m["claimsBottom"] is not None and m["claimsBottom"] <= 900, m
    assert any(str(h).startswith("FID") for h in m["headlineHeads"]), m  # type: ignore[union-attr]
    shot = render(planted / "report.html", tmp_path, 1400, 900)
    assert not shot.console, shot.console
    Image.fromarray(shot.screenshot.astype(np.uint8)).save(tmp_path / "first-screen.png")


def test_grids_compare_only_configurations_evaluated_on_their_cases(tmp_path: Path):
    """A text-to-image configuration (it ran the prompt-only cases) is no column of the inpainting
    grid when the run also has inpainting configurations; an inpainting configuration (it ran only
    the inpainting cases) is no column of the text-to-image grid."""
    from evalsuite.report.grids import run_grids

    ds = make_dataset(tmp_path / "ds")
    statuses = {("inp", c.id): ("skipped", "no image and mask") for c in ds.cases if c.image is None}
    run = make_run(tmp_path / "run", ds, configs=("inp", "t2i"), statuses=statuses)
    view = load_view(run)
    written = run_grids(run, view.samples, view.configs, ds, tmp_path / "grids")
    widths = {k: Image.open(tmp_path / "grids" / f).size[0] for k, f, _ in written}
    one_column = widths["grid_t2i"]  # label + 1 configuration
    assert widths["grid_inpaint"] == one_column + 2 * (192 + 4)  # source, mask, one configuration


def test_memory_claims_read_a_plan_run():
    """A plan run's points (`<config>[<strategy>]`): the lowest ok peak counts (some strategy fits);
    random weights keep memory claims measurable, tiny weights do not."""
    import pandas as pd

    claim = load_claims("alimama-flux")
    fits = [c for c in claim.claims if c.id == "fits-22gib"]

    def plan(peaks: dict[str, tuple[str, float]], weights: str) -> dict[str, str]:
        rows = pd.DataFrame(
            [
                {
                    "config": f"flux-cn-beta-turbo8[{s}]",
                    "case_id": "-",
                    "seed": 0,
                    "status": st,
                    "nvml_peak_gib": p,
                }
                for s, (st, p) in peaks.items()
            ]
        )
        meta = {"kind": "plan", "weights": {f"flux-cn-beta-turbo8[{s}]": weights for s in peaks}}
        return {r.claim.id: r.verdict for r in evaluate_claims(fits, rows, meta)}

    two = {"resident": ("ok", 31.5), "model_offload": ("ok", 17.9), "sequential": ("oom", 5.0)}
    assert plan(two, "random") == {"fits-22gib": "supported"}
    assert plan({"resident": ("ok", 31.5), "sequential": ("oom", 5.0)}, "random") == {
        "fits-22gib": "contradicted"
    }
    assert plan(two, "tiny") == {"fits-22gib": "not measurable"}
