"""evalsuite — evaluation and benchmarking for diffusion inpainting models.

Public API::

    import evalsuite
    result = evalsuite.run(configs=["flux-dev"], dataset="smoke", weights="tiny", out="reports")
    result.samples          # pandas DataFrame, one row per (configuration, case, seed)
    result.summary          # per-configuration counts and metric aggregates
    again = evalsuite.load_run(result.run_dir)

See :func:`run` for every argument; ``evalsuite.run(evalsuite.RunConfig(...))`` takes them typed.

Importing ``evalsuite`` is light: the names below are imported on first access (PEP 562), so
``import evalsuite`` and ``evalsuite --help`` do not import torch, diffusers or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalsuite.registry import lazy_attribute

__version__ = "0.1.0"

# public name → module that defines it (imported on first attribute access)
_EXPORTS: dict[str, str] = {
    "Case": "evalsuite.data.cases",
    "Dataset": "evalsuite.data.cases",
    "ManifestError": "evalsuite.data.cases",
    "load_manifest": "evalsuite.data.cases",
    "load_dataset": "evalsuite.data.registry",
    "Configuration": "evalsuite.config.configuration",
    "ConfigError": "evalsuite.config.configuration",
    "Override": "evalsuite.config.configuration",
    "resolve": "evalsuite.config.configuration",
    "resolve_many": "evalsuite.config.configuration",
    "RunConfig": "evalsuite.config.runconfig",
    "RunConfigError": "evalsuite.config.runconfig",
    "RunResult": "evalsuite.results.run",
    "run": "evalsuite.scenarios.generate",
    "load_run": "evalsuite.results.run",
    "Metric": "evalsuite.metrics.base",
    "MetricBatch": "evalsuite.metrics.base",
    "MetricResult": "evalsuite.metrics.base",
    "Registry": "evalsuite.registry",
    "RegistryError": "evalsuite.registry",
    "RUNNERS": "evalsuite.registry",
    "METRICS": "evalsuite.registry",
    "DATASETS": "evalsuite.registry",
    "Runner": "evalsuite.runners.base",
    "RunnerParams": "evalsuite.runners.base",
    "GenerationOutput": "evalsuite.runners.base",
    "Weights": "evalsuite.runners.weights",
    "WeightsError": "evalsuite.runners.weights",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    # subpackages (evalsuite.runners, ...) are found by the import system, not here
    return lazy_attribute(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from evalsuite.config.configuration import ConfigError, Configuration, Override, resolve, resolve_many  # noqa: F401
    from evalsuite.config.runconfig import RunConfig, RunConfigError  # noqa: F401
    from evalsuite.data.cases import Case, Dataset, ManifestError, load_manifest  # noqa: F401
    from evalsuite.data.registry import load_dataset  # noqa: F401
    from evalsuite.metrics.base import Metric, MetricBatch, MetricResult  # noqa: F401
    from evalsuite.registry import DATASETS, METRICS, RUNNERS, Registry, RegistryError  # noqa: F401
    from evalsuite.results.run import RunResult, load_run  # noqa: F401
    from evalsuite.runners.base import GenerationOutput, Runner, RunnerParams  # noqa: F401
    from evalsuite.runners.weights import Weights, WeightsError  # noqa: F401
    from evalsuite.scenarios.generate import run  # noqa: F401
