"""evalsuite — evaluation and benchmarking for diffusion inpainting models.

Public API::

    import evalsuite
    result = evalsuite.run(configs=["flux-dev"], dataset="smoke", weights="tiny", out="reports")
    result.samples          # pandas DataFrame, one row per (configuration, case, seed)
    result.summary          # per-configuration counts and metric aggregates
    again = evalsuite.load_run(result.run_dir)

See :func:`run` for every argument; ``evalsuite.run(evalsuite.RunConfig(...))`` takes them typed.
"""

from evalsuite import metrics, runners  # noqa: F401  (registers the built-in runners and metrics)
from evalsuite.config.configuration import ConfigError, Configuration, Override, resolve, resolve_many
from evalsuite.config.runconfig import RunConfig, RunConfigError
from evalsuite.data.cases import Case, Dataset, ManifestError, load_manifest
from evalsuite.data.registry import load_dataset
from evalsuite.engine.generate import RunResult, load_run, run
from evalsuite.metrics import Metric, MetricBatch, MetricResult
from evalsuite.registry import DATASETS, METRICS, RUNNERS, Registry, RegistryError
from evalsuite.runners import GenerationOutput, Runner, RunnerParams
from evalsuite.runners.weights import Weights, WeightsError

__version__ = "0.1.0"

__all__ = [
    "Case",
    "Dataset",
    "ManifestError",
    "load_manifest",
    "load_dataset",
    "Configuration",
    "ConfigError",
    "Override",
    "resolve",
    "resolve_many",
    "RunConfig",
    "RunConfigError",
    "RunResult",
    "run",
    "load_run",
    "Metric",
    "MetricBatch",
    "MetricResult",
    "Registry",
    "RegistryError",
    "RUNNERS",
    "METRICS",
    "DATASETS",
    "Runner",
    "RunnerParams",
    "GenerationOutput",
    "Weights",
    "WeightsError",
    "__version__",
]
