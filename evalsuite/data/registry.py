"""Finding datasets by name: shipped sets, registered loaders (plugins) and paths.

A name resolves, in order, to: a registered loader in :data:`evalsuite.registry.DATASETS`
(a callable returning a :class:`~evalsuite.data.cases.Dataset`), optionally with a location and options
as ``LOADER:PATH?key=value&key=value`` (e.g. ``brushbench:/data/BrushBench``,
``coco2014:/data/captions_val2014.json?ids=/data/ids.tsv&images=/data/val2014``), a shipped set
``<root>/<name>/`` in one of :func:`dataset_roots`, a ``.csv`` file (generic CSV loader), or a path
to a folder/manifest.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from evalsuite.data import loaders as _loaders  # noqa: F401  (registers the built-in loaders)
from evalsuite.data.cases import MANIFEST, Dataset, ManifestError, load_manifest
from evalsuite.paths import search_folders
from evalsuite.registry import DATASETS

SOURCE_DATASETS = Path(__file__).resolve().parent / "sets"


def dataset_roots() -> list[Path]:
    """Folders holding shipped/user datasets: ``$EVALSUITE_DATASETS`` (``os.pathsep``-separated),
    then the sets shipped inside the package (``evalsuite/data/sets/``). Nothing is picked up from
    the current directory: pass a path or set ``EVALSUITE_DATASETS``."""
    roots = [*search_folders("EVALSUITE_DATASETS", "datasets"), SOURCE_DATASETS]
    seen, out = set(), []
    for r in roots:
        rr = r.resolve()
        if rr.is_dir() and rr not in seen:
            seen.add(rr)
            out.append(rr)
    return out


def shipped() -> dict[str, Path]:
    """Shipped dataset folders by name."""
    found: dict[str, Path] = {}
    for root in dataset_roots():
        for d in sorted(root.iterdir()):
            if (d / MANIFEST).is_file() and d.name not in found:
                found[d.name] = d
    return found


def available() -> list[str]:
    """Names of every dataset: registered loaders and shipped folders."""
    return sorted(set(DATASETS.names()) | set(shipped()))


def _check_loader_options(loader: str, fn: Any, options: dict[str, Any], spec: str) -> None:
    """Refuse options the loader does not take, listing those it does (its keyword parameters after
    the location).

    Raises:
        ManifestError: an unknown option.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    named = [p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in named]
    if unknown:
        raise ManifestError(
            f"dataset {spec!r}: the {loader} loader has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(named) or 'none'} (as {loader}:PATH?key=value&key=value)"
        )


def load_dataset(
    name_or_path: str | os.PathLike[str], allow_outside: bool = False, **options: Any
) -> Dataset:
    """Load a dataset by name or path.

    Raises:
        RegistryError: unknown name (with "did you mean" suggestions).
        ManifestError, DatasetNotFoundError: for an invalid manifest or dataset option, a missing file.
    """
    name = str(name_or_path)
    if name in DATASETS:
        return DATASETS.get(name)(**options)
    loader, sep, rest = name.partition(":")
    if sep and loader.lower() in ("http", "https", "ftp", "s3", "gs", "hf"):
        raise ManifestError(
            f"dataset {name!r}: URLs are not supported; download the dataset and pass its folder or manifest"
        )
    if sep and len(loader) > 1 and loader in DATASETS:
        loc, _, query = rest.partition("?")
        for part in filter(None, query.split("&")):
            key, eq, value = part.partition("=")
            if not eq:
                raise ManifestError(f"dataset option {part!r} in {name!r} must be key=value")
            if key == "limit":
                try:
                    options[key] = int(value)
                except ValueError as exc:
                    raise ManifestError(
                        f"dataset option limit={value!r} in {name!r}: expected a whole number"
                    ) from exc
            else:
                options[key] = value
        fn = DATASETS.get(loader)
        _check_loader_options(loader, fn, options, name)
        return fn(loc or None, **options)
    ship = shipped()
    if name in ship:
        return load_manifest(ship[name], name=name, allow_outside=allow_outside)
    p = Path(name)
    if p.is_file() and p.suffix.lower() == ".csv":
        return DATASETS.get("csv")(p)
    if p.exists():
        return load_manifest(p, allow_outside=allow_outside)
    from evalsuite.registry import RegistryError

    raise RegistryError(
        DATASETS.unknown_message(name, extra=list(ship)) + " (or pass a path to a folder with manifest.jsonl)"
    )
