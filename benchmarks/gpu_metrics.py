"""Cost of the full metric pass, against the cost of generating the images.

Task ``cost`` (the issue-16 measurement; estimated 3–4 minutes of H200 time with N=16: ~6 s per
image to generate, plus model and metric-network builds — not yet measured). On a CUDA machine
with evalsuite's dependencies (diffusers, open_clip_torch, lpips, torch-fidelity, ftfy, timm, ...;
nothing more: FID's ``clean`` mode is evalsuite's own code, clean-fid is not needed)::

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 N=16 python3 benchmarks/gpu_metrics.py cost "$OUT"

CPU dry run of the same code path (tiny weights, < 2 minutes on a 2-core machine)::

    DEVICE=cpu WEIGHTS=tiny N=2 STEPS=4 HF_HUB_OFFLINE=1 python benchmarks/gpu_metrics.py cost /tmp/cost

It generates N inpainting images with ``flux-cn-beta`` (``evalsuite run``: the first N cases of
``inpaint-core``, 1024², 28 steps, ``random`` full-size weights), then times the full metric pass
over them with ``random_full`` feature networks (the real architectures, random weights: the
cost of the real ones, no quality evidence): FID (``clean`` mode) + KID, CLIP score whole and
masked, unmasked MSE/PSNR/SSIM/LPIPS, aesthetic, PickScore, HPS v2.1, ImageReward and their
masked variants, and paired LPIPS (cost only: its pairs are other outputs of the run). Two
measurements: each metric alone on batches already on the device (seconds/image, after a
warm-up batch), and ``score_run`` end to end (PNG decode, source/mask loading, every metric but
the paired one), warm. Fixed costs (network build, FID reference statistics of the dataset's
sources, the final compute of FID/KID) are reported apart. Written to OUT: ``metrics-cost.md``
(table) and ``metrics-cost.json``: generation s/image, each metric's s/image, totals, the
metric/generation ratio, and a linear extrapolation to 1,000 images (1,000 × the per-image
costs + the fixed costs once). Environment: ``DEVICE`` (default cuda when present), ``WEIGHTS``
(generation weights policy, default ``random``; ``tiny`` for a dry run), ``N`` (default 16),
``BATCH`` (metric batch size, default 16), ``STEPS`` (override the 28 steps; dry runs only),
``EXTRA_METRICS`` (more metric names priced in the same pass, e.g. ``cmmd fd_dinov2 prdc
prdc_dinov2``), ``OUT``.

Task ``synthetic`` (the default when the first argument is not a task name; the H100 figure of
``docs/benchmarks/metrics-h100.md``). GPU part (CUDA): the inpainting metric set (FID+KID features incl. the reference set, CLIP score
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

    python benchmarks/gpu_metrics.py [synthetic] [OUT_DIR] [--n 1000] [--batch-size 16] [--e2e 96]
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
    from evalsuite.metrics.scoring import score_run
    from evalsuite.results.store import RunStore
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


def synthetic_main(argv: Sequence[str] | None = None) -> int:
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


# ---------------------------------------------------------------------------------------------
# task "cost": generated images, the full metric pass (issue 16)
FULL_SET = [
    "fid",
    "clip_score",
    "clip_score_masked",
    "unmasked_mse",
    "unmasked_psnr",
    "unmasked_ssim",
    "unmasked_lpips",
    "aesthetic",
    "aesthetic_masked",
    "pickscore",
    "pickscore_masked",
    "hpsv21",
    "hpsv21_masked",
    "imagereward",
    "imagereward_masked",
]
COST_CONFIG = "flux-cn-beta"
COST_DATASET = "inpaint-core"


def _config_steps(name: str) -> int | None:
    from evalsuite.config import configuration as cfg

    return getattr(cfg.resolve(name).params, "steps", None)


def generate(run_dir: Path, n: int, policy: str, device: str, steps: int | None) -> dict[str, Any]:
    """``evalsuite run`` of :data:`COST_CONFIG` on the first ``n`` cases (no metrics); per-image
    generation seconds from the rows (``latency_s``; the first call, with its warm-up, apart)."""
    from evalsuite.cli.main import main as cli
    from evalsuite.results.store import RunStore

    argv = ["run", "--configs", COST_CONFIG, "--weights", policy, "--dataset", COST_DATASET]
    argv += ["--limit", str(n), "--device", device, "--run-dir", str(run_dir), "--no-progress", "--metrics"]
    if steps:
        argv[1:1] = ["--set", f"steps={steps}"]
    t = time.perf_counter()
    rc = cli(argv)
    wall = time.perf_counter() - t
    if rc != 0:
        raise SystemExit(f"gpu_metrics.py cost: generation failed (evalsuite run exit {rc})")
    rows = [r for r in RunStore(run_dir).rows() if r.get("status") == "ok"]
    if not rows:
        raise SystemExit("gpu_metrics.py cost: no image was generated")
    warm = [float(r["latency_s"]) for r in rows if not r.get("first_call")] or [
        float(r["latency_s"]) for r in rows
    ]
    first = [float(r["latency_s"]) for r in rows if r.get("first_call")]
    return {
        "config": COST_CONFIG,
        "dataset": COST_DATASET,
        "weights": policy,
        "images": len(rows),
        "steps": rows[0].get("steps") or steps or _config_steps(COST_CONFIG),
        "size": list(Image.open(run_dir / rows[0]["image"]).size),
        "s_per_image_median": float(np.median(warm)),
        "s_per_image_mean": float(np.mean(warm)),
        "first_call_s": first[0] if first else None,
        "run_wall_s": wall,
        "fixed_s": max(0.0, wall - sum(float(r["latency_s"]) for r in rows)),
    }


def metric_costs(
    run_dir: Path, names: Sequence[str], device: torch.device, mode: str, batch: int
) -> dict[str, Any]:
    """Each metric alone over the run's images, on batches already on ``device`` (PNG decode and
    source/mask loading timed apart): build, warm-up on the first batch, timed updates, compute."""
    from evalsuite.metrics.scoring import _Loader, metric_kwargs, run_dataset
    from evalsuite.results.store import RunStore

    store = RunStore(run_dir)
    rows = [r for r in store.rows() if r.get("status") == "ok"]
    dataset = run_dataset(store.read_meta())
    loader = _Loader(store, {c.id: c for c in dataset.cases}, device)
    needs = {"images", "prompts", "sources", "masks"}
    t = time.perf_counter()
    batches = []
    for i in range(0, len(rows), batch):
        b = loader.batch(rows[i : i + batch], needs)
        b.pairs = b.images.roll(1, 0) if b.images is not None else None  # lpips_pair: cost only
        batches.append(b)
    _sync(device)
    load_s = time.perf_counter() - t
    common = {"metric_weights": mode, "metric_weights_dir": None}
    build: dict[str, float] = {}
    per: dict[str, float] = {}
    compute: dict[str, float] = {}
    values: dict[str, Any] = {}
    ms: dict[str, Any] = {}
    for name in [*names, PAIRED]:
        cls = METRICS.get(name)
        t = time.perf_counter()
        m = cls(device=device, **metric_kwargs(cls, common, {}))
        m.update(batches[0])  # builds the networks (shared ones: charged to the first metric) + warm-up
        m.reset()
        _sync(device)
        build[name] = time.perf_counter() - t
        ms[name] = m
        print(f"cost: built {name} in {build[name]:.1f} s", file=sys.stderr, flush=True)
    t = time.perf_counter()
    ms["fid"].prepare(ScoringContext(config=COST_CONFIG, task="inpaint", dataset=dataset, run_dir=run_dir))
    _sync(device)
    ref_s = time.perf_counter() - t
    ref_n = len(ms["fid"]._ref) if getattr(ms["fid"], "_ref", None) is not None else 0
    for name, m in ms.items():
        per[name] = 0.0
        for b in batches:
            t = time.perf_counter()
            m.update(b)
            _sync(device)
            per[name] += time.perf_counter() - t
        t = time.perf_counter()
        r = m.compute().as_dict()
        _sync(device)
        compute[name] = time.perf_counter() - t
        values[name] = r.get("value")
        print(f"cost: {name} {per[name] / max(1, len(rows)):.4f} s/image", file=sys.stderr, flush=True)
    n = len(rows)
    return {
        "images": n,
        "batch": batch,
        "mode": mode,
        "load_s": load_s,
        "load_s_per_image": load_s / n,
        "build_s": build,
        "fid_reference_s": ref_s,
        "fid_reference_images": ref_n,
        "update_s": per,
        "s_per_image": {k: v / n for k, v in per.items()},
        "compute_s": compute,
        "values": values,
    }


def score_run_cost(
    run_dir: Path, names: Sequence[str], device: torch.device, mode: str, batch: int
) -> dict[str, Any]:
    """``score_run`` over the run, end to end (PNG decode, sources/masks, every metric), warm: the
    networks are built and the reference statistics cached by :func:`metric_costs` before."""
    from evalsuite.metrics.scoring import score_run
    from evalsuite.results.store import RunStore

    store = RunStore(run_dir)
    n = sum(1 for r in store.rows() if r.get("status") == "ok")
    t = time.perf_counter()
    score_run(store, list(names), device=device, metric_weights=mode, batch_size=batch)
    _sync(device)
    s = time.perf_counter() - t
    return {"images": n, "s": s, "s_per_image_incl_fixed": s / n}


def cost_markdown(res: dict[str, Any]) -> str:
    g, m, e, x = res["generation"], res["metrics"], res["score_run"], res["extrapolation_1000"]
    gen = g["s_per_image_median"]
    pct = lambda s: f"{100 * s / gen:.2f} %"  # noqa: E731
    out = [
        f"Metric pass cost — {res['device']}; generation: `{g['config']}` {g['size'][0]}×{g['size'][1]}, "
        f"{g['steps']} steps, `{g['weights']}` weights; metrics: `{m['mode']}` feature networks, "
        f"batch {m['batch']}; {g['images']} images.",
        "",
        "| what | s/image | % of generation |",
        "|---|---|---|",
        f"| generation (`{g['config']}`, median of the warm images) | {gen:.3f} | 100 % |",
        f"| PNG decode + sources/masks, to the device | {m['load_s_per_image']:.4f} | {pct(m['load_s_per_image'])} |",
    ]
    for name, s in m["s_per_image"].items():
        label = f"{name} (cost only: pairs are other outputs)" if name == PAIRED else name
        out.append(f"| {label} | {s:.4f} | {pct(s)} |")
    out += [
        f"| **sum of the metrics above** | {m['sum_s_per_image']:.4f} | {pct(m['sum_s_per_image'])} |",
        f"| **`score_run` end to end** (decode + every metric but `{PAIRED}`, warm; its final FID/KID compute "
        f"{e['final_compute_s']:.2f} s charged once, not per image) | {e['s_per_image']:.4f} "
        f"| **{pct(e['s_per_image'])}** |",
        "",
        "Fixed costs (once per scoring process, not per image): network build "
        f"{m['build_total_s']:.1f} s (random weights: initialisation; real weights: loading instead), "
        f"FID reference statistics of {m['fid_reference_images']} dataset sources {m['fid_reference_s']:.1f} s, "
        f"final compute {sum(m['compute_s'].values()):.2f} s (FID/KID {m['compute_s'].get('fid', 0):.2f} s). "
        f"Generation's own fixed cost (model build, report): {g['fixed_s']:.1f} s.",
        "",
        f"Linear extrapolation to 1,000 images (1,000 × the per-image costs above + the fixed "
        f"metric costs once): generation {x['generation_s']:.0f} s, metric pass (`score_run`) "
        f"{x['metrics_s']:.0f} s → **{100 * x['ratio']:.2f} %** of generation (goal ≤ 5 %).",
    ]
    return "\n".join(out) + "\n"


def cost_main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="gpu_metrics.py cost", description="full metric pass vs flux-cn-beta generation (issue 16)"
    )
    env = os.environ.get
    ap.add_argument("out", nargs="?", default=env("OUT", "bench-out"), help="results folder (default $OUT)")
    ap.add_argument("--device", default=env("DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))
    ap.add_argument("--weights", default=env("WEIGHTS", "random"), help="generation weights policy")
    ap.add_argument("--n", type=int, default=int(env("N", "16")), help="images to generate")
    ap.add_argument("--batch-size", type=int, default=int(env("BATCH", "16")))
    ap.add_argument("--steps", type=int, default=int(env("STEPS", "0")) or None, help="override steps")
    ap.add_argument("--run-dir", default=None, help="reuse (or keep) this run directory")
    args = ap.parse_args(argv)
    from evalsuite.engine.provenance import package_versions
    from evalsuite.metrics.features import default_mode

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(args.device)
    mode = default_mode(args.weights)
    tmp = Path(tempfile.mkdtemp(prefix="evalsuite-cost-"))
    os.environ.setdefault("EVALSUITE_CACHE_DIR", str(tmp / "cache"))  # the reference statistics: computed
    run_dir = Path(args.run_dir) if args.run_dir else tmp / "run"
    gen = generate(run_dir, args.n, args.weights, args.device, args.steps)
    partial = out / "metrics-cost-partial.json"  # what a run stopped by a time limit leaves
    partial.write_text(json.dumps({"generation": gen}, indent=2, default=str), encoding="utf-8")
    # EXTRA_METRICS="cmmd fd_dinov2 prdc prdc_dinov2": the distribution metrics priced in the same pass
    full = [*FULL_SET, *os.environ.get("EXTRA_METRICS", "").split()]
    m = metric_costs(run_dir, full, dev, mode, args.batch_size)
    partial.write_text(json.dumps({"generation": gen, "metrics": m}, indent=2, default=str), encoding="utf-8")
    m["sum_s_per_image"] = sum(m["s_per_image"].values())
    m["build_total_s"] = sum(m["build_s"].values())
    e = score_run_cost(run_dir, full, dev, mode, args.batch_size)
    # score_run's time contains the once-per-pass final compute (FID/KID), measured in metric_costs:
    # charged once, not per image
    e["final_compute_s"] = sum(v for k, v in m["compute_s"].items() if k != PAIRED)
    e["s_per_image"] = max(0.0, e["s"] - e["final_compute_s"]) / max(1, e["images"])
    fixed = m["build_total_s"] + m["fid_reference_s"] + sum(m["compute_s"].values())
    gen_1000 = 1000 * gen["s_per_image_median"]
    met_1000 = 1000 * e["s_per_image"] + fixed
    res = {
        "task": "cost",
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)",
        "versions": package_versions(),
        "generation": gen,
        "metrics": m,
        "score_run": e,
        "ratio_per_image": e["s_per_image"] / gen["s_per_image_median"],
        "extrapolation_1000": {
            "method": "linear: 1000 × per-image cost (+ the metric pass's fixed costs once)",
            "generation_s": gen_1000,
            "metrics_s": met_1000,
            "metrics_fixed_s": fixed,
            "ratio": met_1000 / gen_1000,
        },
        "goal_fraction": 0.05,
        "run_dir": str(run_dir),
    }
    text = cost_markdown(res)
    print(text)
    (out / "metrics-cost.md").write_text(text, encoding="utf-8")
    (out / "metrics-cost.json").write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
    return 0


TASKS = {"cost": cost_main, "synthetic": synthetic_main}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in TASKS:
        return TASKS[args[0]](args[1:])
    return synthetic_main(args)  # the old interface: gpu_metrics.py [OUT_DIR] [options]


if __name__ == "__main__":
    raise SystemExit(main())
