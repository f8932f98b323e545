"""Testing helpers for evalsuite users: the pytest plugin (:mod:`evalsuite.testing.pytest_plugin`),
the baseline assertions (:mod:`evalsuite.compare.baselines`) and the runner contract any runner
plugin can reuse (:class:`evalsuite.testing.contract.RunnerContract`).

Names resolve lazily (PEP 562), so importing this package imports neither torch nor pandas.
"""

from __future__ import annotations

from typing import Any

from evalsuite.registry import lazy_attribute

_LAZY = {
    "RunnerContract": "evalsuite.testing.contract",
    "PixelTolerance": "evalsuite.testing.contract",
    "assert_images_match": "evalsuite.compare.baselines",
    "assert_no_regression": "evalsuite.compare.baselines",
    "Baseline": "evalsuite.compare.baselines",
    "ConfigRun": "evalsuite.compare.baselines",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, globals(), name)
