from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import evalsuite
from evalsuite.results.run import read_run_meta
from evalsuite.results.store import RunFormatError, RunStore


def _row(case: str, status: str = "ok", **kw):
    return {
        "config": "c",
        "case_id": case,
        "seed": 0,
        "status": status,
        "error": None,
        "image": f"images/c/{case}-0.png",
        **kw,
    }


def test_round_trip_and_last_version_wins(tmp_path: Path):
    store = RunStore(tmp_path / "run")
    store.write_meta({"run_id": "run", "weights": {"c": "tiny"}})
    store.append_row(_row("x", status="error", error="boom", image=None))
    store.append_row(_row("y", latency_s=1.5, steps_s=[0.1, 0.2]))
    store.append_row(_row("x", latency_s=2.0))  # retried successfully
    df = store.write_samples()
    back = pd.read_parquet(store.samples_path)
    assert list(back["case_id"]) == ["x", "y"]
    assert list(back["status"]) == ["ok", "ok"]
    assert back.loc[back.case_id == "y", "steps_s"].iloc[0].tolist() == [0.1, 0.2]
    assert df.shape == back.shape
    assert store.read_meta()["schema"] == "evalsuite.run/2"


def test_torn_journal_line_is_ignored_and_next_row_starts_clean(tmp_path: Path):
    store = RunStore(tmp_path)
    store.append_row(_row("x"))
    with open(store.journal, "ab") as f:
        f.write(b'{"config": "c", "case_id": "tor')  # crash mid-write
    store.append_row(_row("y"))
    assert [r["case_id"] for r in store.rows()] == ["x", "y"]


def test_read_meta_checks_the_rows_it_is_given(tmp_path: Path):
    """``read_meta(rows=...)`` checks run.json against the rows the caller read (the catalog reads
    the journal once), not against a second reading."""
    store = RunStore(tmp_path)
    store.append_row(_row("x"))
    store.write_meta({"run_id": "r", "finished": "2026-01-01T00:00:00", "configs": {"c": {}}})
    assert store.read_meta(rows=store.rows())["run_id"] == "r"
    other = [{**_row("x"), "config": "not-in-run-json"}]
    with pytest.raises(RunFormatError, match="not-in-run-json"):
        store.read_meta(rows=other)
    assert read_run_meta(store, rows=store.rows())["run_id"] == "r"
    with pytest.raises(RunFormatError, match="not-in-run-json"):
        read_run_meta(store, rows=other)


def test_done_keys_need_the_image(tmp_path: Path):
    store = RunStore(tmp_path)
    store.append_row(_row("x"))
    store.append_row(_row("y", status="error", image=None))
    assert store.done_keys() == set()
    (tmp_path / "images/c").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "images/c/x-0.png")
    assert store.done_keys() == {("c", "x", 0)}


def test_run_and_load_run_round_trip(tmp_path: Path, tiny_dataset: Path):
    res = evalsuite.run(
        configs=["flux-dev"], dataset=str(tiny_dataset), out=tmp_path, progress=False, overrides=["steps=2"]
    )
    assert res.ok and len(res.samples) == 3
    back = evalsuite.load_run(res.run_dir)
    cols = ["config", "case_id", "seed", "status", "image", "latency_s"]
    pd.testing.assert_frame_equal(back.samples[cols], res.samples[cols])
    meta = back.meta
    assert meta["dataset"]["fingerprint"] == evalsuite.load_manifest(tiny_dataset).fingerprint
    assert meta["weights"] == {"flux-dev": "tiny"}
    assert meta["configs"]["flux-dev"]["params"]["steps"] == 2
    for key in ("torch", "diffusers", "transformers", "python"):
        assert meta["environment"]["versions"][key]
    assert meta["environment"]["device"]["type"] == "cpu"
    assert back.summary["flux-dev"]["metrics"]["latency"]["n"] == 3


def test_rerun_skips_finished_rows(tmp_path: Path, tiny_dataset: Path):
    kw = dict(
        configs=["flux-dev"], dataset=str(tiny_dataset), out=tmp_path, progress=False, overrides=["steps=1"]
    )
    first = evalsuite.run(**kw)
    mtimes = {p: p.stat().st_mtime_ns for p in (first.run_dir / "images").rglob("*.png")}
    lines = (first.run_dir / "rows.jsonl").read_text().count('"status": "ok"')
    second = evalsuite.run(**kw)
    assert second.run_dir == first.run_dir
    assert {p: p.stat().st_mtime_ns for p in (second.run_dir / "images").rglob("*.png")} == mtimes
    assert (second.run_dir / "rows.jsonl").read_text().count('"status": "ok"') == lines
    assert len(second.samples) == 3
