"""The typed stored results (evalsuite/results/types.py) and the one run loader (evalsuite/results/run.py):
records round-trip every stored run.json and row byte for byte, their fields are the fields
docs/run-format.md documents, rows carry their inputs, and scoring and the report use them instead
of reading the dataset again."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import evalsuite
from evalsuite.results.run import Run
from evalsuite.results.store import SCHEMA, SCHEMA_V1, RunStore
from evalsuite.results.types import ConfigEntry, Row, RunMeta, Summary, record_fields
from tests._metric_runners import register, write_configs
from tests.conftest import write_dataset

DOC = Path(__file__).resolve().parents[1] / "docs" / "run-format.md"


@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    """A scored run of two fast inpainting configurations and a text-to-image one."""
    register()
    tmp = tmp_path_factory.mktemp("types")
    cases = [
        {
            "id": f"c{i}",
            "prompt": f"a red apple {i}",
            "image": f"img/{i}.png",
            "mask": f"mask/{i}.png",
            "seed": i,
        }
        for i in range(3)
    ] + [{"id": "t", "prompt": "a lighthouse", "seed": 7, "category": "t2i"}]
    ds = write_dataset(tmp / "ds", cases)
    res = evalsuite.run(
        configs=["noise-inp", "noise-t2i"],
        dataset=str(ds),
        config_dirs=[write_configs(tmp / "cfg")],
        out=tmp / "out",
        metrics=["unmasked_mse", "latency"],
        progress=False,
        report=False,
    )
    return res, ds


# -- the documentation and the types cannot drift ---------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading."""
    lines = text.splitlines()
    start = lines.index(heading)
    out = []
    for line in lines[start + 1 :]:
        if re.match(r"^#+ ", line):
            break
        out.append(line)
    return "\n".join(out)


def documented_fields(section: str) -> set[str]:
    """The field names in the first column of every field table in ``section`` (``a``, ``b`` from
    ``| `a`, `b` |``; ``configs.<name>`` → ``configs``; ``attempts[]`` → ``attempts``)."""
    names = set()
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) < 3 or not cells[1].strip().startswith("`"):
            continue
        for name in re.findall(r"`([^`]+)`", cells[1]):
            names.add(re.split(r"[.\[]", name)[0])
    return names


def test_documented_fields_parse_what_the_tables_say():
    table = "| field | meaning |\n|---|---|\n| `a`, `b.<x>` | one `c` |\n| `d[]` | two |\nprose `e`\n"
    assert documented_fields(table) == {"a", "b", "d"}


@pytest.mark.parametrize(
    ("record", "heading"),
    [
        (RunMeta, "## `run.json`"),
        (ConfigEntry, "### `configs.<name>`"),
        (Summary, "### `summary.<config>`"),
        (Row, "## Rows (`rows.jsonl`, `samples.parquet`)"),
    ],
)
def test_docs_list_exactly_the_typed_fields(record, heading):
    documented = documented_fields(_section(DOC.read_text(encoding="utf-8"), heading))
    fields = set(record_fields(record))
    assert fields - documented == set(), f"{record.__name__} fields missing from docs/run-format.md {heading}"
    assert documented - fields == set(), f"documented under {heading} but not fields of {record.__name__}"


# -- round trips ------------------------------------------------------------------------------------


def test_every_stored_record_round_trips_byte_for_byte(inpaint_run):
    res, _ = inpaint_run
    raw = (res.run_dir / "run.json").read_text(encoding="utf-8")
    meta = json.loads(raw)
    back = RunMeta.from_dict(meta).to_dict()
    assert json.dumps(back, indent=2) == json.dumps(meta, indent=2)
    typed = RunMeta.from_dict(meta)
    assert typed.kind == "generate" and typed.configs["noise-inp"].runner == "noise-inpaint"
    assert typed.summary is not None and typed.summary["noise-inp"].metrics["unmasked_mse"]["n"] == 3
    lines = (res.run_dir / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) > 8  # generation lines and the metric lines scoring appended
    for line in lines:
        row = json.loads(line)
        assert json.dumps(Row.from_dict(row).to_dict()) == json.dumps(row)


