"""``evalsuite datasets`` subcommands: list, validate, build, build-masks.

Hooked into :func:`evalsuite.cli.main.build_parser` with one call to :func:`add_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INVALID = 0, 1


def list_datasets() -> list[dict[str, Any]]:
    """One row per shipped set and registered loader: name, kind, cases, fingerprint, source.

    A loader that needs a location it was not given is listed with ``cases = None`` and a note.
    """
    from evalsuite.data.loaders import LoaderNotConfigured
    from evalsuite.data.registry import load_dataset, shipped
    from evalsuite.registry import DATASETS

    rows: list[dict[str, Any]] = []
    ship = shipped()
    for name in sorted(set(DATASETS.names()) | set(ship)):
        kind = "loader" if name in DATASETS else "shipped"
        try:
            ds = load_dataset(name)
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "cases": len(ds),
                    "fingerprint": ds.fingerprint,
                    "source": ds.source,
                }
            )
        except LoaderNotConfigured as exc:
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "cases": None,
                    "fingerprint": None,
                    "source": f"not configured: {exc}",
                }
            )
        except Exception as exc:
            rows.append(
                {"name": name, "kind": kind, "cases": None, "fingerprint": None, "source": f"ERROR: {exc}"}
            )
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    """Print every dataset with its case count and fingerprint."""
    rows = list_datasets()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['name']:<14} {r['kind']:<8} {str(r['cases'] if r['cases'] is not None else '-'):>6} cases  "
                f"{r['fingerprint'] or '-':<64}  {r['source']}"
            )
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate one dataset; exit 1 when it has errors."""
    from evalsuite.data.registry import load_dataset
    from evalsuite.data.validate import validate_dataset

    ds = load_dataset(args.name)
    rep = validate_dataset(
        ds,
        resolution=args.resolution,
        allow_mask_resize=args.allow_mask_resize,
        allow_empty_masks=args.allow_empty_masks,
    )
    print(json.dumps(rep.to_dict(), indent=2) if args.json else rep.to_text())
    return EXIT_OK if rep.ok else EXIT_INVALID


def cmd_build(args: argparse.Namespace) -> int:
    """Rebuild the shipped sets from the bundled photos."""
    from evalsuite.data.build import build_all
    from evalsuite.data.registry import SOURCE_DATASETS

    out = Path(args.out) if args.out else SOURCE_DATASETS
    for name, folder in build_all(out).items():
        print(f"{name}: {folder}")
    return EXIT_OK


def cmd_build_masks(args: argparse.Namespace) -> int:
    """Regenerate the shipped sets' masks (bit-identical)."""
    from evalsuite.data.build import build_masks
    from evalsuite.data.registry import SOURCE_DATASETS

    out = Path(args.out) if args.out else SOURCE_DATASETS
    paths = build_masks(out)
    print(f"{len(paths)} masks written under {out}", file=sys.stdout)
    return EXIT_OK


def _resolution(text: str) -> tuple[int, int]:
    """``--resolution``: ``64`` or ``1024x768`` (width x height), each side a positive multiple of 16."""
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h if sep else w))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected PX or WxH, e.g. 64 or 1024x768, got {text!r}") from exc
    if any(v < 16 or v % 16 for v in size):
        raise argparse.ArgumentTypeError(f"each side must be a positive multiple of 16, got {text!r}")
    return size


def add_parser(sub: Any) -> None:
    """Add the ``datasets`` command (and its subcommands) to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "datasets", help="list, validate and build datasets (default: list with counts and fingerprints)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)
    dsub = p.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND")
    q = dsub.add_parser("list", help="list shipped sets and registered loaders with counts and fingerprints")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)
    q = dsub.add_parser(
        "validate", help="open every file of a dataset and report problems (exit 1 on errors)"
    )
    q.add_argument("name", help="dataset name, LOADER:PATH, folder, manifest or CSV")
    q.add_argument(
        "--resolution",
        type=_resolution,
        default=None,
        metavar="PX|WxH",
        help="the output size runners use (tiny weights: 64; flux-dev: 1024): warn about images that "
        "will be upscaled and masks that are empty/full at that size (masks are always checked at their "
        "source size)",
    )
    q.add_argument(
        "--allow-mask-resize",
        action="store_true",
        help="a mask of another size than its image is resized (nearest) instead of an error",
    )
    q.add_argument("--allow-empty-masks", action="store_true", help="do not report empty/full masks")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_validate)
    q = dsub.add_parser("build", help="rebuild smoke, inpaint-core and t2i-core from the bundled photos")
    q.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output root (default: the package's shipped sets, evalsuite/data/sets/)",
    )
    q.set_defaults(func=cmd_build)
    q = dsub.add_parser("build-masks", help="regenerate the shipped masks bit-identically")
    q.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output root (default: the package's shipped sets, evalsuite/data/sets/)",
    )
    q.set_defaults(func=cmd_build_masks)
