"""The bad-input corpus, continued (issue 29): what cannot fit is refused before it is built, a
comparison with a configuration that has nothing paired fails, and the confusing messages of the same
independent try, each now one clear line (one parametrized group)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_cli import cli, evalsuite

REPO = Path(__file__).resolve().parent.parent


# -- item 17: full-size weights on a CPU are refused before anything is built ----------------------------


def test_profile_with_its_defaults_on_a_cpu_is_refused_before_building(tmp_path: Path):
    """``evalsuite profile`` (defaults: ``--weights random``, flux-dev) on the CPU: exit 2 with the
    estimated size per component and the alternatives, in seconds and a small resident size (the
    full-size build reached 20 GB before it was stopped)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    started = time.monotonic()
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalsuite", "profile", "--device", "cpu", "--out", str(tmp_path / "o")],
            stdout=fo,
            stderr=fe,
            env=env,
            cwd=tmp_path,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    stderr = err.read_text()
    assert os.waitstatus_to_exitcode(status) == 2, stderr
    assert usage.ru_maxrss < 3 * 1024 * 1024, f"{usage.ru_maxrss} KiB resident: something was built"
    assert seconds < 120
    line = stderr.strip().splitlines()[-1]
    for frag in [
        "profile: --weights random builds flux-dev (bfloat16) at full size on the CPU",
        "GiB of weights (transformer 22.2 GiB, text_encoder_2 8.9 GiB",
        "GiB of memory" if "it would not fit" not in line else "it would not fit",
        "--weights tiny",
        "--device cuda",
        "--force",
    ]:
        assert frag in line, line
    assert not (tmp_path / "o").exists()  # no run directory, no lock


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test (instead of filling the machine's memory) if a sweep reaches its lifecycle."""
    from evalsuite.scenarios.sweep import Sweep

    def execute(*args, **kwargs):
        raise AssertionError("the sweep started: full-size weights would have been built")

    monkeypatch.setattr(Sweep, "execute", execute)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["plan", "flux-dev"], "plan: --weights random builds flux-dev at full size on the CPU"),
        (
            ["frontier", "--configs", "sdxl-inpaint"],
            "frontier: --weights random builds sdxl-inpaint at full size on the CPU: about 6.5 GiB",
        ),
        (
            ["profile", "--weights", "hub", "--configs", "sdxl-inpaint"],
            "profile: --weights hub loads sdxl-inpaint (bfloat16) at full size on the CPU",
        ),
    ],
    ids=["plan", "frontier", "profile-hub"],
)
def test_sweeps_refuse_full_size_weights_on_a_cpu(args, fragment, tmp_path: Path, no_build):
    res = cli(*args, "--device", "cpu", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert fragment in res.stderr and "--weights tiny" in res.stderr and "--force" in res.stderr
    assert not (tmp_path / "o").exists()


def test_force_lets_a_sweep_build_on_the_cpu(tmp_path: Path, no_build, caplog):
    res = cli(
        "plan", "sdxl-inpaint", "--device", "cpu", "--force", "--out", str(tmp_path / "o"), cwd=tmp_path
    )
    assert "the sweep started" in res.stderr, res.stderr  # past the check (no_build stops it there)
    assert "--force: plan: --weights random builds sdxl-inpaint" in caplog.text


def test_run_refuses_full_size_weights_beyond_the_available_memory(tmp_path: Path, monkeypatch):
    """``evalsuite run`` with random/hub weights on the CPU: refused when the estimate exceeds the
    memory available (here 4 GiB), built when it fits or with --force (the check alone)."""
    import torch

    from evalsuite.config import configuration as cfg
    from evalsuite.scenarios import fit, generate

    def execute(*args, **kwargs):
        raise AssertionError("the run started: full-size weights would have been built")

    monkeypatch.setattr(generate, "execute", execute)  # a missed refusal fails, not fills the memory
    monkeypatch.setattr(fit, "host_memory_gib", lambda: (8.0, 4.0))
    res = cli(
        "run",
        "--configs",
        "sdxl-inpaint",
        "--weights",
        "random",
        "--device",
        "cpu",
        "--out",
        "o",
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stderr
    assert "run: --weights random builds sdxl-inpaint at full size on the CPU: about 6.5 GiB" in res.stderr
    assert "> the 4.0 GiB available (8.0 GiB in all): it would not fit" in res.stderr
    assert not (tmp_path / "o").exists()
    conf = cfg.resolve("sdxl-inpaint", [], [])
    cpu = torch.device("cpu")
    fit.check_fits("run", [(conf.name, conf, conf.params)], "random", cpu, force=True, sweep=False)
    monkeypatch.setattr(fit, "host_memory_gib", lambda: (64.0, 60.0))
    fit.check_fits("run", [(conf.name, conf, conf.params)], "random", cpu, sweep=False)  # fits: built
    fit.check_fits("run", [(conf.name, conf, conf.params)], "tiny", cpu, sweep=False)  # tiny: never checked


def test_the_estimate_is_the_component_sizes_of_the_full_build():
    """The meta-device estimate: FLUX.1-dev's 11.9 B transformer parameters are 22.2 GiB in bf16,
    twice that in float32 (a profile dtype changes it), a fused LoRA does not stop the estimate."""
    from evalsuite.config import configuration as cfg
    from evalsuite.scenarios.fit import estimated_weights_gib

    conf = cfg.resolve("flux-dev", [], [])
    bf16 = estimated_weights_gib(conf.runner, conf.params)
    assert bf16 is not None and set(bf16) == {"transformer", "vae", "text_encoder", "text_encoder_2"}
    assert bf16["transformer"] == pytest.approx(22.17, abs=0.01)
    f32 = estimated_weights_gib(conf.runner, cfg.replace_params(conf.params, {"dtype": "float32"}, "test"))
    assert f32 is not None and f32["transformer"] == pytest.approx(2 * bf16["transformer"])
    lora = cfg.resolve("flux-dev-turbo8", [], [])
    assert estimated_weights_gib(lora.runner, lora.params) == pytest.approx(bf16)


# -- item 10's rest: a configuration with 0 shared ok rows fails the comparison ----------------------------


def test_compare_fails_a_configuration_with_no_shared_ok_row(tmp_path: Path):
    from tests.runfactory import copy_run, make_dataset, make_run

    ds = make_dataset(tmp_path / "ds", n=4)
    errors = {("cfg-slow", c.id): ("error", "boom") for c in ds.cases}
    a = make_run(tmp_path / "ref", ds, statuses=errors)
    b = copy_run(make_run(tmp_path / "b0", ds), tmp_path / "new")
    res = cli("compare", str(a), str(b), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILED: cfg-slow: no (case, seed) row is ok in both runs" in res.stdout
    assert "0 rows ok in both runs for configuration(s) cfg-slow (not compared)" in res.stdout
    doc = json.loads((b / "compare-vs-ref" / "compare.json").read_text())
    assert doc["exit_code"] == 1 and doc["shared"] == {"cfg-fast": 4, "cfg-slow": 0}


# -- confusing messages, each one line -----------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    from tests.runfactory import copy_run, make_dataset, make_run

    tmp = tmp_path_factory.mktemp("msg")
    ds = make_dataset(tmp / "ds", n=4)
    a = make_run(tmp / "ref", ds)
    meta = json.loads((a / "run.json").read_text())
    for c in meta["summary"]:  # FID measured in both runs (a set-level metric: summary only)
        meta["summary"][c]["metrics"]["fid"] = {"value": 12.5, "n": 4, "higher_is_better": False}
    (a / "run.json").write_text(json.dumps(meta))
    return a, copy_run(a, tmp / "new")


def _fresh(runs, tmp: Path) -> tuple[Path, Path]:
    from tests.runfactory import copy_run

    return copy_run(runs[0], tmp / "ref"), copy_run(runs[1], tmp / "new")


def _fid_threshold(runs, tmp: Path) -> subprocess.CompletedProcess:
    a, b = _fresh(runs, tmp)
    (tmp / "t.yaml").write_text(yaml.safe_dump([{"metric": "fid", "max_regression": 1.0}]))
    return cli("compare", str(a), str(b), "--thresholds", str(tmp / "t.yaml"), cwd=tmp)


def _thresholds_random_bytes(runs, tmp: Path) -> subprocess.CompletedProcess:
    a, b = _fresh(runs, tmp)
    (tmp / "t.yaml").write_bytes(bytes(np.random.default_rng(0).integers(128, 256, 4096, dtype=np.uint8)))
    return cli("compare", str(a), str(b), "--thresholds", str(tmp / "t.yaml"), cwd=tmp)


def _score(runs, tmp: Path, option: str) -> subprocess.CompletedProcess:
    a, _ = _fresh(runs, tmp)
    return cli(
        "score", str(a), "--metrics", "fid", "--metric-weights", "random", "--metric-option", option, cwd=tmp
    )


def _fid_reference_missing(runs, tmp: Path) -> subprocess.CompletedProcess:
    return _score(runs, tmp, f"fid.reference={tmp / 'nonexistent'}")


def _fid_stats_pickle(runs, tmp: Path) -> subprocess.CompletedProcess:
    (tmp / "stats.pkl").write_bytes(pickle.dumps({"mu": [0.0], "sigma": [[1.0]]}))
    return _score(runs, tmp, f"fid.reference_stats={tmp / 'stats.pkl'}")


def _fid_stats_object_npy(runs, tmp: Path) -> subprocess.CompletedProcess:
    np.save(tmp / "stats.npy", np.array([{"mu": 0}], dtype=object), allow_pickle=True)
    return _score(runs, tmp, f"fid.reference_stats={tmp / 'stats.npy'}")


def _compare_over_a_gated_compare(runs, tmp: Path) -> subprocess.CompletedProcess:
    a, b = _fresh(runs, tmp)
    (tmp / "t.yaml").write_text(yaml.safe_dump([{"metric": "clip_score", "max_regression": 1.0}]))
    assert cli("compare", str(a), str(b), "--thresholds", str(tmp / "t.yaml"), cwd=tmp).returncode == 0
    before = (b / "compare-vs-ref" / "compare.json").read_bytes()
    res = cli("compare", str(a), str(b), cwd=tmp)
    assert (b / "compare-vs-ref" / "compare.json").read_bytes() == before  # not replaced
    forced = cli("compare", str(a), str(b), "--force", cwd=tmp)
    assert forced.returncode == 0 and "replacing the earlier comparison" in forced.stdout
    assert not json.loads((b / "compare-vs-ref" / "compare.json").read_text())["verdicts"]
    return res


def _long_prompt(runs, tmp: Path) -> subprocess.CompletedProcess:
    from tests.conftest import write_dataset

    rows = [{"id": "long", "prompt": "a cat " * 16_667, "seed": 1}]  # 100,002 characters
    ds = write_dataset(tmp / "ds", rows)
    return evalsuite(
        "run", "--configs", "flux-dev", "--dataset", str(ds), "--metrics", "--no-progress", cwd=tmp
    )


def _inpaint_runner_on_smoke(runs, tmp: Path) -> subprocess.CompletedProcess:
    return evalsuite(
        "run", "--configs", "flux-dev-inpaint", "--limit", "2", "--metrics", "--no-progress", cwd=tmp
    )


# name → (make it, expected exit code, fragments of the one line, text that must not appear)
MESSAGES: dict[str, tuple[Callable[..., subprocess.CompletedProcess], int, list[str], list[str]]] = {
    "threshold-on-set-level-fid": (
        _fid_threshold,
        2,
        ["threshold on 'fid': fid is a set-level metric", "cannot be gated per row", "clip_score"],
        ["not measured in both runs"],
    ),
    "thresholds-file-of-random-bytes": (
        _thresholds_random_bytes,
        2,
        ["t.yaml: not a text file (byte 0 is not UTF-8); a thresholds file is YAML text"],
        ["Traceback", "codec can't decode"],
    ),
    "fid-reference-missing-folder": (
        _fid_reference_missing,
        2,
        ["fid.reference ", "nonexistent: does not exist; give a folder of reference images"],
        ["[Errno 2]", "Traceback"],
    ),
    "fid-reference-stats-pickle": (
        _fid_stats_pickle,
        2,
        ["fid.reference_stats ", "holds pickled data, which is never loaded", "only an .npz without pickles"],
        ["unsafely", "allow_pickle", "pickle.load"],
    ),
    "fid-reference-stats-object-npy": (
        _fid_stats_object_npy,
        2,
        ["holds pickled data, which is never loaded", "only an .npz without pickles"],
        ["unsafely", "allow_pickle", "pickle.load"],
    ),
    "compare-without-thresholds-over-a-gated-compare": (
        _compare_over_a_gated_compare,
        2,
        ["compare-vs-ref holds an earlier comparison with thresholds (2 check(s)", "--out DIR", "--force"],
        ["Traceback"],
    ),
    "prompt-of-100000-characters": (
        _long_prompt,
        0,
        ["flux-dev long: prompt longer than the text encoders' context: truncated to 77/512 tokens"],
        ["The following part of your input was truncated", "Token indices sequence length"],
    ),
    "inpainting-runner-on-smoke": (
        _inpaint_runner_on_smoke,
        0,
        [],
        ["skipped —", "use an inpainting dataset"],
    ),
}


@pytest.mark.parametrize("name", list(MESSAGES))
def test_confusing_message_is_one_clear_line(name: str, runs, tmp_path: Path):
    make, code, fragments, forbidden = MESSAGES[name]
    res = make(runs, tmp_path)
    text = res.stdout + res.stderr
    assert res.returncode == code, text
    lines = [ln for ln in text.splitlines() if all(f in ln for f in fragments)] if fragments else []
    if fragments:
        assert len(lines) >= 1, text
        assert len(lines) == 1 or name == "prompt-of-100000-characters", text
    for f in forbidden:
        assert f not in text, f"{f!r} in {text[:2000]}"
    assert len(res.stderr) < 5_000, f"{len(res.stderr)} characters on stderr"
