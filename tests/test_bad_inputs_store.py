"""The bad-input corpus, continued: run directories and their stores (issue 29, found by an
independent try of main): a directory reused by another configuration, the two copies of the rows
(``rows.jsonl`` and ``samples.parquet``) disagreeing, a generated image of another size, FID's
reference set, a full disk. Each case is the behaviour a user must get: nothing already written
lost, one clear line, the right exit code. Tiny weights on the CPU, the smoke set, one step."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.cli.main import main
from tests.test_cli import cli

REPO = Path(__file__).resolve().parent.parent


def _run(out: Path, config: str, *extra: str) -> int:
    return main(
        [
            "run",
            "--configs",
            config,
            "--dataset",
            "smoke",
            "--limit",
            "2",
            "--metrics",
            "latency",
            "--no-progress",
            "--set",
            "steps=1",
            "--out",
            str(out),
            "--run-id",
            "nightly",
            *extra,
        ]
    )


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _images(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "images").rglob("*.png"))}


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory) -> dict[str, Path]:
    """For each configuration, a finished run of it alone into ``nightly`` (2 rows)."""
    out = {}
    for config in ("flux-dev-inpaint", "flux-dev"):
        root = tmp_path_factory.mktemp(config)
        assert _run(root, config) == 0
        out[config] = root / "nightly"
    return out


def _copy(run: Path, tmp: Path) -> Path:
    shutil.copytree(run, tmp / "nightly")
    return tmp / "nightly"


# -- item 1: a reused run directory with other configurations is merged, never bricked -------------


@pytest.mark.parametrize("first,second", [("flux-dev-inpaint", "flux-dev"), ("flux-dev", "flux-dev-inpaint")])
def test_a_run_into_a_directory_of_another_configuration_keeps_both(
    first: str, second: str, first_runs, tmp_path: Path
):
    run = _copy(first_runs[first], tmp_path)
    before = _meta(run)
    images = _images(run)
    assert _run(tmp_path, second) == 0
    meta = _meta(run)
    assert list(meta["configs"]) == [first, second]
    assert meta["configs"][first] == before["configs"][first]  # its parameters, as the first run wrote them
    assert meta["summary"][first] == before["summary"][first]
    assert meta["summary"][second]["counts"]["ok"] == 2
    assert meta["weights"] == {first: "tiny", second: "tiny"}
    assert meta["attempts"][-1]["kept_configs"] == [first]
    assert all(_images(run)[k] == v for k, v in images.items())  # nothing of the first run rewritten
    assert len(pd.read_parquet(run / "samples.parquet")) == 4
    res = cli("report", str(run), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert first in (run / "report.md").read_text() and second in (run / "report.md").read_text()
    # either command again: both stay, nothing regenerated
    for config in (first, second):
        assert _run(tmp_path, config) == 0
        meta = _meta(run)
        assert list(meta["configs"]) == [first, second] and meta["attempts"][-1]["rows_already_done"] == 2
    assert cli("report", str(run), cwd=tmp_path).returncode == 0


def _drop_config_from_run_json(run: Path) -> None:  # what an earlier version's second run left
    meta = _meta(run)
    meta["configs"].pop("flux-dev-inpaint")
    (run / "run.json").write_text(json.dumps(meta))


def _other_dataset(run: Path) -> None:
    meta = _meta(run)
    meta["dataset"]["fingerprint"] = "0" * 64
    (run / "run.json").write_text(json.dumps(meta))
    lines = [json.loads(x) for x in (run / "rows.jsonl").read_text().splitlines()]
    for r in lines:
        r["dataset_fingerprint"] = "0" * 64
    (run / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


# name → (how the directory is changed after the first run, fragments of the one-line refusal)
REFUSED = {
    "rows-run-json-no-longer-describes": (
        _drop_config_from_run_json,
        ["holds rows of configuration(s) flux-dev-inpaint that its run.json no longer describes"],
    ),
    "rows-of-another-dataset": (
        _other_dataset,
        [
            "holds rows of configuration(s) flux-dev-inpaint made from another dataset",
            "one run directory holds",
        ],
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_run_that_cannot_keep_the_directorys_rows_is_refused_before_generating(
    name: str, first_runs, tmp_path: Path
):
    run = _copy(first_runs["flux-dev-inpaint"], tmp_path)
    change, fragments = REFUSED[name]
    change(run)
    files = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"}
    res = cli(
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
        "--set",
        "steps=1",
        "--out",
        str(tmp_path),
        "--run-id",
        "nightly",
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "--run-id NEW_NAME" in res.stderr
    for frag in fragments:
        assert frag in res.stderr
    assert not (run / "images" / "flux-dev").exists()  # nothing generated
    after = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"}
    assert after == files


# -- item 2: rows.jsonl and samples.parquet disagree: nothing overwritten, the intact copy wins -------


def _empty_journal(run: Path) -> None:
    (run / "rows.jsonl").write_bytes(b"")


def _delete_journal(run: Path) -> None:
    (run / "rows.jsonl").unlink()


def _truncate_journal(run: Path) -> None:  # cut after its first line (an older copy restored, a bad edit)
    lines = (run / "rows.jsonl").read_bytes().splitlines(keepends=True)
    (run / "rows.jsonl").write_bytes(lines[0])


JOURNAL_DAMAGE = {"emptied": _empty_journal, "deleted": _delete_journal, "truncated": _truncate_journal}


@pytest.mark.parametrize("name", list(JOURNAL_DAMAGE))
def test_a_damaged_journal_is_restored_from_an_intact_samples_parquet(
    name: str, first_runs, tmp_path: Path, caplog
):
    run = _copy(first_runs["flux-dev"], tmp_path)
    table = pd.read_parquet(run / "samples.parquet")
    JOURNAL_DAMAGE[name](run)
    with caplog.at_level("WARNING"):
        res = cli("report", str(run), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "are in no journal (rows.jsonl was emptied, truncated or deleted)" in caplog.text
    assert "`evalsuite score" in caplog.text
    assert "| flux-dev | tiny | 2 | 2 | 0 | 0 |" in (run / "report.md").read_text()  # not `rows 0`
    caplog.clear()
    with caplog.at_level("WARNING"):
        res = cli("score", str(run), "--metrics", "latency", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "no journal holds" in caplog.text and "restored them into" in caplog.text
    after = pd.read_parquet(run / "samples.parquet")
    assert len(after) == 2 and list(after.case_id) == list(table.case_id)
    journal = [json.loads(x) for x in (run / "rows.jsonl").read_text().splitlines()]
    assert {(r["case_id"], r.get("status")) for r in journal if "status" in r} == {
        (c, "ok") for c in table.case_id
    }
    assert _meta(run)["summary"]["flux-dev"]["counts"]["ok"] == 2


def test_both_copies_of_the_rows_lost_is_said_and_nothing_is_overwritten(first_runs, tmp_path: Path):
    run = _copy(first_runs["flux-dev"], tmp_path)
    (run / "rows.jsonl").unlink()
    (run / "samples.parquet").write_bytes(b"garbage, not parquet")
    files = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for args in (["report", str(run)], ["score", str(run)]):
        res = cli(*args, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr and "rebuilt the table from" not in res.stderr
        assert (
            f"{run}: the run's rows are lost: there is no rows.jsonl and samples.parquet cannot be read"
            in (res.stderr)
        )
        assert "run.json counts 2 row(s); nothing was changed" in res.stderr
        assert "Restore rows.jsonl or samples.parquet from a copy" in res.stderr
        assert {
            str(p): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"
        } == files


# -- item 13: one generated image of another size fails its row, not the command --------------------


def test_score_fails_only_the_row_whose_image_has_another_size(first_runs, tmp_path: Path):
    from PIL import Image

    run = _copy(first_runs["flux-dev"], tmp_path)
    rows = pd.read_parquet(run / "samples.parquet")
    odd = run / rows.image[1]
    with Image.open(odd) as im:
        w, h = im.size
        im.resize((w // 2, h // 2)).save(odd)
    res = cli("score", str(run), "--metrics", "clip_score", "fid", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "stack expects" not in res.stderr
    assert (
        f"flux-dev: 1 row(s) not scored: {rows.case_id[1]} seed {rows.seed[1]}: image {odd} is "
        f"{w // 2}×{h // 2} while the configuration's other images are {w}×{h}"
    ) in res.stderr
    assert "delete it and rerun `evalsuite run` to regenerate it" in res.stderr
    meta = _meta(run)
    assert meta["summary"]["flux-dev"]["metrics"]["clip_score"]["n"] == 1
    assert meta["summary"]["flux-dev"]["scoring_errors"]["n"] == 1
    assert "report: " in res.stdout and (run / "report.md").is_file()


# -- item 8: FID's reference set is explicit, recorded, the same in `run --limit` and `score` --------


def test_fid_reference_set_is_the_same_in_run_and_score_and_a_change_is_said(tmp_path: Path, caplog):
    import numpy as np
    from PIL import Image

    assert _run(tmp_path, "flux-dev-inpaint", "--metrics", "fid") == 0
    run = tmp_path / "nightly"
    fid = _meta(run)["summary"]["flux-dev-inpaint"]["metrics"]["fid"]
    assert fid["reference_set"] == "source images of 2 case(s) of smoke" and fid["n_ref"] == 2
    note = "reference N=2, reference: source images of 2 case(s) of smoke;"  # the metric notes
    head = "FID and KID are measured against source images of 2 case(s) of smoke (reference N=2)."
    assert note in (run / "report.md").read_text() and head in (run / "report.md").read_text()
    res = cli("score", str(run), "--metrics", "fid", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    again = _meta(run)["summary"]["flux-dev-inpaint"]["metrics"]["fid"]
    assert again["value"] == pytest.approx(fid["value"]) and again["reference_id"] == fid["reference_id"]
    assert f"reference: source images of 2 case(s) of smoke (N=2, id {fid['reference_id']})" in res.stdout
    assert "reference set changed" not in res.stderr and note in (run / "report.md").read_text()
    # another reference, asked for: said, and recorded
    ref = tmp_path / "ref"
    ref.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(ref / f"{i}.png")
    with caplog.at_level("WARNING"):
        res = cli(
            "score", str(run), "--metrics", "fid", "--metric-option", f"fid.reference={ref}", cwd=tmp_path
        )
    assert res.returncode == 0, res.stderr
    assert (
        "flux-dev-inpaint: FID's reference set changed: was source images of 2 case(s) of smoke, now 3 "
        f"image(s) of folder {ref}; the new FID is not comparable with the old one"
    ) in caplog.text
    assert f"reference: 3 image(s) of folder {ref} (N=3" in res.stdout
    assert _meta(run)["summary"]["flux-dev-inpaint"]["metrics"]["fid"]["n_ref"] == 3
    assert (
        f"FID and KID are measured against 3 image(s) of folder {ref} (reference N=3)."
        in (run / "report.md").read_text()
    )


# -- item 16: a full disk is one line naming the disk and the space needed; nothing written is lost ----

FULL_DISK = r"""
D=$1; O=$2; SLACK=$3
mount -t tmpfs -o size=8m tmpfs "$D" || exit 99
R="run --configs flux-dev --dataset smoke --metrics latency --no-progress --set steps=1 --out $D --run-id r"
$PY -m evalsuite $R --limit 1 > "$O/first.err" 2>&1; echo $? > "$O/first.rc"
cp -r "$D/r" "$O/before"
dd if=/dev/zero of="$D/filler" bs=4k 2>/dev/null
truncate -s "-$SLACK" "$D/filler"
$PY -m evalsuite $R --limit 2 > "$O/run.err" 2>&1; echo $? > "$O/run.rc"
$PY -m evalsuite report "$D/r" > "$O/report.err" 2>&1; echo $? > "$O/report.rc"
cp -r "$D/r" "$O/full"
rm "$D/filler"
$PY -m evalsuite $R --limit 2 > "$O/resume.err" 2>&1; echo $? > "$O/resume.rc"
cp -r "$D/r" "$O/after"
"""


def _tmpfs_ok() -> bool:
    import os
    import subprocess

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', "/tmp"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.parametrize("slack", ["0", "48K"])  # full at the start; full while writing
def test_a_full_disk_is_one_line_and_a_rerun_resumes_once_space_is_freed(slack: str, tmp_path: Path):
    # a real full disk: a small tmpfs in a private mount namespace, filled up to `slack` bytes free
    import os
    import subprocess
    import sys

    if not _tmpfs_ok():
        pytest.skip("cannot mount a tmpfs here (needs root and mount namespaces)")
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    script = tmp_path / "full.sh"
    script.write_text(FULL_DISK)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "PY": sys.executable}
    subprocess.run(["unshare", "-m", "sh", str(script), str(disk), str(out), slack], env=env, timeout=600)
    assert (out / "first.rc").read_text().strip() == "0", (out / "first.err").read_text()
    for step in ("run", "report"):
        rc, err = (out / f"{step}.rc").read_text().strip(), (out / f"{step}.err").read_text()
        if step == "run" and rc == "0":
            continue  # it fitted (a larger slack): nothing to say
        assert rc == "1", err
        assert "Traceback" not in err and "internal error" not in err
        lines = [ln for ln in err.splitlines() if ln.startswith("evalsuite: error:")]
        assert len(lines) == 1, err
        assert lines[0].startswith("evalsuite: error: no space left on device")
        assert f"(the file system mounted at {disk}, " in lines[0] and "free about " in lines[0]
        assert "and rerun the same command; everything written before is kept" in lines[0]
        if step == "report":
            assert "--out" not in lines[0]  # `evalsuite report` has none
    # nothing written before the disk filled is lost
    before = {p.relative_to(out / "before"): p.read_bytes() for p in (out / "before/images").rglob("*.png")}
    full = out / "full"
    assert all((full / k).read_bytes() == v for k, v in before.items())
    first = [json.loads(x) for x in (out / "before/rows.jsonl").read_text().splitlines()]
    assert all(x in (full / "rows.jsonl").read_text() for x in (json.dumps(r["case_id"]) for r in first))
    # space freed: the same command resumes and finishes
    assert (out / "resume.rc").read_text().strip() == "0", (out / "resume.err").read_text()
    assert re.search(r"2 work items, [12] already done", (out / "resume.err").read_text())
    assert len(pd.read_parquet(out / "after/samples.parquet")) == 2
    assert all((out / "after" / k).read_bytes() == v for k, v in before.items())


# -- confusing messages: `score --dataset` naming another dataset says so (not "changed") ------------


@pytest.mark.parametrize("other", ["inpaint-core", "t2i-core"])
def test_score_with_another_dataset_says_it_is_another_one(other: str, first_runs, tmp_path: Path):
    run = _copy(first_runs["flux-dev-inpaint"], tmp_path)
    meta = (run / "run.json").read_bytes()
    res = cli("score", str(run), "--dataset", other, "--metrics", "fid", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"dataset {other} is another dataset ({other!r}, fingerprint " in res.stderr
    assert "than the one the run was made on ('smoke', " in res.stderr
    assert "pass --dataset PATH to the run's dataset (run.json records its source: " in res.stderr
    assert "changed" not in res.stderr and (run / "run.json").read_bytes() == meta
