"""Every dotted ``evalsuite.…`` name in the package's docstrings and comments, the docs, the README,
the tests and the benchmarks names something that exists (a module, or an attribute of one), so a
moved module cannot leave its old name behind in the text that explains it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAME = re.compile(r"(?<![\w/.-])~?(evalsuite(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# names that are not Python objects: schema ids and entry-point groups
NOT_OBJECTS = {"evalsuite.baseline", "evalsuite.run", "evalsuite.datasets", "evalsuite.test"}


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            fields = {**getattr(obj, "__annotations__", {}), **getattr(obj, "__dataclass_fields__", {})}
            if attr in fields and not hasattr(obj, attr):
                return True  # a dataclass field or an annotated attribute without a class default
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _texts() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    for folder in ("evalsuite", "tests", "benchmarks"):
        files += sorted((REPO / folder).rglob("*.py"))
    files += sorted((REPO / "evalsuite" / "data" / "sets").rglob("*.md"))
    return files


def test_every_evalsuite_name_in_the_text_exists():
    bad: dict[str, list[str]] = {}
    seen: dict[str, bool] = {}
    for f in _texts():
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            for m in NAME.finditer(line):
                name = m.group(1)
                if name in NOT_OBJECTS or name.endswith((".py", ".md")) or "__main__" in name:
                    continue
                if name not in seen:
                    seen[name] = _resolves(name)
                if not seen[name]:
                    bad.setdefault(name, []).append(f"{f.relative_to(REPO)}:{n}")
    assert len(seen) > 100  # the scan found the package's cross-references
    assert not bad, "names that no longer exist:\n" + "\n".join(
        f"{k}: {', '.join(v)}" for k, v in sorted(bad.items())
    )
