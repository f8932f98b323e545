"""Warm end-to-end latency and peak memory of every runner configuration on one CUDA GPU.

Random full-size weights (built on the GPU in bf16), each configuration at its native resolution:
1 warm-up + N timed generations (default 3) of one smoke-set inpainting case, plus a bare diffusers
``FluxPipeline`` call (prompt embeddings given, random weights) at 1024², 28 and 8 steps, measured in
the same process for comparison. Configurations are run one at a time and freed in between, so
two full-size FLUX pipelines are never resident together. ``flux-cn-*`` configurations are
included when they are registered, skipped otherwise.

Usage (repository root, ~5 minutes on an H100)::

    HF_HUB_OFFLINE=1 python benchmarks/gpu_runners.py "${OUT:-benchmarks/results}"

Prints a Markdown table and writes ``runners-gpu.md`` and ``runners-gpu.json`` into the folder.
Random weights: the numbers are speed and memory only and carry no quality evidence.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalsuite.config import configuration as cfg  # noqa: E402
from evalsuite.data.registry import load_dataset  # noqa: E402
from evalsuite.engine.provenance import package_versions  # noqa: E402
from evalsuite.runners.weights import Weights  # noqa: E402

log = logging.getLogger("gpu_runners")
GIB = float(1 << 30)
NATIVE = ["flux-dev", "flux-dev-turbo8", "flux-dev-inpaint", "sdxl-inpaint", "flux-fill"]
CONTROLNET = ["flux-cn-alpha", "flux-cn-beta", "flux-cn-beta-turbo8"]
RATIOS = [
    ("flux-dev", "flux-dev-turbo8"),
    ("flux-cn-beta", "flux-cn-beta-turbo8"),
    ("bare-flux-28", "bare-flux-8"),
]


def free(device: torch.device) -> None:
    """Drop unreferenced tensors and return cached blocks to the driver."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def timed(fn: Any, device: torch.device) -> tuple[float, Any, float, float]:
    """Run ``fn()``; return (seconds, result, peak allocated GiB, peak reserved GiB) of that call (0 on CPU)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize(device)
    dt_s = time.perf_counter() - t0
    if not cuda:
        return dt_s, out, 0.0, 0.0
    return (
        dt_s,
        out,
        torch.cuda.max_memory_allocated(device) / GIB,
        torch.cuda.max_memory_reserved(device) / GIB,
    )


def bench_config(
    name: str,
    case: Any,
    device: torch.device,
    warmup: int,
    repeats: int,
    policy: str = "random",
    overrides: tuple[cfg.Override, ...] = (),
) -> dict[str, Any]:
    """Load configuration ``name`` with ``policy`` weights, warm up, time ``repeats`` generations, free it."""
    conf = cfg.resolve(name, [cfg.Override(name, o.key, o.value) for o in overrides])
    rec: dict[str, Any] = {"config": name, "runner": conf.runner, "params": conf.params_dict()}
    runner = conf.runner_class()(conf.params, Weights(policy), device)  # type: ignore[arg-type]
    try:
        t0 = time.perf_counter()
        runner.load()
        free(device)
        rec["load_s"] = time.perf_counter() - t0
        rec["effective"] = runner.effective()
        rec["params"].update({k: v for k, v in rec["effective"].items() if k in ("width", "height")})
        rec["resident_gib"] = torch.cuda.memory_allocated(device) / GIB if device.type == "cuda" else None
        for _ in range(warmup):
            runner.generate([case], [case.seed])
        runs = []
        for i in range(repeats):
            s, outs, alloc, reserved = timed(partial(runner.generate, [case], [case.seed + i]), device)
            out = outs[0]
            runs.append(
                {
                    "e2e_s": s,
                    "phases": out.phases,
                    "steps": out.steps,
                    "peak_allocated_gib": alloc,
                    "peak_reserved_gib": reserved,
                }
            )
        rec["runs"] = runs
        rec.update(summarise(runs))
    except Exception as exc:  # one broken configuration must not lose the others' numbers
        log.exception("%s failed", name)
        rec["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        runner.close()
        free(device)
    return rec


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over timed runs: end-to-end, per phase, per step; maxima of the memory peaks."""
    med = statistics.median
    phases = sorted({k for r in runs for k in r["phases"]})
    steps = [s for r in runs for s in r["steps"]]
    return {
        "e2e_s": med(r["e2e_s"] for r in runs),
        "phases_s": {k: med(r["phases"].get(k, 0.0) for r in runs) for k in phases},
        "n_steps": len(runs[0]["steps"]),
        "step_s": med(steps) if steps else None,
        "peak_allocated_gib": max(r["peak_allocated_gib"] for r in runs),
        "peak_reserved_gib": max(r["peak_reserved_gib"] for r in runs),
    }


