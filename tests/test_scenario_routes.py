"""Every parameter route (``--set``, profile flags, frontier points, plan strategies) goes through the
same typed runner params and ``RunnerParams.validate()``, refused with exit 2 before anything is
loaded; profile's fp8/memory/compile are accel axis points; ``evalsuite score`` runs in the run
lifecycle (lock, run.json through its writer, internal errors recorded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalsuite.accel.axes import PointSpec, check_point, load_params
from evalsuite.accel.errors import Unavailable
from evalsuite.cli.main import main
from evalsuite.config import configuration as cfg
from evalsuite.metrics.base import Metric, MetricBatch, MetricResult
from evalsuite.registry import METRICS
from evalsuite.runners.base import MAX_SIDE, MAX_STEPS
from evalsuite.scenarios.profile import Point, accel_point, fp8_precision, point_params

TINY = ["--weights", "tiny", "--device", "cpu"]


# -- every route refuses a value the runner refuses: exit 2, nothing loaded or written --------------


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (
            ["frontier", "--configs", "flux-dev", "--points", "steps=5000"],
            [
                "frontier point 'steps=5000' of configuration 'flux-dev'",
                f"steps must be ≤ {MAX_STEPS}",
                "5000",
            ],
        ),
        (
            ["profile", "--configs", "flux-dev", "--steps", "2", "5000"],
            ["profile point 'flux-dev@64x64-b1-s5000-bfloat16-gpu'", f"steps must be ≤ {MAX_STEPS}"],
        ),
        (
            ["profile", "--configs", "flux-dev", "--resolutions", str(MAX_SIDE + 16)],
            [f"profile point 'flux-dev@{MAX_SIDE + 16}x", f"tiny_size must be ≤ {MAX_SIDE}"],
        ),
        (
            ["frontier", "--configs", "flux-dev", "--points", "ref", "--set", "steps=5000"],
            ["configuration 'flux-dev'", f"steps must be ≤ {MAX_STEPS}"],
        ),
        (
            ["plan", "flux-dev", "--strategies", "resident", "--set", "guidance=-1"],
            ["configuration 'flux-dev'", "guidance must be ≥ 0"],
        ),
    ],
    ids=["frontier-point-steps", "profile-steps-flag", "profile-resolution-flag", "frontier-set", "plan-set"],
)
def test_a_refused_value_exits_2_naming_the_point_and_the_limit(argv, fragments, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main([*argv, *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for frag in fragments:
        assert frag in err, err
    assert not out.exists()  # refused before the lock: no run directory


def test_replace_params_types_and_validates_like_set():
    params = cfg.resolve("flux-dev").params
    new = cfg.replace_params(params, {"steps": 7, "guidance": 2}, "here")
    assert new.steps == 7 and new.guidance == 2.0 and isinstance(new.guidance, float)
    assert params.steps != 7  # a copy: the configuration's params are untouched
    # the one coercer (config.coerce) reads command-line text the same way on every route
    assert cfg.replace_params(params, {"steps": "7"}, "here").steps == 7
    with pytest.raises(cfg.ConfigError, match="here: parameter 'steps': expected an integer, got 'seven'"):
        cfg.replace_params(params, {"steps": "seven"}, "here")
    with pytest.raises(cfg.ConfigError, match="here: .* has no parameter 'stpes'"):
        cfg.replace_params(params, {"stpes": 7}, "here")
    with pytest.raises(cfg.ConfigError, match="point 'steps=5000': steps must be ≤ 1000"):
        load_params(params, PointSpec.parse("steps=5000"))


def test_profile_points_are_typed_params_built_before_load():
    conf = cfg.resolve("flux-dev")
    pt = Point("flux-dev", 48, 48, 2, 3, "fp8", "gpu", False)
    tiny = point_params(conf, pt, "tiny")
    assert (tiny.tiny_size, tiny.batch_size, tiny.steps, tiny.dtype) == (48, 2, 3, "bfloat16")
    full = point_params(conf, Point("flux-dev", 512, 256, 1, 4, "float16", "gpu", False), "random")
    assert (full.width, full.height, full.dtype) == (512, 256, "float16")


def test_profile_fp8_memory_and_compile_are_accel_axis_points():
    assert accel_point(Point("c", 32, 32, 1, 2, "bfloat16", "gpu", False)) == PointSpec()
    got = accel_point(Point("c", 32, 32, 1, 2, "fp8", "sequential_offload", True), "scaled_mm")
    assert got.label == "precision=fp8_tensor,memory=sequential,compile=full"
    assert accel_point(Point("c", 32, 32, 1, 2, "fp8", "vae_tiling", False), "torchao").label == (
        "precision=fp8,memory=vae_tiling"
    )
    assert accel_point(Point("c", 32, 32, 1, 2, "bfloat16", "model_offload", False)).label == (
        "memory=model_offload"
    )
    assert fp8_precision("auto") in ("fp8", "fp8_tensor")
    # a memory strategy that needs CUDA is refused before anything is loaded, with apply's reason
    with pytest.raises(Unavailable, match="memory=model_offload: model_offload needs a CUDA device"):
        check_point(PointSpec.parse("memory=model_offload"), "cpu")
    with pytest.raises(Unavailable, match="expandable"):
        check_point(PointSpec.parse("memory=te_cpu+expandable"), "cpu")
    check_point(PointSpec.parse("memory=te_cpu+vae_tiling"), "cpu")  # runs on a CPU


# -- evalsuite score in the run lifecycle --------------------------------------------------------------

RUN = ["run", "--configs", "flux-dev", "--dataset", "smoke", "--limit", "1", "--metrics", "latency"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scored")
    assert main([*RUN, "--no-progress", "--set", "steps=1", "--out", str(out), "--run-id", "r"]) == 0
    return out / "r"


class _Broken(Metric):
    """A metric whose update fails: an internal error while scoring."""

    name = "test_broken_metric"
    higher_is_better = False  # type: ignore[misc]
    needs = frozenset()

    def update(self, batch: MetricBatch) -> None:
        raise RuntimeError("broken on purpose")

    def compute(self) -> MetricResult:
        return MetricResult(0.0, 0)


def test_score_keeps_the_runs_times_and_writes_through_the_lifecycle(finished: Path, tmp_path: Path, capsys):
    run = tmp_path / "r"
    shutil.copytree(finished, run)
    before = json.loads((run / "run.json").read_text())
    assert main(["score", str(run), "--metrics", "latency"]) == 0
    assert "latency" in capsys.readouterr().out
    after = json.loads((run / "run.json").read_text())
    for key in ("kind", "created", "started", "finished", "interrupted", "attempts", "configs"):
        assert after[key] == before[key], key  # a score is no attempt at the run
    assert after["summary"]["flux-dev"]["metrics"]["latency"]["n"] == 1
    assert not (run / "run.lock").exists()  # the lock is released


def test_an_internal_error_while_scoring_is_recorded_and_exits_1(finished: Path, tmp_path: Path, capsys):
    if "test_broken_metric" not in METRICS:
        METRICS.register("test_broken_metric")(_Broken)
    run = tmp_path / "r"
    shutil.copytree(finished, run)
    assert main(["score", str(run), "--metrics", "test_broken_metric"]) == 1
    err = capsys.readouterr().err
    assert "internal error during scoring: RuntimeError: broken on purpose" in err
    meta = json.loads((run / "run.json").read_text())
    assert meta["error"]["phase"] == "scoring" and "broken on purpose" in meta["error"]["traceback"]
    assert meta["finished"] is not None and not (run / "run.lock").exists()
    # a later score that succeeds clears the recorded scoring error
    assert main(["score", str(run), "--metrics", "latency"]) == 0
    assert "error" not in json.loads((run / "run.json").read_text())


# -- SweepConfig: the sweep commands' common arguments, help text written once ---------------------------


def test_sweep_options_are_built_from_the_sweep_config_fields():
    import argparse

    from evalsuite.cli.common import add_sweep_args
    from evalsuite.config.runconfig import RunConfigError, SweepConfig

    p = argparse.ArgumentParser()
    add_sweep_args(p, "x-<time>", "where the cases come from")
    by_flag = {a.option_strings[0]: a for a in p._actions if a.option_strings}
    fields = SweepConfig.cli_fields()
    assert [f.name for f in fields] == [
        "weights",
        "dataset",
        "device",
        "out",
        "run_id",
        "overrides",
        "config_dirs",
        "force",
    ]
    for f in fields:
        action = by_flag.pop(f.metadata["flag"])
        fill = {"default_id": "x-<time>", "dataset_help": "where the cases come from"}
        assert action.help == f.metadata["help"].format(**fill) and action.dest == SweepConfig.dest(f)
    # no option beside the fields, except the catalog registration's (cli.common.add_catalog_args),
    # which every registering command shares and which is not part of a sweep's configuration
    assert set(by_flag) == {"-h", "--label", "--catalog", "--no-catalog"}
    args = p.parse_args(["--weights", "tiny", "--set", "steps=2", "--config-dir", "d", "--run-id", "r"])
    config = SweepConfig.from_args(args)
    assert config == SweepConfig(weights="tiny", overrides=["steps=2"], config_dirs=[Path("d")], run_id="r")
    assert config.entry_kwargs() == {
        "weights": "tiny",
        "dataset": "smoke",
        "device": "auto",
        "out": Path("reports"),
        "run_id": "r",
        "overrides": ["steps=2"],
        "config_dirs": [Path("d")],
        "force": False,
    }
    with pytest.raises(RunConfigError, match="--weights 'big': choose one of tiny, random, hub"):
        SweepConfig(weights="big").validate()
    with pytest.raises(RunConfigError, match="--run-id '../x'"):
        SweepConfig(run_id="../x").validate()
