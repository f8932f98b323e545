"""Scoring a run directory end to end: default metrics per task, sources/masks from the dataset,
paired LPIPS, re-scoring with ``evalsuite score``, and clear errors."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evalsuite
from evalsuite.cli.main import main
from evalsuite.metrics.scoring import ScoringError, default_metrics, default_pairs, parse_pairs, sample_ci
from evalsuite.trackers.stats import bootstrap_statistic
from tests._metric_runners import register, write_configs
from tests.conftest import write_dataset


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    register()
    tmp = tmp_path_factory.mktemp("score")
    rows = [
        {
            "id": f"c{i}",
            "prompt": "a red apple " * (40 if i == 0 else 1),
            "image": f"img/{i}.png",
            "mask": f"mask/{i}.png",
            "seed": i,
        }
        for i in range(4)
    ]
    ds = write_dataset(tmp / "ds", rows)
    cfg = write_configs(tmp / "cfg")
    mp = pytest.MonkeyPatch()
    mp.setenv("EVALSUITE_CACHE_DIR", str(tmp / "cache"))
    res = evalsuite.run(
        configs=["noise-inp", "noise-inp-turbo8", "noise-t2i"],
        dataset=str(ds),
        config_dirs=[cfg],
        out=tmp / "out",
        progress=False,
    )
    yield res, ds, tmp
    mp.undo()


def test_default_metrics_follow_the_tasks():
    assert "unmasked_psnr" not in default_metrics(["t2i"])
    assert {"clip_score", "fid", "latency", "lpips_pair"} <= set(default_metrics(["t2i"]))
    assert {"unmasked_mse", "unmasked_ssim", "unmasked_lpips", "clip_score_masked"} <= set(
        default_metrics(["inpaint"])
    )
    assert default_pairs(["flux-dev", "flux-dev-turbo8", "flux-cn-beta-turbo8", "sdxl"]) == [
        ("flux-dev-turbo8", "flux-dev")
    ]
    assert parse_pairs(["a:b"]) == [("a", "b")]
    with pytest.raises(ScoringError, match="CONFIG_A:CONFIG_B"):
        parse_pairs(["ab"])


def test_run_scores_every_applicable_metric_per_image_and_in_the_summary(scored_run):
    res, _, _ = scored_run
    df = res.samples
    inp = df[df.config == "noise-inp"]
    t2i = df[df.config == "noise-t2i"]
    for col in (
        "unmasked_mse",
        "unmasked_psnr",
        "unmasked_ssim",
        "unmasked_lpips",
        "clip_score",
        "clip_score_masked",
        "unmasked_psnr_paste_hard",
        "unmasked_mse_paste_feather",
    ):
        assert inp[col].notna().all(), col
    assert t2i["unmasked_psnr"].isna().all() and t2i["clip_score"].notna().all()
    # hard paste-back is exact in the kept region; the raw output leaks noise of amplitude 0.02 there
    assert (inp["unmasked_mse_paste_hard"] == 0).all() and np.isinf(inp["unmasked_psnr_paste_hard"]).all()
    assert ((inp["unmasked_mse"] > 0) & (inp["unmasked_mse"] < 0.02**2)).all()
    s = res.summary
    assert s["noise-inp"]["metrics"]["unmasked_psnr"]["n"] == 4
    assert (
        s["noise-inp"]["metrics"]["unmasked_psnr"]["value"]
        > s["noise-inp-turbo8"]["metrics"]["unmasked_psnr"]["value"]
    )
    assert "unmasked_psnr" not in s["noise-t2i"]["metrics"]
    assert s["noise-inp"]["metrics"]["clip_score"]["truncated_prompts"] == 1
    fid = s["noise-inp"]["metrics"]["fid"]
    assert fid["n"] == 4 and fid["n_ref"] == 4 and math.isfinite(fid["value"]) and "kid_std" in fid
    assert fid["quality_evidence"] is False and fid["metric_weights"] == "random"
    assert math.isnan(s["noise-t2i"]["metrics"]["fid"]["value"])  # no reference images in this dataset
    pair = s["noise-inp-turbo8"]["metrics"]["lpips_pair"]
    assert pair["vs"] == "noise-inp" and pair["n"] == 4 and pair["value"] > 0
    turbo = df[df.config == "noise-inp-turbo8"]
    assert turbo["lpips_pair"].notna().all() and inp["lpips_pair"].isna().all()
    assert res.meta["metric_weights"] == "random"
    report = (res.run_dir / "report.md").read_text()
    assert "random feature networks — NO quality evidence" in report
    assert "1 of 4 prompts were truncated" in report


def test_the_summary_records_the_bootstrap_ci_of_each_per_sample_metric(scored_run):
    """Beside each per-sample metric's value, scoring records ``ci_low``/``ci_high``: the bootstrap of
    its statistic (the median for latency, else the mean) over its samples in ``samples.parquet``
    order — for a mean, the interval the report's summary.csv shows; none for a set-level metric."""
    res, _, _ = scored_run
    df, s = res.samples, res.summary
    for config, name, statistic in (
        ("noise-inp", "clip_score", "mean"),
        ("noise-inp", "unmasked_mse", "mean"),
        ("noise-t2i", "latency", "median"),
        ("noise-inp-turbo8", "lpips_pair", "mean"),  # a paired metric
    ):
        entry = s[config]["metrics"][name]
        values = df[(df.config == config) & (df.status == "ok")][name].to_numpy(float)
        est = bootstrap_statistic(values, statistic)
        assert entry["value"] == pytest.approx(est.value, rel=1e-9), name
        assert (entry["ci_low"], entry["ci_high"]) == (est.low, est.high), name
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert (
        "ci_low" not in s["noise-inp"]["metrics"]["fid"] and "ci_high" not in s["noise-inp"]["metrics"]["fid"]
    )
    table = pd.read_csv(res.run_dir / "summary.csv")
    row = table[(table.config == "noise-inp") & (table.group_by == "all") & (table.quantity == "clip_score")]
    clip = s["noise-inp"]["metrics"]["clip_score"]
    assert (row.ci95_low.item(), row.ci95_high.item()) == pytest.approx(
        (clip["ci_low"], clip["ci_high"]), rel=1e-12
    )