def bench_bare_flux(
    device: torch.device,
    warmup: int,
    repeats: int,
    step_counts: tuple[int, ...] = (28, 8),
    tiny: bool = False,
) -> list[dict[str, Any]]:
    """A bare diffusers FluxPipeline (random transformer + VAE, prompt embeddings given) at 1024²
    (``tiny``: the tiny components at 64 px, float32 — a dry run of this script on CPU)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    from evalsuite.runners import components as C

    dtype = torch.float32 if tiny else torch.bfloat16
    tcfg, vcfg, side = (
        (C.FLUX_TRANSFORMER_TINY, C.FLUX_VAE_TINY, 64)
        if tiny
        else (C.FLUX_TRANSFORMER_FULL, C.FLUX_VAE_FULL, 1024)
    )
    policy = "tiny" if tiny else "random"
    pipe = FluxPipeline(
        transformer=C.build(lambda: FluxTransformer2DModel(**tcfg), policy, device, dtype, 0),
        vae=C.build(lambda: AutoencoderKL(**vcfg), policy, device, dtype, 1),
        scheduler=FlowMatchEulerDiscreteScheduler(**C.FLUX_SCHEDULER),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
    )
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator("cpu").manual_seed(0)
    pe = torch.randn(1, 512, tcfg["joint_attention_dim"], generator=g).to(device, dtype)
    ppe = torch.randn(1, tcfg["pooled_projection_dim"], generator=g).to(device, dtype)
    recs = []
    try:
        for n in step_counts:

            def call(n: int = n, seed: int = 0) -> Any:
                return pipe(
                    prompt_embeds=pe,
                    pooled_prompt_embeds=ppe,
                    height=side,
                    width=side,
                    num_inference_steps=n,
                    guidance_scale=3.5,
                    generator=torch.Generator("cpu").manual_seed(seed),
                    max_sequence_length=512,
                ).images

            for _ in range(warmup):
                call()
            runs = []
            for i in range(repeats):
                s, _, alloc, reserved = timed(partial(call, seed=i), device)
                runs.append(
                    {
                        "e2e_s": s,
                        "phases": {},
                        "steps": [],
                        "peak_allocated_gib": alloc,
                        "peak_reserved_gib": reserved,
                    }
                )
            rec = {
                "config": f"bare-flux-{n}",
                "runner": "diffusers FluxPipeline (prompt embeds given)",
                "params": {"steps": n, "guidance": 3.5, "width": side, "height": side},
                "runs": runs,
            }
            rec.update(summarise(runs))
            rec["n_steps"] = n
            recs.append(rec)
    finally:
        pipe.transformer = pipe.vae = None
        free(device)
    return recs


def fmt(v: Any, nd: int = 3) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def markdown(recs: list[dict[str, Any]], env: dict[str, Any]) -> str:
    """The results as Markdown: provenance lines, the table, ratios and runner-vs-bare overheads."""
    by = {r["config"]: r for r in recs}
    lines = [
        f"# Runner latency and memory — {env['gpu']}",
        "",
        f"**Weights: {env['weights']} ({'full-size, random' if env['weights'] == 'random' else 'tiny, CPU dry run'}) — "
        "speed and memory only, NO quality evidence.** "
        f"Runner default dtype (bf16 on the GPU), batch 1, 1 smoke-set case, {env['warmup']} warm-up + {env['repeats']} timed, medians.",
        f"GPU: {env['gpu']} · CUDA {env['cuda']} · "
        + " · ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
        + f" · {env['date']}",
        "",
        "| config | runner | resolution | steps run | warm e2e s | e2e − text_encode s | s/step (median) | text_encode s "
        "| vae_encode s | vae_decode s | peak alloc GiB | peak reserved GiB | load s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in recs:
        p = r.get("params", {})
        res = (
            f"{p.get('width', '?')}²"
            if p.get("width") == p.get("height")
            else f"{p.get('width')}×{p.get('height')}"
        )
        if "error" in r:
            lines.append(f"| {r['config']} | {r['runner']} | {res} | — | FAILED: {r['error'][:80]} |||||||||")
            continue
        ph = r.get("phases_s", {})
        no_text = r["e2e_s"] - ph.get("text_encode", 0.0)
        lines.append(
            f"| {r['config']} | {r['runner']} | {res} | {r['n_steps']} | {fmt(r['e2e_s'])} | {fmt(no_text)} | "
            f"{fmt(r['step_s'], 4)} | {fmt(ph.get('text_encode'))} | {fmt(ph.get('vae_encode'))} | "
            f"{fmt(ph.get('vae_decode'))} | {fmt(r['peak_allocated_gib'], 1)} | {fmt(r['peak_reserved_gib'], 1)} | "
            f"{fmt(r.get('load_s'), 1)} |"
        )
    lines += [
        "",
        "s/step: median over every denoising step of the timed runs (step 0 includes the pipeline's "
        "set-up after the last VAE encode). SDXL at strength 0.99 runs int(20 × 0.99) = 19 steps. "
        "Bare rows: end-to-end incl. VAE decode, no text encoders.",
        "",
        "## Ratios (warm e2e)",
        "",
    ]
    for a, b in RATIOS:
        if a in by and b in by and "error" not in by[a] and "error" not in by[b]:
            lines.append(f"- {a} / {b}: {by[a]['e2e_s'] / by[b]['e2e_s']:.2f}")
    lines += ["", "## Runner vs bare diffusers call (same process; runner e2e − text_encode vs bare e2e)", ""]
    for conf, bare in (("flux-dev", "bare-flux-28"), ("flux-dev-turbo8", "bare-flux-8")):
        if conf in by and bare in by and "error" not in by[conf] and "error" not in by[bare]:
            mine = by[conf]["e2e_s"] - by[conf]["phases_s"].get("text_encode", 0.0)
            ref = by[bare]["e2e_s"]
            lines.append(f"- {conf}: {mine:.3f} s vs {bare}: {ref:.3f} s ({100 * (mine / ref - 1):+.1f} %)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "out", nargs="?", default=os.environ.get("OUT", "benchmarks/results"), help="output folder"
    )
    ap.add_argument(
        "--configs", nargs="+", default=None, help="configurations (default: native + registered flux-cn-*)"
    )
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-bare", action="store_true", help="skip the bare FluxPipeline reference")
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="check the script on CPU: tiny weights, 64 px, 2 steps (3 and 2 for the bare pipeline)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("diffusers", "transformers", "huggingface_hub", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_runners.py: no CUDA device (use --dry-run to check the script on CPU)", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    policy = "tiny" if args.dry_run else "random"
    overrides = (cfg.Override(None, "steps", 2),) if args.dry_run else ()
    known = set(cfg.available())
    names = args.configs or NATIVE + [c for c in CONTROLNET if c in known]
    skipped = [c for c in CONTROLNET if c not in known]
    if skipped and not args.configs:
        log.info("not registered, skipped: %s", ", ".join(skipped))
    ds = load_dataset("smoke")
    case = next(c for c in ds.cases if c.is_inpainting)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)",
        "cuda": torch.version.cuda,
        "versions": package_versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "case": case.id,
        "dataset_fingerprint": ds.fingerprint,
        "weights": policy,
        "skipped_unregistered": skipped,
    }
    recs: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    if not args.no_bare:
        log.info("bare FluxPipeline reference (prompt embeds given)")
        recs += bench_bare_flux(
            device, args.warmup, args.repeats, (3, 2) if args.dry_run else (28, 8), tiny=args.dry_run
        )
    for name in names:
        log.info("%s (%.0f s elapsed)", name, time.perf_counter() - t_start)
        recs.append(bench_config(name, case, device, args.warmup, args.repeats, policy, overrides))
        (out / "runners-gpu.json").write_text(
            json.dumps({"environment": env, "results": recs}, indent=2, default=str)
        )
    recs = [r for r in recs if not r["config"].startswith("bare")] + [
        r for r in recs if r["config"].startswith("bare")
    ]
    md = markdown(recs, env)
    (out / "runners-gpu.md").write_text(md, encoding="utf-8")
    (out / "runners-gpu.json").write_text(
        json.dumps({"environment": env, "results": recs}, indent=2, default=str)
    )
    print(md)
    log.info("done in %.0f s; wrote %s", time.perf_counter() - t_start, out)
    return 1 if any("error" in r for r in recs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
