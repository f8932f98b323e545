"""The results catalog (issue 25): indexing every kind of run directory, incremental and idempotent
indexing, rebuild, labels, trends, regressions on planted numbers, read-only queries, bad inputs, and
registration at the end of ``evalsuite run`` (``--no-catalog``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from evalsuite.catalog.db import CATALOG_SCHEMA, Catalog, CatalogError
from evalsuite.results.store import RunStore
from tests.runfactory import copy_run, make_dataset, make_run
from tests.test_cli import cli

DUMP_SKIP = {"indexed_at", "file_stamp"}  # when a run was indexed, not what it holds


def make_sweep(path: Path, kind: str, rows: list[dict], block: dict | None = None) -> Path:
    """A finished sweep run directory (profile / frontier / plan) written through RunStore."""
    store = RunStore(path)
    path.mkdir(parents=True)
    for r in rows:
        store.append_row(r)
    store.write_samples()
    configs = {r["config"]: {"runner": "fake", "params": {}, "weights": "random"} for r in rows}
    meta = {
        "kind": kind,
        "run_id": path.name,
        "started": "2026-02-01T00:00:00+00:00",
        "finished": "2026-02-01T00:10:00+00:00",
        "interrupted": False,
        "dataset": {"name": "smoke", "size": 1, "fingerprint": "f" * 64},
        "weights": {c: "random" for c in configs},
        "environment": {"device": {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.2}},
        "configs": configs,
        "summary": {c: {"counts": {"n": 1, "ok": 1}, "metrics": {}} for c in configs},
        kind: block or {},
    }
    store.write_meta(meta)
    return path


def frontier_row(point: str, s: float, lpips: float | None, ref: bool = False) -> dict:
    r = {
        "config": f"flux-dev[{point}]",
        "case_id": "-",
        "seed": 0,
        "status": "ok",
        "error": None,
        "image": None,
        "point": point,
        "is_reference": ref,
        "s_per_image": s,
        "s_ci_low": s * 0.95,
        "s_ci_high": s * 1.05,
        "nvml_peak_gib": 30.0,
    }
    if lpips is not None:
        r.update(lpips_mean=lpips, lpips_ci_low=lpips / 2, lpips_ci_high=lpips * 2)
    return r


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two releases and a third run of two configurations (cfg-fast's latency planted 40 % slower in
    r3), a run on other data, a profile, a frontier, a plan and an evalsuite.run/1 directory."""
    tmp = tmp_path_factory.mktemp("catalog")
    ds = make_dataset(tmp / "ds")
    out = tmp / "out"
    paths = {
        "r1": make_run(out / "r1", ds, seed=1),
        "r2": make_run(out / "r2", ds, seed=2),
    }
    slow = {("cfg-fast", c.id): {"latency_s": 0.2, "latency": 0.2} for c in ds.cases}
    paths["r3"] = make_run(out / "r3", ds, seed=3, row_shift=slow)
    paths["other-data"] = make_run(out / "other-data", ds, seed=4, fingerprint="0" * 64)
    for name, t in (("r1", "01"), ("r2", "02"), ("r3", "03"), ("other-data", "04")):
        store = RunStore(paths[name])
        meta = store.read_meta()
        meta["started"] = f"2026-01-{t}T00:00:00+00:00"
        meta["environment"]["git_commit"] = f"commit{t}"
        store.write_meta(meta)
    paths["profile"] = make_sweep(
        out / "profile",
        "profile",
        [
            {
                "config": "flux-dev-bf16",
                "case_id": "c",
                "seed": 0,
                "status": "ok",
                "error": None,
                "image": None,
                "base_config": "flux-dev",
                "e2e_median_s": 1.5,
            }
        ],  # fmt: skip
        {"spec": {}},
    )
    paths["frontier"] = make_sweep(
        out / "frontier",
        "frontier",
        [frontier_row("ref", 2.0, None, ref=True), frontier_row("fp8", 1.2, 0.04)],
        {"reference": "ref"},
    )
    paths["plan"] = make_sweep(
        out / "plan",
        "plan",
        [
            {
                "config": "flux-dev[te_cpu]",
                "case_id": "c",
                "seed": 0,
                "status": "ok",
                "error": None,
                "image": None,
                "strategy": "te_cpu",
                "phase": "measure",
                "s_per_image": 3.0,
                "nvml_peak_gib": 21.0,
                "estimated_resident_gib": 20.5,
            }
        ],  # fmt: skip
        {"choices": [{"budget_gib": 22, "strategy": "te_cpu"}]},
    )
    v1 = copy_run(paths["r1"], out / "old-v1")
    meta = json.loads((v1 / "run.json").read_text())
    meta["schema"] = "evalsuite.run/1"
    for k in ("kind", "interrupted", "attempts"):
        meta.pop(k, None)
    (v1 / "run.json").write_text(json.dumps(meta))
    paths["old-v1"] = v1
    return paths


