"""``evalsuite claims RUN_DIR [--claims FILE]``: check release claims against a stored run.

Argument parsing only (``evalsuite --help`` stays light); the work is :mod:`evalsuite.claims.check`.
Exit codes: 0 nothing contradicted (``--strict``: every claim supported), 1 a claim contradicted
(``--strict``: a claim not supported), 2 bad input (no run directory, a bad claims file).
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_claims(args: argparse.Namespace) -> int:
    """Print each claim's verdict and return the exit code."""
    from evalsuite.claims.check import claims_exit_code, evaluate_claims, load_claims
    from evalsuite.report.tables import load_view

    claims = load_claims(args.claims)
    view = load_view(args.run_dir)  # the one place claims read a run: its rows and run.json
    results = evaluate_claims(claims, view.samples, view.meta)
    print(f"claims: {claims.source} on run {view.name}")
    for r in results:
        print(f"  {r.verdict.upper():<15} {r.claim.id}: {r.claim.text}")
        print(f"  {'':<15} {r.claim.statement()}: {r.reason}")
    counts = {v: sum(r.verdict == v for r in results) for v in dict.fromkeys(r.verdict for r in results)}
    print(", ".join(f"{n} {v}" for v, n in counts.items()) or "no claims")
    return claims_exit_code(results, args.strict)


def add_parser(sub: Any) -> None:
    """Register ``claims`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser(
        "claims",
        help="check release claims (YAML) against a run: supported / contradicted / inconclusive / "
        "not measurable",
        description="Evaluate a claims file against a stored run with paired statistics. Exit code 0: "
        "no claim contradicted (--strict: every claim supported); 1: a claim contradicted (--strict: "
        "one not supported); 2: unusable input. The format: docs/reports.md#claims.",
    )
    p.add_argument("run_dir", help="run directory (holds run.json)")
    p.add_argument(
        "--claims",
        metavar="FILE",
        default=None,
        help="claims YAML file, or the name of a shipped one (default: alimama-flux, the seed's claims)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 unless every claim is supported")
    p.set_defaults(func=cmd_claims)
