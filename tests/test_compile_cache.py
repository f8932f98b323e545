"""The compile-cache folder (evalsuite.accel.compile_cache, frontier --compile-cache): what one process
compiled turns into cache hits in another process with an empty Inductor cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evalsuite.accel.compile_cache import CompileCache

CHILD = r"""
import json, sys, torch
from torch import nn
from torch._dynamo.utils import counters
from evalsuite.accel.compile_cache import CompileCache

folder, name, acts = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
cache = CompileCache(folder)
loaded = cache.load()
torch.manual_seed(0)
x = torch.randn(4, 16)
saved, err = [], 0.0
for act in acts:  # one module per activation, saved after each (as frontier does after each point)
    m = nn.Sequential(nn.Linear(16, 32), getattr(nn, act)(), nn.Linear(32, 8))
    with torch.no_grad():
        err = max(err, float((torch.compile(m)(x) - m(x)).abs().max()))
    p = cache.save(name)
    saved.append(str(p) if p else None)
print(json.dumps({
    "loaded": loaded, "saved": saved, "err": err,
    "hit": counters["inductor"]["fxgraph_cache_hit"], "miss": counters["inductor"]["fxgraph_cache_miss"],
}))
"""


def _child(tmp_path: Path, folder: Path, name: str, inductor_dir: str, acts: str) -> dict:
    env = {
        **os.environ,
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / inductor_dir),  # an empty local cache: a fresh machine
        "TRITON_CACHE_DIR": str(tmp_path / inductor_dir / "triton"),
        "OMP_NUM_THREADS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), name, acts],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_what_one_process_compiled_is_a_cache_hit_in_a_fresh_one(tmp_path):
    folder = tmp_path / "cc"
    first = _child(tmp_path, folder, "run1", "inductor1", "GELU,ReLU")
    assert first["loaded"]["files"] == 0 and first["miss"] == 2 and first["hit"] == 0
    # a file per save: torch serialises only what was recorded since the previous save
    assert first["saved"] == [str(folder / "run1-1.bin"), str(folder / "run1-2.bin")]
    assert first["err"] < 1e-5
    # another process with its own empty Inductor cache (a fresh machine's): the known module comes
    # from the folder, and only the new one's save writes a file
    second = _child(tmp_path, folder, "run2", "inductor2", "ReLU,SiLU")
    assert second["loaded"]["files"] == 2 and second["loaded"]["artifacts"] >= 2
    assert second["hit"] == 1 and second["miss"] == 1
    assert second["saved"] == [None, str(folder / "run2-1.bin")]
    assert second["err"] < 1e-5


def _frontier(tmp_path: Path, run_id: str, cache: Path) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / f"inductor-{run_id}"),  # empty: a fresh machine
    }
    args = ["frontier", "--configs", "flux-dev", "--points", "qkv,compile=regional", "--cases", "1"]
    args += ["--weights", "tiny", "--device", "cpu", "--bootstrap", "20", "--out", str(tmp_path)]
    args += ["--run-id", run_id, "--no-catalog", "--compile-cache", str(cache), "--set", "steps=2"]
    out = subprocess.run(
        [sys.executable, "-m", "evalsuite", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((tmp_path / run_id / "frontier.json").read_text())


@pytest.mark.slow
def test_frontier_writes_the_folder_and_a_second_run_on_a_fresh_cache_loads_it(tmp_path):
    cache = tmp_path / "compile-cache"
    first = _frontier(tmp_path, "a", cache)
    meta = first["meta"]["frontier"]["compile_cache"]
    assert meta["loaded"]["files"] == 0 and meta["written"] == [str(cache / "a-1.bin")]
    point = next(r for r in first["rows"] if r["point"] == "qkv,compile=regional")
    assert point["status"] == "ok" and point["notes"]["compile_cache"].startswith(
        "0 artifact(s) from 0 file(s)"
    )
    second = _frontier(tmp_path, "b", cache)
    meta = second["meta"]["frontier"]["compile_cache"]
    assert meta["loaded"]["files"] == 1 and meta["loaded"]["artifacts"] > 0
    assert "written" not in meta  # every graph came from the folder: nothing new to write
    assert sorted(p.name for p in cache.iterdir()) == ["a-1.bin"]
    point = next(r for r in second["rows"] if r["point"] == "qkv,compile=regional")
    assert point["status"] == "ok" and "from 1 file(s)" in point["notes"]["compile_cache"]


def test_a_file_named_as_the_frontier_cache_folder_is_refused_before_loading(tmp_path):
    from evalsuite.config.runconfig import RunConfigError
    from evalsuite.scenarios.frontier import FrontierSpec

    f = tmp_path / "cc.bin"
    f.write_bytes(b"x")
    with pytest.raises(RunConfigError, match="--compile-cache .*cc.bin is a file; name a folder"):
        FrontierSpec(configs=["flux-dev"], points=["qkv"], compile_cache=str(f)).validate()


def test_a_damaged_file_is_skipped_with_its_name_and_the_rest_loads(tmp_path, caplog):
    folder = tmp_path / "cc"
    folder.mkdir()
    (folder / "bad.bin").write_bytes(b"not a torch cache")
    (folder / "notes.txt").write_text("ignored: only .bin files are loaded")
    cache = CompileCache(folder)
    got = cache.load()
    assert got["files"] == 0 and got["artifacts"] == 0
    assert [s["file"] for s in got["skipped"]] == [str(folder / "bad.bin")]
    assert "bad.bin" in caplog.text and "delete the file" in caplog.text
    assert cache.load() is got  # once per run


def test_a_file_where_the_folder_should_be_is_refused_naming_it(tmp_path):
    f = tmp_path / "cache.bin"
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="cache.bin: is a file; name a folder"):
        CompileCache(f)


def test_saving_with_nothing_compiled_since_the_last_save_writes_nothing(tmp_path):
    torch.compiler.save_cache_artifacts()  # drains what earlier tests in this process compiled
    cache = CompileCache(tmp_path / "cc")
    cache.load()
    assert cache.save("run") is None
    assert not (tmp_path / "cc").exists() and cache.written == []