def dump(cat: Catalog) -> dict[str, list]:
    """Every table's rows, sorted, without the columns that say when a run was indexed."""
    out = {}
    for t in ("runs", "configs", "rows", "row_values", "aggregates", "frontier_points", "plan_rows", "roots"):
        cur = cat.con.execute(f"SELECT * FROM {t}")
        cols = [d[0] for d in cur.description]
        keep = [i for i, c in enumerate(cols) if c not in DUMP_SKIP]
        out[t] = sorted((tuple(r[i] for i in keep) for r in cur.fetchall()), key=repr)
    return out


@pytest.fixture
def tree(runs, tmp_path) -> Path:
    """A private copy of the runs' folder (tests that change run directories)."""
    out = tmp_path / "out"
    shutil.copytree(runs["r1"].parent, out)
    return out


def test_indexes_every_kind_of_run_directory(tree: Path):
    with Catalog(tree / "catalog.duckdb") as cat:
        rep = cat.index([tree])
        assert sorted(Path(p).name for p in rep.added) == sorted(
            ["r1", "r2", "r3", "other-data", "profile", "frontier", "plan", "old-v1"]
        )
        kinds = dict(cat.con.execute("SELECT run_id, kind FROM runs").fetchall())
        assert kinds["profile"] == "profile" and kinds["frontier"] == "frontier" and kinds["plan"] == "plan"
        assert kinds["r1"] == "generate" and kinds["old-v1"] == "generate"
        assert cat.dicts("SELECT migrated_from FROM runs WHERE run_id = 'old-v1'") == [
            {"migrated_from": "evalsuite.run/1"}
        ]
        r1 = cat.dicts("SELECT * FROM runs WHERE run_id = 'r1'")[0]
        assert (r1["gpu_name"], r1["weights_policy"], r1["dataset_name"], r1["git_commit"]) == (
            "Fake GPU", "hub", "synthetic", "commit01",
        )  # fmt: skip
        assert r1["n_rows"] == 16 and r1["machine_id"] and len(r1["dataset_fingerprint"]) == 64
        # rows: typed columns and every numeric value in row_values
        assert (
            cat.con.execute("SELECT count(*) FROM rows WHERE run_key = ?", [r1["run_key"]]).fetchone()[0]
            == 16
        )
        names = {r[0] for r in cat.con.execute("SELECT DISTINCT name FROM row_values").fetchall()}
        assert {"clip_score", "lpips", "latency_s", "peak_allocated_gib", "e2e_median_s"} <= names
        # aggregates with CIs (bootstrap over the rows: the median for latency), metric metadata
        agg = cat.dicts(
            "SELECT * FROM aggregates WHERE run_key = ? AND config = 'cfg-fast' ORDER BY metric",
            [r1["run_key"]],
        )
        by = {a["metric"]: a for a in agg}
        assert by["latency"]["statistic"] == "median" and by["clip_score"]["statistic"] == "mean"
        for a in agg:
            assert a["ci_low"] <= a["value"] <= a["ci_high"], a
        meta = {m["metric"]: m for m in cat.dicts("SELECT * FROM metric_meta")}
        assert meta["clip_score"]["higher_is_better"] is True and meta["latency"]["unit"] == "s"
        # frontier points and plan rows
        fp = cat.dicts("SELECT * FROM frontier_points ORDER BY point")
        assert [(p["point"], p["base_config"], p["is_reference"]) for p in fp] == [
            ("fp8", "flux-dev", False), ("ref", "flux-dev", True),
        ]  # fmt: skip
        assert fp[0]["s_per_image"] == 1.2 and fp[0]["lpips_mean"] == 0.04
        (pr,) = cat.dicts("SELECT * FROM plan_rows")
        assert (pr["strategy"], pr["phase"], pr["estimated_resident_gib"]) == ("te_cpu", "measure", 20.5)


