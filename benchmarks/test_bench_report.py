"""Report generation from stored results."""

import numpy as np
import pandas as pd

from evalsuite.report.profile import render_markdown as render_profile
from evalsuite.report.report import render_markdown


def _meta(n_configs=8):
    names = [f"config-{i}" for i in range(n_configs)]
    return {
        "run_id": "bench",
        "weights": dict.fromkeys(names, "tiny"),
        "dataset": {"name": "smoke", "size": 100, "fingerprint": "0" * 64},
        "environment": {"device": {"name": "cpu", "type": "cpu"}, "versions": {"torch": "x"}},
        "configs": {
            n: {"runner": "flux-t2i", "params": {"steps": 28, "guidance": 3.5}, "weights": "tiny"}
            for n in names
        },
        "summary": {
            n: {
                "counts": {"ok": 100, "error": 0, "errors": []},
                "metrics": {"latency": {"value": 1.0, "n": 100, "unit": "s"}},
            }
            for n in names
        },
    }


def test_bench_run_report(benchmark):
    assert "config-7" in benchmark(render_markdown, _meta())


def test_bench_profile_report(benchmark):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        [
            {
                "config": f"p{i}",
                "base_config": "flux-dev",
                "status": "ok",
                "width": 1024,
                "height": 1024,
                "batch": 1,
                "steps": 28,
                "dtype": "bfloat16" if i % 2 else "fp8",
                "memory": "gpu",
                "compile": bool(i % 3),
                "e2e_median_s": float(rng.uniform(3, 6)),
                "error": None,
            }
            for i in range(40)
        ]
    )
    assert "Speed-up" in benchmark(render_profile, df, {"run_id": "bench", "profile": {}})
