"""``RunConfig``: the one typed input of a run, shared by the CLI (``evalsuite run``), the Python API
(:func:`evalsuite.run`) and the pytest plugin, with the one validation of it; ``SweepConfig``: the
arguments the sweep commands share (``profile``, ``frontier``, ``plan``), whose fields carry their
command-line help.

Every check here runs before anything is loaded or written, and raises :class:`RunConfigError` (a
``ValueError``: the CLI prints it on one line and exits 2) with a message naming the option and
the fix::

    cfg = RunConfig(configs=["flux-dev"], dataset="smoke", limit=2, overrides=["steps=1"])
    cfg.validate()
    result = evalsuite.run(cfg)          # or evalsuite.run(configs=[...], dataset=..., ...)
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.data.cases import MAX_SEED
from evalsuite.device import accepted_devices, check_device
from evalsuite.errors import UsageError
from evalsuite.paths import is_folder_name
from evalsuite.vocab import METRIC_WEIGHT_MODES, WEIGHT_POLICIES

DEFAULT_OUT = Path("reports")


class RunConfigError(UsageError, ValueError):
    """An unusable run argument, found before anything is generated; the message names the option."""


def check_run_id(run_id: str | None, option: str = "--run-id") -> None:
    """A run id is a directory *name* under ``--out``: refuse empty ids, path separators and ``.``/``..``."""
    if run_id is None:
        return
    if not is_folder_name(run_id):
        raise RunConfigError(
            f"{option} {run_id!r}: a run id is a folder name under --out (no path separators, not '.' or "
            "'..', not empty); to put the run elsewhere pass --run-dir DIR"
        )


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable_dir(path: Path, option: str) -> None:
    """``path`` must be a folder that exists and can be written, or be creatable inside one.

    Raises:
        RunConfigError: ``path`` (or the nearest existing part of it) is a file, or cannot be written.
    """
    p = Path(path).expanduser()
    base = _first_existing(p.absolute())
    if not base.is_dir():
        what = "is a file" if base == p.absolute() else f"is inside {base}, which is a file"
        raise RunConfigError(f"{option} {p}: {what}, not a folder; pass a folder")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise RunConfigError(
            f"{option} {p}: cannot write in {base} ({exc.strerror or exc}); pass a folder you can write to"
        ) from exc


def check_seeds(seeds: Sequence[int] | None) -> None:
    """Raise naming ``--seeds`` for a seed outside [0, 2**63 - 1] or a duplicate."""
    if seeds is None:
        return
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise RunConfigError(
                f"--seeds: {s!r} is not an integer in [0, 2**63-1]; pass seeds such as 0 1 2"
            )
    if len(set(seeds)) != len(seeds):
        raise RunConfigError(f"--seeds: {list(seeds)} repeats a seed; each seed must appear once")


@dataclass
class RunConfig:
    """Everything that defines a run (see :func:`evalsuite.run` for each field's meaning).

    Attributes:
        configs: configuration names (``None``/``["all"]``: every configuration).
        dataset: dataset name, folder/manifest path, or a :class:`~evalsuite.data.cases.Dataset`.
        weights: ``tiny``, ``random`` or ``hub``.
        out: root of run directories.
        run_id: run directory name under ``out`` (default derived from what is run).
        run_dir: explicit run directory (overrides ``out``/``run_id``).
        seeds: seeds per case (default each case's own).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (``mps`` where torch has it).
        overrides: ``[CONFIG.]FIELD=VALUE`` strings or :class:`~evalsuite.config.configuration.Override`.
        metrics: metrics scored at the end (``None``: the defaults; ``[]``: none).
        weights_dir: folder of pre-downloaded weights.
        limit: only the first ``limit`` cases (≥ 1).
        config_dirs: extra configuration folders.
        progress: show progress bars.
        report: write the report at the end.
        allow_outside_paths: let manifest paths point outside the dataset folder.
        metric_weights: ``real``, ``random`` or ``random_full`` (default from ``weights``).
        metric_weights_dir: folder of metric weight files.
        force: build full-size (``random``/``hub``) weights on the CPU even when their estimated size
            exceeds the available memory (:func:`evalsuite.scenarios.fit.check_fits`).
    """

    configs: list[str] | None = None
    dataset: Any = "smoke"
    weights: str = "tiny"
    out: Path = DEFAULT_OUT
    run_id: str | None = None
    run_dir: Path | None = None
    seeds: list[int] | None = None
    device: Any = "auto"
    overrides: list[Any] = field(default_factory=list)
    metrics: list[str] | None = None
    weights_dir: Path | None = None
    limit: int | None = None
    config_dirs: list[Path] = field(default_factory=list)
    progress: bool = True
    report: bool = True
    allow_outside_paths: bool = False
    metric_weights: str | None = None
    metric_weights_dir: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        self.configs = list(self.configs) if self.configs else None
        self.out = Path(self.out)
        self.run_dir = Path(self.run_dir) if self.run_dir not in (None, "") else None
        self.seeds = list(self.seeds) if self.seeds is not None else None
        self.overrides = list(self.overrides or [])
        self.metrics = list(self.metrics) if self.metrics is not None else None
        self.weights_dir = Path(self.weights_dir) if self.weights_dir else None
        self.config_dirs = [Path(d) for d in self.config_dirs or []]
        self.metric_weights_dir = Path(self.metric_weights_dir) if self.metric_weights_dir else None

    @classmethod
    def fields(cls) -> list[str]:
        """The field names (the keyword arguments :func:`evalsuite.run` takes)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RunConfig:
        """A RunConfig from :func:`evalsuite.run`'s keyword arguments.

        Raises:
            TypeError: for an unknown keyword, naming the valid ones.
        """
        unknown = sorted(set(kwargs) - set(cls.fields()))
        if unknown:
            raise TypeError(f"unknown run argument(s) {', '.join(unknown)}; valid: {', '.join(cls.fields())}")
        return cls(**dict(kwargs))

    @classmethod
    def from_args(cls, args: Any) -> RunConfig:
        """A RunConfig from ``evalsuite run``'s parsed arguments (an ``argparse.Namespace``)."""
        return cls(
            configs=args.configs,
            dataset=args.dataset,
            weights=args.weights,
            out=args.out,
            run_id=args.run_id,
            run_dir=args.run_dir,
            seeds=args.seeds,
            device=args.device,
            overrides=args.overrides,
            metrics=args.metrics,
            weights_dir=args.weights_dir,
            limit=args.limit,
            config_dirs=args.config_dir,
            progress=not args.no_progress,
            allow_outside_paths=args.allow_outside_paths,
            metric_weights=args.metric_weights,
            metric_weights_dir=args.metric_weights_dir,
            force=getattr(args, "force", False),
        )

    def validate(self) -> None:
        """Check every field that can be checked without loading anything; nothing is written.

        Raises:
            RunConfigError: naming the option and the fix.
        """
        if self.weights not in WEIGHT_POLICIES:
            raise RunConfigError(f"--weights {self.weights!r}: choose one of {', '.join(WEIGHT_POLICIES)}")
        if self.metric_weights is not None and self.metric_weights not in METRIC_WEIGHT_MODES:
            raise RunConfigError(
                f"--metric-weights {self.metric_weights!r}: choose one of {', '.join(METRIC_WEIGHT_MODES)}"
            )
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)):
            raise RunConfigError(f"--limit {self.limit!r}: expected a whole number of cases ≥ 1")
        if self.limit is not None and self.limit < 1:
            raise RunConfigError(
                f"--limit {self.limit}: must be ≥ 1 (the number of cases to run from the start of the "
                "dataset); leave it out to run every case"
            )
        check_run_id(self.run_id)
        check_seeds(self.seeds)
        check_device(self.device)
        if self.run_dir is not None:
            check_writable_dir(self.run_dir, "--run-dir")
        else:
            check_writable_dir(self.out, "--out")
            if self.out.exists() and self.run_id and (self.out / self.run_id).exists():
                if not (self.out / self.run_id).is_dir():
                    raise RunConfigError(
                        f"--run-id {self.run_id}: {self.out / self.run_id} is a file, not a folder"
                    )

    def directory(self, default_id: str) -> Path:
        """The run directory: ``run_dir``, else ``out/(run_id or default_id)``."""
        if self.run_dir is not None:
            return self.run_dir
        return self.out / (self.run_id or default_id)