def test_from_dict_builds_the_record_the_constructor_builds():
    """``from_dict`` fills a record's fields without calling the dataclass constructor field by field
    (the catalog reads every row of every run through it): the same record, attribute for attribute
    and in the same order; fresh defaults; the constructor's own errors and hooks kept."""
    d = {"config": "c", "case_id": "x", "seed": 3, "status": "ok", "latency_s": 1.5, "clip_score": 30.0}
    fast = Row.from_dict(d)
    built = Row(
        **{k: v for k, v in d.items() if k in Row.field_names()},
        extra={k: v for k, v in d.items() if k not in Row.field_names()},
    )
    object.__setattr__(built, "_keys", list(d))
    assert fast == built and list(vars(fast).items()) == list(vars(built).items())
    a, b = RunMeta.from_dict({"configs": {"x": {"runner": "r"}}}), RunMeta.from_dict({})
    assert a.attempts == [] == b.attempts and a.attempts is not b.attempts and a.extra is not b.extra
    assert a.configs["x"].params == {} and a.configs["x"].params is not ConfigEntry.from_dict({}).params
    with pytest.raises(TypeError, match="seed"):
        Row.from_dict({"config": "c", "case_id": "x"})

    @dataclasses.dataclass(eq=True)
    class Upper(ConfigEntry):
        def __post_init__(self) -> None:
            self.runner = (self.runner or "").upper()

    assert Upper.from_dict({"runner": "fake"}).runner == "FAKE"


def test_sweep_rows_and_unknown_fields_survive_in_extra():
    row = {
        "config": "flux-dev[fbcache]",
        "point": "fbcache",
        "status": "unavailable",
        "reason": "needs CUDA",
        "images": {"a|0": "images/x.png"},
        "lpips_mean": None,
        "case_id": "-",
        "seed": 0,
        "weights": "tiny",
    }
    typed = Row.from_dict(row)
    assert typed.key == ("flux-dev[fbcache]", "-", 0) and typed.extra["reason"] == "needs CUDA"
    assert list(typed.to_dict().items()) == list(row.items())
    entry = {"runner": "flux", "params": {}, "weights": "tiny", "load_error": None, "x": 1}
    assert ConfigEntry.from_dict(entry).to_dict() == entry and list(
        ConfigEntry.from_dict(entry).to_dict()
    ) == list(entry)


def test_a_field_set_after_reading_is_written_after_the_fields_read():
    meta = RunMeta.from_dict({"schema": SCHEMA, "run_id": "r", "x": 1})
    meta.finished = None  # assigned, even as null: written
    meta.kind = "generate"
    meta.attempts.append({"pid": 1})  # a default container that now holds something: written
    assert list(meta.to_dict()) == ["schema", "run_id", "x", "finished", "kind", "attempts"]
    summary = Summary.from_dict({"counts": {"n": 1}, "metrics": {}, "scoring_errors": {"n": 1}})
    summary.unset("scoring_errors")
    assert summary.to_dict() == {"counts": {"n": 1}, "metrics": {}}


def test_records_built_in_code_write_their_fields_in_declaration_order():
    row = Row(config="c", case_id="a", seed=1, status="ok", prompt="p", extra={"denoise_s": 0.5})
    assert row.to_dict() == {
        "config": "c",
        "case_id": "a",
        "seed": 1,
        "prompt": "p",
        "status": "ok",
        "error": None,
        "image": None,
        "denoise_s": 0.5,
    }
    assert list(RunMeta().to_dict())[:3] == ["schema", "kind", "run_id"]


def test_a_migrated_v1_run_still_loads(tmp_path: Path):
    store = RunStore(tmp_path / "old")
    store.path.mkdir()
    v1 = {
        "schema": SCHEMA_V1,
        "run_id": "old",
        "dataset": {"name": "smoke", "fingerprint": "f" * 64},
        "weights": {"c": "tiny"},
        "configs": {"c": {"runner": "flux-t2i", "params": {"steps": 2}, "weights": "tiny"}},
        "summary": {"c": {"counts": {"n": 1, "ok": 1}, "metrics": {}}},
        "finished": "2025-01-01T00:00:00+00:00",
    }
    (store.path / "run.json").write_text(json.dumps(v1), encoding="utf-8")
    store.append_row({"config": "c", "case_id": "a", "seed": 0, "status": "ok", "error": None, "image": None})
    run = Run.load(store.path)
    assert run.run_meta.schema == SCHEMA and run.run_meta.migrated_from == SCHEMA_V1
    assert run.configs["c"].config_hash and run.summaries["c"].counts["ok"] == 1
    assert [r.key for r in run.rows()] == [("c", "a", 0)] and not run.rows()[0].records_inputs
    assert RunMeta.from_dict(run.meta).to_dict() == run.meta


