"""Reports: pure functions from a stored run to ``report.md``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .store import RunStore
from .weights import NO_QUALITY_EVIDENCE


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def banner(meta: dict[str, Any]) -> list[str]:
    """Warning lines for numbers that carry no quality evidence (tiny/random weights)."""
    policies = meta.get("weights", {})
    weak = sorted({p for p in policies.values() if p in NO_QUALITY_EVIDENCE})
    if not weak:
        return []
    which = ", ".join(f"`{c}` ({p})" for c, p in policies.items() if p in NO_QUALITY_EVIDENCE)
    return [
        f"> **WARNING: {' and '.join(weak)} weights — these images and quality numbers carry NO quality evidence.**",
        f"> Configurations affected: {which}. `tiny` = small random models for tests; "
        "`random` = full-size random weights, valid for speed/VRAM only.",
        "",
    ]


def render_markdown(meta: dict[str, Any]) -> str:
    """The Markdown report of a run from its ``run.json`` contents."""
    lines = banner(meta)
    env = meta.get("environment", {})
    ds = meta.get("dataset", {})
    dev = env.get("device", {})
    lines += [
        f"# evalsuite run `{meta.get('run_id')}`",
        "",
        f"- dataset: `{ds.get('name')}` — {ds.get('size')} cases, fingerprint `{ds.get('fingerprint')}`",
        f"- seeds: {meta.get('seeds')}",
        f"- device: {dev.get('name')} ({dev.get('type')})",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v),
        f"- git commit: {env.get('git_commit')}",
        f"- started {meta.get('started')}, finished {meta.get('finished')}",
        "",
        "## Configurations",
        "",
        "| configuration | runner | weights | parameters | load error |",
        "|---|---|---|---|---|",
    ]
    for name, c in meta.get("configs", {}).items():
        params = ", ".join(f"{k}={v}" for k, v in c.get("params", {}).items())
        lines.append(f"| `{name}` | {c.get('runner')} | {c.get('weights')} | {params} | {c.get('load_error') or ''} |")
    lines += ["", "## Summary", ""]
    summary = meta.get("summary", {})
    metric_names = sorted({m for s in summary.values() for m in s.get("metrics", {})})
    head = "| configuration | weights | ok | errors | " + " | ".join(metric_names) + " |"
    lines += [head, "|" + "---|" * (4 + len(metric_names))]
    for name, s in summary.items():
        c = s.get("counts", {})
        cells = []
        for m in metric_names:
            r = s.get("metrics", {}).get(m)
            cells.append("—" if r is None else f"{_fmt(r.get('value'))} {r.get('unit', '')} (N={r.get('n')})")
        lines.append(f"| `{name}` | {meta.get('weights', {}).get(name)} | {c.get('ok')} | {c.get('error')} | " + " | ".join(cells) + " |")
    from .scoring import metric_notes

    lines += metric_notes(summary)
    failures = [(n, e) for n, s in summary.items() for e in s.get("counts", {}).get("errors", [])]
    if failures:
        lines += ["", "## Failures", ""] + [f"- `{n}`: {e}" for n, e in failures]
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` into ``run_dir`` and return its path."""
    store = RunStore(run_dir)
    meta = store.read_meta()
    path = store.path / "report.md"
    path.write_text(render_markdown(meta), encoding="utf-8")
    return path
