"""``evalsuite frontier``: every acceleration point's speed, memory and PAIRED quality cost, one run.

For each configuration the reference point (as configured: bf16, eager, its own steps — or the
point named by ``reference``) and each accelerated point run on the same cases and seeds. Per
point: one cold call kept apart (with compile it holds the compile: ``compile_s`` = cold − warm
median), then one timed call per (case, seed); median seconds per image with a 95 % order-
statistic CI, the NVML device peak and the allocator peak, and (eager points) the denoiser passes
computed vs reused per image. Quality is paired per (case, seed) against the reference image:
LPIPS, PSNR and SSIM over the whole image and over the masked region (inpainting), and the CLIP-
score delta, each with a bootstrap CI (``scipy.stats.bootstrap``, percentile, 95 %).

Outputs a run directory: ``run.json`` (``kind: frontier``), ``rows.jsonl`` (one row per point),
``frontier.csv``, ``frontier.md`` (tables: points; "fastest within paired LPIPS ≤ X"; which speed
figures depend on weight values), ``frontier.json``, ``pareto.png`` (rendered by
:mod:`evalsuite.report.frontier`) and the images.

It runs as :class:`FrontierScenario` in the shared run lifecycle (:mod:`evalsuite.engine.lifecycle`):
the run lock, ``run.json`` schema ``evalsuite.run/2`` with the environment block, Ctrl-C/SIGTERM
stop between points with everything written (exit 130/143). Each point is measured by
:func:`evalsuite.trackers.tracking.cold_then_warm`, as in ``evalsuite profile``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalsuite.accel.axes import ApplyContext, PointSpec, apply_point, cudagraph_stats, load_params
from evalsuite.accel.compile_cache import CompileCache
from evalsuite.accel.counters import PassCounter, main_denoiser
from evalsuite.accel.errors import Unavailable
from evalsuite.config import configuration as cfg
from evalsuite.config.runconfig import RunConfigError, SweepConfig
from evalsuite.data.cases import Case
from evalsuite.data.imageio import save_png_atomic
from evalsuite.engine.lifecycle import RunContext
from evalsuite.registry import RUNNERS
from evalsuite.results.store import RunStore
from evalsuite.runners.base import Runner
from evalsuite.runners.weights import Weights
from evalsuite.scenarios.fit import check_fits
from evalsuite.scenarios.sweep import Sweep, SweepScenario, usable_cases
from evalsuite.trackers.flops import measure_peak_tflops, step_flops
from evalsuite.trackers.stats import bootstrap_statistic
from evalsuite.trackers.stats import finite as finite_values
from evalsuite.trackers.tracking import Call, cold_then_warm, summarize
from evalsuite.vocab import NO_QUALITY_EVIDENCE

__all__ = ["FrontierScenario", "FrontierSpec", "frontier", "run_point", "usable_cases"]

log = logging.getLogger(__name__)

QUALITY = ("lpips", "psnr", "ssim", "lpips_masked", "psnr_masked", "ssim_masked", "clip_delta")


#: The acceleration recipes users copy, as points: diffusers' bf16 recipe (fused QKV + regional
#: compile, docs/source/en/optimization) and the diffusers-torchao / flux-fast fp8 recipe (torchao's
#: dynamic fp8 activations and weights, per row, + fused QKV + regional compile). ``--peers`` adds them.
PEER_RECIPES = {
    "qkv,compile=regional": "diffusers bf16 recipe",
    "precision=fp8,qkv,compile=regional": "torchao fp8 recipe",
}


@dataclass
class FrontierSpec:
    """What to run.

    Attributes:
        configs: configuration names.
        points: point texts (see :mod:`evalsuite.accel.axes`); the reference is added first.
        reference: the reference point text (default ``ref``: the configuration as configured).
        n_cases: how many usable cases of the dataset (each with each seed).
        seeds: seeds per case.
        lpips_max: thresholds X of the "fastest within paired LPIPS ≤ X" table.
        compile_mode: ``torch.compile`` mode.
        bootstrap_resamples: resamples of each bootstrap CI.
        peak_seconds: seconds of each matmul peak measurement (the FLOP floor's reference); default
            2 on CUDA, 0.2 elsewhere.
        peers: add the recipes users copy (:data:`PEER_RECIPES`) as points, so the table shows what
            evalsuite's own points gain over them, measured in the same run.
        metric_weights: feature-network weights for LPIPS/CLIP (``real``, ``random_full``,
            ``random``; default from the weights policy).
        compile_cache: a folder of ``torch.compile`` cache artifacts
            (:mod:`evalsuite.accel.compile_cache`): loaded before the first compiled point, and what
            this run compiles new is written there as ``<run id>-<k>.bin``; None: no such folder.
    """

    configs: list[str]
    points: list[str]
    reference: str = "ref"
    n_cases: int = 2
    seeds: list[int] = field(default_factory=lambda: [0])
    lpips_max: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2])
    compile_mode: str = "default"
    bootstrap_resamples: int = 2000
    metric_weights: str | None = None
    peak_seconds: float | None = None
    peers: bool = False
    compile_cache: str | None = None

    def validate(self) -> None:
        """Raise :class:`RunConfigError` (a ``ValueError``) naming the field for an unusable value (before anything is loaded)."""
        if not self.configs:
            raise RunConfigError("frontier: name at least one configuration (--configs)")
        if self.n_cases < 1:
            raise RunConfigError(f"frontier: --cases {self.n_cases}: need at least 1 case per point")
        if not self.seeds:
            raise RunConfigError("frontier: --seeds: need at least one seed")
        if self.bootstrap_resamples < 1:
            raise RunConfigError(
                f"frontier: --bootstrap {self.bootstrap_resamples}: need at least 1 resample"
            )
        if self.compile_cache and Path(self.compile_cache).is_file():
            raise RunConfigError(
                f"frontier: --compile-cache {self.compile_cache} is a file; name a folder (it holds the "
                ".bin files of compile-cache artifacts)"
            )
        self.parsed()

    def parsed(self) -> tuple[PointSpec, list[PointSpec]]:
        """(reference, accelerated points without duplicates of the reference); raises PointError (a ValueError)."""
        ref = PointSpec.parse(self.reference)
        pts: list[PointSpec] = []
        for text in [*self.points, *(PEER_RECIPES if self.peers else {})]:
            p = PointSpec.parse(text)
            if p != ref and p not in pts:
                pts.append(p)
        return ref, pts


# -- running one point -----------------------------------------------------------------------------


#: Precisions whose matmuls run in fp8 (their floor uses the fp8 peak; ``layerwise`` only stores fp8).
FP8_COMPUTE = ("fp8", "fp8_row", "fp8_tensor")


def peak_dtypes(device: torch.device) -> list[str]:
    """The matmul dtypes whose peaks a frontier measures: bf16 and fp8 on CUDA, float32 elsewhere
    (tiny CPU runs compute in float32)."""
    return ["bfloat16", "fp8"] if device.type == "cuda" else ["float32"]


def flop_floor(
    runner: Runner, point: PointSpec, peaks: dict[str, dict[str, Any]], s_per_image: float
) -> dict[str, Any]:
    """Distance to the hardware limit of one point: ``flop_per_image`` (one denoising step's FLOP
    from the runner's FLOP model, :func:`evalsuite.trackers.flops.step_flops`, × steps — every pass
    computed, so a cache's skipped passes count as work it avoided), ``floor_s`` (that FLOP at the
    measured peak of the point's matmul dtype: fp8 for fp8 precisions, else the runner's dtype on
    CPU or bf16 on CUDA), ``floor_ratio`` (s/image ÷ floor; 1 is the limit) and what they used."""
    flop_step, method = step_flops(runner, 1)
    steps = int(runner.params.steps)
    flop = flop_step * steps
    if point.get("precision") in FP8_COMPUTE:
        key = "fp8"
    elif runner.device.type == "cuda":
        key = "bfloat16"
    else:
        key = str(runner.dtype).removeprefix("torch.")
    tflops = float((peaks.get(key) or {}).get("tflops", math.nan))
    floor = flop / (tflops * 1e12) if tflops and math.isfinite(tflops) and math.isfinite(flop) else math.nan
    return {
        "flop_per_image": flop,
        "flop_method": f"{method} × {steps} steps",
        "floor_peak": f"{key} {tflops:.4g} TFLOP/s" if math.isfinite(tflops) else f"{key}: no peak",
        "floor_s": floor,
        "floor_ratio": s_per_image / floor if floor and math.isfinite(floor) else math.nan,
    }


def run_point(
    conf: cfg.Configuration,
    point: PointSpec,
    weights: Weights,
    device: torch.device,
    pool: Sequence[Case],
    spec: FrontierSpec,
    store: RunStore,
    ctx: ApplyContext,
    log_prefix: str = "",
    peaks: dict[str, dict[str, Any]] | None = None,
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load, apply, time and save images of one point; returns its row (``status`` ok/unavailable/error).

    ``progress`` (optional) is kept up to date with the step the point is in (``step``: ``load``,
    ``apply axes``, ``cold call``, ``image i/n``), so a caller interrupted mid-point can say where.

    With ``peaks`` (measured matmul TFLOP/s by dtype), the row also holds the point's FLOP floor:
    the FLOP of one image (every denoiser pass computed) at the peak of the point's matmul dtype, and
    ``floor_ratio`` = s/image ÷ floor (see :func:`flop_floor`)."""
    row: dict[str, Any] = {
        "base_config": conf.name,
        "point": point.label,
        "config": f"{conf.name}[{point.label}]",
        "speed_depends_on_weights": point.speed_depends_on_weights,
    }
    peer = {PointSpec.parse(k).label: v for k, v in PEER_RECIPES.items()}.get(point.label)
    if peer:
        row["peer"] = peer
    name = f"{log_prefix}{row['config']}"
    runner: Runner | None = None
    progress = progress if progress is not None else {}
    t0 = time.perf_counter()
    try:
        progress["step"] = "load"
        log.info("%s: load", name)
        runner = RUNNERS.get(conf.runner)(
            load_params(conf.params, point, _where(conf, point)), weights, device
        )
        runner.load()
        row["load_s"] = time.perf_counter() - t0
        cases = usable_cases(runner, pool, spec.n_cases)
        pairs = [(c, s) for c in cases for s in spec.seeds]
        ctx.config = conf.name
        ctx.calibrate = lambda: runner.generate([pairs[0][0]], [pairs[0][1]])  # type: ignore[union-attr]
        progress["step"] = "apply axes"
        log.info("%s: apply axes", name)
        t1 = time.perf_counter()
        row["notes"] = apply_point(runner, point, ctx)
        row["apply_s"] = time.perf_counter() - t1
        counter = None
        found = main_denoiser(runner)
        if found is not None and not point.compiled:
            counter = PassCounter(found[1]).attach()
        row["steps"] = int(runner.params.steps)
        passes: list[dict[str, float]] = []

        def before(i: int) -> None:
            if i == 0:
                progress["step"] = "cold call" + (" (compiling)" if point.compiled else "")
            else:
                progress["step"] = f"image {i}/{len(pairs)}"
            log.info("%s: %s", name, progress["step"])
            if counter is not None:
                counter.reset()

        def after(i: int, call: Call) -> None:
            if counter is not None and i > 0:
                passes.append(counter.snapshot())

        def one(case: Case, seed: int) -> Callable[[], Any]:
            return lambda: runner.generate([case], [seed])  # type: ignore[union-attr]

        m = cold_then_warm(
            device,
            one(*pairs[0]),
            [one(c, s) for c, s in pairs],
            before_each=before,
            after_each=after,
        )
        row["first_call_s"] = m.cold.seconds
        images: dict[str, str] = {}
        for (case, seed), call in zip(pairs, m.warm, strict=True):
            rel = store.image_relpath(f"{conf.name}/{_safe(point.label)}", case.id, seed)
            save_png_atomic(call.out[0].image, store.path / rel)
            images[f"{case.id}|{seed}"] = rel
        st = summarize(m.warm_s)
        row.update(
            status="ok",
            n_images=len(m.warm),
            s_per_image=st["median"],
            s_ci_low=st["ci_low"],
            s_ci_high=st["ci_high"],
            s_ci_coverage=st["ci_coverage"],
            images=images,
        )
        row["compile_s"] = max(0.0, row["first_call_s"] - st["median"]) if point.compiled else 0.0
        if peaks:
            row.update(flop_floor(runner, point, peaks, st["median"]))
        if m.peak("nvml_peak_gib") is not None:
            row["nvml_peak_gib"] = m.peak("nvml_peak_gib")
        elif m.unavailable():
            row["unavailable"] = m.unavailable()
        for key in ("alloc_peak_gib", "reserved_peak_gib"):
            if m.peak(key) is not None:
                row[key] = m.peak(key)
        phases: dict[str, list[float]] = {}
        for call in m.warm:
            for k, v in (getattr(call.out[0], "phases", None) or {}).items():
                phases.setdefault(k, []).append(float(v))
        for k, vs in phases.items():  # where the time goes: median seconds per phase and image
            row[f"phase_{k}_s"] = statistics.median(vs)
        graphs = cudagraph_stats(runner)
        if graphs:
            row["cudagraph"] = graphs
        if passes:
            for k in passes[0]:
                row[k] = statistics.fmean(p[k] for p in passes if k in p)
        elif point.compiled:
            row["passes_note"] = "not counted (compiled)"
        log.info("%s: %.4g s/image (cold %.4g s)", name, st["median"], row["first_call_s"])
    except Unavailable as exc:
        row.update(status="unavailable", reason=str(exc))
        log.warning("%s: unavailable: %s", name, exc)
    except Exception as exc:
        row.update(status="error", reason=f"{type(exc).__name__}: {exc}")
        log.error("%s: %s: %s", name, type(exc).__name__, exc)
    finally:
        ctx.calibrate = None  # it holds the runner: drop it, or the next point's peaks include this one
        if point.compiled:
            torch._dynamo.reset()
        if runner is not None:
            runner.close()
        runner = None
        import gc

        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        from evalsuite.accel.memory import reset_allocator

        reset_allocator(device)
    return row


def _where(conf: cfg.Configuration, point: PointSpec) -> str:
    return f"frontier point {point.label!r} of configuration {conf.name!r}"


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in label) or "ref"


