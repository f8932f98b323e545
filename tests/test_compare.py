import json
from pathlib import Path

import pytest

from evalsuite.cli.main import main
from evalsuite.compare.engine import (
    CompareInputError,
    compare_runs,
    load_thresholds,
    most_changed,
    write_compare,
)
from tests.browser import chromium, render
from tests.runfactory import copy_run, make_dataset, make_run
from tests.test_cli import cli

THRESHOLDS = """\
thresholds:
  - metric: clip_score
    max_regression: 0.5
    mode: absolute
  - metric: lpips
    max_regression: 0.10
    mode: relative
  - metric: latency_s
    max_regression: 0.20
    mode: relative
"""


@pytest.fixture(scope="module")
def regression_out(runs) -> Path:
    """compare.* of the injected regression, written once through the CLI (exit code 1)."""
    out = runs["root"] / "regression-out"
    assert (
        _cli(
            str(runs["base"]),
            str(runs["worse"]),
            "--thresholds",
            str(runs["root"] / "thresholds.yaml"),
            "--out",
            str(out),
        )
        == 1
    )
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cmp")
    ds = make_dataset(root / "ds")
    other = make_dataset(root / "ds2", prompt=lambda i: f"another prompt {i}")
    base = make_run(root / "base", ds, seed=0)
    (root / "thresholds.yaml").write_text(THRESHOLDS)
    return {
        "root": root,
        "base": base,
        "same": copy_run(base, root / "same"),
        "noise": make_run(
            root / "noise",
            ds,
            seed=0,
            row_shift={  # clip_score: mean −0.01, but ±0.1 per image
                (c, f"case-{k}"): {"clip_score": 0.1 if k % 2 else -0.12}
                for c in ("cfg-fast", "cfg-slow")
                for k in range(8)
            },
        ),
        "worse": make_run(
            root / "worse",
            ds,
            seed=1,
            shift={"clip_score": -2.0},
            row_updates={("cfg-fast", "case-6"): {"lpips": 0.95}},
        ),
        "slower": make_run(root / "slower", ds, seed=1, latency_scale=1.5),
        "failing": make_run(
            root / "failing", ds, seed=1, statuses={("cfg-fast", "case-2"): ("error", "generate: boom")}
        ),
        "other_data": make_run(root / "other_data", other, seed=1),
        "other_configs": make_run(root / "other_configs", ds, configs=("cfg-new",)),
    }


def _cli(*args: str) -> int:
    return main(["compare", *args])


def test_no_change_exits_0_and_writes_outputs(runs, tmp_path: Path):
    out = tmp_path / "c"
    assert (
        _cli(
            str(runs["base"]),
            str(runs["same"]),
            "--thresholds",
            str(runs["root"] / "thresholds.yaml"),
            "--out",
            str(out),
        )
        == 0
    )
    for f in (
        "compare.md",
        "compare.html",
        "compare.json",
        "most_changed.png",
        "plots/relative_change.png",
        "plots/a/vram.png",
        "plots/b/vram.svg",
        "plots/a/quality_vs_latency_clip_score.png",
    ):
        assert (out / f).stat().st_size > 0, f
    doc = json.loads((out / "compare.json").read_text())
    assert doc["exit_code"] == 0 and doc["verdict"].startswith("PASS")
    assert {v["status"] for v in doc["verdicts"]} == {"pass"} and len(
        doc["verdicts"]
    ) == 6  # 3 thresholds × 2 configs
    clip = next(c for c in doc["changes"] if c["config"] == "cfg-fast" and c["quantity"] == "clip_score")
    assert clip["change"] == 0 and clip["p_value"] == 1.0 and clip["n"] == 8
    lat = next(c for c in doc["changes"] if c["config"] == "cfg-fast" and c["quantity"] == "latency_s")
    assert lat["kind"] == "ratio" and lat["ratio"] == pytest.approx(1.0)
    text = (out / "compare.md").read_text()
    assert "**Verdict: PASS" in text and "| A | B |" in text


