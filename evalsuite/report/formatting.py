"""The text helpers every rendered table shares: number formatting, Markdown cells and tables, the
provenance lines.

One of each, used by ``report.md`` (:mod:`evalsuite.report.report`), the sweep tables
(:mod:`evalsuite.report.profile`, :mod:`evalsuite.report.frontier`, :mod:`evalsuite.report.plan`)
and ``compare.md`` (:mod:`evalsuite.report.compare`). Light: imports nothing beyond the standard
library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["arrow", "cell", "environment_lines", "fmt", "fmt_ci", "md", "md_table", "missing"]


def missing(x: Any) -> bool:
    """``None`` or a float NaN: a value the tables print as ``—``."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``—`` for missing/NaN; anything else as ``str``."""
    if missing(x):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def cell(x: Any, digits: int = 4) -> str:
    """A sweep-table cell (``profile.md``, ``frontier.md``, ``plan.md``): :func:`fmt`, with booleans
    as ``yes``/``no`` and ``|`` escaped (the rest of the text is kept as it is)."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    return fmt(x, digits).replace("|", "\\|")


def fmt_ci(mean: float, low: float, high: float, n: int | None = None) -> str:
    """``mean [low, high]`` (plus `` N=n``) with NaN-safe formatting."""
    s = fmt(mean)
    if not (isinstance(low, float) and math.isnan(low)):
        s += f" [{fmt(low)}, {fmt(high)}]"
    if n is not None:
        s += f" N={n}"
    return s


def md(x: Any) -> str:
    """User text made safe inside a Markdown table cell (pipes, newlines, angle brackets)."""
    s = "" if x is None else str(x)
    return (
        s.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\r", " ")
        .replace("\n", " ")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("`", "'")
    )


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], blank_after: bool = True) -> list[str]:
    """A Markdown table as lines, followed by an empty line unless ``blank_after`` is false.

    Cells are written as given: escape them first (:func:`md` for user text, :func:`cell` in the
    sweep tables).
    """
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""] if blank_after else out


def arrow(higher_is_better: bool | None) -> str:
    """``↑`` when higher is better, ``↓`` when lower is, ``""`` when unknown."""
    return {True: "↑", False: "↓"}.get(higher_is_better, "")  # type: ignore[arg-type]


def environment_lines(meta: dict[str, Any]) -> list[str]:
    """The provenance lines a sweep's Markdown starts with (device, versions, git commit)."""
    env = meta.get("environment", {})
    dev = env.get("device", {})
    return [
        f"- device: {dev.get('name')} ({dev.get('type')})",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v),
        f"- git commit: {env.get('git_commit')}",
    ]
