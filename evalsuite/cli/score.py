"""``evalsuite score RUN_DIR``: re-score a run directory from its stored images (no regeneration).

Per-sample values are merged into ``samples.parquet``; aggregates replace the same metrics in
``run.json``'s summary (other metrics are kept); ``report.md`` is rewritten.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

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
        choices=["real", "random", "random_full"],
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
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {v}")
    return v


def add_parser(sub: Any) -> None:
    """Register the ``score`` subcommand on ``sub`` (argparse subparsers)."""
    p = sub.add_parser("score", help="(re-)score a run directory from its images, without regenerating")
    p.add_argument("run_dir", help="run directory (holds run.json)")
    p.add_argument("--metrics", nargs="+", default=None, metavar="NAME", help=METRIC_HELP)
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
        help="metric option, e.g. fid.mode=legacy_pytorch (clean|legacy_pytorch|legacy_tensorflow), "
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
        ValueError: for a spec not of the form ``METRIC.KEY=VALUE``.
    """
    out: dict[str, dict[str, Any]] = {}
    for s in specs:
        lhs, eq, val = s.partition("=")
        metric, dot, key = lhs.partition(".")
        if not (eq and dot and metric and key):
            raise ValueError(f"--metric-option {s!r} must be METRIC.KEY=VALUE, e.g. unmasked_psnr.erode_px=4")
        try:
            v: Any = json.loads(val)
        except json.JSONDecodeError:
            v = val
        out.setdefault(metric, {})[key] = v
    return out


def rescore(run_dir: str, metrics: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """Score ``run_dir`` again and write the results back; returns the new summary.

    Keyword arguments go to :func:`evalsuite.scoring.score_run` (``device``, ``metric_weights``,
    ``metric_weights_dir``, ``pairs``, ``metric_options``, ``batch_size``) plus ``dataset`` (a path).

    Raises:
        FileNotFoundError: not a run directory. RunDirNotWritable: the run directory cannot be
        written (checked before scoring). ScoringError, MetricWeightsError: see ``score_run``.
    """
    from evalsuite.engine.lock import locked_run
    from evalsuite.report.report import check_writable
    from evalsuite.report.tables import read_run_meta
    from evalsuite.results.store import RunStore

    # unusable input is refused before the lock is taken, so that nothing is written
    kw["device"] = _score_device(kw.get("device", "auto"))
    if metrics:
        from evalsuite.registry import METRICS

        for n in metrics:
            METRICS.get(n)
    if (Path(run_dir) / "run.json").is_file():  # a damaged or read-only run
        read_run_meta(RunStore(run_dir))
        check_writable(
            run_dir, "score", "scores into rows.jsonl, run.json and samples.parquet, and the report,"
        )
    with locked_run(run_dir, "score"):  # refused, naming the holder, while a run writes the directory
        return _rescore(RunStore(run_dir), metrics, **kw)


def _rescore(store: Any, metrics: list[str] | None, **kw: Any) -> dict[str, Any]:

    from evalsuite.metrics.features import check_metric_weights
    from evalsuite.metrics.scoring import _default_mode, config_tasks, default_metrics, run_dataset, score_run
    from evalsuite.report.report import check_writable, write_report
    from evalsuite.report.tables import read_run_meta

    meta = read_run_meta(store)
    check_writable(
        store.path, "score", "scores into rows.jsonl, run.json and samples.parquet, and the report,"
    )
    names = metrics or default_metrics(list(config_tasks(meta).values()))
    from evalsuite.registry import METRICS

    for n in names:
        METRICS.get(n)
    mode = kw.pop("metric_weights", None) or _default_mode(meta)
    check_metric_weights(names, mode, kw.get("metric_weights_dir"), metric_options=kw.get("metric_options"))
    ds_path = kw.pop("dataset", None)
    dataset = run_dataset(meta, ds_path) if ds_path else None
    device = kw.pop("device")
    summary = score_run(store, names, device=device, dataset=dataset, metric_weights=mode, **kw)
    old = meta.get("summary", {})
    for config, entry in summary.items():
        prev = old.setdefault(config, {"counts": entry["counts"], "metrics": {}})
        prev["counts"] = entry["counts"]
        if entry.get("scoring_errors"):
            prev["scoring_errors"] = entry["scoring_errors"]
        else:
            prev.pop("scoring_errors", None)
        prev.setdefault("metrics", {}).update(entry["metrics"])
    meta["summary"] = old
    meta["metric_weights"] = mode
    meta["metrics"] = sorted(set(meta.get("metrics", [])) | set(names))
    store.write_meta(meta)
    store.write_samples()
    write_report(store.path)
    return summary


def _score_device(dev: Any) -> Any:
    """``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (an available GPU).

    Raises:
        ValueError: another value, or CUDA asked for where there is none.
    """
    import re

    import torch

    if isinstance(dev, torch.device):
        return dev
    if dev == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", dev):
        raise ValueError(f"--device {dev!r}: expected auto, cpu, cuda or cuda:N")
    if dev.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(dev.partition(":")[2] or 0)
        if index >= n:
            raise ValueError(
                f"--device {dev!r}: this machine has {n} CUDA device(s); use --device cpu or auto"
            )
    return torch.device(dev)


def cmd_score(args: argparse.Namespace) -> int:
    from evalsuite.metrics.scoring import parse_pairs

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
    for config, entry in summary.items():
        for name, r in entry["metrics"].items():
            v = r.get("value")
            val = "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"
            flag = (
                "" if r.get("quality_evidence", True) else "  (random feature network: no quality evidence)"
            )
            vs = f" vs {r['vs']}" if r.get("vs") else ""
            print(f"{config:<28} {name:<20} {val:>12} {r.get('unit', '')}  N={r.get('n')}{vs}{flag}")
    print(f"report: {args.run_dir}/report.md")
    from evalsuite.metrics.scoring import scoring_failures

    failures = scoring_failures(summary)
    for line in failures:
        print(f"evalsuite: error: {line}", file=sys.stderr)
    return 1 if failures else 0