def test_incremental_and_idempotent_and_rebuild_equals_incremental(tree: Path):
    path = tree / "catalog.duckdb"
    with Catalog(path) as cat:
        cat.index([tree])
        first = dump(cat)
        stamp = cat.dicts("SELECT run_id, indexed_at FROM runs")
        again = cat.index([tree])
        assert again.added == again.updated == [] and len(again.unchanged) == 8
        assert dump(cat) == first and cat.dicts("SELECT run_id, indexed_at FROM runs") == stamp
        # touched but unchanged bytes: the hash is the same, the run is not re-read
        os.utime(tree / "r2" / "run.json", ns=(1, 1))
        rep = cat.index([tree])
        assert rep.updated == [] and str(tree / "r2") in rep.unchanged
        assert cat.dicts("SELECT run_id, indexed_at FROM runs") == stamp
        # a changed journal: only that run is re-read
        RunStore(tree / "r2").append_row(
            {
                "config": "cfg-fast",
                "case_id": "extra",
                "seed": 1,
                "status": "error",
                "error": "x",
                "image": None,
            }
        )
        rep = cat.index([tree])
        assert rep.updated == [str(tree / "r2")] and len(rep.unchanged) == 7
        n = cat.dicts("SELECT n_rows, n_error FROM runs WHERE run_id = 'r2'")
        assert n == [{"n_rows": 17, "n_error": 1}]
        # a deleted run directory leaves the catalog
        shutil.rmtree(tree / "plan")
        rep = cat.index([tree])
        assert rep.removed == [str(tree / "plan")]
        assert cat.con.execute("SELECT count(*) FROM plan_rows").fetchone()[0] == 0
        incremental = dump(cat)
        rebuilt = cat.rebuild()
        assert len(rebuilt.added) == 7
        assert dump(cat) == incremental
    res = cli("catalog", "rebuild", "--catalog", str(path), cwd=tree)
    assert res.returncode == 0, res.stderr
    assert "7 added" in res.stdout
    with Catalog(path) as cat:
        assert dump(cat) == incremental


def test_aggregates_use_the_recorded_ci_and_fall_back_for_older_runs(tree: Path):
    """A run's recorded ``ci_low``/``ci_high`` (what scoring writes now) is the catalog's CI. A run
    without one (the fixtures are written as before) gets the bootstrap scoring would have
    recorded: of the median for latency (its ``latency_s`` values), else of the mean, over the ok rows
    in row-key order — the interval ``compare`` gives it too; none when the value is not that
    statistic of the rows."""
    from evalsuite.compare.baselines import _per_sample, metric_ci
    from evalsuite.results.run import load_run
    from evalsuite.trackers.stats import bootstrap_statistic

    store = RunStore(tree / "r1")
    meta = store.read_meta()
    fast = meta["summary"]["cfg-fast"]["metrics"]
    fast["clip_score"].update(ci_low=1.0, ci_high=99.0)  # recorded: used as it is
    fast["lpips"]["value"] += 1.0  # not the mean of its rows any more: no interval
    store.write_meta(meta)
    with Catalog(tree / "catalog.duckdb") as cat:
        cat.index([tree / "r1"])
        got = {
            (a["config"], a["metric"]): a
            for a in cat.dicts("SELECT * FROM aggregates WHERE run_key = ?", [str(tree / "r1")])
        }
    assert (got["cfg-fast", "clip_score"]["ci_low"], got["cfg-fast", "clip_score"]["ci_high"]) == (1.0, 99.0)
    assert got["cfg-fast", "lpips"]["ci_low"] is None and got["cfg-fast", "lpips"]["ci_high"] is None
    rows = sorted(
        (r for r in RunStore(tree / "r1").rows() if r["status"] == "ok"),
        key=lambda r: (r["case_id"], r["seed"]),
    )
    run = load_run(tree / "r1")
    for config, metric, column, statistic in (
        ("cfg-fast", "latency", "latency_s", "median"),
        ("cfg-slow", "latency", "latency_s", "median"),
        ("cfg-slow", "clip_score", "clip_score", "mean"),
        ("cfg-slow", "lpips", "lpips", "mean"),
    ):
        a = got[config, metric]
        est = bootstrap_statistic([r[column] for r in rows if r["config"] == config], statistic)
        assert a["statistic"] == statistic
        assert (a["ci_low"], a["ci_high"]) == pytest.approx((est.low, est.high), rel=1e-12), (config, metric)
        if (
            statistic == "mean"
        ):  # (compare tells a median by the value: these latencies' mean is their median)
            view = run.select(config)
            want = metric_ci(view.summary["metrics"][metric], _per_sample(view, metric))
            assert (a["ci_low"], a["ci_high"]) == pytest.approx(want, rel=1e-12)


