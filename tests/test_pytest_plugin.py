"""The pytest plugin (evalsuite.testing.pytest_plugin) and the baseline comparisons (evalsuite.compare.baselines).

The plugin is exercised in inner pytest sessions (pytester, in this process: torch and the tiny
models are imported once) that generate with tiny weights on CPU; runs are shared through one
``--evalsuite-out`` folder, so an identical run is generated once for the whole module (the harness
resumes it). Registration through the installed entry point needs a fresh interpreter: that test
runs pytest in a subprocess.
"""

import json
import math
import re
import shutil
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import evalsuite
from evalsuite.compare.baselines import (
    MACHINE_KEYS,
    Baseline,
    BaselineError,
    BaselineMismatch,
    ConfigRun,
    MachineMismatchWarning,
    assert_images_match,
    assert_no_regression,
    bootstrap_ci,
    compare_images,
    compare_metrics,
    machine_dependent,
    metric_ci,
    run_machine,
)
from evalsuite.compare.thresholds import DirectionError, Threshold, ThresholdError, as_thresholds

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "reports" / "baselines" / "flux-dev__smoke__tiny.json"
PLUGIN = "evalsuite.testing.pytest_plugin"
# The arguments tests/regression uses on tiny weights (the committed baseline was written with them).
TINY = dict(limit=3, overrides=["steps=2"], metrics=["latency"])


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evalsuite-runs")


@pytest.fixture(scope="module")
def tiny_run(shared_out) -> ConfigRun:
    result = evalsuite.run(
        configs=["flux-dev"],
        dataset="smoke",
        weights="tiny",
        out=shared_out,
        progress=False,
        report=False,
        **TINY,
    )
    return result.select("flux-dev")


@pytest.fixture
def registries(monkeypatch):
    """The inner sessions run in this process: what their conftest files register is undone after."""
    from evalsuite.registry import METRICS, RUNNERS

    for reg in (METRICS, RUNNERS):
        for attr in ("_items", "_lazy", "_origin"):
            monkeypatch.setattr(reg, attr, dict(getattr(reg, attr)))


def _fake_install(root: Path) -> Path:
    """A dist-info declaring the pyproject's pytest11 entry points: what `pip install -e .` adds."""
    eps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    d = root / "site" / "evalsuite_entrypoints-0.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: evalsuite-entrypoints\nVersion: 0\n")
    (d / "entry_points.txt").write_text("[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return root / "site"


def _with_pythonpath(monkeypatch, extra: Path) -> None:
    import os

    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(extra), str(REPO), os.environ.get("PYTHONPATH", "")])
    )


# -- registration ----------------------------------------------------------------------------------


def test_pyproject_declares_the_plugin_under_its_module_name():
    eps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert eps == {PLUGIN: PLUGIN}


def test_help_lists_the_options_with_the_entry_point_and_dash_p_together(pytester, monkeypatch):
    # the installed entry point and an explicit -p name the same plugin: registered once, no error
    _with_pythonpath(monkeypatch, _fake_install(pytester.path))
    res = pytester.runpytest_subprocess("-p", PLUGIN, "--help")
    assert res.ret == 0, res.stderr.str()
    out = res.stdout.str()
    assert "already registered" not in out + res.stderr.str()
    for opt in (
        "--evalsuite-weights={tiny,random,hub}",
        "--evalsuite-device",
        "--evalsuite-configs",
        "--evalsuite-out",
        "--evalsuite-update-baselines",
        "--evalsuite-baselines",
    ):
        assert opt in out


@pytest.mark.parametrize("ini_declares", [True, False])
def test_markers_registered_exactly_once(pytester, ini_declares):
    ini = "    gpu: needs a GPU\n    slow: slow\n    regression: regression\n" if ini_declares else ""
    pytester.makeini("[pytest]\nmarkers =\n" + ini)
    config = pytester.parseconfigure("-p", PLUGIN)
    names = [str(line).split(":", 1)[0].strip() for line in config.getini("markers")]
    assert all(names.count(m) == 1 for m in ("gpu", "slow", "regression")), names


