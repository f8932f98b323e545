"""``evalsuite score RUN_DIR``: re-score a run directory from its stored images (no regeneration).

The scenario is :mod:`evalsuite.scenarios.score` (run through the run lifecycle: lock, ``run.json``,
signals, internal errors recorded). Per-sample values are merged into ``samples.parquet``; aggregates
replace the same metrics in ``run.json``'s summary (other metrics are kept); ``report.md`` is rewritten.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from evalsuite.cli import EXIT_FAILED_ROWS
from evalsuite.cli.common import NameList
from evalsuite.vocab import FID_MODES, METRIC_WEIGHT_MODES

METRIC_HELP = (
    "metrics (default: every one that applies: latency, fid (+KID), clip_score, lpips_pair; for inpainting "
    "configurations also unmasked_mse, unmasked_psnr, unmasked_ssim, unmasked_lpips, clip_score_masked); "
    "benchmark-compatible variants on request: clip_score_mlperf, unmasked_mse_brushbench, "
    "unmasked_psnr_brushbench; opt-in: aesthetic, pickscore, hpsv21, imagereward (and *_masked), "
    "text rendering ocr_sentence_accuracy, ocr_ned, distributions cmmd, fd_dinov2, prdc, prdc_dinov2 "
    "(see docs/metrics.md)"
)


def add_metric_weight_args(p: argparse.ArgumentParser) -> None:
    """``--metric-weights`` and ``--metric-weights-dir`` (shared by ``run`` and ``score``)."""
    p.add_argument(
        "--metric-weights",
        choices=METRIC_WEIGHT_MODES,
        default=None,
        help="feature networks of FID/CLIP/LPIPS: real (published weights), random (small random nets, "
        "offline, no quality evidence), random_full (real architectures, random weights: speed only). "
        "Default: random for --weights tiny, random_full for random, real for hub",
    )
    p.add_argument(
        "--metric-weights-dir",
        default=None,
        metavar="DIR",
        help="folder with weights-inception-2015-12-05-6726825d.pth, alexnet-owt-7be5be79.pth and "
        "open_clip-ViT-L-14-openai.safetensors for air-gapped machines (also "
        "EVALSUITE_METRIC_WEIGHTS_DIR); see docs/metrics.md",
    )


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {v}")
    return v


def add_parser(sub: Any) -> None:
    """Register the ``score`` subcommand on ``sub`` (argparse subparsers)."""
    p = sub.add_parser("score", help="(re-)score a run directory from its images, without regenerating")
    p.add_argument("run_dir", help="run directory (holds run.json)")
    p.add_argument("--metrics", nargs="+", action=NameList, default=None, metavar="NAME", help=METRIC_HELP)
    add_metric_weight_args(p)
    p.add_argument(
        "--pair",
        dest="pairs",
        action="append",
        default=None,
        metavar="A:B",
        help="configurations compared by lpips_pair at the same case and seed (repeatable; default: "
        "X-turboN:X for every such pair in the run)",
    )
    p.add_argument(
        "--metric-option",
        dest="metric_options",
        action="append",
        default=[],
        metavar="METRIC.KEY=VALUE",
        help=f"metric option, e.g. fid.mode=legacy_pytorch ({'|'.join(FID_MODES)}), "
        "clip_score.model=ViT-B-32, unmasked_psnr.erode_px=4, fid.reference=DIR (repeatable; VALUE is "
        "parsed as JSON when it can be; an unknown option is an error naming the valid ones)",
    )
    p.add_argument(
        "--dataset",
        default=None,
        metavar="PATH",
        help="the run's dataset, if it moved (its fingerprint must match run.json)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="images per metric update (default 8)")
    p.set_defaults(func=cmd_score)


def parse_metric_options(specs: list[str]) -> dict[str, dict[str, Any]]:
    """``["clip_score.model=ViT-B-32"]`` → ``{"clip_score": {"model": "ViT-B-32"}}``.

    Raises:
        MetricOptionError: (a ValueError) for a spec not of the form ``METRIC.KEY=VALUE``.
    """
    out: dict[str, dict[str, Any]] = {}
    for s in specs:
        lhs, eq, val = s.partition("=")
        metric, dot, key = lhs.partition(".")
        if not (eq and dot and metric and key):
            from evalsuite.metrics.base import MetricOptionError

            raise MetricOptionError(
                f"--metric-option {s!r} must be METRIC.KEY=VALUE, e.g. unmasked_psnr.erode_px=4"
            )
        try:
            v: Any = json.loads(val)
        except json.JSONDecodeError:
            v = val
        out.setdefault(metric, {})[key] = v
    return out


def cmd_score(args: argparse.Namespace) -> int:
    from evalsuite.engine.lifecycle import InternalRunError, RunInterrupted
    from evalsuite.metrics.scoring import parse_pairs
    from evalsuite.scenarios.score import rescore

    try:
        summary = rescore(
            args.run_dir,
            args.metrics,
            device=args.device,
            metric_weights=args.metric_weights,
            metric_weights_dir=args.metric_weights_dir,
            pairs=parse_pairs(args.pairs) if args.pairs else None,
            metric_options=parse_metric_options(args.metric_options),
            dataset=args.dataset,
            batch_size=args.batch_size,
        )
    except RunInterrupted as exc:
        print(f"evalsuite: interrupted before scoring; {args.run_dir} is unchanged", file=sys.stderr)
        return exc.exit_code
    except InternalRunError as exc:
        print(f"evalsuite: error: {exc}", file=sys.stderr)
        return EXIT_FAILED_ROWS
    for config, entry in summary.items():
        for name, r in entry["metrics"].items():
            v = r.get("value")
            val = "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"
            flag = (
                "" if r.get("quality_evidence", True) else "  (random feature network: no quality evidence)"
            )
            vs = f" vs {r['vs']}" if r.get("vs") else ""
            if r.get("reference_set"):
                vs += f" reference: {r['reference_set']} (N={r.get('n_ref')}, id {r.get('reference_id')})"
            print(f"{config:<28} {name:<20} {val:>12} {r.get('unit', '')}  N={r.get('n')}{vs}{flag}")
    print(f"report: {args.run_dir}/report.md")
    from evalsuite.metrics.scoring import scoring_failures

    failures = scoring_failures(summary)
    for line in failures:
        print(f"evalsuite: error: {line}", file=sys.stderr)
    return 1 if failures else 0
