import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

import evalsuite
from evalsuite.cli.main import main


def test_profile_cli_on_cpu_with_tiny_weights(tmp_path: Path, capsys):
    rc = main(
        [
            "profile",
            "--weights",
            "tiny",
            "--device",
            "cpu",
            "--configs",
            "flux-dev",
            "--resolutions",
            "32",
            "--steps",
            "2",
            "--min-reps",
            "2",
            "--overhead-pairs",
            "5",
            "--min-seconds",
            "0",
            "--peak-seconds",
            "0.05",
            "--memory-modes",
            "gpu",
            "model_offload",
            "--save-images",
            "--out",
            str(tmp_path),
            "--run-id",
            "p",
        ]
    )
    run = tmp_path / "p"
    assert rc == 1  # model offload cannot run on CPU: that point fails, the run says so
    df = pd.read_csv(run / "profile.csv")
    ok = df[df.status == "ok"].iloc[0]
    bad = df[df.status == "error"].iloc[0]
    assert bad.memory == "model_offload" and "needs a CUDA device" in bad.error
    # plausible values: non-negative, steps within the denoise phase, phases within end-to-end
    assert ok.n_warm >= 2 and ok.first_call_s > 0 and ok.e2e_median_s > 0
    assert ok.e2e_ci_low_s <= ok.e2e_median_s <= ok.e2e_ci_high_s and ok.e2e_p90_s >= ok.e2e_median_s
    assert ok.n_steps_timed == 2 and 0 <= ok.steps_sum_s <= ok.denoise_s <= ok.e2e_median_s
    assert 0 < ok.phases_sum_s <= ok.e2e_median_s
    for col in (
        "text_encode_s",
        "vae_decode_s",
        "step_median_s",
        "host_peak_rss_gib",
        "flop_per_step",
        "achieved_tflops",
        "peak_tflops",
        "mfu",
        "baseline_median_s",
    ):
        assert ok[col] >= 0, col
    assert not math.isnan(ok.harness_overhead_pct)
    # the paired overhead: alternating (bare, runner) calls, at least 3 pairs, median ratio
    pairs = (
        json.loads(ok.overhead_pairs_s) if isinstance(ok.overhead_pairs_s, str) else list(ok.overhead_pairs_s)
    )
    assert len(pairs) == 5 and all(b > 0 and h > 0 for b, h in pairs)  # --overhead-pairs 5
    ratios = [h / b for b, h in pairs]
    # the stored pairs are rounded to 1 µs: recomputed from them the median ratio agrees to within the
    # rounding (its relative error ≤ 2 × 0.5 µs / the shorter call), not to a fixed share of the overhead
    tol = 100 * 2 * 0.5e-6 / min(min(b, h) for b, h in pairs) * max(ratios)
    assert ok.harness_overhead_paired_pct == pytest.approx(
        100 * (statistics.median(ratios) - 1), abs=tol + 1e-9
    )
    # its CI (the pairs resampled) brackets it and lies within the pairs' own range of ratios
    lo, hi = ok.harness_overhead_paired_ci_low_pct, ok.harness_overhead_paired_ci_high_pct
    assert lo <= ok.harness_overhead_paired_pct <= hi
    assert 100 * (min(ratios) - 1) - tol <= lo and hi <= 100 * (max(ratios) - 1) + tol
    assert "NVML" in ok.unavailable
    assert "energy_j_per_image" not in df.columns  # omitted on CPU, with the reason above
    # a run directory like `evalsuite run`: run.json, rows, samples, report; plus the profile outputs
    meta = json.loads((run / "run.json").read_text())
    assert meta["kind"] == "profile" and meta["profile"]["plumbing_only"] is True
    assert meta["profile"]["peaks"]["float32"]["tflops"] > 0
    assert set(meta["weights"].values()) == {"tiny"}
    assert (run / ok.image).is_file()
    for f in (
        "report.md",
        "profile.md",
        "profile.json",
        "samples.parquet",
        "latency_vs_resolution.png",
        "vram_by_memory_mode.png",
    ):
        assert (run / f).is_file(), f
    md = (run / "profile.md").read_text()
    assert "no quality evidence" in md and "Harness overhead" in md and "bare diffusers" in md
    assert f"[{lo:+.2f}, {hi:+.2f}] (5)" in md
    assert "WARNING" in (run / "report.md").read_text()
    loaded = evalsuite.load_run(run)
    assert loaded.summary[ok.config]["metrics"]["latency"]["value"] == ok.per_image_s
    assert "flux-dev@32x32-b1-s2" in capsys.readouterr().out


def test_every_run_row_carries_latency_step_phase_and_memory_fields(tmp_path: Path):
    res = evalsuite.run(
        configs=["flux-dev"],
        dataset="smoke",
        weights="tiny",
        out=tmp_path,
        limit=1,
        overrides=["steps=2"],
        progress=False,
        report=False,
        device="cpu",
    )
    row = res.samples.iloc[0]
    assert row.status == "ok" and row.first_call
    assert 0 < row.latency_s <= row.wall_s
    assert len(row.steps_s) == 2 and sum(row.steps_s) <= row.denoise_s
    for col in ("text_encode_s", "vae_decode_s", "step_median_s", "host_peak_rss_gib"):
        assert row[col] > 0, col
    assert "energy_j" in row.unavailable and "nvml_peak_gib" in row.unavailable


def test_overhead_verdict_counts_the_ci():
    import pandas as pd

    from evalsuite.report.profile import overhead_lines

    base = {
        "config": "x",
        "status": "ok",
        "e2e_median_s": 1.0,
        "baseline_median_s": 0.99,
        "harness_overhead_pct": 1.0,
        "overhead_pairs_s": json.dumps([[1, 1]] * 20),
    }
    rows = [
        dict(
            base,
            config="inside",
            harness_overhead_paired_pct=0.2,
            harness_overhead_paired_ci_low_pct=-0.3,
            harness_overhead_paired_ci_high_pct=0.6,
        ),
        dict(
            base,
            config="wide",
            harness_overhead_paired_pct=0.5,
            harness_overhead_paired_ci_low_pct=-1.0,
            harness_overhead_paired_ci_high_pct=2.5,
        ),
        dict(
            base,
            config="over",
            harness_overhead_paired_pct=1.5,
            harness_overhead_paired_ci_low_pct=1.1,
            harness_overhead_paired_ci_high_pct=2.0,
        ),
    ]
    md = overhead_lines(pd.DataFrame(rows), 1.0)
    lines = {ln.split("|")[1].strip(): ln for ln in md if ln.startswith("| ")}
    assert "| yes |" in lines["inside"] and "[-0.30, +0.60] (20)" in lines["inside"]
    assert "unsettled (CI reaches past the goal)" in lines["wide"]
    assert "| NO |" in lines["over"]
