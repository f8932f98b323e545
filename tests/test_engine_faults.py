"""Engine faults of issue 17 (and exit codes of issue 13 item 8), each with its exact behaviour:
message, exit code, what stays on disk. Tiny weights on the CPU, the smoke set, one step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import evalsuite
from evalsuite.cli.main import main
from evalsuite.engine.lock import LOCK_FILE, RunLock
from evalsuite.results.store import RunFormatError, RunStore

REPO = Path(__file__).resolve().parent.parent
RUN = [
    "run",
    "--configs",
    "flux-dev",
    "--dataset",
    "smoke",
    "--limit",
    "2",
    "--metrics",
    "latency",
    "--no-progress",
]


def _run(tmp: Path, *extra: str) -> int:
    return main([*RUN, "--set", "steps=1", "--out", str(tmp), "--run-id", "r", *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished run (2 rows), copied by each test that changes it."""
    out = tmp_path_factory.mktemp("finished")
    assert _run(out) == 0
    return out / "r"


def _copy(run: Path, tmp: Path) -> Path:
    dst = tmp / "r"
    shutil.copytree(run, dst)
    return dst


# -- issue 17 item 0: resume keys finished rows on what produced them --------------------------------


def test_changed_parameters_regenerate_the_rows_naming_what_changed(tmp_path: Path, finished: Path, caplog):
    run = _copy(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in (run / "images/flux-dev").glob("*.png")}
    with caplog.at_level("WARNING"):
        code = main([*RUN, "--set", "steps=2", "--out", str(tmp_path), "--run-id", "r"])
    err = caplog.text
    caplog.clear()
    assert code == 0
    assert (
        "flux-dev: 2 finished row(s)" in err and "made differently (steps: 1 → 2); regenerating them" in err
    )
    meta = json.loads((run / "run.json").read_text())
    assert meta["configs"]["flux-dev"]["params"]["steps"] == 2
    assert meta["attempts"][-1]["regenerated"] == {"flux-dev": {"rows": 2, "changed": "steps: 1 → 2"}}
    df = pd.read_parquet(run / "samples.parquet")
    assert len(df) == 2 and set(df.config_hash) == {meta["configs"]["flux-dev"]["config_hash"]}
    assert all(len(s) == 2 for s in df.steps_s)  # every row is a 2-step row: nothing mixed
    after = {p.name: p.read_bytes() for p in (run / "images/flux-dev").glob("*.png")}
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in after)
    # the same command again: nothing to regenerate
    with caplog.at_level("WARNING"):
        assert main([*RUN, "--set", "steps=2", "--out", str(tmp_path), "--run-id", "r"]) == 0
    assert "regenerating" not in caplog.text


def test_changed_case_bytes_regenerate_only_that_case(tmp_path: Path, tiny_dataset: Path, caplog):
    kw = dict(
        configs=["flux-dev-inpaint"],
        dataset=str(tiny_dataset),
        out=tmp_path,
        run_id="r",
        overrides=["steps=1"],
        metrics=[],
        progress=False,
        report=False,
        limit=2,
    )
    first = evalsuite.run(**kw)
    a_png, b_png = (first.run_dir / r for r in sorted(first.samples.image))
    b_mtime = b_png.stat().st_mtime_ns
    img = np.asarray(Image.open(tiny_dataset / "img/a.png")).copy()
    img[0, 0] = 255 - img[0, 0]
    Image.fromarray(img).save(tiny_dataset / "img/a.png")
    with caplog.at_level("WARNING"):
        second = evalsuite.run(**kw)
    assert "1 finished row(s)" in caplog.text and "the inputs of case(s) a changed" in caplog.text
    assert second.ok and b_png.stat().st_mtime_ns == b_mtime  # b untouched, a regenerated
    fp = evalsuite.load_manifest(tiny_dataset).fingerprint
    assert second.meta["dataset"]["fingerprint"] == fp and set(second.samples.dataset_fingerprint) == {fp}


# -- item 0b: a corrupted line in the middle of rows.jsonl ---------------------------------------------


