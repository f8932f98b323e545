"""``evalsuite runners``: list configurations with their fully resolved parameters.

Light: it reads the configuration YAML and the runner classes' ``Params`` dataclasses; runner
modules import torch and diffusers only when a model is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from evalsuite.cli import EXIT_OK
from evalsuite.cli.common import add_config_args


def cmd_runners(args: argparse.Namespace) -> int:
    import yaml

    from evalsuite.config import configuration as cfg
    from evalsuite.registry import RUNNERS, RegistryError

    names = args.names or cfg.available(args.config_dir)
    ovs = [cfg.Override.parse(o) for o in args.overrides]
    out: dict[str, Any] = {}
    for name in names:
        try:
            c = cfg.resolve(name, ovs, args.config_dir)
        except (RegistryError, cfg.ConfigError) as exc:
            if args.names:  # asked for by name: a usage error
                raise
            # listing everything: one broken plugin or file must not hide the others
            print(f"evalsuite: warning: {name}: {exc}", file=sys.stderr)
            out[name] = {"error": str(exc)}
            continue
        out[name] = {
            "runner": c.runner,
            "task": RUNNERS.get(c.runner).task,
            "description": c.description,
            "source": c.source,
            "params": c.params_dict(),
        }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(yaml.safe_dump(out, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``runners`` on the ``evalsuite`` subcommand parser ``sub``."""
    p = sub.add_parser("runners", help="list configurations with their fully resolved parameters")
    p.add_argument("names", nargs="*", help="configurations to show (default: all)")
    add_config_args(p, set_help="show the parameters after this override")
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(func=cmd_runners)