# -- the one loader -------------------------------------------------------------------------------


def test_run_gives_the_whole_run_and_one_configuration(inpaint_run):
    res, _ = inpaint_run
    run = evalsuite.load_run(res.run_dir)
    assert isinstance(run, Run) and evalsuite.RunResult is Run
    assert (
        run.ok and run.config_names == ["noise-inp", "noise-t2i"] and set(run.summary) == set(run.summaries)
    )
    one = run.select("noise-t2i")
    assert set(one.samples["config"]) == {"noise-t2i"} and one.weights == "tiny"
    assert one.summary["counts"]["n"] == 4 and one.params == dict(run.configs["noise-t2i"].params)
    assert one.keys() == ["c0-0", "c1-1", "c2-2", "t-7"] and one.result is run
    with pytest.raises(ValueError, match="select a configuration"):
        _ = run.weights


# -- rows carry their inputs; scoring and the report use them --------------------------------------


def test_rows_record_their_inputs_and_quality_evidence(inpaint_run):
    res, ds = inpaint_run
    rows = {(r.config, r.case_id): r for r in evalsuite.load_run(res.run_dir).rows()}
    inp = rows[("noise-inp", "c1")]
    assert (
        Path(inp.source) == (ds / "img/1.png").resolve() and Path(inp.mask) == (ds / "mask/1.png").resolve()
    )
    assert inp.quality_evidence is False and inp.records_inputs  # tiny weights: no quality evidence
    t2i = rows[("noise-t2i", "t")]
    assert t2i.source is None and t2i.mask is None and t2i.records_inputs


def test_scoring_and_the_report_do_not_read_the_dataset_again(inpaint_run, monkeypatch):
    from evalsuite.data import registry
    from evalsuite.metrics.scoring import score_run
    from evalsuite.report.report import write_report

    res, _ = inpaint_run
    before = res.summary["noise-inp"]["metrics"]["unmasked_mse"]["value"]

    def refuse(*a, **k):
        raise AssertionError("the dataset was read again")

    monkeypatch.setattr(registry, "load_dataset", refuse)
    summary = score_run(RunStore(res.run_dir), ["unmasked_mse"])
    assert summary["noise-inp"]["metrics"]["unmasked_mse"]["value"] == pytest.approx(before)
    write_report(res.run_dir)
    assert (res.run_dir / "grids" / "grid_inpaint.png").is_file()
    assert (res.run_dir / "grids" / "grid_t2i.png").is_file()
    assert "## Notes" not in (res.run_dir / "report.md").read_text(encoding="utf-8")


def test_rows_without_inputs_fall_back_to_the_dataset(inpaint_run, tmp_path, monkeypatch):
    import shutil

    from evalsuite.data import registry
    from evalsuite.metrics.scoring import ScoringError, score_run

    res, _ = inpaint_run
    old = tmp_path / "old"
    shutil.copytree(res.run_dir, old)
    for journal in old.glob("rows*.jsonl"):
        lines = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
        for r in lines:
            for k in ("source", "mask", "quality_evidence"):
                r.pop(k, None)
        journal.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    want = res.summary["noise-inp"]["metrics"]["unmasked_mse"]["value"]
    summary = score_run(RunStore(old), ["unmasked_mse"])  # the dataset is still where run.json says
    assert summary["noise-inp"]["metrics"]["unmasked_mse"]["value"] == pytest.approx(want)

    def gone(*a, **k):
        raise FileNotFoundError("no such dataset")

    monkeypatch.setattr(registry, "load_dataset", gone)
    with pytest.raises(ScoringError, match="cannot load the run's dataset"):
        score_run(RunStore(old), ["unmasked_mse"])


def test_scoring_refuses_recorded_inputs_that_changed_since(inpaint_run):
    from evalsuite.metrics.scoring import ScoringError, score_run

    res, ds = inpaint_run
    src = ds / "img/1.png"
    original = src.read_bytes()
    try:
        from PIL import Image

        Image.new("RGB", (64, 64), (0, 255, 0)).save(src)
        with pytest.raises(ScoringError, match="case 'c1'.*changed since its row was generated"):
            score_run(RunStore(res.run_dir), ["unmasked_mse"])
    finally:
        src.write_bytes(original)
    score_run(RunStore(res.run_dir), ["unmasked_mse"])  # restored: scores again
