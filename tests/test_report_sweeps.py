"""The sweep scenarios' files (profile, frontier, plan) are rendered by `evalsuite.report` from stored
results alone, byte for byte as before the renderers moved there.

`tests/data/sweeps/*.json` hold the rows and `run.json` blocks of small CPU runs with tiny weights (one
baseline replaced by a failure whose message holds a pipe); `expected/` holds the Markdown and CSV the
scenarios wrote for them before the renderers moved into `evalsuite/report/` (frontier.md since with
the "× FLOP floor" column, `—` for these rows, which predate it).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.report.formatting import cell, fmt, fmt_ci, md_table
from evalsuite.report.frontier import fastest_within, frontier_frame, pareto_mask, write_frontier
from evalsuite.report.plan import write_plan
from evalsuite.report.profile import write_profile

DATA = Path(__file__).parent / "data" / "sweeps"
EXPECTED = DATA / "expected"


def _stored(kind: str) -> tuple[list[dict], dict]:
    doc = json.loads((DATA / f"{kind}.json").read_text())
    return doc["rows"], doc["meta"]


def _render(kind: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows, meta = _stored(kind)
    if kind == "profile":
        write_profile(out, rows, meta)
    elif kind == "frontier":
        df = frontier_frame(rows)
        meta["frontier"]["fastest"] = fastest_within(df, meta["frontier"]["spec"]["lpips_max"])
        write_frontier(out, df, meta, mirror=out / "mirror")
    else:
        write_plan(out, rows, meta, meta["plan"]["spec"]["budgets"])
    return out


PLOTS = {
    "profile": ["latency_vs_resolution.png", "vram_by_memory_mode.png", "speedup.png"],
    "frontier": ["pareto.png"],
    "plan": ["plan.png"],
}


@pytest.mark.parametrize("kind", ["profile", "frontier", "plan"])
def test_sweep_files_render_from_stored_results_as_before(kind: str, tmp_path: Path):
    first = _render(kind, tmp_path / "a")
    for name in (f"{kind}.md", f"{kind}.csv"):
        assert (first / name).read_bytes() == (EXPECTED / name).read_bytes(), name
    doc = json.loads((first / f"{kind}.json").read_text())
    assert doc["meta"]["run_id"] == _stored(kind)[1]["run_id"] and len(doc["rows"]) == len(_stored(kind)[0])
    # the plots are a function of the stored results too: the same bytes again
    again = _render(kind, tmp_path / "b")
    for name in PLOTS[kind]:
        assert (first / name).stat().st_size > 0, name
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    if kind == "frontier":
        mirrored = sorted(p.name for p in (first / "mirror").iterdir())
        assert mirrored == ["frontier-a.json", "frontier-a.md", "pareto-a.png"]


def test_profile_markdown_judges_the_paired_overhead_and_escapes_cells(tmp_path: Path):
    text = (_render("profile", tmp_path) / "profile.md").read_text()
    # +1.86 % block, +3.16 % paired: judged on the paired figure against the recorded 1 % goal
    assert "| +1.86 | +3.16 | — | NO |" in text
    assert "unavailable: RuntimeError: the bare call failed \\| (a pipe in the message)" in text
    rows, meta = _stored("profile")
    meta["profile"]["overhead_goal_pct"] = 5.0
    write_profile(tmp_path, rows, meta)
    assert "| +1.86 | +3.16 | — | yes |" in (tmp_path / "profile.md").read_text()


def test_frontier_front_and_fastest_leave_out_points_without_a_value():
    df = pd.DataFrame(
        {
            "base_config": ["c"] * 4,
            "point": ["ref", "a", "b", "none"],
            "status": ["ok", "ok", "ok", "unavailable"],
            "is_reference": [True, False, False, False],
            "s_per_image": [4.0, 2.0, 1.0, math.nan],
            "lpips_mean": [0.0, 0.05, math.nan, math.nan],
            "speed_depends_on_weights": [False, False, True, False],
        }
    )
    assert list(pareto_mask(df)) == [True, True, False, False]
    assert list(frontier_frame(df.to_dict("records"))["front"]) == [True, True, False, False]
    best = {f["lpips_max"]: f for f in fastest_within(df, [0.01, 0.1])}
    assert best[0.01]["point"] == "ref" and best[0.1]["point"] == "a" and best[0.1]["speedup"] == 2.0


def test_one_set_of_cell_helpers():
    assert fmt(None) == fmt(math.nan) == cell(math.nan) == "—"
    assert fmt(0.123456) == "0.1235" and fmt(3) == "3" and fmt(True) == "True"
    assert (
        cell(True) == "yes"
        and cell(False) == "no"
        and cell("a|b") == "a\\|b"
        and cell(0.123456, 3) == "0.123"
    )
    assert fmt_ci(1.0, 0.5, 1.5, 4) == "1 [0.5, 1.5] N=4" and fmt_ci(1.0, math.nan, math.nan) == "1"
    assert md_table(["a", "b"], [["1", "2"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |", ""]
    assert md_table(["a"], [], blank_after=False) == ["| a |", "|---|"]


def test_the_renderers_import_no_scenario_engine_runner_or_torch():
    code = (
        "import sys\n"
        "import evalsuite.report.profile, evalsuite.report.frontier, evalsuite.report.plan\n"
        "import evalsuite.report.compare, evalsuite.report.report\n"
        "layers = ('evalsuite.scenarios', 'evalsuite.engine', 'evalsuite.runners', 'evalsuite.compare')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(layers)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_start_seconds_is_load_apply_and_cold_call_or_nothing():
    from evalsuite.report.frontier import start_seconds

    assert start_seconds({"load_s": 0.5, "apply_s": 2.0, "first_call_s": 34.1}) == pytest.approx(36.6)
    assert math.isnan(start_seconds({"load_s": 0.5, "first_call_s": 34.1}))  # no apply time: not a start
    assert math.isnan(start_seconds({"load_s": 0.5, "apply_s": None, "first_call_s": 34.1}))