INDEX_WITHOUT_SCIPY = """
import json, sys
from evalsuite.catalog.db import Catalog
with Catalog(sys.argv[1]) as cat:
    rep = cat.index([sys.argv[2]])
    n = cat.con.execute("SELECT count(*) FROM aggregates WHERE ci_low IS NOT NULL").fetchone()[0]
print(json.dumps({"added": len(rep.added), "with_ci": n, "scipy": "scipy" in sys.modules}))
"""


def test_indexing_needs_no_scipy(tree: Path):
    """Runs without recorded intervals get theirs from numpy (``bootstrap_statistics``): indexing
    does not import scipy (about 1.5 s on the 2-core machine)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run(
        [sys.executable, "-c", INDEX_WITHOUT_SCIPY, str(tree / "catalog.duckdb"), str(tree)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.splitlines()[-1])
    assert got["added"] == 8 and got["with_ci"] > 0 and got["scipy"] is False


def test_runs_written_in_batches_give_the_tables_run_by_run_writes_give(tree: Path, monkeypatch):
    from evalsuite.catalog import db

    with Catalog(tree / "batched.duckdb") as cat:
        cat.index([tree])
        batched = dump(cat)
    monkeypatch.setattr(db, "BATCH_RUNS", 1)
    with Catalog(tree / "one-by-one.duckdb") as cat:
        cat.index([tree])
        assert dump(cat) == batched
    monkeypatch.setattr(db, "BATCH_RUNS", 1000)
    monkeypatch.setattr(db, "BATCH_RECORDS", 10)
    with Catalog(tree / "by-records.duckdb") as cat:
        cat.index([tree])
        assert dump(cat) == batched


def test_typed_columns_hold_values_of_their_type(tmp_path: Path):
    """Each journal field lands in its typed column when it has that type; text columns take other
    values as JSON text, number and boolean columns leave them NULL; ``row_values`` holds every
    finite number but booleans, ``seed`` and ``rank``."""
    path = tmp_path / "odd"
    store = RunStore(path)
    path.mkdir()
    store.append_row(
        {"config": "c", "case_id": "a", "seed": 1, "status": "ok", "error": None, "image": None,
         "latency_s": 1.0, "x_int": 3, "x_bool": True, "x_nan": float("nan"), "x_inf": float("inf"),
         "x_text": "s", "x_list": [1, 2], "x_dict": {"a": 1}, "rank": 1, "first_call": True,
         "batch_size": 2, "quality_evidence": "yes", "category": 7}
    )  # fmt: skip
    store.append_row(
        {"config": "c", "case_id": 5, "seed": "7", "status": "error", "error": {"why": "dict"}, "image": None,
         "rank": "x", "latency_s": "1.5", "wall_s": True, "first_call": 1}
    )  # fmt: skip
    store.write_meta(
        {"kind": "generate", "run_id": "odd", "dataset": {"name": "d", "size": "2"}, "weights": {"c": "tiny"},
         "configs": {"c": {"runner": 5, "params": {"b": [1]}}}, "environment": {"device": {"memory_gib": True}}}
    )  # fmt: skip
    with Catalog(tmp_path / "catalog.duckdb") as cat:
        assert cat.index([path]).added == [str(path)]
        rows = {r["case_id"]: r for r in cat.dicts("SELECT * FROM rows")}
        values = cat.con.execute("SELECT case_id, name, value FROM row_values ORDER BY ALL").fetchall()
        (conf,) = cat.dicts("SELECT runner, params FROM configs")
        (run,) = cat.dicts("SELECT dataset_size, gpu_memory_gib, n_error FROM runs")
    a, b = rows["a"], rows["5"]
    assert (a["seed"], a["rank"], a["first_call"], a["batch_size"], a["latency_s"]) == (1, 1, True, 2.0, 1.0)
    assert a["quality_evidence"] is None and a["category"] == "7"
    assert (b["seed"], b["rank"], b["first_call"], b["latency_s"], b["wall_s"]) == (7, None, None, None, None)
    assert json.loads(b["error"]) == {"why": "dict"}
    assert values == [
        ("5", "case_id", 5.0),  # an integer case id is a number too
        ("5", "first_call", 1.0),
        ("a", "batch_size", 2.0),
        ("a", "category", 7.0),
        ("a", "latency_s", 1.0),
        ("a", "x_int", 3.0),
    ]
    assert conf == {"runner": "5", "params": '{"b": [1]}'}
    assert run == {"dataset_size": 2, "gpu_memory_gib": None, "n_error": 1}


def test_labels_live_in_the_run_directory(tree: Path):
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0
    res = cli("catalog", "label", "r1", "v0.3.0", "--catalog", path, cwd=tree)
    assert res.returncode == 0, res.stderr
    assert json.loads((tree / "r1" / "run.json").read_text())["label"] == "v0.3.0"
    res = cli("catalog", "label", str(tree / "r3"), "v0.4.0", "--catalog", path, cwd=tree)
    assert res.returncode == 0, res.stderr
    res = cli("catalog", "list", "--label", "v0.4.0", "--catalog", path, "--format", "json", cwd=tree)
    assert [r["run_id"] for r in json.loads(res.stdout)] == ["r3"]
    # rebuilt from the run directories: the labels are still there
    assert cli("catalog", "rebuild", "--catalog", path, cwd=tree).returncode == 0
    with Catalog(path, read_only=True) as cat:
        assert cat.labels() == ["v0.3.0", "v0.4.0"]
    res = cli("catalog", "label", "no-such-run", "v1", "--catalog", path, cwd=tree)
    assert res.returncode == 2 and "run 'no-such-run': not in the catalog" in res.stderr


def test_list_filters_and_newest_first(tree: Path):
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0

    def ids(*args: str) -> list[str]:
        res = cli("catalog", "list", "--catalog", path, "--format", "json", *args, cwd=tree)
        assert res.returncode == 0, res.stderr
        return [r["run_id"] for r in json.loads(res.stdout)]

    assert ids("--kind", "generate", "--since", "2026-01-02") == ["other-data", "r3", "r2"]
    assert ids("--config", "flux-dev[fp8]") == ["frontier"]
    assert ids("--device", "h100") == ["frontier", "plan", "profile"]  # started together: by run id
    assert ids("--dataset", "0" * 64) == ["other-data"]
    assert ids("--label", "'; DROP TABLE runs; --") == []  # a parameter, never SQL
    assert len(ids()) == 8
    res = cli("catalog", "list", "--catalog", path, "--since", "yesterday", cwd=tree)
    assert res.returncode == 2 and "--since 'yesterday': not an ISO date" in res.stderr


def test_trend_splits_incomparable_runs_and_plots(tree: Path):
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0
    assert cli("catalog", "label", "r1", "v0.3.0", "--catalog", path, cwd=tree).returncode == 0
    png = tree / "trend.png"
    res = cli(
        "catalog", "trend", "latency", "--config", "cfg-fast", "--catalog", path, "--plot", str(png), cwd=tree
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    s1, s2 = out.split("series 2:")
    assert "| r1 | v0.3.0 |" in s1 and "| r2 | commit02 |" in s1 and "| r3 | commit03 |" in s1
    assert "other-data" not in s1 and "| other-data |" in s2
    assert f"not comparable with the first series: dataset fingerprint {'0' * 64}" in s2
    r2 = next(ln for ln in s1.splitlines() if ln.startswith("| r2 "))
    r3 = next(ln for ln in s1.splitlines() if ln.startswith("| r3 "))
    assert float(r3.split("|")[4]) > float(r2.split("|")[4]) + 0.15  # the planted +0.2 s
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    res = cli("catalog", "trend", "fid", "--config", "cfg-fast", "--catalog", path, cwd=tree)
    assert res.returncode == 2 and "its metrics: clip_score, latency, lpips" in res.stderr
    res = cli("catalog", "trend", "latency", "--config", "nope", "--catalog", path, cwd=tree)
    assert res.returncode == 2 and "configuration 'nope': no run" in res.stderr


def test_regressions_flag_the_planted_one_only(tree: Path):
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0
    ths = tree / "thresholds.yaml"
    ths.write_text(
        "thresholds:\n"
        "  - {metric: latency, max_regression: 0.1, mode: relative}\n"
        "  - {metric: clip_score, max_regression: 0.5}\n"
    )
    res = cli("catalog", "regressions", "--thresholds", str(ths), "--catalog", path, "--all", cwd=tree)
    assert res.returncode == 1, res.stdout + res.stderr
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith("| ")]
    bad = [ln for ln in rows if ln.startswith("| REGRESSION")]
    assert len(bad) == 1 and "| cfg-fast |" in bad[0] and "| latency_s |" in bad[0]
    assert "commit02 → commit03" in bad[0]
    # the same quantity of the other configuration, and the earlier pair, pass
    assert any(ln.startswith("| pass | cfg-slow |") and "latency_s" in ln and "commit03" in ln for ln in rows)
    assert any(
        ln.startswith("| pass | cfg-fast |") and "latency_s" in ln and "commit01 → commit02" in ln
        for ln in rows
    )
    assert "REGRESSION: 1 regression(s)" in res.stdout
    # the rolling median of the previous two runs finds it too
    res = cli(
        "catalog", "regressions", "--thresholds", str(ths), "--window", "2", "--catalog", path, cwd=tree
    )
    assert res.returncode == 1 and "median of 2 previous run(s)" in res.stdout
    # a threshold named by the column (latency_s) judges the aggregate (latency) there too
    alias = tree / "alias.yaml"
    alias.write_text("- {metric: latency_s, max_regression: 0.1, mode: relative}\n")
    res = cli(
        "catalog", "regressions", "--thresholds", str(alias), "--window", "2", "--catalog", path, cwd=tree
    )
    assert res.returncode == 1 and "| REGRESSION | cfg-fast |" in res.stdout, res.stdout
    # without the regressing run: nothing regresses
    shutil.rmtree(tree / "r3")
    assert cli("catalog", "index", "--catalog", path, cwd=tree).returncode == 0
    res = cli("catalog", "regressions", "--thresholds", str(ths), "--catalog", path, cwd=tree)
    assert res.returncode == 0 and "PASS: 0 regression(s)" in res.stdout
    # a threshold on something never measured is unusable input (exit 2, like compare)
    ths.write_text("- {metric: no_such_metric, max_regression: 1, direction: higher}\n")
    res = cli("catalog", "regressions", "--thresholds", str(ths), "--catalog", path, cwd=tree)
    assert res.returncode == 2 and "no_such_metric" in res.stdout


def test_query_is_read_only(tree: Path):
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0
    res = cli("catalog", "query", "SELECT kind, count(*) AS n FROM runs GROUP BY kind ORDER BY kind",
              "--catalog", path, "--format", "csv", cwd=tree)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["kind,n", "frontier,1", "generate,5", "plan,1", "profile,1"]
    for sql in (
        "DELETE FROM runs",
        "DROP TABLE rows",
        "CREATE TABLE x AS SELECT 1",
        f"COPY runs TO '{tree / 'leak.csv'}'",
        f"ATTACH '{tree / 'other.duckdb'}' AS o",
    ):
        res = cli("catalog", "query", sql, "--catalog", path, cwd=tree)
        assert res.returncode == 2, sql
        assert res.stderr.startswith("evalsuite: error: query refused:"), res.stderr
    assert not (tree / "leak.csv").exists() and not (tree / "other.duckdb").exists()
    with Catalog(path, read_only=True) as cat:
        assert cat.con.execute("SELECT count(*) FROM runs").fetchone()[0] == 8


def test_damaged_run_directory_is_skipped_with_one_warning(tree: Path, caplog):
    (tree / "r2" / "run.json").write_text("{not json")
    (tree / "foreign").mkdir()
    (tree / "foreign" / "run.json").write_text(json.dumps({"schema": "someone-else/9"}))
    with caplog.at_level(logging.WARNING, logger="evalsuite"), Catalog(tree / "catalog.duckdb") as cat:
        rep = cat.index([tree])
    assert sorted(Path(p).name for p in rep.skipped) == ["foreign", "r2"]
    assert len(rep.added) == 7
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert any(f"skipped {tree / 'r2'}" in w and "not valid JSON" in w for w in warned)
    assert any(f"skipped {tree / 'foreign'}" in w and "someone-else/9" in w for w in warned)


def test_bad_catalog_files(tree: Path):
    junk = tree / "junk.duckdb"
    junk.write_text("this is not a database\n" * 100)
    res = cli("catalog", "list", "--catalog", str(junk), cwd=tree)
    assert res.returncode == 2 and f"{junk}: cannot open the catalog" in res.stderr
    res = cli("catalog", "index", str(tree), "--catalog", str(junk), cwd=tree)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    missing = tree / "missing.duckdb"
    res = cli("catalog", "list", "--catalog", str(missing), cwd=tree)
    assert res.returncode == 2 and "no catalog here" in res.stderr and not missing.exists()
    newer = tree / "newer.duckdb"
    with Catalog(newer) as cat:
        cat.con.execute("UPDATE catalog_meta SET value = ? WHERE key = 'schema'", [str(CATALOG_SCHEMA + 1)])
    res = cli("catalog", "list", "--catalog", str(newer), cwd=tree)
    assert res.returncode == 2 and "written by a newer evalsuite" in res.stderr
    with pytest.raises(CatalogError, match="newer evalsuite"):
        Catalog(newer)


def test_one_writer_at_a_time(tree: Path):
    path = tree / "catalog.duckdb"
    with Catalog(path):
        with pytest.raises(CatalogError, match="another evalsuite process is writing the catalog"):
            Catalog(path, lock_timeout=0.2)
    with Catalog(path, lock_timeout=0.2):
        pass


def test_registration_failure_warns_and_never_raises(runs, tmp_path: Path, caplog):
    from evalsuite.catalog.register import register_run

    run = copy_run(runs["r1"], tmp_path / "r1")
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with caplog.at_level(logging.WARNING, logger="evalsuite"):
        assert register_run(run, junk, label="v9") is None
    assert any(f"could not register {run} in the catalog" in r.getMessage() for r in caplog.records)
    assert json.loads((run / "run.json").read_text())["label"] == "v9"
    assert register_run(run, tmp_path / "good.duckdb") == tmp_path / "good.duckdb"
    with Catalog(tmp_path / "good.duckdb", read_only=True) as cat:
        assert cat.dicts("SELECT run_id, label FROM runs") == [{"run_id": "r1", "label": "v9"}]


@pytest.mark.slow
def test_evalsuite_run_registers_with_its_label_unless_no_catalog(tmp_path: Path):
    args = ("run", "--configs", "flux-dev", "--limit", "1", "--set", "steps=1", "--no-progress", "--metrics")
    res = cli(*args, "--label", "v0.4.0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    with Catalog(tmp_path / "reports" / "catalog.duckdb", read_only=True) as cat:
        (got,) = cat.dicts("SELECT run_id, kind, label, weights_policy, device_type, n_ok FROM runs")
    assert got == {
        "run_id": run_dir.name, "kind": "generate", "label": "v0.4.0", "weights_policy": "tiny",
        "device_type": "cpu", "n_ok": 1,
    }  # fmt: skip
    res = cli(*args, "--out", "other", "--no-catalog", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p.name for p in (tmp_path / "other").iterdir() if not p.is_dir()] == []


def test_compare_resolves_catalog_labels_and_latest(tree: Path):
    path = str(tree / "catalog.duckdb")
    assert cli("catalog", "index", str(tree), "--catalog", path, cwd=tree).returncode == 0
    assert cli("catalog", "label", "r1", "v0.3.0", "--catalog", path, cwd=tree).returncode == 0
    res = cli(
        "compare", "catalog:v0.3.0", "catalog:latest", "--catalog", path, "--out", str(tree / "cmp"), cwd=tree
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # latest comparable to r1: r3 (other-data is newer but used other data)
    assert f"A: catalog:v0.3.0 = {tree / 'r1'}" in res.stdout
    assert f"B: catalog:latest = {tree / 'r3'}" in res.stdout
    assert (tree / "cmp" / "compare.md").is_file()
    res = cli("compare", "catalog:v9", str(tree / "r2"), "--catalog", path, cwd=tree)
    assert res.returncode == 2 and "catalog:v9: no run with that label or run id" in res.stderr
    assert "labels: v0.3.0" in res.stderr


CRASH = """
import os, signal, sys
from evalsuite.catalog import db

