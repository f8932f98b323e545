"""The layers of the package stay apart: stored results at the bottom, metrics and the report above
them, never reaching into the engine, the runners or the scenarios (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import evalsuite

PACKAGE = Path(evalsuite.__file__).parent

# part → the parts of evalsuite it must not import (at module level or inside a function)
FORBIDDEN = {
    "metrics": {"engine", "runners", "scenarios"},
    "report": {"engine", "runners", "scenarios"},
    "results": {"engine", "runners", "scenarios", "metrics", "report", "compare"},
    "catalog": {"engine", "runners", "scenarios", "metrics"},
}


def imported_parts(source: str, filename: str, package: str) -> list[tuple[int, str]]:
    """(line, part) for every import of ``evalsuite.<part>`` in ``source`` (a module of
    ``evalsuite.<package>``), wherever the import statement is: module level, inside a function or
    under ``if TYPE_CHECKING``; relative imports are resolved against ``package``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..engine import y
                base = ["evalsuite", package][: max(0, 2 - (node.level - 1))]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            modules = [mod] if mod != "evalsuite" else [f"evalsuite.{a.name}" for a in node.names]
        for m in modules:
            parts = m.split(".")
            if parts[0] == "evalsuite" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_the_checker_sees_every_form_of_import():
    code = (
        "import evalsuite.engine.lock\n"
        "from evalsuite.runners.weights import X\n"
        "from evalsuite import scenarios\n"
        "from ..metrics import scoring\n"
        "def f():\n    from evalsuite.compare import engine\n"
        "if TYPE_CHECKING:\n    import evalsuite.report.tables\n"
        "from evalsuite.vocab import NO_QUALITY_EVIDENCE\n"
    )
    parts = [p for _, p in imported_parts(code, "x.py", "report")]
    assert sorted(parts) == sorted(
        ["engine", "runners", "scenarios", "metrics", "compare", "report", "vocab"]
    )


def test_metrics_report_and_results_import_no_higher_layer():
    bad = []
    for part, forbidden in FORBIDDEN.items():
        files = sorted((PACKAGE / part).rglob("*.py"))
        assert files, part
        for path in files:
            for line, imported in imported_parts(path.read_text(encoding="utf-8"), str(path), part):
                if imported in forbidden:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports evalsuite.{imported}")
    assert not bad, "\n".join(bad)