@pytest.mark.parametrize("weights, outcome", [("tiny", "skipped"), ("random", "passed"), ("hub", "passed")])
def test_evalsuite_weights_marker_runs_a_test_only_under_its_policies(pytester, weights, outcome):
    pytester.makepyfile(
        test_inner="""
import pytest

@pytest.mark.evalsuite_weights("random", "hub", reason="no metric to compare on tiny weights")
def test_metric():
    pass
"""
    )
    res = pytester.runpytest_inprocess(
        "-p", PLUGIN, "--strict-markers", "-rs", f"--evalsuite-weights={weights}"
    )
    res.assert_outcomes(**{outcome: 1})
    if outcome == "skipped":
        res.stdout.fnmatch_lines(
            ["*runs with --evalsuite-weights random or hub, not tiny: no metric to compare*"]
        )


# -- a real regression fails readably; refusals ----------------------------------------------------

INNER_COMPARE = """
import pytest
from evalsuite.compare.baselines import assert_images_match, assert_no_regression

pytestmark = pytest.mark.regression
ARGS = dict(limit=3, metrics=["latency"])
TH = {"latency": {"rel": 4.0}}

def test_unchanged(evalsuite_run, evalsuite_baseline):
    run = evalsuite_run("flux-dev", "smoke", overrides=["steps=2"], **ARGS)
    baseline = evalsuite_baseline(run)
    assert_images_match(run, baseline)
    # the baseline's machine is another one: latency is skipped with the reason, never compared
    assert_no_regression(run, baseline, metrics=["latency"], thresholds=TH)

def test_guidance_changed(evalsuite_run, evalsuite_baseline):
    run = evalsuite_run("flux-dev", "smoke", overrides=["steps=2", "guidance=4.0"], **ARGS)
    assert_images_match(run, evalsuite_baseline(run))

def test_dataset_edited(evalsuite_run, evalsuite_baseline):
    run = evalsuite_run("flux-dev", "edited/smoke", overrides=["steps=2"], limit=1, metrics=["latency"])
    assert_images_match(run, evalsuite_baseline(run))

def test_baseline_of_other_weights(evalsuite_run, evalsuite_baseline):
    run = evalsuite_run("flux-dev", "smoke", overrides=["steps=2"], **ARGS)
    assert_no_regression(run, evalsuite_baseline("flux-dev__smoke__hub"), metrics=["latency"], thresholds=TH)
"""

OTHER_MACHINE = {
    "arch": "x86_64",
    "system": "Linux",
    "cpu": "Some Other CPU @ 9.9GHz",
    "cores": 96,
    "device": "cpu",
    "device_name": None,
}