def test_noise_within_thresholds_exits_0(runs):
    cmp = compare_runs(runs["base"], runs["noise"], load_thresholds(runs["root"] / "thresholds.yaml"))
    assert cmp.exit_code == 0 and {v.status for v in cmp.verdicts} == {"pass"}


def test_injected_regression_exits_1(runs, regression_out: Path):
    out = regression_out
    text = (out / "compare.md").read_text()
    assert "**Verdict: REGRESSION: 3 threshold(s) exceeded**" in text and "(exit code 1)" in text
    doc = json.loads((out / "compare.json").read_text())
    clip = next(c for c in doc["changes"] if c["config"] == "cfg-slow" and c["quantity"] == "clip_score")
    assert clip["change"] == pytest.approx(-2.0, abs=0.02)
    assert clip["high"] < -1.9 and clip["p_value"] < 0.01  # 8 pairs: exact sign-flip p = 2/256
    lp = [v for v in doc["verdicts"] if v["metric"] == "lpips"]
    assert {v["config"]: v["status"] for v in lp} == {"cfg-fast": "REGRESSION", "cfg-slow": "pass"}
    assert "REGRESSION" in (out / "compare.html").read_text()


def test_most_changed_ranks_by_paired_lpips(runs, tmp_path: Path):
    cmp = compare_runs(runs["base"], runs["worse"])
    top, what = most_changed(cmp, k=3)
    assert what == "ranked by |LPIPS(B) − LPIPS(A)| per paired image (column lpips)"
    assert (top.iloc[0]["config"], top.iloc[0]["case_id"]) == ("cfg-fast", "case-6")
    assert list(top["score"]) == sorted(top["score"], reverse=True)
    out = write_compare(cmp, tmp_path / "c", k=3)
    doc = json.loads((out / "compare.json").read_text())
    assert doc["most_changed"]["ranked_by"] == what and doc["most_changed"]["rows"][0]["case_id"] == "case-6"
    assert "<th>|Δ LPIPS|</th>" in (out / "compare.html").read_text()
    assert "(column lpips)" in (out / "compare.md").read_text()


def _rename_lpips(run: Path, new: str | None, nan_for: tuple[str, ...] = ()) -> None:
    """Rename (or drop, ``new=None``) the runs' ``lpips`` column; NaN for the ``nan_for`` case ids."""
    import pandas as pd

    df = pd.read_parquet(run / "samples.parquet")
    df = df.drop(columns=["lpips"]) if new is None else df.rename(columns={"lpips": new})
    if new is not None:
        df.loc[df["case_id"].isin(nan_for), new] = float("nan")
    df.to_parquet(run / "samples.parquet")


def test_most_changed_uses_the_real_per_image_lpips_column(runs, tmp_path: Path):
    # real runs have no `lpips` column: the inpainting metric is unmasked_lpips
    a, b = copy_run(runs["base"], tmp_path / "a"), copy_run(runs["worse"], tmp_path / "b")
    for run in (a, b):
        _rename_lpips(run, "unmasked_lpips")
    top, what = most_changed(compare_runs(a, b), k=2)
    assert what.endswith("(column unmasked_lpips)") and top.iloc[0]["case_id"] == "case-6"
    # a column missing on some paired rows (text-to-image rows have no unmasked LPIPS): pixels, and why
    for run in (a, b):
        _rename_lpips(run, "unmasked_lpips", nan_for=("case-0",))
    top, what = most_changed(compare_runs(a, b), k=2)
    assert what.startswith("ranked by mean |B − A| pixel difference") and "not LPIPS" in what
    assert "unmasked_lpips is missing for 2 of 16 paired rows" in what