def cli_arg(flag: str, help: str, **argparse: Any) -> dict[str, Any]:
    """A dataclass field's metadata for the command line: its ``flag``, its ``help`` text (the one
    place it is written) and further ``argparse`` keywords (``choices``, ``metavar``, ``action``,
    ``dest``)."""
    return {"flag": flag, "help": help, "argparse": argparse}


SET_HELP = (
    "override a configuration parameter, e.g. --set flux-cn-beta.steps=20 (repeatable; without "
    "CONFIG. it applies to every selected configuration that has FIELD)"
)


@dataclass
class SweepConfig:
    """The arguments every sweep command shares (``evalsuite profile``, ``frontier``, ``plan``), typed,
    beside :class:`RunConfig`, and their one validation.

    Each field's metadata (:func:`cli_arg`) carries its flag and help text:
    :func:`evalsuite.cli.common.add_sweep_args` builds the arguments from the fields, so the help lives
    here once (``{dataset_help}`` and ``{default_id}`` are filled in per command). Resolved (weights,
    dataset, device) by :meth:`evalsuite.scenarios.sweep.Sweep.from_config`.

    Attributes:
        weights: ``tiny``, ``random`` or ``hub``.
        dataset: dataset name or folder/manifest path the cases come from.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        out: root of run directories.
        run_id: run directory name under ``out`` (default: the sweep's kind, weights and time).
        overrides: ``[CONFIG.]FIELD=VALUE`` strings.
        config_dirs: extra configuration folders.
        force: build full-size (``random``/``hub``) weights on the CPU anyway
            (:func:`evalsuite.scenarios.fit.check_fits`).
        weights_dir: folder of pre-downloaded weights (Python API only).
    """

    weights: str = field(
        default="random",
        metadata=cli_arg(
            "--weights",
            "weights policy (default random: full-size architectures, no download)",
            choices=list(WEIGHT_POLICIES),
        ),
    )
    dataset: str = field(default="smoke", metadata=cli_arg("--dataset", "{dataset_help} (default smoke)"))
    device: Any = field(default="auto", metadata=cli_arg("--device", "cpu, cuda, cuda:N or auto"))
    out: Path = field(
        default=DEFAULT_OUT, metadata=cli_arg("--out", "root of run directories", metavar="DIR")
    )
    run_id: str | None = field(
        default=None,
        metadata=cli_arg(
            "--run-id",
            "run directory name under --out (a name: no path separators, not '..'; default {default_id})",
        ),
    )
    overrides: list[str] = field(
        default_factory=list,
        metadata=cli_arg(
            "--set", SET_HELP, dest="overrides", action="append", metavar="[CONFIG.]FIELD=VALUE"
        ),
    )
    config_dirs: list[Path] = field(
        default_factory=list,
        metadata=cli_arg(
            "--config-dir",
            "extra folder of configuration YAML files (repeatable)",
            dest="config_dir",
            action="append",
            metavar="DIR",
        ),
    )
    force: bool = field(
        default=False,
        metadata=cli_arg(
            "--force",
            "build full-size random/hub weights on the CPU anyway (refused by default with the estimated "
            "size: they take the machine's memory and minutes per call)",
            action="store_true",
        ),
    )
    weights_dir: Path | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.overrides = [str(o) for o in self.overrides or []]
        self.config_dirs = [Path(d) for d in self.config_dirs or []]
        self.weights_dir = Path(self.weights_dir) if self.weights_dir else None

    @staticmethod
    def dest(f: dataclasses.Field[Any]) -> str:
        """The ``argparse`` destination of a field's option."""
        return str(f.metadata["argparse"].get("dest", f.name))

    @classmethod
    def cli_fields(cls) -> list[dataclasses.Field[Any]]:
        """The fields that are command-line options, in the order of the help."""
        return [f for f in dataclasses.fields(cls) if "flag" in f.metadata]

    @classmethod
    def from_args(cls, args: Any) -> SweepConfig:
        """A SweepConfig from a sweep command's parsed arguments (an ``argparse.Namespace``)."""
        return cls(**{f.name: getattr(args, cls.dest(f)) for f in cls.cli_fields()})

    def entry_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of a sweep's Python entry point (``profile``, ``frontier``, ``plan``)."""
        return {f.name: getattr(self, f.name) for f in self.cli_fields()}

    def validate(self) -> None:
        """Check every field that can be checked without loading anything; nothing is written.

        Raises:
            RunConfigError: naming the option and the fix.
        """
        if self.weights not in WEIGHT_POLICIES:
            raise RunConfigError(f"--weights {self.weights!r}: choose one of {', '.join(WEIGHT_POLICIES)}")
        check_run_id(self.run_id)
        check_writable_dir(self.out, "--out")
        check_device(self.device)


__all__ = [
    "RunConfig",
    "RunConfigError",
    "SweepConfig",
    "accepted_devices",
    "check_device",
    "check_run_id",
    "check_seeds",
    "check_writable_dir",
]