def test_sample_ci_only_for_the_declared_statistic_of_the_samples():
    """:func:`sample_ci`: the interval of the metric's declared statistic over its samples sorted by
    row key; nothing for a metric with its own interval, no statistic, fewer than two values, or a
    value that is not that statistic of its samples."""
    from types import SimpleNamespace

    values = [float(v) for v in np.random.default_rng(2).lognormal(size=12)]
    keyed = [(("c", f"case-{(5 * i) % 12}", 0), v) for i, v in enumerate(values)]  # the journal's order
    in_key_order = [v for _, v in sorted(keyed)]
    assert in_key_order != values
    mean = SimpleNamespace(per_sample=True, statistic="mean")
    got = sample_ci(mean, {"value": float(np.mean(values)), "n": 8}, keyed)
    est = bootstrap_statistic(in_key_order, "mean")
    assert got == {"ci_low": est.low, "ci_high": est.high}
    assert got != {"ci_low": bootstrap_statistic(values).low, "ci_high": bootstrap_statistic(values).high}
    median = SimpleNamespace(per_sample=True, statistic="median")
    est = bootstrap_statistic(in_key_order, "median")
    assert sample_ci(median, {"value": float(np.median(values))}, keyed) == {
        "ci_low": est.low,
        "ci_high": est.high,
    }
    assert sample_ci(median, {"value": float(np.mean(values))}, keyed) == {}  # not the median
    assert sample_ci(mean, {"value": 3.9, "ci_low": 1.0, "ci_high": 5.0}, keyed) == {}  # its own
    assert sample_ci(SimpleNamespace(per_sample=True, statistic=None), {"value": 3.9}, keyed) == {}
    assert sample_ci(SimpleNamespace(per_sample=False, statistic="mean"), {"value": 3.9}, keyed) == {}
    assert sample_ci(mean, {"value": 3.0}, keyed[:1]) == {}
    assert sample_ci(mean, {"value": math.nan}, keyed) == {}