def test_pixel_change_ranking_without_lpips(runs, tmp_path: Path):
    ds = make_dataset(tmp_path / "ds", n=4)
    a = make_run(tmp_path / "a", ds)
    b = copy_run(a, tmp_path / "b")
    from PIL import Image

    img = b / "images" / "cfg-slow" / "case-1-101.png"
    Image.new("RGB", (32, 32), (255, 0, 255)).save(img)
    for run in (a, b):
        _rename_lpips(run, None)
    top, what = most_changed(compare_runs(a, b), k=2)
    assert what.startswith("ranked by mean |B − A| pixel difference") and "no per-image LPIPS column" in what
    assert (top.iloc[0]["config"], top.iloc[0]["case_id"]) == ("cfg-slow", "case-1")
    assert top.iloc[1]["score"] == 0


def test_slower_latency_ratio_regresses_relative_threshold(runs, tmp_path: Path):
    th = tmp_path / "t.yaml"
    th.write_text("- {metric: latency_s, max_regression: 0.2, mode: relative, configs: [cfg-fast]}\n")
    cmp = compare_runs(runs["base"], runs["slower"], load_thresholds(th))
    (v,) = cmp.verdicts
    assert (
        cmp.exit_code == 1
        and v.status == "REGRESSION"
        and v.change == pytest.approx(0.5 * 0.4 / (0.4 + 0.006 + 0.05 + 0.0035), rel=0.05)
    )
    th.write_text("- {metric: latency_s, max_regression: 0.6, mode: relative}\n")
    assert compare_runs(runs["base"], runs["slower"], load_thresholds(th)).exit_code == 0


def test_require_significance_suppresses_noise(runs, tmp_path: Path):
    th = tmp_path / "t.yaml"
    th.write_text("- {metric: clip_score, max_regression: 0.0, require_significance: true}\n")
    assert compare_runs(runs["base"], runs["noise"], load_thresholds(th)).exit_code == 0
    assert compare_runs(runs["base"], runs["worse"], load_thresholds(th)).exit_code == 1
    th.write_text("- {metric: clip_score, max_regression: 0.0}\n")
    noisy = compare_runs(runs["base"], runs["noise"], load_thresholds(th))
    assert {v.status for v in noisy.verdicts} == {"REGRESSION"}  # −0.01 on average, not significant
    (c,) = [c for c in noisy.changes if c.config == "cfg-fast" and c.quantity == "clip_score"]
    assert c.change == pytest.approx(-0.01) and c.low < 0 < c.high and c.p_value > 0.5


def test_new_failures_exit_1_without_thresholds(runs):
    from evalsuite.report.compare import render_markdown

    assert compare_runs(runs["base"], runs["same"]).exit_code == 0
    cmp = compare_runs(runs["base"], runs["failing"])
    assert cmp.exit_code == 1 and list(cmp.new_failures["case_id"]) == ["case-2"]
    assert "generate: boom" in render_markdown(cmp)
    assert cmp.shared == {"cfg-fast": 7, "cfg-slow": 8}


def test_partly_shared_configurations_are_noted(runs, tmp_path: Path):
    from evalsuite.data.cases import load_manifest

    b = make_run(tmp_path / "b", load_manifest(runs["root"] / "ds"), configs=("cfg-fast", "cfg-new"))
    cmp = compare_runs(runs["base"], b)
    assert cmp.shared == {"cfg-fast": 8}
    assert any("only in A: cfg-slow; only in B: cfg-new" in n for n in cmp.notes)


def test_mismatched_data_exits_2_unless_allowed(runs, tmp_path: Path, capsys):
    assert _cli(str(runs["base"]), str(runs["other_data"]), "--out", str(tmp_path / "c")) == 2
    assert "different data" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    cmp = compare_runs(runs["base"], runs["other_data"], allow_different_data=True)
    assert cmp.exit_code == 0 and any("allowed by --allow-different-data" in n for n in cmp.notes)


def test_no_shared_rows_exits_2(runs, tmp_path: Path, capsys):
    assert _cli(str(runs["base"]), str(runs["other_configs"]), "--out", str(tmp_path / "c")) == 2
    assert "no (configuration, case, seed) row is ok in both runs" in capsys.readouterr().err


def test_compare_help_lists_exit_codes(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["compare", "--help"])
    assert ei.value.code == 0 and "--thresholds" in capsys.readouterr().out


