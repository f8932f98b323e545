"""Cost of the full metric pass, against the cost of generating the images.

GPU part (CUDA): the inpainting metric set (FID+KID features incl. the reference set, CLIP score
whole and masked, unmasked MSE/PSNR/SSIM/LPIPS raw + hard + feathered paste-back, paired LPIPS
whole + masked) over N synthetic 1024² images, with ``random_full`` feature networks (the real
architectures — Inception-v3, open_clip ViT-L-14, LPIPS-AlexNet — with random weights: same
cost as the real ones, no download). Reported: images/s of the metric computation on tensors,
and of the end-to-end ``score_run`` path (PNG decode, source/mask loading, resize) on a subset
written to disk; both as a fraction of the generation time of ``flux-cn-beta`` (default
0.21 s/step × 28 steps per image on the H100). Goal: ≤ 5 %.

CPU part: the same metric set with the ``random`` (small) networks over the smoke set at the
tiny size — the cost the demo and CI pay.

Usage (repository root; results as JSON + Markdown under OUT_DIR, default ``$OUT`` or ./bench-out)::

    python benchmarks/gpu_metrics.py [OUT_DIR] [--n 1000] [--batch-size 16] [--e2e 96]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import evalsuite  # noqa: E402,F401  (registers metrics)
from evalsuite.metrics.base import MetricBatch, ScoringContext  # noqa: E402
from evalsuite.registry import METRICS, RUNNERS  # noqa: E402

INPAINT_SET = [
    "fid",
    "clip_score",
    "clip_score_masked",
    "unmasked_mse",
    "unmasked_psnr",
    "unmasked_ssim",
    "unmasked_lpips",
]
PAIRED = "lpips_pair"


def synth(
    n: int, size: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smooth random "sources", masks (random rectangles), outputs (source + noise in the mask, a little
    outside) and paired outputs (a different noise draw)."""
    g = torch.Generator(device=device).manual_seed(seed)
    low = torch.rand(n, 3, size // 32, size // 32, generator=g, device=device)
    src = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    src = (src + 0.05 * torch.rand(n, 3, size, size, generator=g, device=device)).clamp(0, 1)
    mask = torch.zeros(n, 1, size, size, device=device)
    for i in range(n):
        y0, x0 = (torch.randint(0, size // 2, (2,), generator=g, device=device)).tolist()
        h, w = (torch.randint(size // 8, size // 2, (2,), generator=g, device=device)).tolist()
        mask[i, :, y0 : y0 + h, x0 : x0 + w] = 1

    def out() -> torch.Tensor:
        noise = torch.rand(n, 3, size, size, generator=g, device=device) - 0.5
        amp = mask * 0.8 + (1 - mask) * 0.02
        return ((src + amp * noise) * 255).round().clamp(0, 255) / 255  # 8-bit like a stored PNG

    return src, mask, out(), out()


def _make(name: str, device: torch.device, mode: str) -> Any:
    """The metric ``name`` with ``metric_weights=mode`` where it takes that option (pixel metrics do not)."""
    from evalsuite.metrics.scoring import metric_kwargs

    cls = METRICS.get(name)
    return cls(device=device, **metric_kwargs(cls, {"metric_weights": mode}, {}))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def metric_pass(
    n: int, size: int, batch: int, device: torch.device, mode: str, prompts: Sequence[str]
) -> dict[str, Any]:
    """Run every inpainting metric (+ paired LPIPS) over n synthetic images; seconds per metric."""
    t0 = time.perf_counter()
    ms = {name: _make(name, device, mode) for name in [*INPAINT_SET, PAIRED]}
    # build the networks once, outside the timed loop (a run pays this once)
    warm = synth(2, size, 99, device)
    wb = MetricBatch(
        rows=[{}] * 2,
        images=warm[2],
        prompts=list(prompts[:2]),
        sources=warm[0],
        masks=warm[1],
        pairs=warm[3],
    )
    for m in ms.values():
        m.update(wb)
        m.reset()
    _sync(device)
    setup_s = time.perf_counter() - t0
    fid = ms["fid"]
    times = dict.fromkeys(ms, 0.0)
    ref_s, synth_s = 0.0, 0.0
    ref_feats = []
    t_all = time.perf_counter()
    for i in range(0, n, batch):
        k = min(batch, n - i)
        t = time.perf_counter()
        src, mask, img, pair = synth(k, size, i, device)
        _sync(device)
        synth_s += time.perf_counter() - t
        t = time.perf_counter()
        ref_feats.append(fid.features(src))  # reference statistics of the sources (uncached run)
        _sync(device)
        ref_s += time.perf_counter() - t
        b = MetricBatch(
            rows=[{}] * k,
            images=img,
            prompts=[prompts[(i + j) % len(prompts)] for j in range(k)],
            sources=src,
            masks=mask,
            pairs=pair,
        )
        for name, m in ms.items():
            t = time.perf_counter()
            m.update(b)
            _sync(device)
            times[name] += time.perf_counter() - t
    fid.set_reference_features(np.concatenate(ref_feats), {"reference": "synthetic sources"})
    t = time.perf_counter()
    results = {name: m.compute().as_dict() for name, m in ms.items()}
    compute_s = time.perf_counter() - t
    total = time.perf_counter() - t_all - synth_s
    return {
        "n": n,
        "size": size,
        "batch": batch,
        "mode": mode,
        "setup_s": setup_s,
        "synthesis_s_excluded": synth_s,
        "reference_features_s": ref_s,
        "per_metric_s": times,
        "compute_s": compute_s,
        "total_s": total,
        "images_per_s": n / total,
        "values": {k: v.get("value") for k, v in results.items()},
    }


def e2e_score(n: int, size: int, device: torch.device, mode: str, batch: int) -> dict[str, Any]:
    """``score_run`` over a run directory of n PNG outputs (+ paired config) and a dataset of n sources/masks."""
    from evalsuite.data.cases import load_manifest
    from evalsuite.engine.store import RunStore
    from evalsuite.metrics.scoring import score_run
    from evalsuite.runners.base import Runner

    class _BenchInpaint(Runner):  # only its task is read by scoring
        task = "inpaint"

        def load(self) -> None: ...

        def generate(self, cases: Any, seeds: Any) -> list[Any]:
            return []

    if "bench-inpaint" not in RUNNERS:
        RUNNERS.add("bench-inpaint", _BenchInpaint, origin="benchmarks/gpu_metrics.py")
    tmp = Path(tempfile.mkdtemp(prefix="evalsuite-bench-"))
    ds = tmp / "ds"
    (ds / "img").mkdir(parents=True)
    (ds / "mask").mkdir()
    run = RunStore(tmp / "run")
    lines = []
    cpu = torch.device("cpu")
    t = time.perf_counter()
    for i in range(0, n, 16):
        k = min(16, n - i)
        src, mask, img, pair = (x.to(cpu) for x in synth(k, size, 10_000 + i, cpu))
        for j in range(k):
            cid = f"c{i + j}"
            to8 = lambda x: (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
            Image.fromarray(to8(src[j])).save(ds / "img" / f"{cid}.png", compress_level=1)
            Image.fromarray((mask[j, 0].numpy() * 255).astype(np.uint8)).save(ds / "mask" / f"{cid}.png")
            lines.append(
                json.dumps(
                    {
                        "id": cid,
                        "prompt": "a product photo of a ceramic mug on a table",
                        "image": f"img/{cid}.png",
                        "mask": f"mask/{cid}.png",
                        "seed": 0,
                    }
                )
            )
            for config, im in (("bench", img[j]), ("bench-turbo8", pair[j])):
                rel = run.image_relpath(config, cid, 0)
                (run.path / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(to8(im)).save(run.path / rel, compress_level=1)
                run.append_row(
                    {
                        "config": config,
                        "case_id": cid,
                        "seed": 0,
                        "status": "ok",
                        "image": rel,
                        "prompt": "a product photo of a ceramic mug on a table",
                        "latency_s": 1.0,
                    }
                )
    (ds / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    dataset = load_manifest(ds)
    run.write_meta(
        {
            "dataset": {
                "name": "bench",
                "source": str(ds / "manifest.jsonl"),
                "fingerprint": dataset.fingerprint,
            },
            "weights": {"bench": "random", "bench-turbo8": "random"},
            "configs": {"bench": {"runner": "bench-inpaint"}, "bench-turbo8": {"runner": "bench-inpaint"}},
        }
    )
    write_s = time.perf_counter() - t
    names = ["latency", *INPAINT_SET, PAIRED]
    os.environ.setdefault("EVALSUITE_CACHE_DIR", str(tmp / "cache"))
    t = time.perf_counter()
    score_run(
        run, names, device=device, metric_weights=mode, batch_size=batch
    )  # networks + reference built here
    _sync(device)
    first = time.perf_counter() - t
    t = time.perf_counter()
    score_run(run, names, device=device, metric_weights=mode, batch_size=batch)  # warm: cached reference
    _sync(device)
    warm = time.perf_counter() - t
    images = 2 * n  # two configurations scored (+ the pair)
    return {
        "n_cases": n,
        "images_scored": images,
        "size": size,
        "write_s_excluded": write_s,
        "first_s": first,
        "warm_s": warm,
        "images_per_s_warm": images / warm,
        "images_per_s_first": images / first,
        "dir": str(tmp),
    }


def cpu_smoke(device: torch.device) -> dict[str, Any]:
    """The metric set with the small random networks over the smoke set's inpainting cases at 64²."""
    from evalsuite.data.imageio import load_image, load_mask, resize_image, resize_mask
    from evalsuite.data.registry import load_dataset

    ds = load_dataset("smoke")
    cases = [c for c in ds.cases if c.is_inpainting]
    size = 64
    src = torch.stack(
        [
            torch.from_numpy(
                np.asarray(resize_image(load_image(c.image), (size, size)), np.float32) / 255
            ).permute(2, 0, 1)
            for c in cases
        ]
    )
    mask = torch.stack(
        [
            torch.from_numpy(resize_mask(load_mask(c.mask), (size, size)).astype(np.float32))[None]
            for c in cases
        ]
    )
    g = torch.Generator().manual_seed(0)
    img = (src + mask * (torch.rand(src.shape, generator=g) - 0.5)).clamp(0, 1)
    pair = (src + mask * (torch.rand(src.shape, generator=g) - 0.5)).clamp(0, 1)
    t0 = time.perf_counter()
    ms = {name: _make(name, device, "random") for name in [*INPAINT_SET, PAIRED]}
    ms["fid"].prepare(ScoringContext(config="smoke", task="inpaint", dataset=ds))
    b = MetricBatch(
        rows=[{}] * len(cases),
        images=img,
        prompts=[c.prompt for c in cases],
        sources=src,
        masks=mask,
        pairs=pair,
    )
    for m in ms.values():
        m.update(b)
    first = time.perf_counter() - t0
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        for m in ms.values():
            m.reset()
            m.update(b)
            m.compute()
    steady = (time.perf_counter() - t) / reps
    return {
        "n": len(cases),
        "size": size,
        "first_s_incl_network_build": first,
        "steady_s": steady,
        "images_per_s": len(cases) / steady,
        "threads": torch.get_num_threads(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "out", nargs="?", default=os.environ.get("OUT", "bench-out"), help="results folder (default $OUT)"
    )
    ap.add_argument("--n", type=int, default=1000, help="synthetic images for the GPU pass (default 1000)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--e2e", type=int, default=96, help="cases for the end-to-end score_run part (0 = skip)")
    ap.add_argument(
        "--step-s", type=float, default=0.21, help="generation seconds per step (flux-cn-beta, H100)"
    )
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--skip-cpu", action="store_true", help="skip the CPU smoke-set figure")
    ap.add_argument(
        "--device", default=None, help="device of the first part (default cuda; e.g. cpu to try the script)"
    )
    ap.add_argument(
        "--mode", default="random_full", help="metric_weights of the first part (default random_full)"
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen_s = args.step_s * args.steps
    res: dict[str, Any] = {
        "generation_s_per_image": gen_s,
        "goal_fraction": 0.05,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    rows = []
    if args.device or torch.cuda.is_available():
        dev = torch.device(args.device or "cuda")
        res["device"] = (
            torch.cuda.get_device_name(dev)
            if dev.type == "cuda"
            else f"cpu ({torch.get_num_threads()} threads)"
        )
        g = metric_pass(
            args.n,
            args.size,
            args.batch_size,
            dev,
            args.mode,
            ["a ceramic mug on a wooden table, product photo", "a red scarf " * 30],
        )
        res["gpu_metric_pass"] = g
        frac = (1 / g["images_per_s"]) / gen_s
        rows.append(
            (
                "GPU metric pass (tensors, incl. reference features)",
                f"{args.n} × {args.size}²",
                f"{g['images_per_s']:.1f}",
                f"{g['total_s']:.1f}",
                f"{100 * frac:.2f} %",
            )
        )
        for name, s in g["per_metric_s"].items():
            rows.append(
                (
                    f"  {name}",
                    "",
                    f"{args.n / s:.1f}" if s else "—",
                    f"{s:.1f}",
                    f"{100 * s / args.n / gen_s:.2f} %",
                )
            )
        rows.append(
            (
                "  FID reference features (sources)",
                "",
                "",
                f"{g['reference_features_s']:.1f}",
                f"{100 * g['reference_features_s'] / args.n / gen_s:.2f} %",
            )
        )
        if args.e2e:
            e = e2e_score(args.e2e, args.size, dev, args.mode, args.batch_size)
            res["gpu_end_to_end"] = e
            rows.append(
                (
                    "GPU score_run end to end (PNG decode, warm cache)",
                    f"{e['images_scored']} × {args.size}²",
                    f"{e['images_per_s_warm']:.1f}",
                    f"{e['warm_s']:.1f}",
                    f"{100 / e['images_per_s_warm'] / gen_s:.2f} %",
                )
            )
            rows.append(
                (
                    "GPU score_run end to end (first: nets + reference)",
                    f"{e['images_scored']} × {args.size}²",
                    f"{e['images_per_s_first']:.1f}",
                    f"{e['first_s']:.1f}",
                    f"{100 / e['images_per_s_first'] / gen_s:.2f} %",
                )
            )
    else:
        res["device"] = "no CUDA device: GPU part skipped"
    if not args.skip_cpu:
        c = cpu_smoke(torch.device("cpu"))
        res["cpu_smoke"] = c
        rows.append(
            (
                f"CPU smoke set, small random nets ({c['threads']} threads)",
                f"{c['n']} × {c['size']}²",
                f"{c['images_per_s']:.1f}",
                f"{c['steady_s']:.2f} (first {c['first_s_incl_network_build']:.1f})",
                "—",
            )
        )
    res["cpu"] = platform.processor() or platform.machine()
    md = [
        f"Metric pass cost — device: {res['device']}; generation = {args.step_s} s/step × {args.steps} steps "
        f"= {gen_s:.2f} s/image; goal ≤ 5 %",
        "",
        "| what | images | images/s | seconds | % of generation time |",
        "|---|---|---|---|---|",
    ]
    md += [f"| {' | '.join(r)} |" for r in rows]
    text = "\n".join(md) + "\n"
    print(text)
    (out / "metrics-bench.md").write_text(text, encoding="utf-8")
    (out / "metrics-bench.json").write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