def test_perturbed_configuration_fails_and_mismatches_are_refused(pytester, shared_out, tiny_run, registries):
    base = pytester.path / "baselines"
    base.mkdir()
    committed = json.loads(COMMITTED.read_text())
    committed["provenance"]["machine"] = OTHER_MACHINE  # as if written on another machine, anywhere
    (base / COMMITTED.name).write_text(json.dumps(committed))
    other = json.loads(COMMITTED.read_text())
    other.update(weights="hub", name="flux-dev__smoke__hub")  # as written by a GPU runner
    (base / "flux-dev__smoke__hub.json").write_text(json.dumps(other))
    edited = pytester.path / "edited" / "smoke"
    shutil.copytree(REPO / "evalsuite" / "data" / "sets" / "smoke", edited)
    lines = (edited / "manifest.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace("red scarf", "blue scarf")
    (edited / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    pytester.makepyfile(test_inner=INNER_COMPARE)

    res = pytester.runpytest_inprocess(
        "-p",
        PLUGIN,
        "--strict-markers",
        f"--evalsuite-out={shared_out}",
        f"--evalsuite-baselines={base}",
        "-rA",
    )
    out = res.stdout.str()
    res.assert_outcomes(skipped=1, failed=3)
    assert "evalsuite: weights=tiny (no quality evidence)" in out
    # the unchanged run: images matched, latency skipped with the reason naming both machines
    assert "flux-dev: no metric compared: skipped: flux-dev / latency: machine-dependent metric" in out
    assert "'Some Other CPU @ 9.9GHz' →" in out
    # the perturbed configuration: every image named, with its difference, the tolerance and the cause
    assert "flux-dev: 3 of 3 images differ from the baseline's" in out
    assert "inpaint-astronaut-1000: mean |Δ|" in out and "> tolerance 0.25" in out
    assert "configuration changed since the baseline: guidance: 3.5 → 4.0" in out
    assert "flux-dev__smoke__tiny.json (commit " in out
    # refused comparisons
    assert "BaselineMismatch: flux-dev: dataset 'smoke' fingerprint" in out
    assert "the prompts, masks or images changed" in out
    assert "BaselineMismatch: flux-dev: weights policy 'tiny' differs from the baseline's 'hub'" in out


# -- writing and refreshing baselines -----------------------------------------------------------

INNER_CONFTEST = """
from evalsuite.metrics.base import Metric, MetricResult
from evalsuite.registry import METRICS

if "denoise_steps" not in METRICS:
    @METRICS.register("denoise_steps")
    class DenoiseSteps(Metric):
        '''Denoising steps run per image (from the row's step timings): a machine-independent cost.'''
        name = "denoise_steps"
        higher_is_better = False
        unit = "steps"

        def reset(self):
            self.v = []

        def update(self, batch):
            vals = [float(len(r["steps_s"])) for r in batch.rows]
            self.v += vals
            return vals

        def compute(self):
            return MetricResult(sum(self.v) / len(self.v), len(self.v))
"""

INNER_UPDATE = """
import os
import pytest
from evalsuite.compare.baselines import assert_no_regression

pytestmark = pytest.mark.regression

def test_flux_dev(evalsuite_run, evalsuite_baseline):
    steps = os.environ["FLUX_STEPS"]
    run = evalsuite_run("flux-dev", "smoke", limit=2, overrides=[f"steps={steps}"], metrics=["denoise_steps"])
    assert_no_regression(run, evalsuite_baseline(run), metrics=["denoise_steps"], thresholds={"denoise_steps": 0})
"""


def test_update_baselines_writes_then_compares_then_refreshes(
    pytester, monkeypatch, shared_out, tiny_run, registries
):
    base = pytester.path / "reports" / "baselines"  # the default location under the rootdir
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_UPDATE)
    args = ("-p", PLUGIN, "--strict-markers", f"--evalsuite-out={shared_out}")
    path = base / "flux-dev__smoke__tiny.json"

    monkeypatch.setenv("FLUX_STEPS", "2")
    res = pytester.runpytest_inprocess(*args, "--evalsuite-update-baselines")
    res.assert_outcomes(passed=1)
    assert "evalsuite baselines written" in res.stdout.str() and str(path) in res.stdout.str()
    data = json.loads(path.read_text())
    assert data["schema"] == "evalsuite.baseline/1" and data["weights"] == "tiny"
    assert data["params"]["steps"] == 2 and data["keys"] == ["inpaint-astronaut-1000", "inpaint-chelsea-1001"]
    assert (
        data["metrics"]["denoise_steps"]["value"] == 2.0
        and data["metrics"]["denoise_steps"]["unit"] == "steps"
    )
    prov = data["provenance"]
    assert prov["versions"]["torch"] and prov["device"]["type"] == "cpu" and "commit" in prov
    assert len(data["images"]) == 2 and all(v["thumb_size"] == 32 for v in data["images"].values())

    monkeypatch.setenv("FLUX_STEPS", "3")
    res = pytester.runpytest_inprocess(*args)
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "flux-dev: 1 of 1 metrics regressed against the baseline" in out
    assert (
        "REGRESSED: flux-dev / denoise_steps: baseline 2 steps → new 3 steps (95% CI [3, 3], n=2); "
        "worse by 1 steps, lower is better; allowed worsening 0 steps (threshold worsening ≤ 0 (absolute))"
    ) in out
    assert "configuration changed since the baseline: steps: 2 → 3" in out

    res = pytester.runpytest_inprocess(*args, "--evalsuite-update-baselines")
    res.assert_outcomes(passed=1)
    assert json.loads(path.read_text())["params"]["steps"] == 3


# -- the comparison functions, on a real tiny run --------------------------------------------------


def test_committed_baseline_matches_a_fresh_run(tiny_run):
    # committed tiny baselines check the images (within tolerance, on any CPU), never a latency
    baseline = Baseline.load(COMMITTED)
    check = assert_images_match(tiny_run, baseline)
    assert set(check.differences) == set(baseline.data["keys"])
    assert set(baseline.machine or {}) == set(MACHINE_KEYS)  # it records the machine that wrote it


def test_latency_of_another_machines_baseline_is_skipped_with_the_reason(tiny_run, monkeypatch):
    b = Baseline.from_run(tiny_run)
    assert b.machine == run_machine(tiny_run) and b.machine["cpu"] and b.machine["cores"]
    new = tiny_run.summary["metrics"]["latency"]["value"]
    b.data["metrics"]["latency"]["value"] = new / 100  # "100× slower" than a much faster machine
    b.data["provenance"]["machine"] = dict(OTHER_MACHINE)
    (c,) = compare_metrics(tiny_run, b, thresholds={"latency": 0.0})
    assert c.skipped and not c.regressed
    assert "another machine (cpu: 'Some Other CPU @ 9.9GHz' →" in c.skipped and "cores: 96 →" in c.skipped
    # inside pytest, a test whose every metric was skipped is skipped with the reason
    with pytest.raises(pytest.skip.Exception, match="no metric compared: skipped: flux-dev / latency"):
        assert_no_regression(tiny_run, b, thresholds={"latency": 0.0})
    # outside pytest: a warning naming the skipped metric and why
    monkeypatch.delitem(sys.modules, "pytest")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (c,) = assert_no_regression(tiny_run, b, thresholds={"latency": 0.0})
    monkeypatch.undo()
    assert c.skipped and any(
        issubclass(w.category, MachineMismatchWarning) and "latency: machine-dependent" in str(w.message)
        for w in seen
    )
    # a baseline without a recorded machine counts as another machine
    del b.data["provenance"]["machine"]
    assert "records no machine" in compare_metrics(tiny_run, b, thresholds={"latency": 0.0})[0].skipped
    # asked for: compared anyway, and the 100× slowdown fails
    with pytest.raises(AssertionError, match="REGRESSED: flux-dev / latency"):
        assert_no_regression(tiny_run, b, thresholds={"latency": 0.0}, other_machine="compare")
    # machine-independent metrics are compared whatever the machine
    assert not machine_dependent("clip_score", {"unit": ""}) and machine_dependent("latency", {"unit": "s"})
    assert machine_dependent("peak_allocated_gib") and machine_dependent("energy_j", {})


def test_metric_direction_threshold_and_message(tiny_run):
    b = Baseline.from_run(tiny_run)  # written here: the same machine, so latency is compared
    new = tiny_run.summary["metrics"]["latency"]["value"]
    b.data["metrics"]["latency"]["value"] = new * 10  # the baseline was slower: an improvement passes
    assert not assert_no_regression(tiny_run, b, thresholds={"latency": 0})[0].regressed
    b.data["metrics"]["latency"]["value"] = new / 2  # twice as slow as the baseline
    assert not assert_no_regression(tiny_run, b, thresholds={"latency": {"rel": 1.5}})[0].regressed
    with pytest.raises(AssertionError) as err:
        assert_no_regression(tiny_run, b, thresholds={"latency": {"rel": 0.5}})
    msg = str(err.value)
    assert "REGRESSED: flux-dev / latency: baseline" in msg and "lower is better" in msg
    assert "threshold worsening ≤ 50 % (relative)" in msg and "95% CI [" in msg and "n=3" in msg
    with pytest.raises(BaselineError, match="no threshold for metric 'latency'"):
        assert_no_regression(tiny_run, b, metrics=["latency"], thresholds={})
    with pytest.raises(BaselineError, match="'clip_score' is not in"):
        assert_no_regression(tiny_run, b, metrics=["clip_score"], thresholds={"clip_score": 0.1})


def test_mismatches_are_refused(tiny_run):
    for field, value, text in [
        ("weights", "random", "weights policy 'tiny' differs"),
        ("config", "flux-cn-beta", "compared with the baseline of 'flux-cn-beta'"),
    ]:
        b = Baseline.from_run(tiny_run)
        b.data[field] = value
        with pytest.raises(BaselineMismatch, match=text):
            compare_images(tiny_run, b)
    b = Baseline.from_run(tiny_run)
    b.data["keys"] = b.data["keys"][:2]
    with pytest.raises(BaselineMismatch, match="only in the run \\['inpaint-coffee-1002'\\]"):
        assert_no_regression(tiny_run, b, thresholds={"latency": 1.0})


def test_failed_runs_neither_pass_nor_become_baselines(shared_out):
    # hub weights offline with no local copy: every row fails at load time
    result = evalsuite.run(
        configs=["flux-dev"],
        dataset="smoke",
        weights="hub",
        out=shared_out,
        limit=1,
        device="cpu",
        progress=False,
        report=False,
        metrics=["latency"],
    )
    run = result.select("flux-dev")
    with pytest.raises(
        BaselineError, match="refusing to write a baseline for 'flux-dev'.*1 of 1 rows failed"
    ):
        Baseline.from_run(run)
    other = Baseline.load(COMMITTED)
    with pytest.raises(AssertionError, match="1 rows failed"):
        assert_no_regression(run, other, thresholds={"latency": 1.0})


def test_missing_baseline_says_how_to_create_it(tmp_path):
    with pytest.raises(BaselineError, match="no baseline .*--evalsuite-update-baselines"):
        Baseline.load(tmp_path / "flux-dev__smoke__hub.json")
    (tmp_path / "x.json").write_text('{"schema": "other"}')
    with pytest.raises(BaselineError, match="not an evalsuite baseline"):
        Baseline.load(tmp_path / "x.json")


def test_short_threshold_forms_are_the_compare_threshold_model(tmp_path):
    # the plugin's short form and the compare YAML format give the same Threshold objects
    assert as_thresholds({"latency": 0.5}) == [Threshold("latency", 0.5, "absolute")]
    assert as_thresholds({"latency": {"rel": 0.1}}) == [Threshold("latency", 0.1, "relative")]
    f = tmp_path / "t.yaml"
    f.write_text("- {metric: latency, max_regression: 0.1, mode: relative, require_significance: true}\n")
    assert as_thresholds(f) == as_thresholds(
        [{"metric": "latency", "max_regression": 0.1, "mode": "relative", "require_significance": True}]
    )
    with pytest.raises(ThresholdError, match="give one of 'abs'"):
        as_thresholds({"latency": {"abs": 1.0, "rel": 0.1}})
    with pytest.raises(ThresholdError, match="unknown field"):
        as_thresholds({"latency": {"relative": 0.1}})
    with pytest.raises(ThresholdError, match="must be a number >= 0"):
        as_thresholds({"latency": -1})


def test_unknown_direction_is_an_error_naming_the_metric(tiny_run):
    b = Baseline.from_run(tiny_run)
    b.data["metrics"]["latency"].pop("higher_is_better")
    entry = tiny_run.result.summary["flux-dev"]["metrics"]["latency"]
    saved = entry.pop("higher_is_better")
    try:
        with pytest.raises(DirectionError, match="metric 'latency' has no known direction.*direction: lower"):
            assert_no_regression(tiny_run, b, thresholds={"latency": 1.0})
        # declared on the threshold: judged
        (c,) = assert_no_regression(
            tiny_run, b, thresholds=[{"metric": "latency", "max_regression": 1.0, "direction": "lower"}]
        )
        assert not c.regressed and c.higher_is_better is False
    finally:
        entry["higher_is_better"] = saved


def test_intervals_are_scipy_percentile_bootstraps():
    from scipy import stats as sps

    rng = np.random.default_rng(1)
    small, large = rng.normal(10, 2, 10), rng.normal(10, 2, 1000)
    lo, hi = bootstrap_ci(small)
    ref = sps.bootstrap(
        (small,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high))  # the same resampling: scipy's own
    assert lo < small.mean() < hi and bootstrap_ci(small) == (lo, hi)
    lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < hi - lo
    # ≈ normal-theory interval of the mean for a large sample
    se = large.std(ddof=1) / math.sqrt(len(large))
    assert lo2 == pytest.approx(large.mean() - 1.96 * se, abs=0.3 * se)
    assert bootstrap_ci([1.0]) is None
    # metric_ci: the metric's own interval wins; else mean/median bootstrap; else none (set-level)
    assert metric_ci({"value": 3.0, "ci_low": 1.0, "ci_high": 4.0}, [1, 2]) == (1.0, 4.0)
    assert metric_ci({"value": float(np.median(small))}, list(small)) == bootstrap_ci(small, "median")
    assert metric_ci({"value": float(small.mean())}, list(small)) == bootstrap_ci(small, "mean")
    assert metric_ci({"value": 42.0}, list(small)) is None


# -- the documented example (docs/regression.md), verbatim, twice ---------------------------------------
def _doc_blocks(heading: str) -> dict[str, str]:
    """The first ```python, ```yaml and plain ``` blocks under ``heading`` of docs/regression.md."""
    text = (REPO / "docs" / "regression.md").read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    section = section[: section.index("\n## ", 1)]
    blocks: dict[str, str] = {}
    for m in re.finditer(r"^```(\w*)\n(.*?)^```$", section, flags=re.M | re.S):
        blocks.setdefault(m.group(1) or "shell", m.group(2))
    return blocks


def test_documented_example_passes_on_an_unchanged_rerun(pytester, tiny_run, registries):
    import shlex

    blocks = _doc_blocks("## A first regression test")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_inpaint_regression.py").write_text(blocks["python"])
    (pytester.path / "tests" / "inpaint-thresholds.yaml").write_text(blocks["yaml"])
    commands = [shlex.split(line) for line in blocks["shell"].splitlines() if line.startswith("pytest ")]
    assert len(commands) == 2 and "--evalsuite-update-baselines" in commands[0]
    for cmd in commands:  # write the baseline, then an unchanged rerun: a fresh generation compared with it
        res = pytester.runpytest_inprocess("-p", PLUGIN, *cmd[1:], "-rA")
        res.assert_outcomes(passed=1)
    baseline = json.loads(
        (pytester.path / "reports" / "baselines" / "flux-dev-inpaint__smoke__tiny.json").read_text()
    )
    assert set(baseline["metrics"]) == {"unmasked_psnr"} and len(baseline["images"]) == 2


@pytest.mark.parametrize(
    "option, fragment",
    [
        ("--evalsuite-device=tpu", "--evalsuite-device tpu:"),
        ("--evalsuite-configs=flux-dvv", "--evalsuite-configs: unknown configuration 'flux-dvv'"),
        ("--evalsuite-baselines={file}", "--evalsuite-baselines {file}: is a file, not a folder"),
        ("--evalsuite-out={file}", "--evalsuite-out {file}: is a file, not a folder"),
        ("--evalsuite-weights-dir={missing}", "--evalsuite-weights-dir {missing}: no such folder"),
    ],
)
def test_unusable_plugin_option_is_one_usage_error_at_start_up(pytester, option, fragment):
    f = pytester.path / "afile.txt"
    f.write_text("x")
    missing = pytester.path / "missing"
    pytester.makepyfile(test_inner="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    res = pytester.runpytest_inprocess("-p", PLUGIN, option.format(file=f, missing=missing))
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    err = res.stderr.str()
    assert fragment.format(file=f, missing=missing) in err and "Traceback" not in err
    assert "passed" not in res.stdout.str()
