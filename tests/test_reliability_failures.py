"""Failure isolation: a failing case, out of memory, and a runner that cannot load each sink only
their own rows; the run continues, the report lists failures, and the CLI exits non-zero with a
summary line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image
from safetensors.torch import save_file

import evalsuite
import tests.reliability_runners  # noqa: F401  (registers test-oom / test-inpaint-probe)
from evalsuite.cli.main import main
from tests.conftest import write_dataset

PROMPTS = {
    "a": "a red apple on a table",
    "b": "a blue car",
    "c": "a lighthouse at night",
    "d": "a cat always-oom on a sofa",
    "e": "a boom box on a shelf",
}


def _dataset(tmp_path: Path, ids: str) -> Path:
    rows = [{"id": i, "prompt": PROMPTS[i], "seed": n} for n, i in enumerate(ids)]
    return write_dataset(tmp_path / f"ds-{ids}", rows)


def _by_case(df: pd.DataFrame) -> dict[str, dict]:
    return {r["case_id"]: r for r in df.to_dict("records")}


def test_case_exception_and_oom_are_isolated_and_exit_code_is_1(tmp_path: Path, capsys):
    ds = _dataset(tmp_path, "abcde")
    run_dir = tmp_path / "run"
    code = main(
        [
            "run",
            "--configs",
            "test-oom",
            "--dataset",
            str(ds),
            "--set",
            "steps=1",
            "--set",
            "batch_size=2",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED: 2 of 5 rows failed (5 rows: 3 ok, 2 error, 0 skipped" in captured.err

    rows = _by_case(evalsuite.load_run(run_dir).samples)
    # batch [a, b] ran out of memory → retried once at batch size 1 → both fine
    for cid in ("a", "b"):
        assert rows[cid]["status"] == "ok" and rows[cid]["batch_size"] == 1 and rows[cid]["oom_retries"] == 1
    # the rest of the configuration continues at the halved batch size: [c, d] is never tried as a pair
    assert rows["c"]["status"] == "ok" and rows["c"]["batch_size"] == 1
    # d runs out of memory at batch size 1 as well: retried once, then recorded
    assert rows["d"]["status"] == "error"
    assert "OutOfMemoryError: CUDA out of memory" in rows["d"]["error"]
    assert "out of memory again after freeing memory and retrying at batch size 1" in rows["d"]["error"]
    # a plain exception sinks only its own row
    assert rows["e"]["status"] == "error"
    assert rows["e"]["error"] == "generate: RuntimeError: boom: the model failed on this prompt"
    for cid in "abc":
        Image.open(run_dir / rows[cid]["image"]).verify()

    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["configs"]["test-oom"]["batch_size_after_oom"] == 1
    assert meta["summary"]["test-oom"]["counts"]["error"] == 2
    report = (run_dir / "report.md").read_text()
    assert "## Failures" in report and "boom: the model failed" in report and "out of memory again" in report


def test_runner_load_failure_records_every_row_and_other_configs_run(tmp_path: Path, capsys):
    # a LoRA file whose keys match nothing in the FLUX transformer → the configuration cannot load
    lora = tmp_path / "wrong.safetensors"
    import torch

    save_file(
        {"unet.down.0.lora_A.weight": torch.zeros(2, 4), "unet.down.0.lora_B.weight": torch.zeros(4, 2)},
        str(lora),
    )
    confdir = tmp_path / "configs"
    confdir.mkdir()
    (confdir / "flux-badlora.yaml").write_text(
        f"name: flux-badlora\nrunner: flux-t2i\nparams:\n  lora: {lora}\n  steps: 1\n", encoding="utf-8"
    )
    ds = _dataset(tmp_path, "abc")
    run_dir = tmp_path / "run"
    code = main(
        [
            "run",
            "--configs",
            "flux-badlora",
            "flux-dev",
            "--dataset",
            str(ds),
            "--set",
            "steps=1",
            "--config-dir",
            str(confdir),
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert code == 1
    assert "FAILED: 3 of 6 rows failed (6 rows: 3 ok, 3 error, 0 skipped" in capsys.readouterr().err
    df = evalsuite.load_run(run_dir).samples
    bad = df[df.config == "flux-badlora"]
    good = df[df.config == "flux-dev"]
    assert len(bad) == 3 and set(bad.status) == {"error"}
    assert all(e.startswith("load: LoraError: LoRA ") and "none of its 2 keys match" in e for e in bad.error)
    assert len(good) == 3 and set(good.status) == {"ok"}
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["configs"]["flux-badlora"]["load_error"].startswith("LoraError: ")
    assert meta["configs"]["flux-dev"]["load_error"] is None
    report = (run_dir / "report.md").read_text()
    # failures grouped by reason: status | count | reason | configurations | cases
    assert (
        "| error | 3 | load: LoraError: LoRA " in report and "| flux-badlora ×3 | a#0, b#1, c#2 |" in report
    )