real, calls = db.Catalog._write, []


def crashing(self, batch):
    calls.append([key for key, _, _ in batch])
    if len(calls) < 2:
        return real(self, batch)
    self.con.begin()  # the second batch of runs: half its records written, then SIGKILL before the commit
    for _, tables, _ in batch:
        for table in ("runs", "rows"):
            self.con.register("_f", tables[table])
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _f")
    os.kill(os.getpid(), signal.SIGKILL)


db.BATCH_RUNS = 2  # transactions of two runs each
db.Catalog._write = crashing
with db.Catalog(sys.argv[1]) as cat:
    cat.index([sys.argv[2]])
"""


def test_sigkill_mid_index_leaves_a_consistent_catalog_the_next_index_completes(tree: Path):
    import subprocess
    import sys

    path = tree / "catalog.duckdb"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run(
        [sys.executable, "-c", CRASH, str(path), str(tree)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == -9, res.stderr
    with Catalog(path, lock_timeout=5) as cat:  # the dead writer's lock is free, its transaction gone
        runs = [r[0] for r in cat.con.execute("SELECT run_key FROM runs").fetchall()]
        assert len(runs) == 2
        n_rows = cat.con.execute("SELECT count(DISTINCT run_key) FROM rows").fetchone()[0]
        assert n_rows == 2  # no row of the half-written run
        rep = cat.index([tree])
        assert len(rep.added) == 6 and len(rep.unchanged) == 2
        incremental = dump(cat)
        cat.rebuild()
        assert dump(cat) == incremental


def test_a_pytest_baseline_from_the_catalog(tree: Path):
    from evalsuite.catalog.history import catalog_baseline
    from evalsuite.compare.baselines import assert_no_regression
    from evalsuite.results.run import load_run

    path = tree / "catalog.duckdb"
    assert cli("catalog", "index", str(tree), "--catalog", str(path), cwd=tree).returncode == 0
    assert cli("catalog", "label", "r2", "v0.3.0", "--catalog", str(path), cwd=tree).returncode == 0
    base = catalog_baseline(path, "catalog:v0.3.0", "cfg-fast")
    assert base.name == "catalog:v0.3.0" and base.config == "cfg-fast"
    assert base.data["provenance"]["run_id"] == "r2"
    # r3's planted cfg-fast slowdown fails against it; cfg-slow does not
    with pytest.raises(AssertionError, match="latency"):
        assert_no_regression(
            load_run(tree / "r3").select("cfg-fast"), base, ["latency"], {"latency": {"rel": 0.1}}, "compare"
        )
    slow = catalog_baseline(path, "catalog:v0.3.0", "cfg-slow")
    assert_no_regression(
        load_run(tree / "r3").select("cfg-slow"), slow, ["latency"], {"latency": {"rel": 0.1}}, "compare"
    )
    with pytest.raises(CatalogError, match="has no configuration 'nope'"):
        catalog_baseline(path, "catalog:v0.3.0", "nope")


def test_an_older_catalog_is_rebuilt_from_its_folders(tree: Path):
    path = tree / "catalog.duckdb"
    with Catalog(path) as cat:
        cat.index([tree])
        before = dump(cat)
        cat.con.execute("UPDATE catalog_meta SET value = '0' WHERE key = 'schema'")
        cat.con.execute("DELETE FROM aggregates")  # what an older version did not hold
    with pytest.raises(CatalogError, match="older evalsuite .*'evalsuite catalog rebuild'"):
        Catalog(path, read_only=True)
    with Catalog(path) as cat:
        assert cat.dicts("SELECT value FROM catalog_meta WHERE key = 'schema'") == [
            {"value": str(CATALOG_SCHEMA)}
        ]
        assert dump(cat) == before


def test_sweep_commands_register_their_run(tmp_path: Path, monkeypatch):
    from evalsuite.cli.common import run_sweep
    from evalsuite.cli.main import build_parser

    def fake_plan(spec, **kw):  # what evalsuite.scenarios.plan.plan returns: the run directory
        path = make_sweep(Path(kw["out"]) / "plan-x", "plan", [{"config": "x[te_cpu]", "case_id": "c", "seed": 0,
                          "status": "ok", "error": None, "image": None, "strategy": "te_cpu"}])  # fmt: skip
        (path / "plan.md").write_text("| plan |\n")
        return path

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["plan", "flux-dev", "--out", "sweeps", "--label", "nightly"])
    assert run_sweep(fake_plan, None, args, show="plan.md") == Path("sweeps") / "plan-x"
    with Catalog(tmp_path / "sweeps" / "catalog.duckdb", read_only=True) as cat:
        assert cat.dicts("SELECT run_id, kind, label FROM runs") == [
            {"run_id": "plan-x", "kind": "plan", "label": "nightly"}
        ]
    args = build_parser().parse_args(["plan", "flux-dev", "--out", "other", "--no-catalog"])
    run_sweep(fake_plan, None, args, show="plan.md")
    assert not (tmp_path / "other" / "catalog.duckdb").exists()