def test_evalsuite_score_rescores_from_the_images(scored_run, capsys):
    res, _, _ = scored_run
    rc = main(
        [
            "score",
            str(res.run_dir),
            "--metrics",
            "unmasked_psnr",
            "--metric-option",
            "unmasked_psnr.erode_px=3",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "unmasked_psnr" in out and "noise-inp" in out
    meta = json.loads((res.run_dir / "run.json").read_text())
    m = meta["summary"]["noise-inp"]["metrics"]
    assert m["unmasked_psnr"]["erode_px"] == 3 and "clip_score" in m  # other metrics kept
    df = pd.read_parquet(res.run_dir / "samples.parquet")
    assert df[df.config == "noise-inp"]["unmasked_psnr"].notna().all()


def test_score_fails_clearly_when_the_dataset_changed(scored_run, tmp_path, capsys):
    res, ds, _ = scored_run
    copy = tmp_path / "ds"
    import shutil

    shutil.copytree(ds, copy)
    lines = (copy / "manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["prompt"] = "changed"
    (copy / "manifest.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    rc = main(["score", str(res.run_dir), "--metrics", "unmasked_mse", "--dataset", str(copy)])
    assert rc == 2
    assert "fingerprint" in capsys.readouterr().err


def test_unknown_pair_configuration_is_an_error(scored_run, capsys):
    res, _, _ = scored_run
    rc = main(["score", str(res.run_dir), "--metrics", "lpips_pair", "--pair", "noise-inp:nope"])
    assert rc == 2 and "'nope'" in capsys.readouterr().err


def test_run_fails_before_generating_when_real_metric_weights_are_missing(
    tmp_path, monkeypatch, tiny_dataset
):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("EVALSUITE_METRIC_WEIGHTS_DIR", raising=False)
    rc = main(
        [
            "run",
            "--configs",
            "flux-dev",
            "--dataset",
            str(tiny_dataset),
            "--out",
            str(tmp_path / "out"),
            "--metric-weights",
            "real",
            "--metric-weights-dir",
            str(tmp_path / "w"),
            "--no-progress",
        ]
    )
    assert rc == 2
    assert not (tmp_path / "out").exists() or not list(Path(tmp_path / "out").rglob("*.png"))


# -- issue 17: bad caches, missing images, repeated or inapplicable metrics --------------------------
def _copy_run(res, tmp_path):
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(res.run_dir, dst)
    (dst / "run.lock").unlink(missing_ok=True)
    return dst


def test_cache_root_that_is_a_file_warns_and_scores_without_caching(
    scored_run, tmp_path, monkeypatch, caplog
):
    res, _, _ = scored_run
    run = _copy_run(res, tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("EVALSUITE_CACHE_DIR", str(blocker))
    caplog.set_level("WARNING")
    rc = main(["score", str(run), "--metrics", "fid"])
    assert rc == 0
    assert "cannot be used" in caplog.text and "computing without caching" in caplog.text
    assert blocker.read_text() == "x"  # untouched
    fid = json.loads((run / "run.json").read_text())["summary"]["noise-inp"]["metrics"]["fid"]
    assert fid["n"] == 4 and fid["n_ref"] == 4 and math.isfinite(fid["value"])


def test_read_only_cache_root_warns_and_is_not_used(tmp_path):
    # as a non-root user (root writes into any folder): the cache root is refused with the warning the
    # scoring path acts on (the file case above checks that scoring then computes without caching)
    from tests.unprivileged import REPO, non_root

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code = "import logging; logging.basicConfig(); from evalsuite.paths import cache_dir; print(cache_dir('features'))"
    env = {**os.environ, "EVALSUITE_CACHE_DIR": str(ro), "PYTHONPATH": str(REPO)}
    try:
        out = subprocess.run(non_root([sys.executable, "-c", code]), capture_output=True, text=True, env=env)
    finally:
        ro.chmod(0o700)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
    assert (
        f"cache folder {ro / 'features'} cannot be used" in out.stderr
        and "computing without caching" in out.stderr
    )
    assert not list(ro.iterdir())


def test_a_deleted_image_fails_only_its_row(scored_run, tmp_path, capsys):
    res, _, _ = scored_run
    run = _copy_run(res, tmp_path)
    df = pd.read_parquet(run / "samples.parquet")
    victim = df[(df.config == "noise-inp") & (df.case_id == "c1")].iloc[0]
    (run / victim["image"]).unlink()
    rc = main(["score", str(run), "--metrics", "unmasked_psnr", "fid", "clip_score"])
    assert rc == 1
    err = capsys.readouterr().err
    assert (
        "evalsuite: error: noise-inp: 1 row(s) not scored: c1 seed 1: image file" in err
        and "is missing" in err
    )
    out = pd.read_parquet(run / "samples.parquet")
    row = out[(out.config == "noise-inp") & (out.case_id == "c1")].iloc[0]
    assert row["score_status"] == "error" and "is missing" in row["score_error"]
    assert math.isnan(row["unmasked_psnr"]) and math.isnan(row["clip_score"])  # no stale values
    rest = out[(out.config == "noise-inp") & (out.case_id != "c1")]
    assert (
        rest["unmasked_psnr"].notna().all()
        and (rest["score_status"].isna() | (rest["score_status"] == "ok")).all()
    )
    meta = json.loads((run / "run.json").read_text())
    s = meta["summary"]["noise-inp"]
    assert s["metrics"]["unmasked_psnr"]["n"] == 3 and s["metrics"]["fid"]["n"] == 3
    assert s["scoring_errors"]["n"] == 1
    assert meta["summary"]["noise-inp-turbo8"]["metrics"]["unmasked_psnr"]["n"] == 4  # others untouched
    assert (run / "report.md").is_file()
    # the image comes back: the row scores again and the error is cleared
    import shutil

    shutil.copy(res.run_dir / victim["image"], run / victim["image"])
    assert main(["score", str(run), "--metrics", "unmasked_psnr"]) == 0
    out = pd.read_parquet(run / "samples.parquet")
    row = out[(out.config == "noise-inp") & (out.case_id == "c1")].iloc[0]
    assert row["score_status"] == "ok" and math.isfinite(row["unmasked_psnr"])
    assert "scoring_errors" not in json.loads((run / "run.json").read_text())["summary"]["noise-inp"]


def test_repeated_and_inapplicable_metrics_warn_and_are_dropped(scored_run, tmp_path, caplog):
    from evalsuite.metrics.scoring import score_run, select_metrics
    from evalsuite.results.store import RunStore, row_key

    res, _, _ = scored_run
    caplog.set_level("WARNING")
    assert select_metrics(["latency", "unmasked_psnr", "latency"], {"t": "t2i"}) == ["latency"]
    assert "metric 'latency' is named more than once in --metrics; scoring it once" in caplog.text
    assert (
        "metric 'unmasked_psnr' applies to inpaint configurations only; none of this run's (t (t2i)) is one: "
        "skipping it" in caplog.text
    )
    run = _copy_run(res, tmp_path)
    store = RunStore(run)
    t2i = {row_key(r) for r in store.rows() if r["config"] == "noise-t2i"}
    caplog.clear()
    summary = score_run(store, ["unmasked_psnr", "latency", "latency"], keys=t2i)
    assert list(summary) == ["noise-t2i"] and list(summary["noise-t2i"]["metrics"]) == ["latency"]
    assert (
        caplog.text.count("named more than once") == 1 and "'unmasked_psnr' applies to inpaint" in caplog.text
    )


def test_a_mistyped_metric_option_is_a_usage_error(scored_run, capsys):
    res, _, _ = scored_run
    rc = main(["score", str(res.run_dir), "--metrics", "fid", "--metric-option", "fid.mdoe=clean"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "metric 'fid' has no option 'mdoe' (did you mean 'mode'?); valid options:" in err
    rc = main(["score", str(res.run_dir), "--metrics", "fid", "--metric-option", "fid.mode=legacy"])
    assert (
        rc == 2
        and "fid.mode: expected one of clean, legacy_pytorch, legacy_tensorflow, got 'legacy'"
        in capsys.readouterr().err
    )


def test_fid_mode_is_recorded_in_run_json_and_the_report(scored_run, tmp_path):
    res, _, _ = scored_run
    run = _copy_run(res, tmp_path)
    assert main(["score", str(run), "--metrics", "fid", "--metric-option", "fid.mode=legacy_pytorch"]) == 0
    fid = json.loads((run / "run.json").read_text())["summary"]["noise-inp"]["metrics"]["fid"]
    assert fid["fid_mode"] == "legacy_pytorch" and fid["preprocessing"]["mode"] == "legacy_pytorch"
    assert "mode legacy_pytorch" in (run / "report.md").read_text()
