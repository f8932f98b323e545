"""GPU check of the Alimama ControlNet inpainting port: full-size random weights, one 1024² inpaint.

Builds ``flux-cn-beta`` (FLUX.1-dev transformer + 6-double-block ControlNet + VAE + CLIP-L + T5-XXL,
random bf16 weights built directly on the GPU), runs one warm-up generation and ``--repeats`` timed
ones on the first inpainting case of the smoke set, and prints a Markdown table: warm end-to-end
seconds, median seconds per denoising step, phase seconds, peak allocated/reserved GiB.
Random weights: speed and memory are real, the images mean nothing.

Run on the GPU machine from the repository root (diffusers must be installed there)::

    python benchmarks/gpu_controlnet_check.py --out "$OUT"            # flux-cn-beta, 28 steps
    python benchmarks/gpu_controlnet_check.py --configs flux-cn-beta flux-cn-alpha --repeats 3 --out "$OUT"

Writes ``gpu_controlnet_check.json`` and ``gpu_controlnet_check.md`` under ``--out`` (default ``$OUT``
or ``reports/gpu-check``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _versions() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def run_config(
    name: str, repeats: int, overrides: list[str], weights: str = "random", device: str = "cuda"
) -> dict:
    """Load ``name`` (``weights`` policy, on ``device``), warm up once, time ``repeats`` generations."""
    import torch

    from evalsuite.config import configuration as cfg
    from evalsuite.data.registry import load_dataset
    from evalsuite.registry import RUNNERS
    from evalsuite.runners.weights import Weights

    conf = cfg.resolve(name, [cfg.Override.parse(o) for o in overrides])
    runner = RUNNERS.get(conf.runner)(conf.params, Weights(weights), device)
    cuda = device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    runner.load()
    sync()
    load_s = time.perf_counter() - t0
    case = next(c for c in load_dataset("smoke").cases if c.is_inpainting)
    runner.generate([case], [case.seed])  # warm-up
    timed = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        out = runner.generate([case], [case.seed])[0]
        sync()
        timed.append((time.perf_counter() - t, out))
    e2e = [t for t, _ in timed]
    steps = [s for _, o in timed for s in o.steps]
    last = timed[-1][1]
    row = {
        "config": name,
        "weights": weights,
        "device": torch.cuda.get_device_name(0) if cuda else device,
        "width": runner.size[0],
        "height": runner.size[1],
        "steps": conf.params.steps,
        "true_guidance": conf.params.true_guidance,
        "lora": conf.params.lora,
        "dtype": conf.params.dtype,
        "case": case.id,
        "repeats": repeats,
        "load_s": load_s,
        "e2e_s_median": statistics.median(e2e),
        "e2e_s": e2e,
        "step_s_median": statistics.median(steps),
        "phases_s": last.phases,
        "peak_allocated_gib": last.memory.get("peak_allocated_gib"),
        "peak_reserved_gib": last.memory.get("peak_reserved_gib"),
        "overall_max_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "info": {k: v for k, v in last.info.items() if isinstance(v, int | float | str | bool)},
        "overrides": overrides,
    }
    runner.close()
    return row


def _gib(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def markdown(rows: list[dict], versions: dict[str, str]) -> str:
    """The results as a Markdown table plus provenance lines."""
    head = (
        "| config | size | steps | true CFG | warm e2e s (median) | s/step (median) | text / vae enc / "
        "denoise / vae dec s | peak alloc GiB | peak reserved GiB |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ph = r["phases_s"]
        phases = " / ".join(
            f"{ph.get(k, float('nan')):.3f}" for k in ("text_encode", "vae_encode", "denoise", "vae_decode")
        )
        lines.append(
            f"| {r['config']} | {r['width']}² | {r['steps']} | {r['true_guidance']:g} | {r['e2e_s_median']:.3f} | "
            f"{r['step_s_median']:.4f} | {phases} | {_gib(r['peak_allocated_gib'])} | {_gib(r['peak_reserved_gib'])} |"
        )
    dev = rows[0]["device"] if rows else "?"
    lines += [
        "",
        f"Device: {dev}; weights: {rows[0]['weights'] if rows else '?'} (random values: speed/memory only, "
        f"no quality evidence); 1 warm-up then {rows[0]['repeats'] if rows else 0} timed runs.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["flux-cn-beta"])
    p.add_argument("--repeats", type=int, default=1, help="timed generations after one warm-up (default 1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="[CONFIG.]FIELD=VALUE")
    p.add_argument(
        "--weights",
        default="random",
        choices=["random", "tiny", "hub"],
        help="weights policy (default random; tiny + --device cpu is a quick dry run of this script)",
    )
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default=os.environ.get("OUT") or "reports/gpu-check")
    args = p.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA GPU: this check needs one", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = [
        run_config(name, args.repeats, args.overrides, args.weights, args.device) for name in args.configs
    ]
    versions = _versions()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_controlnet_check.json").write_text(json.dumps({"rows": rows, "versions": versions}, indent=2))
    md = markdown(rows, versions)
    (out / "gpu_controlnet_check.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