def _corrupt_first_line(run: Path) -> bytes:
    lines = (run / "rows.jsonl").read_bytes().split(b"\n")
    bad = lines[0][: len(lines[0]) // 2] + b"#garbage"
    lines[0] = bad
    (run / "rows.jsonl").write_bytes(b"\n".join(lines))
    return bad


def test_corrupted_middle_line_is_refused_by_score_and_repaired_by_run(
    tmp_path: Path, finished: Path, capsys, caplog
):
    run = _copy(finished, tmp_path)
    bad = _corrupt_first_line(run)
    assert main(["score", str(run), "--metrics", "latency"]) == 2
    err = capsys.readouterr().err
    assert (
        f"corrupted journal: {run / 'rows.jsonl'} line(s) 1 cannot be read as rows; nothing was dropped"
        in err
    )
    assert "Rerun `evalsuite run` with the same arguments" in err
    assert main(["report", str(run)]) == 2
    assert "corrupted journal" in capsys.readouterr().err
    # the run sets the line aside loudly and regenerates its row: N is back to 2
    with caplog.at_level("WARNING"):
        assert _run(tmp_path) == 0
    assert "line(s) 1 are corrupted; set aside in rows.jsonl.corrupt" in caplog.text
    assert (run / "rows.jsonl.corrupt").read_bytes() == bad + b"\n"
    df = pd.read_parquet(run / "samples.parquet")
    assert len(df) == 2 and set(df.status) == {"ok"}
    assert main(["score", str(run), "--metrics", "latency"]) == 0
    assert "N=2" in capsys.readouterr().out


def test_torn_last_line_is_still_tolerated(tmp_path: Path, finished: Path):
    run = _copy(finished, tmp_path)
    with open(run / "rows.jsonl", "ab") as f:
        f.write(b'{"config": "flux-dev", "case_id": "x", "se')
    assert len(RunStore(run).rows()) == 2
    assert main(["report", str(run)]) == 0


# -- item 0d: report checks run.json against the rows -------------------------------------------------


def test_report_refuses_a_run_json_edited_to_another_dataset(tmp_path: Path, finished: Path, capsys):
    run = _copy(finished, tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["dataset"]["fingerprint"] = "0" * 64
    (run / "run.json").write_text(json.dumps(meta))
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert (
        "run.json says dataset 'smoke' (fingerprint 000000000000…), but 2 row(s) of rows.jsonl were " in err
    )
    assert "run.json was edited or belongs to another run" in err


def test_report_refuses_a_run_json_with_other_parameters(tmp_path: Path, finished: Path, capsys):
    run = _copy(finished, tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["configs"]["flux-dev"]["params"]["steps"] = 50
    (run / "run.json").write_text(json.dumps(meta))
    assert main(["report", str(run)]) == 2
    assert (
        "run.json's runner/parameters/weights for configuration 'flux-dev' are not the ones its 2 row(s)"
        in (capsys.readouterr().err)
    )


# -- item 12: a corrupted samples.parquet --------------------------------------------------------------


def test_corrupted_samples_parquet_is_rebuilt_from_the_journal(tmp_path: Path, finished: Path, caplog):
    run = _copy(finished, tmp_path)
    (run / "samples.parquet").write_bytes(b"not a parquet file")
    with caplog.at_level("WARNING"):
        assert main(["report", str(run)]) == 0
        from evalsuite.report.tables import load_view

        view = load_view(run)
    assert len(view.samples) == 2
    assert (
        "samples.parquet is unreadable" in caplog.text and "rebuilt the table from rows.jsonl" in caplog.text
    )
    assert main(["score", str(run), "--metrics", "latency"]) == 0  # rewrites it
    assert len(pd.read_parquet(run / "samples.parquet")) == 2


# -- run.json / samples.parquet written with the umask's mode ---------------------------------------------


def test_run_files_get_the_umask_mode(finished: Path):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("run.json", "samples.parquet", "rows.jsonl", "report.md"):
        assert (finished / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


# -- lock: score and report refuse while a run writes the directory -------------------------------------


def test_score_and_report_refuse_while_the_directory_is_locked(tmp_path: Path, finished: Path, capsys):
    run = _copy(finished, tmp_path)
    with RunLock(run):
        for cmd in (["score", str(run), "--metrics", "latency"], ["report", str(run)]):
            assert main(cmd) == 3
            assert f"in use by another evalsuite run (pid {os.getpid()} on " in capsys.readouterr().err
    assert main(["report", str(run)]) == 0 and not (run / LOCK_FILE).exists()


def test_lock_module_imports_without_fcntl():
    code = "import sys; sys.modules['fcntl'] = None; import evalsuite.engine.lock, evalsuite.results.store; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# -- schema: versioned, migrated on read or refused --------------------------------------------------------


def test_schema_v1_is_migrated_and_an_unknown_version_refused(tmp_path: Path, finished: Path, capsys):
    run = _copy(finished, tmp_path)
    meta = json.loads((run / "run.json").read_text())
    assert meta["schema"] == "evalsuite.run/2" and meta["kind"] == "generate"
    v1 = {k: v for k, v in meta.items() if k not in ("kind", "attempts", "interrupted")}
    v1["schema"] = "evalsuite.run/1"
    for c in v1["configs"].values():
        c.pop("config_hash")
    (run / "run.json").write_text(json.dumps(v1))
    back = RunStore(run).read_meta()
    assert back["schema"] == "evalsuite.run/2" and back["migrated_from"] == "evalsuite.run/1"
    assert back["kind"] == "generate" and back["interrupted"] is False
    assert main(["report", str(run)]) == 0
    v1["schema"] = "evalsuite.run/9"
    (run / "run.json").write_text(json.dumps(v1))
    with pytest.raises(RunFormatError, match=r"schema 'evalsuite.run/9' is not one this evalsuite reads"):
        RunStore(run).read_meta()
    assert main(["report", str(run)]) == 2
    assert "evalsuite.run/1, evalsuite.run/2" in capsys.readouterr().err


# -- issue 17 items 1, 2, 5, 6, 7: usage errors exit 2 with one line, nothing written -------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--run-id", "../../escaped-run"],
            "--run-id '../../escaped-run': a run id is a folder name under --out",
        ),
        (["--run-id", ""], "--run-id '': a run id is a folder name under --out"),
        (["--run-id", "a/b"], "no path separators"),
        (["--limit", "0"], "--limit 0: must be ≥ 1"),
        (["--limit", "-1"], "--limit -1: must be ≥ 1"),
        (["--device", "tpu"], "--device 'tpu': evalsuite accepts auto, cpu, cuda, cuda:N"),
    ],
)
def test_run_usage_errors(tmp_path: Path, capsys, extra, message):
    out = tmp_path / "out"
    out.mkdir()
    code = main([*RUN, "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert list(out.iterdir()) == [] and list(tmp_path.iterdir()) == [out]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_a_usage_error(tmp_path: Path, capsys):
    assert main([*RUN, "--out", str(tmp_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda: CUDA is not available on this machine" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_out_or_run_dir_on_a_file_is_a_usage_error(tmp_path: Path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main([*RUN, "--out", str(f)]) == 2
    assert f"--out {f}: is a file, not a folder; pass a folder" in capsys.readouterr().err
    assert main([*RUN, "--run-dir", str(f)]) == 2
    assert f"--run-dir {f}: is a file, not a folder" in capsys.readouterr().err
    assert main([*RUN, "--out", str(f / "sub")]) == 2
    assert f"is inside {f}, which is a file" in capsys.readouterr().err
    assert f.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_out_on_a_read_only_folder_is_a_usage_error(tmp_path: Path):
    from tests.unprivileged import evalsuite_as_non_root

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = evalsuite_as_non_root([*RUN, "--out", str(ro)])
        assert res.returncode == 2, res.stderr
        assert f"--out {ro}: cannot write in {ro}" in res.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_run_config_gives_the_api_the_same_errors(tmp_path: Path):
    from evalsuite.config.runconfig import RunConfig, RunConfigError

    with pytest.raises(RunConfigError, match=r"--limit 0: must be ≥ 1"):
        evalsuite.run(configs=["flux-dev"], out=tmp_path, limit=0)
    with pytest.raises(RunConfigError, match=r"a run id is a folder name"):
        evalsuite.run(RunConfig(configs=["flux-dev"], out=tmp_path, run_id=".."))
    with pytest.raises(TypeError, match=r"unknown run argument\(s\) limt; valid: configs"):
        evalsuite.run(configs=["flux-dev"], limt=2)
    assert list(tmp_path.iterdir()) == []


# -- issue 13 item 8: an internal error after generation started exits 1, rows and images kept ---------------


def test_internal_error_after_generation_exits_1_and_keeps_rows(tmp_path: Path, capsys, caplog):
    run = tmp_path / "r"
    (run / "report.md").mkdir(parents=True)  # the report cannot be written: a fault after generation
    with caplog.at_level("ERROR"):
        code = main([*RUN, "--set", "steps=1", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 1
    assert "internal error during the report: IsADirectoryError" in err
    assert "Traceback (most recent call last)" in caplog.text  # the traceback is in the log
    assert "rows and images written so far are kept" in err
    meta = json.loads((run / "run.json").read_text())
    assert meta["error"]["phase"] == "the report" and "Traceback" in meta["error"]["traceback"]
    assert len(pd.read_parquet(run / "samples.parquet")) == 2
    assert len(list((run / "images/flux-dev").glob("*.png"))) == 2
    assert not (run / LOCK_FILE).exists()
