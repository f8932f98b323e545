"""pytest plugin: regression tests of configurations against stored baselines.

Registered through the ``pytest11`` entry point (``pip install -e .`` makes ``pytest --help``
list the ``--evalsuite-*`` options); without the installed entry point load it with
``pytest -p evalsuite.testing.pytest_plugin``. The entry point is named like the module, so both ways
together register it once.

Fixtures
    ``evalsuite_run(config, dataset="smoke", weights=None, seeds=None, limit=None, overrides=(),
    metrics=None)`` → :class:`~evalsuite.compare.baselines.ConfigRun`; generations are cached per pytest
    session (same arguments → same run), in ``--evalsuite-out`` or a session temporary folder.
    ``evalsuite_baseline(name_or_run)`` → :class:`~evalsuite.compare.baselines.Baseline` from
    ``--evalsuite-baselines`` (default ``<rootdir>/reports/baselines``); given a run under
    ``--evalsuite-update-baselines`` it (re)writes that run's baseline first; ``--evalsuite-baseline
    catalog:LABEL`` takes baselines from that run of the results catalog instead (docs/catalog.md).
    ``evalsuite_runner(config, overrides=())`` → a loaded runner (for the ``benchmark`` fixture).
    ``evalsuite_cases(dataset="smoke", limit=None)`` → the dataset's cases.
    ``evalsuite_options`` → the parsed options; ``evalsuite_config`` → each name of
    ``--evalsuite-configs`` (tests asking for it are parametrized; default: the test module's
    ``EVALSUITE_CONFIGS`` list, else ``flux-dev``).

Baselines record the machine that wrote them; a machine-dependent metric (latency, timings,
memory, energy) of a baseline from another machine is skipped with the reason
(``--evalsuite-other-machine=compare`` compares it anyway): latency is only compared with figures
measured on the same runner.

Markers ``gpu``, ``slow``, ``regression`` and ``evalsuite_weights`` are registered unless the ini
file declares them; tests marked ``gpu`` are skipped when CUDA is unavailable (the one GPU skip hook,
also of evalsuite's own tests), and tests marked ``evalsuite_weights("random", "hub")`` run only under
those weights policies (skipped at collection, naming them, under the others).

See ``docs/regression.md`` for the workflow (tiny weights in CI, hub weights on a GPU runner,
pytest-benchmark speed baselines).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from evalsuite.vocab import WEIGHT_POLICIES

if TYPE_CHECKING:
    from evalsuite.compare.baselines import Baseline, ConfigRun

log = logging.getLogger(__name__)

MARKERS = {
    "gpu": "needs a CUDA GPU (skipped without one)",
    "slow": "takes more than a few seconds on CPU",
    "regression": "quality/speed regression checks against stored baselines",
    "evalsuite_weights": "evalsuite_weights(*policies): runs only under those --evalsuite-weights policies "
    "(skipped at collection, with the reason, under the others)",
}
DEFAULT_CONFIGS = ("flux-dev",)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("evalsuite", "evalsuite regression runs (evalsuite.testing.pytest_plugin)")
    g.addoption(
        "--evalsuite-weights",
        choices=WEIGHT_POLICIES,
        default="tiny",
        help="weights policy for evalsuite_run: tiny (CPU, no quality evidence), random, hub (real "
        "checkpoints). Default: tiny",
    )
    g.addoption(
        "--evalsuite-device",
        default="auto",
        help="device for generation: auto (cuda unless weights are tiny), cpu, cuda, cuda:1... Default: auto",
    )
    g.addoption(
        "--evalsuite-configs",
        default=None,
        metavar="NAMES",
        help="comma-separated configurations that tests using the 'evalsuite_config' fixture run "
        "(default: the test module's EVALSUITE_CONFIGS, else flux-dev)",
    )
    g.addoption(
        "--evalsuite-out",
        default=None,
        metavar="DIR",
        help="where runs are generated (reused across sessions: an identical run resumes); "
        "default: a temporary folder of the session",
    )
    g.addoption(
        "--evalsuite-baselines",
        default=None,
        metavar="DIR",
        help="baseline folder (default: <rootdir>/reports/baselines)",
    )
    g.addoption(
        "--evalsuite-baseline",
        default=None,
        metavar="catalog:REF",
        help="take baselines from the results catalog instead of JSON files: the run of catalog:LABEL, "
        "catalog:RUN_ID or catalog:latest (docs/catalog.md)",
    )
    g.addoption(
        "--evalsuite-catalog",
        default=None,
        metavar="PATH",
        help="the catalog of --evalsuite-baseline (default: EVALSUITE_CATALOG, else <rootdir>/reports/catalog.duckdb)",
    )
    g.addoption(
        "--evalsuite-update-baselines",
        action="store_true",
        default=False,
        help="write/refresh the baselines of the runs the tests make instead of only comparing",
    )
    g.addoption(
        "--evalsuite-other-machine",
        choices=("skip", "compare"),
        default="skip",
        help="machine-dependent metrics (latency, timings, memory, energy) of a baseline written on "
        "another machine (CPU model, cores, GPU): skip them with the reason (default), or compare anyway",
    )
    g.addoption(
        "--evalsuite-weights-dir",
        default=None,
        metavar="DIR",
        help="folder of pre-downloaded weights for --evalsuite-weights hub (air-gapped runners)",
    )


def pytest_configure(config: pytest.Config) -> None:
    declared = {str(line).split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, doc in MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", f"{name}: {doc}")
    config.stash[_WRITTEN] = []
    _check_options(config)
    other = config.getoption("--evalsuite-other-machine", default=None)
    if other:
        from evalsuite.compare import baselines

        baselines.OTHER_MACHINE_DEFAULT = str(other)


def _check_options(config: pytest.Config) -> None:
    """Refuse unusable ``--evalsuite-*`` values once, at start-up, in one line each (instead of every
    test failing with the same traceback)."""
    from evalsuite.config.runconfig import check_device

    device = config.getoption("--evalsuite-device", default=None)
    if device not in (None, "auto"):
        try:
            check_device(device)
        except ValueError as exc:
            raise pytest.UsageError(f"--evalsuite-device {device}: {exc}") from None
    names = config.getoption("--evalsuite-configs", default=None)
    if names:
        from evalsuite.config import configuration as cfg

        for name in (n.strip() for n in str(names).split(",") if n.strip()):
            try:
                cfg.resolve(name)
            except (cfg.ConfigError, KeyError) as exc:
                raise pytest.UsageError(f"--evalsuite-configs: {exc}") from None
    for opt in ("--evalsuite-out", "--evalsuite-baselines", "--evalsuite-weights-dir"):
        value = config.getoption(opt, default=None)
        if value and Path(value).expanduser().is_file():
            raise pytest.UsageError(f"{opt} {value}: is a file, not a folder")
    wdir = config.getoption("--evalsuite-weights-dir", default=None)
    if wdir and not Path(wdir).expanduser().is_dir():
        raise pytest.UsageError(f"--evalsuite-weights-dir {wdir}: no such folder")


_WRITTEN = pytest.StashKey[list[Path]]()


def pytest_report_header(config: pytest.Config) -> str:
    o = _options(config)
    note = "" if o.weights == "hub" else " (no quality evidence)"
    mode = "update baselines" if o.update else "compare"
    return (
        f"evalsuite: weights={o.weights}{note} device={o.device} baselines={o.baselines} mode={mode} "
        f"other-machine={config.getoption('--evalsuite-other-machine')}"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    weights = str(config.getoption("--evalsuite-weights"))
    for item in items:
        mark = item.get_closest_marker("evalsuite_weights")
        if mark is not None and weights not in mark.args:
            why = mark.kwargs.get("reason", "")
            item.add_marker(
                pytest.mark.skip(
                    reason=f"runs with --evalsuite-weights {' or '.join(mark.args)}, not {weights}"
                    + (f": {why}" if why else "")
                )
            )
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "evalsuite_config" not in metafunc.fixturenames:
        return
    opt = metafunc.config.getoption("--evalsuite-configs")
    if opt:
        names = [n.strip() for n in str(opt).split(",") if n.strip()]
    else:
        names = list(getattr(metafunc.module, "EVALSUITE_CONFIGS", DEFAULT_CONFIGS))
    metafunc.parametrize("evalsuite_config", names, scope="session")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    written = config.stash.get(_WRITTEN, [])
    if written:
        terminalreporter.write_sep("-", "evalsuite baselines written")
        for p in written:
            terminalreporter.write_line(str(p))


@dataclass(frozen=True)
class EvalsuiteOptions:
    """The ``--evalsuite-*`` options, resolved.

    Attributes:
        weights: ``tiny``, ``random`` or ``hub``.
        device: ``auto``, ``cpu``, ``cuda``...
        configs: names given by ``--evalsuite-configs`` (empty: each test's default).
        out: run folder given by ``--evalsuite-out`` (``None``: session temporary folder).
        baselines: baseline folder.
        update: ``--evalsuite-update-baselines``.
        weights_dir: ``--evalsuite-weights-dir``.
    """

    weights: str
    device: str
    configs: tuple[str, ...]
    out: Path | None
    baselines: Path
    update: bool
    weights_dir: Path | None = None
    baseline_ref: str | None = None
    catalog: Path | None = None


def _options(config: pytest.Config) -> EvalsuiteOptions:
    def path(opt: str) -> Path | None:
        v = config.getoption(opt)
        return Path(v).expanduser().resolve() if v else None

    configs = config.getoption("--evalsuite-configs")
    return EvalsuiteOptions(
        weights=str(config.getoption("--evalsuite-weights")),
        device=str(config.getoption("--evalsuite-device")),
        configs=tuple(n.strip() for n in str(configs).split(",") if n.strip()) if configs else (),
        out=path("--evalsuite-out"),
        baselines=path("--evalsuite-baselines") or Path(config.rootpath) / "reports" / "baselines",
        update=bool(config.getoption("--evalsuite-update-baselines")),
        weights_dir=path("--evalsuite-weights-dir"),
        baseline_ref=config.getoption("--evalsuite-baseline", default=None),
        catalog=path("--evalsuite-catalog")
        or (Path(os.environ["EVALSUITE_CATALOG"]) if os.environ.get("EVALSUITE_CATALOG") else None)
        or Path(config.rootpath) / "reports" / "catalog.duckdb",
    )


@pytest.fixture(scope="session")
def evalsuite_options(pytestconfig: pytest.Config) -> EvalsuiteOptions:
    """The resolved ``--evalsuite-*`` options."""
    return _options(pytestconfig)


@pytest.fixture(scope="session")
def _evalsuite_out(evalsuite_options: EvalsuiteOptions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return evalsuite_options.out or tmp_path_factory.mktemp("evalsuite-runs")


@pytest.fixture(scope="session")
def evalsuite_run(evalsuite_options: EvalsuiteOptions, _evalsuite_out: Path) -> Callable[..., ConfigRun]:
    """Factory: generate (or reuse) a run of one configuration and return it as a
    :class:`~evalsuite.compare.baselines.ConfigRun`.

    Arguments: ``config``; ``dataset`` (name or path, default ``smoke``); ``weights`` (default
    ``--evalsuite-weights``); ``seeds`` (default each case's seed); ``limit`` (first N cases);
    ``overrides`` (``FIELD=VALUE`` strings, as ``evalsuite run --set``); ``metrics`` (default
    ``latency``). Identical arguments within a session return the same run without generating
    again. Rows that fail do not raise here; the assertions report them.
    """
    cache: dict[tuple[Any, ...], ConfigRun] = {}

    def make(
        config: str,
        dataset: str = "smoke",
        weights: str | None = None,
        seeds: Sequence[int] | None = None,
        limit: int | None = None,
        overrides: Sequence[str] = (),
        metrics: Sequence[str] | None = None,
    ) -> ConfigRun:
        import evalsuite

        policy = weights or evalsuite_options.weights
        key = (
            config,
            str(dataset),
            policy,
            tuple(seeds) if seeds is not None else None,
            limit,
            tuple(overrides),
            tuple(metrics) if metrics is not None else None,
        )
        if key not in cache:
            log.info(
                "evalsuite_run: generating %s on %s (%s weights) in %s",
                config,
                dataset,
                policy,
                _evalsuite_out,
            )
            from evalsuite.config.runconfig import RunConfig

            result = evalsuite.run(
                RunConfig(
                    configs=[config],
                    dataset=dataset,
                    weights=policy,
                    out=_evalsuite_out,
                    seeds=list(seeds) if seeds is not None else None,
                    device=evalsuite_options.device,
                    overrides=list(overrides),
                    metrics=list(metrics) if metrics is not None else None,
                    limit=limit,
                    weights_dir=evalsuite_options.weights_dir,
                    progress=False,
                    report=False,
                )
            )
            cache[key] = result.select(config)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def evalsuite_baseline(
    evalsuite_options: EvalsuiteOptions, pytestconfig: pytest.Config
) -> Callable[..., Baseline]:
    """Factory: the stored :class:`~evalsuite.compare.baselines.Baseline` for a name or a run.

    ``evalsuite_baseline(run)`` uses the run's default name ``<config>__<dataset>__<weights>``;
    ``evalsuite_baseline("name")`` reads ``<baselines>/name.json``. Under
    ``--evalsuite-update-baselines``, passing a run writes (or refreshes) its baseline first.
    ``evalsuite_baseline("catalog:v0.3.0", config="flux-dev")`` builds it from that run of the results
    catalog; with ``--evalsuite-baseline catalog:REF``, ``evalsuite_baseline(run)`` does so for the
    run's configuration (no JSON file in the repository).

    Raises:
        BaselineError: no such baseline (the message says how to create it), or (update mode)
            a run whose rows failed.
    """
    from evalsuite.compare.baselines import Baseline, BaselineError, ConfigRun, baseline_name

    written: dict[Path, Baseline] = {}

    def _from_catalog(ref: str, config: str) -> Baseline:
        from evalsuite.catalog.history import catalog_baseline

        assert evalsuite_options.catalog is not None
        return catalog_baseline(evalsuite_options.catalog, ref, config)  # type: ignore[no-any-return]

    def get(name_or_run: str | ConfigRun, name: str | None = None, config: str | None = None) -> Baseline:
        if isinstance(name_or_run, str) and name_or_run.startswith("catalog:"):
            if config is None:
                raise BaselineError(
                    f"evalsuite_baseline({name_or_run!r}): name the configuration (config=...)"
                )
            return _from_catalog(name_or_run, config)
        if (
            isinstance(name_or_run, ConfigRun)
            and evalsuite_options.baseline_ref
            and not evalsuite_options.update
        ):
            return _from_catalog(evalsuite_options.baseline_ref, name_or_run.selected)
        if isinstance(name_or_run, ConfigRun):
            run = name_or_run
            stem = name or baseline_name(run.selected, run.dataset["name"], run.weights)
            path = evalsuite_options.baselines / f"{stem}.json"
            if evalsuite_options.update:
                if path in written:  # once per session, however many tests ask
                    if written[path].data["provenance"]["run_id"] != run.run_meta.run_id:
                        raise BaselineError(
                            f"two different runs of this session would write baseline {path} ({run.run_dir} and "
                            f"run {written[path].data['provenance']['run_id']}); give one of them name=..."
                        )
                    return written[path]
                b = Baseline.from_run(run, stem)
                b.save(path)
                written[path] = b
                pytestconfig.stash[_WRITTEN].append(path)
                log.info("evalsuite: wrote baseline %s", path)
                return b
            return Baseline.load(path)
        return Baseline.load(evalsuite_options.baselines / f"{name_or_run}.json")

    return get


@pytest.fixture(scope="session")
def evalsuite_runner(evalsuite_options: EvalsuiteOptions) -> Iterator[Callable[..., Any]]:
    """Factory: a loaded :class:`~evalsuite.runners.base.Runner` for ``config`` (with ``overrides``
    and the session's weights policy and device), cached per session and closed at the end.

    Use it with pytest-benchmark::

        def test_speed(benchmark, evalsuite_runner, evalsuite_cases):
            runner = evalsuite_runner("flux-dev")
            cases = evalsuite_cases("smoke", limit=1)
            benchmark.pedantic(runner.generate, args=(cases, [c.seed for c in cases]), rounds=5)
    """
    runners: dict[tuple[Any, ...], Any] = {}

    def make(config: str, overrides: Sequence[str] = (), weights: str | None = None) -> Any:
        from evalsuite.config import configuration as cfg
        from evalsuite.device import resolve_device
        from evalsuite.engine.lifecycle import apply_thread_policy
        from evalsuite.registry import RUNNERS
        from evalsuite.runners.weights import Weights

        policy = weights or evalsuite_options.weights
        key = (config, tuple(overrides), policy)
        if key not in runners:
            conf = cfg.resolve(config, [cfg.Override.parse(o) for o in overrides])
            w = Weights(policy, evalsuite_options.weights_dir)  # type: ignore[arg-type]
            dev = resolve_device(evalsuite_options.device, policy, option="--evalsuite-device")
            apply_thread_policy(dev, policy)
            runner = RUNNERS.get(conf.runner)(conf.params, w, dev)
            runner.load()
            runners[key] = runner
        return runners[key]

    yield make
    for r in runners.values():
        r.close()


@pytest.fixture(scope="session")
def evalsuite_cases() -> Callable[..., list[Any]]:
    """Factory: the :class:`~evalsuite.data.cases.Case` list of ``dataset`` (first ``limit`` cases)."""

    def get(dataset: str = "smoke", limit: int | None = None) -> list[Any]:
        from evalsuite.data.registry import load_dataset

        return list(load_dataset(dataset).select(limit=limit).cases)

    return get
