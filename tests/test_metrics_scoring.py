"""Scoring a run directory end to end: default metrics per task, sources/masks from the dataset,
paired LPIPS, re-scoring with ``evalsuite score``, and clear errors."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evalsuite
from evalsuite.cli.main import main
from evalsuite.metrics.scoring import ScoringError, default_metrics, default_pairs, parse_pairs
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
