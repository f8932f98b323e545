"""The one error hierarchy (:mod:`evalsuite.errors`): every exception class of the package derives
from ``EvalsuiteError``, the command line maps exit codes by class only, and an exception that is not
an evalsuite error is a bug: exit 1 with its traceback, never a usage error."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from pathlib import Path

import pytest

import evalsuite
from evalsuite import errors
from evalsuite.cli.main import main

#: Exceptions of the package that must stay outside the hierarchy, and why.
OUTSIDE = {
    # a KeyboardInterrupt on purpose: `except Exception` must not swallow Ctrl-C/SIGTERM
    "evalsuite.engine.lifecycle.RunInterrupted",
}


def _package_exceptions() -> dict[str, type[BaseException]]:
    out = {}
    for info in pkgutil.walk_packages(evalsuite.__path__, "evalsuite."):
        if info.name == "evalsuite.__main__":  # runs the command line when imported
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and obj.__module__ == module.__name__
                and issubclass(obj, BaseException)
                and not issubclass(obj, Warning)
            ):
                out[f"{module.__name__}.{name}"] = obj
    return out


def test_every_exception_class_of_the_package_is_an_evalsuite_error():
    found = _package_exceptions()
    assert len(found) >= 25, sorted(found)  # the walk did find the package's classes
    outside = sorted(n for n, c in found.items() if not issubclass(c, errors.EvalsuiteError))
    assert outside == sorted(OUTSIDE)
    named_error = [n for n in found if n.endswith("Error")]
    assert all(issubclass(found[n], errors.EvalsuiteError) for n in named_error)


def test_classes_keep_their_builtin_base_and_get_the_exit_code_of_their_category():
    from evalsuite.accel.errors import PointError, Unavailable
    from evalsuite.compare.thresholds import ThresholdError
    from evalsuite.config.configuration import ConfigError
    from evalsuite.data.cases import DatasetNotFoundError, ManifestError
    from evalsuite.data.loaders.common import LoaderNotConfigured
    from evalsuite.engine.lifecycle import InternalRunError
    from evalsuite.engine.lock import RunLockedError
    from evalsuite.metrics.features import MetricWeightsError
    from evalsuite.registry import RegistryError
    from evalsuite.results.store import JournalError, NotARunDirError
    from evalsuite.runners.weights import WeightsError

    cases = [
        (ConfigError("x"), ValueError, 2),
        (ManifestError("x"), ValueError, 2),
        (PointError("x"), ValueError, 2),
        (ThresholdError("x"), ValueError, 2),
        (RegistryError("x"), KeyError, 2),
        (DatasetNotFoundError("x"), FileNotFoundError, 2),
        (LoaderNotConfigured("x"), FileNotFoundError, 2),
        (NotARunDirError("x"), FileNotFoundError, 2),
        (JournalError("x", {}), ValueError, 2),  # a corrupted journal: the message says how to repair it
        (MetricWeightsError("x"), FileNotFoundError, 2),  # refused before generating, naming the file
        (RunLockedError("x", {}), RuntimeError, 3),
        (WeightsError("x"), RuntimeError, 1),
        (InternalRunError("x", None), RuntimeError, 1),
        (Unavailable("x"), RuntimeError, 1),
    ]
    for exc, builtin, code in cases:
        assert isinstance(exc, builtin), type(exc)
        assert errors.exit_code_of(exc) == code, type(exc)
    assert isinstance(MetricWeightsError("x"), errors.WeightsError)
    assert isinstance(WeightsError("x"), errors.WeightsError)
    assert errors.exit_code_of(ValueError("a bug")) == 1


def test_a_usage_error_is_one_line_and_its_traceback_is_logged_at_debug(tmp_path: Path, capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="evalsuite"):
        assert main(["-v", "report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"evalsuite: error: {tmp_path} is not a run directory (no run.json)"
    logged = [r for r in caplog.records if r.exc_info and r.levelno == logging.DEBUG]
    assert logged and logged[0].exc_info[0].__name__ == "NotARunDirError"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    from tests.runfactory import make_dataset, make_run

    tmp = tmp_path_factory.mktemp("synthetic")
    return make_run(tmp / "run", make_dataset(tmp / "ds", n=2))


def _boom(*args, **kwargs):
    raise ValueError("boom: an internal bug")


@pytest.mark.parametrize(
    "command, target",
    [
        (["report", "{run}"], "evalsuite.report.report.write_report"),
        (["score", "{run}", "--metrics", "latency"], "evalsuite.metrics.scoring.score_run"),
        (["compare", "{run}", "{run}", "--out", "{out}"], "evalsuite.compare.engine.compare_runs"),
    ],
    ids=["report", "score", "compare"],
)
def test_an_internal_bug_exits_1_with_its_traceback_not_2(
    command, target, synthetic_run: Path, tmp_path: Path, monkeypatch, capsys, caplog
):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    module, _, name = target.rpartition(".")
    monkeypatch.setattr(importlib.import_module(module), name, _boom)
    argv = [a.format(run=run, out=tmp_path / "cmp") for a in command]
    caplog.set_level("ERROR")
    assert main(argv) == 1
    err = capsys.readouterr().err
    if command[0] == "score":
        # score runs in the lifecycle: the bug is an internal error of the run, its traceback logged
        # (stderr) and kept in run.json's 'error'; the one-line summary names the phase
        assert "Traceback (most recent call last)" in caplog.text and "ValueError: boom" in caplog.text
        assert "evalsuite: error: internal error during scoring: ValueError: boom: an internal bug" in err
        assert "ValueError: boom" in json.loads((run / "run.json").read_text())["error"]["traceback"]
        return
    assert "Traceback (most recent call last)" in err
    assert "ValueError: boom: an internal bug" in err
    assert "evalsuite: error:" not in err


def test_a_converted_exception_keeps_its_cause(tmp_path: Path):
    from evalsuite.data.cases import ManifestError, load_manifest

    (tmp_path / "manifest.jsonl").write_text('{"id": "a", "id": "b"}\n', encoding="utf-8")
    with pytest.raises(ManifestError, match="given twice") as info:
        load_manifest(tmp_path)
    assert info.value.__cause__ is not None