# -- paired quality ---------------------------------------------------------------------------------


def _load(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


def bootstrap_ci(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, str]:
    """95 % percentile bootstrap CI of the mean of the finite ``values``: evalsuite's one bootstrap,
    :func:`evalsuite.trackers.stats.bootstrap_statistic`; (nan, nan, reason) below 2 finite values."""
    est = bootstrap_statistic(values, "mean", resamples, seed)
    if est.n < 2:
        return math.nan, math.nan, f"{est.n} finite pair(s): no CI"
    v = finite_values(values)
    if np.all(v == v[0]):
        return est.low, est.high, "all pairs equal"
    return est.low, est.high, "percentile bootstrap, 95 %"


class PairedScorer:
    """Paired quality of a point's images vs the reference point's, computed by :mod:`evalsuite.metrics`
    (no implementation of its own): the ``lpips_pair`` metric (:class:`~evalsuite.metrics.quality.PairedLPIPS`:
    the whole image and, with a mask, the regenerated region), the PSNR/SSIM functional twins
    (:func:`~evalsuite.metrics.functional.masked_psnr_per_image`,
    :func:`~evalsuite.metrics.functional.masked_ssim_per_image`) and the ``clip_score`` metric (its delta)."""

    def __init__(self, mode: str, device: torch.device) -> None:
        from evalsuite.metrics import features as fx
        from evalsuite.registry import METRICS

        self.mode = mode
        self.device = device
        self.lpips_metric: Any = METRICS.get("lpips_pair")(device, metric_weights=mode)
        self.clip_metric: Any = None
        try:
            self.clip_metric = METRICS.get("clip_score")(device, metric_weights=mode)
        except Exception as exc:  # the CLIP net may be missing (real weights offline)
            self.clip_reason = f"{type(exc).__name__}: {exc}"
        self.ids = {"lpips": fx.lpips_net(mode, device).id}

    def clip(self, img: torch.Tensor, prompt: str) -> float:
        if self.clip_metric is None:
            return math.nan
        from evalsuite.metrics.base import MetricBatch

        try:
            return float(self.clip_metric.update(MetricBatch(rows=[{}], images=img, prompts=[prompt]))[0])
        except Exception as exc:
            self.clip_reason = f"{type(exc).__name__}: {exc}"
            self.clip_metric = None
            return math.nan

    @torch.no_grad()
    def pair(
        self, img: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None, prompt: str
    ) -> dict[str, float]:
        from evalsuite.metrics import functional as fn
        from evalsuite.metrics.base import MetricBatch

        img, ref = img.to(self.device), ref.to(self.device)
        m = mask.to(self.device) if mask is not None and float(mask.sum()) > 0 else None
        self.lpips_metric.reset()
        lpips = self.lpips_metric.update(MetricBatch(rows=[{}], images=img, pairs=ref, masks=m))
        ones = torch.ones_like(img[:, :1])
        out = {
            "lpips": float(lpips[0]),
            "psnr": float(fn.masked_psnr_per_image(img, ref, ones)[0]),
            "ssim": float(fn.masked_ssim_per_image(img, ref, ones)[0]),
            "clip_delta": self.clip(img, prompt) - self.clip(ref, prompt),
        }
        if m is not None:
            out["lpips_masked"] = float(self.lpips_metric.extra_columns()["lpips_pair_masked"][0])
            out["psnr_masked"] = float(fn.masked_psnr_per_image(img, ref, m)[0])
            out["ssim_masked"] = float(fn.masked_ssim_per_image(img, ref, m)[0])
        return out


def paired_quality(
    rows: list[dict[str, Any]],
    ref: dict[str, Any],
    store: RunStore,
    masks: dict[str, torch.Tensor],
    prompts: dict[str, str],
    scorer: PairedScorer,
    resamples: int,
) -> None:
    """Add ``<metric>_mean`` / ``_ci_low`` / ``_ci_high`` (and ``n_pairs``) to each ok row, in place."""
    if ref.get("status") != "ok":
        for r in rows:
            r["quality_note"] = f"reference point {ref.get('status')}: {ref.get('reason')}"
        return
    for r in rows:
        if r.get("status") != "ok":
            continue
        vals: dict[str, list[float]] = {k: [] for k in QUALITY}
        for key, rel in r["images"].items():
            if key not in ref["images"]:
                continue
            case_id = key.split("|")[0]
            m = masks.get(case_id)
            got = scorer.pair(
                _load(store.path / rel), _load(store.path / ref["images"][key]), m, prompts.get(case_id, "")
            )
            for k, v in got.items():
                vals[k].append(v)
        r["n_pairs"] = len(vals["lpips"])
        for k, vs in vals.items():
            if not vs:
                continue
            finite = [x for x in vs if np.isfinite(x)]
            r[f"{k}_mean"] = float(np.mean(finite)) if finite else (math.inf if vs else math.nan)
            lo, hi, how = bootstrap_ci(vs, resamples)
            r[f"{k}_ci_low"], r[f"{k}_ci_high"] = lo, hi
            r.setdefault("ci_method", how)


# -- the scenario -------------------------------------------------------------------------------


def frontier_quantities(quality_evidence: bool) -> dict[str, dict[str, Any]]:
    """What ``evalsuite compare`` and the report read from a frontier run's rows (one row per point)."""
    q = quality_evidence

    def metric(label: str, hib: bool, unit: str = "") -> dict[str, Any]:
        return {
            "label": label,
            "unit": unit,
            "higher_is_better": hib,
            "kind": "metric",
            "quality_evidence": q,
        }

    return {
        "s_per_image": {
            "label": "seconds per image (median)",
            "unit": "s",
            "higher_is_better": False,
            "kind": "resource",
        },
        "compile_s": {
            "label": "compile seconds (cold − warm)",
            "unit": "s",
            "higher_is_better": False,
            "kind": "resource",
        },
        "floor_ratio": {
            "label": "s/image ÷ FLOP floor at the measured matmul peak",
            "unit": "×",
            "higher_is_better": False,
            "kind": "resource",
        },
        "passes_computed": {
            "label": "denoiser passes computed per image",
            "unit": "",
            "higher_is_better": False,
            "kind": "resource",
        },
        "lpips_mean": metric("paired LPIPS vs the reference point", False),
        "lpips_masked_mean": metric("paired LPIPS vs the reference, masked region", False),
        "psnr_mean": metric("PSNR vs the reference point", True, "dB"),
        "ssim_mean": metric("SSIM vs the reference point", True),
        "clip_delta_mean": metric("CLIP-score change vs the reference point", True),
    }


class FrontierScenario(SweepScenario):
    """``evalsuite frontier`` in the shared run lifecycle: per configuration its reference point, then
    each accelerated point, each priced against the reference as soon as it is measured (so a run
    stopped by a signal has complete rows and tables); the tables are rewritten after every point."""

    kind = "frontier"

    def __init__(
        self,
        spec: FrontierSpec,
        confs: list[cfg.Configuration],
        w: Weights,
        pool: Sequence[Case],
        mirror: Path | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.confs, self.w, self.pool, self.mirror = spec, confs, w, pool, mirror
        self.ref, self.points = spec.parsed()
        for conf in confs:  # every point's params, typed and validated before anything is loaded
            for pt in [self.ref, *self.points]:
                load_params(conf.params, pt, _where(conf, pt))
        cache = CompileCache(spec.compile_cache) if spec.compile_cache else None
        self.apply_ctx = ApplyContext(compile_mode=spec.compile_mode, compile_cache=cache)
        self.scorer: PairedScorer | None = None
        self.mode = spec.metric_weights or _default_mode(w.policy)
        self.peaks: dict[str, dict[str, Any]] = {}

    def plan(self, ctx: RunContext) -> None:
        spec = self.spec
        ctx.meta["frontier"] = {
            "spec": dataclasses.asdict(spec),
            "reference": self.ref.label,
            "weights": self.w.policy,
            "metric_weights": self.mode,
            "plumbing_only": self.w.policy in NO_QUALITY_EVIDENCE,
            "pairs": f"{spec.n_cases} × {len(spec.seeds)}",
        }
        secs = (
            spec.peak_seconds
            if spec.peak_seconds is not None
            else (2.0 if ctx.device.type == "cuda" else 0.2)
        )
        self.peaks = {
            d: measure_peak_tflops(ctx.device, d, min_seconds=secs) for d in peak_dtypes(ctx.device)
        }
        for d, pk in self.peaks.items():
            log.info("matmul peak %s: %.4g TFLOP/s", d, pk.get("tflops", math.nan))
        ctx.meta["frontier"]["peaks"] = self.peaks
        ctx.meta["quantities"] = frontier_quantities(self.w.policy not in NO_QUALITY_EVIDENCE)

    def run(self, ctx: RunContext) -> None:
        total = len(self.confs) * (1 + len(self.points))
        k = 0
        for conf in self.confs:
            group: list[dict[str, Any]] = []
            for pt in [self.ref, *self.points]:
                if ctx.stop.requested:
                    return
                k += 1
                progress: dict[str, Any] = {}
                t0 = time.perf_counter()
                try:
                    row = run_point(
                        conf,
                        pt,
                        self.w,
                        ctx.device,
                        self.pool,
                        self.spec,
                        ctx.store,
                        self.apply_ctx,
                        log_prefix=f"[{k}/{total}] ",
                        peaks=self.peaks,
                        progress=progress,
                    )
                except KeyboardInterrupt:
                    # aborted inside the point (a second Ctrl-C or SIGTERM, e.g. a time limit during a
                    # long compile): the table says so instead of leaving the point out silently
                    self.record_interrupted(
                        ctx, conf, pt, progress.get("step", "start"), time.perf_counter() - t0
                    )
                    raise
                row["is_reference"] = pt == self.ref
                # paired quality against this configuration's reference point
                ref = group[0] if group else row
                masks, prompts = _case_inputs(conf, self.w, self.pool, [ref, row])
                if self.scorer is None:
                    dev = ctx.device
                    self.scorer = PairedScorer(self.mode, torch.device("cpu") if dev.type != "cuda" else dev)
                paired_quality(
                    [row], ref, ctx.store, masks, prompts, self.scorer, self.spec.bootstrap_resamples
                )
                group.append(row)
                if pt.compiled and row.get("status") == "ok":
                    self.save_compile_cache(ctx)
                self.record(ctx, row, conf, self.w.policy, save=False, point=pt.label)
                self.report(ctx)

    def save_compile_cache(self, ctx: RunContext) -> None:
        """Write what the run has compiled so far to its compile-cache folder (``--compile-cache``); a
        failure to write is logged and noted, never fatal."""
        cache = self.apply_ctx.compile_cache
        if cache is None:
            return
        note = ctx.meta["frontier"].setdefault("compile_cache", {"folder": str(cache.folder)})
        try:
            path = cache.save(ctx.store.path.name)
        except Exception as exc:  # a full disk or an unwritable folder loses the cache, not the run
            log.warning("compile cache %s: not written (%s)", cache.folder, exc)
            note["save_error"] = f"{type(exc).__name__}: {exc}"
            return
        if path is not None:
            note["written"] = [str(p) for p in cache.written]

    def record_interrupted(
        self, ctx: RunContext, conf: cfg.Configuration, pt: PointSpec, step: str, seconds: float
    ) -> None:
        """Record a point aborted mid-way as ``status: interrupted`` (not measured), with where and
        after how long, and rewrite the tables; a failure here must not hide the interrupt."""
        row = {
            "base_config": conf.name,
            "point": pt.label,
            "config": f"{conf.name}[{pt.label}]",
            "speed_depends_on_weights": pt.speed_depends_on_weights,
            "is_reference": pt == self.ref,
            "status": "interrupted",
            "reason": f"stopped after {seconds:.0f} s in its {step}; not measured (rerun it, with more time "
            "if a time limit stopped it)",
        }
        try:
            self.record(ctx, row, conf, self.w.policy, save=False, point=pt.label)
            self.report(ctx)
        except Exception as exc:
            log.warning("could not record the interrupted point %s: %s", row["config"], exc)

    def report(self, ctx: RunContext) -> None:
        _write_outputs(ctx, self.rows, self.spec, self.apply_ctx, self.scorer, self.mirror)


def _default_mode(policy: str) -> str:
    from evalsuite.metrics import features as fx

    return fx.default_mode(policy)


def frontier(
    spec: FrontierSpec,
    weights: str = "random",
    device: str | torch.device | None = "auto",
    out: str | Path = "reports",
    run_id: str | None = None,
    overrides: Sequence[str] = (),
    config_dirs: Sequence[str | Path] = (),
    dataset: str = "smoke",
    force: bool = False,
    mirror: Path | None = None,
) -> Path:
    """Run the frontier scenario; returns the run directory (``mirror``: a folder that gets a copy of
    the tables and plot after every point).

    The lifecycle, and the errors raised, are those of :func:`evalsuite.scenarios.profile.profile`
    (``kind: frontier`` in ``run.json``).
    """
    spec.validate()
    config = SweepConfig(
        weights=weights,
        dataset=dataset,
        device=device,
        out=Path(out),
        run_id=run_id,
        overrides=list(overrides),
        config_dirs=[Path(d) for d in config_dirs],
        force=force,
    )
    sweep = Sweep.from_config("frontier", config)
    ovs = [cfg.Override.parse(o) for o in config.overrides]
    confs = cfg.resolve_many(spec.configs, ovs, config.config_dirs)
    check_fits(
        "frontier",
        [(c.name, c, c.params) for c in confs],
        sweep.weights.policy,
        sweep.device,
        force=config.force,
    )
    scenario = FrontierScenario(spec, confs, sweep.weights, list(sweep.dataset.cases), mirror)
    return sweep.execute(
        scenario,
        sweep.store(),
        seeds=list(spec.seeds),
        metrics=["latency", *QUALITY],
        metric_weights=scenario.mode,
        dataset_note=f"the first {spec.n_cases} usable case(s) per configuration, each with each seed",
    )


def _write_outputs(
    ctx: RunContext,
    rows: list[dict[str, Any]],
    spec: FrontierSpec,
    apply_ctx: ApplyContext,
    scorer: PairedScorer | None,
    mirror: Path | None,
) -> None:
    """Write ``run.json``, and ``frontier.csv/.md/.json`` and ``pareto.png`` for the rows so far
    (:mod:`evalsuite.report.frontier`)."""
    from evalsuite.report.frontier import fastest_within, frontier_frame, write_frontier

    meta = ctx.meta
    df = frontier_frame(rows)
    meta["frontier"]["fastest"] = fastest_within(df, spec.lpips_max)
    meta["frontier"]["mag_ratios"] = apply_ctx.mag_ratios
    if apply_ctx.compile_cache is not None and apply_ctx.compile_cache.loaded is not None:
        meta["frontier"].setdefault("compile_cache", {})["loaded"] = apply_ctx.compile_cache.loaded
    meta["frontier"]["scorer"] = {
        "lpips": scorer.ids["lpips"] if scorer else None,
        "clip": getattr(scorer, "clip_reason", "clip_score metric") if scorer else None,
    }
    ctx.save_meta()
    write_frontier(ctx.store.path, df, meta, mirror)


def _case_inputs(
    conf: cfg.Configuration, w: Weights, pool: Sequence[Case], group: list[dict[str, Any]]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Masks (1 = regenerated, at the output size) and prompts of the cases the points used."""
    used = {key.split("|")[0] for r in group if r.get("status") == "ok" for key in r["images"]}
    by_id = {c.id: c for c in pool}
    prompts = {cid: by_id[cid].prompt for cid in used if cid in by_id}
    masks: dict[str, torch.Tensor] = {}
    runner = RUNNERS.get(conf.runner)(conf.params, w, "cpu")  # sizes only: nothing is loaded
    if runner.task == "inpaint":
        for cid in used:
            if cid in by_id:
                _, m = runner.load_inputs(by_id[cid])
                masks[cid] = torch.from_numpy(m.astype(np.float32))[None, None]
    return masks, prompts
