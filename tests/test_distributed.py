"""Sharded runs: torchrun / accelerate launch with 2 CPU processes (gloo) give the single-process result."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.engine.distributed import Dist, from_env
from tests.test_cli import cli

ARGS = [
    "run",
    "--configs",
    "flux-dev",
    "flux-dev-inpaint",
    "--set",
    "steps=2",
    "--limit",
    "3",  # 3 inpainting cases × 2 configurations: 6 rows, an odd number of cases for 2 ranks
    "--no-progress",
    "--metrics",
    "latency",
]
KEY = ["config", "case_id", "seed"]
SAME = ["status", "image", "prompt", "category", "weights"]


def _env() -> dict[str, str]:
    # torchrun and accelerate start each process with OMP_NUM_THREADS=1; CPU float results depend on the
    # thread count, so the single-process reference uses the same.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run_here(args: list[str], cwd: Path) -> None:
    """The single-process run in this test process (one torch thread, as conftest sets: the launchers'
    OMP_NUM_THREADS=1); only the launchers need child processes."""
    import torch

    assert torch.get_num_threads() == 1
    res = cli(*args, cwd=cwd)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]


def _run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]


def _table(run_dir: Path) -> pd.DataFrame:
    df = pd.read_parquet(run_dir / "samples.parquet").sort_values(KEY).reset_index(drop=True)
    return df[KEY + SAME + ["rank"]].fillna("")


def _assert_same(a: Path, b: Path) -> None:
    ta, tb = _table(a), _table(b)
    pd.testing.assert_frame_equal(ta.drop(columns="rank"), tb.drop(columns="rank"))
    for rel in ta["image"]:
        if rel:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_shard_is_deterministic_and_complete():
    items = list(range(11))
    shards = [Dist(r, 3).shard(items) for r in range(3)]
    assert sorted(x for s in shards for x in s) == items
    assert shards[1] == [1, 4, 7, 10]


def test_from_env_rejects_inconsistent_launch(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2 WORLD_SIZE=2"):
        from_env()


@pytest.mark.slow
def test_torchrun_and_accelerate_equal_single_process_and_resume_across_rank_counts(tmp_path: Path):
    py = sys.executable
    single, trun, acc = tmp_path / "single", tmp_path / "torchrun", tmp_path / "accelerate"
    _run_here([*ARGS, "--run-dir", str(single)], tmp_path)
    _run(
        [
            py,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29561",
            "-m",
            "evalsuite",
            *ARGS,
            "--run-dir",
            str(trun),
        ],
        tmp_path,
    )
    _assert_same(single, trun)
    t = pd.read_parquet(trun / "samples.parquet")
    assert set(t["rank"]) == {0, 1}
    assert sorted(p.name for p in trun.glob("rows*.jsonl")) == ["rows.rank-0.jsonl", "rows.rank-1.jsonl"]
    assert "ranks: 2 (rank 0:" in (trun / "report.md").read_text()

    _run(
        [
            py,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            "29562",
            "-m",
            "evalsuite",
            *ARGS,
            "--run-dir",
            str(acc),
        ],
        tmp_path,
    )
    _assert_same(single, acc)

    # resume with another number of ranks: drop two finished images of the 2-rank run, rerun with 1 process
    ok = t[t.status == "ok"].sort_values(KEY)
    lost = list(ok["image"][:2])
    kept = {rel: (trun / rel).stat().st_mtime_ns for rel in ok["image"][2:]}
    for rel in lost:
        (trun / rel).unlink()
    _run_here([*ARGS, "--run-dir", str(trun)], tmp_path)
    _assert_same(single, trun)
    assert {rel: (trun / rel).stat().st_mtime_ns for rel in kept} == kept  # finished rows not recomputed
    again = pd.read_parquet(trun / "samples.parquet")
    assert len(again) == len(t) and not again.duplicated(KEY).any()
