"""The results catalog at scale (issue 25): index N synthetic run directories × M rows, re-index with
nothing changed, a trend query, and ``catalog site``.

The run directories are generated here (``run.json`` through :class:`~evalsuite.results.store.RunStore`,
each journal written in one piece instead of one fsync'd line per row). Their summaries are written
the way scoring writes them now: each per-sample metric with its ``ci_low``/``ci_high`` (the bootstrap
of its median or mean over the rows in key order; computed here with
:func:`~evalsuite.trackers.stats.bootstrap_statistics`, equal to scoring's
:func:`~evalsuite.trackers.stats.bootstrap_statistic`). With ``recorded_ci=False`` (``--without-ci``)
they are written as before scoring recorded them, so the catalog bootstraps every aggregate itself.

Size: ``EVALSUITE_BENCH_CATALOG_RUNS`` (default 1000) × ``EVALSUITE_BENCH_CATALOG_ROWS`` (default
1000). Goals on the 2-core machine (docs/catalog.md records what was measured): index ≤ 60 s, re-index
unchanged ≤ 2 s, trend query ≤ 0.5 s, site ≤ 30 s. Standalone:
``python benchmarks/test_bench_catalog.py [RUNS ROWS] [--without-ci]`` prints the four timings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evalsuite.results.store import JOURNAL, JOURNAL_TIME, RunStore
from evalsuite.trackers.stats import bootstrap_statistics

RUNS = int(os.environ.get("EVALSUITE_BENCH_CATALOG_RUNS", "1000"))
ROWS = int(os.environ.get("EVALSUITE_BENCH_CATALOG_ROWS", "1000"))
CONFIGS = ("flux-dev", "flux-cn-beta", "flux-cn-beta-turbo8", "sdxl-inpaint")


def make_runs(root: Path, n_runs: int, n_rows: int, recorded_ci: bool = True) -> list[Path]:
    """``n_runs`` finished run directories of ``n_rows`` rows each (the configurations in turn); with
    ``recorded_ci``, each aggregate's interval recorded in the summary (as scoring records it)."""
    rng = np.random.default_rng(0)
    out = []
    per = max(1, n_rows // len(CONFIGS))
    for i in range(n_runs):
        path = root / f"run-{i:05d}"
        store = RunStore(path)
        path.mkdir(parents=True)
        lines, summary = [], {}
        now = time.time()
        for c, config in enumerate(CONFIGS):
            lat = 1.0 + 0.5 * c + 0.001 * i + rng.normal(0, 0.01, per)
            clip = 30.0 + c + rng.normal(0, 1.0, per)
            for k in range(per):
                lines.append(
                    json.dumps(
                        {
                            "config": config,
                            "case_id": f"case-{k}",
                            "seed": 0,
                            "status": "ok",
                            "error": None,
                            "image": f"images/{config}/case-{k}-0.png",
                            "latency_s": float(lat[k]),
                            "latency": float(lat[k]),
                            "clip_score": float(clip[k]),
                            "peak_allocated_gib": 20.0,
                            "step_median_s": float(lat[k]) / 28,
                            JOURNAL_TIME: now,
                        }  # fmt: skip
                    )
                )
            summary[config] = {
                "counts": {"n": per, "ok": per},
                "metrics": {
                    "latency": {
                        "value": float(np.median(lat)),
                        "n": per,
                        "unit": "s",
                        "higher_is_better": False,
                    },
                    "clip_score": {
                        "value": float(clip.mean()),
                        "n": per,
                        "unit": "",
                        "higher_is_better": True,
                    },
                },
            }
            if recorded_ci:
                order = sorted(range(per), key=lambda k: f"case-{k}")  # row-key order, as scoring sorts
                ests = bootstrap_statistics([lat[order], clip[order]], ["median", "mean"])
                for name, est in zip(("latency", "clip_score"), ests, strict=True):
                    summary[config]["metrics"][name].update(ci_low=est.low, ci_high=est.high)
        (path / JOURNAL).write_text("\n".join(lines) + "\n", encoding="utf-8")
        store.write_meta(
            {
                "kind": "generate",
                "run_id": path.name,
                "started": "2026-01-01T00:00:00+00:00",
                "finished": "2026-01-01T01:00:00+00:00",
                "interrupted": False,
                "dataset": {"name": "bench", "size": per, "fingerprint": "0" * 64},
                "weights": dict.fromkeys(CONFIGS, "random"),
                "environment": {
                    "device": {"type": "cuda", "name": ["NVIDIA H100 80GB HBM3", "NVIDIA H200"][i % 2]},
                    "git_commit": f"{i:040x}",
                    "versions": {"evalsuite": "0.4.0"},
                },
                "configs": {
                    c: {"runner": "fake", "params": {"steps": 28}, "weights": "random"} for c in CONFIGS
                },
                "summary": summary,
            }
        )
        out.append(path)
    return out


def measure(root: Path, n_runs: int = RUNS, n_rows: int = ROWS, recorded_ci: bool = True) -> dict[str, float]:
    """Seconds of: indexing, re-indexing with nothing changed, a trend query, the site."""
    from evalsuite.catalog.db import Catalog
    from evalsuite.catalog.history import trend
    from evalsuite.catalog.site import write_site

    runs_dir = root / "reports"
    make_runs(runs_dir, n_runs, n_rows, recorded_ci)
    path = runs_dir / "catalog.duckdb"
    got: dict[str, float] = {}
    with Catalog(path) as cat:
        t = time.perf_counter()
        rep = cat.index([runs_dir])
        got["index_s"] = time.perf_counter() - t
        assert len(rep.added) == n_runs, rep.skipped
        t = time.perf_counter()
        rep = cat.index([runs_dir])
        got["reindex_unchanged_s"] = time.perf_counter() - t
        assert len(rep.unchanged) == n_runs
    with Catalog(path, read_only=True) as cat:
        t = time.perf_counter()
        tr = trend(cat, "latency", "flux-cn-beta-turbo8", device="H100")
        got["trend_s"] = time.perf_counter() - t
        assert sum(len(s.points) for s in tr.series) == (n_runs + 1) // 2
        t = time.perf_counter()
        write_site(cat, root / "site")
        got["site_s"] = time.perf_counter() - t
    return got


@pytest.mark.skipif(RUNS * ROWS > 10**7, reason="larger than a benchmark run should write")
@pytest.mark.parametrize("recorded_ci", [True, False], ids=["recorded-ci", "without-ci"])
def test_bench_catalog(tmp_path: Path, benchmark, recorded_ci: bool):
    got = benchmark.pedantic(lambda: measure(tmp_path, recorded_ci=recorded_ci), rounds=1, iterations=1)
    benchmark.extra_info.update(got, runs=RUNS, rows=ROWS, recorded_ci=recorded_ci)
    print(json.dumps({"runs": RUNS, "rows": ROWS, "recorded_ci": recorded_ci, **got}))


if __name__ == "__main__":
    import tempfile

    args = [a for a in sys.argv[1:] if a != "--without-ci"]
    n_runs = int(args[0]) if args else RUNS
    n_rows = int(args[1]) if len(args) > 1 else ROWS
    with_ci = "--without-ci" not in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        got = measure(Path(tmp), n_runs, n_rows, with_ci)
        print(json.dumps({"runs": n_runs, "rows": n_rows, "recorded_ci": with_ci, **got}))