def test_not_a_run_directory_exits_2(runs, tmp_path: Path):
    assert _cli(str(runs["base"]), str(tmp_path)) == 2


@pytest.mark.parametrize(
    "content, message",
    [
        ("- {metric: clip_score}\n", "'max_regression' must be a number >= 0"),
        ("- {metric: clip_score, max_regression: -1}\n", "'max_regression' must be a number >= 0"),
        ("- {metric: clip_score, max_regression: 1, mode: percent}\n", "'mode' must be"),
        ("- {metric: clip_score, max_regression: 1, treshold: 2}\n", "unknown field(s) treshold"),
        ("- {metric: clip_score, max_regression: 1, direction: up}\n", "'direction' must be"),
        ("metric: clip_score\n", "expected a list"),
        ("- [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_thresholds_file(tmp_path: Path, content, message):
    f = tmp_path / "t.yaml"
    f.write_text(content)
    with pytest.raises(CompareInputError, match="t.yaml") as ei:
        load_thresholds(f)
    assert message in str(ei.value)


def test_threshold_on_unmeasured_metric_or_config_exits_2(runs, tmp_path: Path, capsys):
    th = tmp_path / "t.yaml"
    th.write_text("- {metric: aesthetic, max_regression: 1}\n")
    assert (
        _cli(str(runs["base"]), str(runs["same"]), "--thresholds", str(th), "--out", str(tmp_path / "c")) == 2
    )
    assert "'aesthetic': not measured in both runs" in capsys.readouterr().err
    th.write_text("- {metric: clip_score, max_regression: 1, configs: [cfg-nope]}\n")
    assert (
        _cli(str(runs["base"]), str(runs["same"]), "--thresholds", str(th), "--out", str(tmp_path / "c")) == 2
    )


def test_compare_html_has_no_scripts_and_side_by_side_plots(regression_out: Path):
    page = (regression_out / "compare.html").read_text()
    assert (
        page.count('<div class="side">') >= 5
        and 'src="plots/a/vram.png"' in page
        and 'src="plots/b/vram.png"' in page
    )
    assert "<script" not in page.lower() and "<style>" in page


@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_compare_renders_in_headless_chromium(regression_out: Path, tmp_path: Path):
    r = render(regression_out / "compare.html", tmp_path)
    assert r.screenshot.std() > 10 and not r.console, r.console
    assert "REGRESSION" in r.dom


# -- a real smoke run ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_tiny_run_report_and_compare(tmp_path: Path):
    import evalsuite

    ds = evalsuite.load_dataset("smoke").select(ids=["inpaint-astronaut", "t2i-0"])
    res = evalsuite.run(
        configs=["flux-dev", "flux-dev-inpaint"],
        dataset=ds,
        weights="tiny",
        overrides=["steps=1"],
        run_dir=tmp_path / "a",
        progress=False,
    )
    assert res.ok
    # each configuration on the cases it can use (issue 26): no skipped rows
    assert sorted(zip(res.samples["config"], res.samples["case_id"], strict=True)) == [
        ("flux-dev", "inpaint-astronaut"),
        ("flux-dev", "t2i-0"),
        ("flux-dev-inpaint", "inpaint-astronaut"),
    ]
    for f in (
        "report.md",
        "report.html",
        "summary.csv",
        "plots/step_latency.png",
        "plots/step_latency.svg",
        "grids/grid_inpaint.png",
        "grids/grid_inpaint_pasteback.png",
        "grids/grid_t2i.png",
    ):
        assert (res.run_dir / f).stat().st_size > 0, f
    copy_run(res.run_dir, tmp_path / "b")
    rep = cli("report", str(tmp_path / "b"), cwd=tmp_path)  # the CLI, in this process
    assert rep.returncode == 0, rep.stderr[-2000:]
    th = tmp_path / "t.yaml"
    th.write_text("- {metric: latency, max_regression: 0.5, mode: relative}\n")
    cmp = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--thresholds", str(th), cwd=tmp_path)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr[-2000:]
    assert (tmp_path / "b" / "compare-vs-a" / "compare.html").is_file()
    assert "PASS" in cmp.stdout


# -- the documented thresholds example (docs/reports.md), verbatim ----------------------------------
def _doc_thresholds_example() -> str:
    text = (Path(__file__).resolve().parent.parent / "docs" / "reports.md").read_text(encoding="utf-8")
    after = text[text.index("Example (works verbatim") :]
    return after[after.index("```yaml\n") + len("```yaml\n") : after.index("\n```", after.index("```yaml"))]


def _as_real_inpaint_run(run: Path) -> Path:
    """The synthetic run as a flux-dev-inpaint run scored with clip_score, unmasked_lpips, latency."""
    import pandas as pd

    from evalsuite.results.store import RunStore

    df = pd.read_parquet(run / "samples.parquet").rename(columns={"lpips": "unmasked_lpips"})
    df.to_parquet(run / "samples.parquet")
    store = RunStore(run)
    meta = store.read_meta()
    meta["metrics"] = ["unmasked_lpips" if m == "lpips" else m for m in meta["metrics"]]
    for entry in meta["summary"].values():
        entry["metrics"]["unmasked_lpips"] = entry["metrics"].pop("lpips")
    store.write_meta(meta)
    return run


def test_documented_thresholds_example_works_verbatim(tmp_path: Path, capsys):
    from evalsuite.config.configuration import resolve
    from evalsuite.registry import METRICS
    from evalsuite.report.tables import RESOURCES

    example = _doc_thresholds_example()
    th = tmp_path / "thresholds.yaml"
    th.write_text(example)
    entries = load_thresholds(th)
    # every name in it is real: metrics of the registry, a column real runs write, a shipped configuration
    for t in entries:
        assert t.metric in METRICS or t.metric in RESOURCES, t.metric
        for c in t.configs or ():
            assert resolve(c, []).name == c
    ds = make_dataset(tmp_path / "ds")
    cfgs = ("flux-dev-inpaint",)
    base = _as_real_inpaint_run(make_run(tmp_path / "base", ds, configs=cfgs, seed=0))
    rerun = _as_real_inpaint_run(make_run(tmp_path / "rerun", ds, configs=cfgs, seed=1))
    worse = _as_real_inpaint_run(
        make_run(tmp_path / "worse", ds, configs=cfgs, seed=1, shift={"clip_score": -2})
    )
    args = ["--thresholds", str(th), "--out"]
    assert _cli(str(base), str(rerun), *args, str(tmp_path / "c1")) == 0, capsys.readouterr()
    doc = json.loads((tmp_path / "c1" / "compare.json").read_text())
    assert {v["metric"] for v in doc["verdicts"]} == {"clip_score", "unmasked_lpips", "latency_s"}
    assert _cli(str(base), str(worse), *args, str(tmp_path / "c2")) == 1
    assert "REGRESSION: flux-dev-inpaint clip_score" in capsys.readouterr().out


def test_threshold_on_a_column_without_direction_exits_2_naming_it(runs, tmp_path: Path, capsys):
    import pandas as pd

    a, b = copy_run(runs["base"], tmp_path / "a"), copy_run(runs["same"], tmp_path / "b")
    for run in (a, b):
        df = pd.read_parquet(run / "samples.parquet")
        df["my_score"] = range(len(df))
        df.to_parquet(run / "samples.parquet")
    th = tmp_path / "t.yaml"
    th.write_text("- {metric: my_score, max_regression: 0}\n")
    assert _cli(str(a), str(b), "--thresholds", str(th), "--out", str(tmp_path / "c")) == 2
    err = capsys.readouterr().err
    assert "metric 'my_score' has no known direction" in err and "'direction: lower'" in err
    th.write_text("- {metric: my_score, max_regression: 0, direction: lower}\n")
    assert _cli(str(a), str(b), "--thresholds", str(th), "--out", str(tmp_path / "c")) == 0
