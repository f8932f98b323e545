"""``evalsuite profile``: speed, memory and energy sweeps over configurations and optimisations.

A sweep is configurations × resolution × batch size × steps × dtype (``bf16``, ``fp8``) ×
memory mode (``gpu``, ``model_offload``, ``sequential_offload``, ``vae_tiling``) × compile
(``off``, ``on``). Every point's runner parameters (dtype, size, batch, steps) are built and
validated like ``--set`` before anything is loaded (a refused value exits 2 naming the point); dtype
``fp8``, the memory modes and compile are axis points of :mod:`evalsuite.accel.axes` (``precision=``,
``memory=``, ``compile=full``), applied after loading by the functions the frontier uses. Each
(configuration, dtype, memory mode, compile) combination is loaded once; the runner then gets each
point's parameters in turn (resolution, batch and steps change; what loading used does not). Every
point is measured through
the runner exactly as ``evalsuite run`` calls it (runner trackers + :class:`DeviceMonitor`): one
cold call kept apart, then warm calls until both ``min_reps`` and ``min_seconds`` are reached.

Also measured in the same run: the device's matmul peak (bf16, fp8 when used, float32 on CPU)
that MFU is relative to, and a bare diffusers baseline (the runner's pipeline called directly,
no trackers) for the first point of each configuration, so the harness overhead is visible.

Outputs a run directory (same store as ``evalsuite run``): ``run.json`` (with a ``profile``
section), ``rows.jsonl``/``samples.parquet`` (one row per point), ``report.md``, ``profile.csv``,
``profile.md`` and plots (``latency_vs_resolution.png``, ``vram_by_memory_mode.png``,
``speedup.png``; rendered by :mod:`evalsuite.report.profile`). With ``--save-images`` the first warm image of each point is stored, so a
paired metric can price numerics-changing speed-ups (fp8, compile, fewer steps); under random or
tiny weights that proves the plumbing only.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evalsuite.accel.axes import ApplyContext, PointSpec, apply_point, check_point
from evalsuite.config import configuration as cfg
from evalsuite.config.profile import DTYPES, FP8_PRECISION, MEMORY_AXIS, MEMORY_MODES
from evalsuite.config.runconfig import RunConfigError, SweepConfig
from evalsuite.data.cases import Case
from evalsuite.data.imageio import save_png_atomic
from evalsuite.engine.lifecycle import RunContext
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import Runner
from evalsuite.runners.weights import Weights
from evalsuite.scenarios.fit import check_fits
from evalsuite.scenarios.sweep import Sweep, SweepScenario, usable_cases
from evalsuite.trackers.flops import measure_peak_tflops, step_flops
from evalsuite.trackers.stats import bootstrap_statistic
from evalsuite.trackers.tracking import _sync, cold_then_warm, measure, summarize
from evalsuite.vocab import NO_QUALITY_EVIDENCE

log = logging.getLogger(__name__)

PHASES = ("text_encode", "vae_encode", "denoise", "vae_decode")
OVERHEAD_GOAL_PCT = 1.0


@dataclass(frozen=True)
class Point:
    """One profile point. ``width``/``height``/``steps`` of 0 mean "the configuration's own"."""

    config: str
    width: int
    height: int
    batch: int
    steps: int
    dtype: str
    memory: str
    compile: bool

    @property
    def load_key(self) -> tuple[str, str, str, bool]:
        return (self.config, self.dtype, self.memory, self.compile)

    def label(self) -> str:
        return (
            f"{self.config}@{self.width}x{self.height}-b{self.batch}-s{self.steps}-{self.dtype}-{self.memory}"
            + ("-compile" if self.compile else "")
        )


@dataclass
class ProfileSpec:
    """What to sweep and how to measure.

    Attributes:
        configs: configuration names.
        resolutions: square sides in pixels (``[]`` = each configuration's own width/height).
        batches: batch sizes.
        steps: denoising steps (``[]`` = each configuration's own).
        dtypes: ``bf16``, ``fp16``, ``fp32``, ``fp8`` (tiny weights always compute in float32).
        memory_modes: subset of :data:`MEMORY_MODES`.
        compile: ``[False]``, ``[True]`` or both.
        compile_mode: ``torch.compile`` mode (``default``, ``max-autotune-no-cudagraphs``...).
        fp8_backend: ``auto``, ``torchao`` or ``scaled_mm``: dtype ``fp8`` as ``precision=fp8`` or
            ``precision=fp8_tensor`` (:func:`fp8_precision`).
        min_reps / min_seconds / max_reps: warm repetitions (both minima must be met).
        baseline: measure the bare diffusers call for the first point of each configuration.
        overhead_pairs: alternating (bare, harness) pairs for the paired harness overhead
            (``0``: ``max(3, min_reps)``).
        save_images: store the first warm image of each point in the run directory.
        peak_seconds: duration of each matmul peak measurement.
    """

    configs: list[str]
    resolutions: list[int] = dataclasses.field(default_factory=list)
    batches: list[int] = dataclasses.field(default_factory=lambda: [1])
    steps: list[int] = dataclasses.field(default_factory=list)
    dtypes: list[str] = dataclasses.field(default_factory=lambda: ["bf16"])
    memory_modes: list[str] = dataclasses.field(default_factory=lambda: ["gpu"])
    compile: list[bool] = dataclasses.field(default_factory=lambda: [False])
    compile_mode: str = "default"
    fp8_backend: str = "auto"
    min_reps: int = 3
    min_seconds: float = 5.0
    max_reps: int = 50
    baseline: bool = True
    overhead_pairs: int = 0
    save_images: bool = False
    peak_seconds: float = 2.0

    def validate(self) -> None:
        """Raise :class:`RunConfigError` (a ``ValueError``) naming the field for an unusable value."""
        for m in self.memory_modes:
            if m not in MEMORY_MODES:
                raise RunConfigError(f"memory mode {m!r} unknown; choose from {', '.join(MEMORY_MODES)}")
        for d in self.dtypes:
            if d not in DTYPES:
                raise RunConfigError(f"dtype {d!r} unknown; choose from {', '.join(sorted(DTYPES))}")
        if self.fp8_backend not in ("auto", *FP8_PRECISION):
            raise RunConfigError(
                f"fp8 backend {self.fp8_backend!r} unknown; choose from auto, {', '.join(FP8_PRECISION)}"
            )
        if self.overhead_pairs < 0:
            raise RunConfigError(
                f"overhead pairs must be ≥ 0 (0: max(3, min_reps)), got {self.overhead_pairs}"
            )
        if self.min_reps < 1 or self.max_reps < self.min_reps:
            raise RunConfigError(f"need 1 ≤ min_reps ≤ max_reps, got {self.min_reps}, {self.max_reps}")
        if any(b < 1 for b in self.batches) or any(s < 1 for s in self.steps):
            raise RunConfigError("batch sizes and steps must be ≥ 1")
        if any(r < 16 or r % 16 for r in self.resolutions):
            raise RunConfigError(f"resolutions must be positive multiples of 16, got {self.resolutions}")

    def points(self, confs: Sequence[cfg.Configuration], policy: str) -> list[Point]:
        """Every point, grouped so that points sharing a load are consecutive."""
        out = []
        for c in confs:
            p = c.params
            own = p.tiny_size if policy == "tiny" else p.width
            res = [(r, r) for r in self.resolutions] or [(own, own if policy == "tiny" else p.height)]
            steps = self.steps or [p.steps]
            for dtype, mem, comp in itertools.product(self.dtypes, self.memory_modes, self.compile):
                for (w, h), b, s in itertools.product(res, self.batches, steps):
                    out.append(
                        Point(c.name, w, h, b, s, DTYPES[dtype] if dtype != "fp8" else "fp8", mem, comp)
                    )
        return out


# -- loading a point -------------------------------------------------------------------------


def fp8_precision(backend: str) -> str:
    """``--fp8-backend`` as a precision axis value (``auto``: torchao's fp8 when torchao is installed,
    else evalsuite's ``torch._scaled_mm`` swap with per-tensor scales)."""
    if backend == "auto":
        backend = "torchao" if importlib.util.find_spec("torchao") else "scaled_mm"
    return FP8_PRECISION[backend]


def accel_point(point: Point, fp8_backend: str = "auto") -> PointSpec:
    """The point's dtype ``fp8``, memory mode and compile as an axis point of :mod:`evalsuite.accel.axes`
    (``precision=``, ``memory=``, ``compile=full``): applied after loading by the same functions the
    frontier uses."""
    parts = []
    if point.dtype == "fp8":
        parts.append(f"precision={fp8_precision(fp8_backend)}")
    if MEMORY_AXIS[point.memory]:
        parts.append(f"memory={MEMORY_AXIS[point.memory]}")
    if point.compile:
        parts.append("compile=full")
    return PointSpec.parse(",".join(parts))


def point_params(conf: cfg.Configuration, point: Point, policy: str) -> Any:
    """The runner parameters of ``point`` (dtype, size, batch, steps), built and validated like
    ``--set`` before anything is loaded.

    Raises:
        ConfigError: a value the runner refuses, naming the point and the limit.
    """
    changes: dict[str, Any] = {
        "dtype": "bfloat16" if point.dtype == "fp8" else point.dtype,
        "steps": point.steps,
        "batch_size": point.batch,
    }
    if policy == "tiny":
        changes["tiny_size"] = point.width
    else:
        changes["width"], changes["height"] = point.width, point.height
    return cfg.replace_params(conf.params, changes, f"profile point {point.label()!r}")


def _load(
    conf: cfg.Configuration,
    params: Any,
    accel: PointSpec,
    spec: ProfileSpec,
    weights: Weights,
    device: torch.device,
) -> tuple[Runner, dict[str, Any]]:
    """Load a runner with ``params`` and apply ``accel`` (:func:`evalsuite.accel.axes.apply_point`);
    returns it and notes (``load_s`` and what each axis did).

    Raises:
        Unavailable: an axis that cannot run here (a memory mode that needs CUDA is refused before loading).
    """
    check_point(accel, device)
    runner: Runner = RUNNERS.get(conf.runner)(params, weights, device)
    notes: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        runner.load()
        notes["load_s"] = time.perf_counter() - t0
        notes.update(
            apply_point(runner, accel, ApplyContext(compile_mode=spec.compile_mode, config=conf.name))
        )
    except BaseException:
        runner.close()
        raise
    return runner, notes


def pick_cases(runner: Runner, pool: Sequence[Case], n: int) -> tuple[list[Case], list[int]]:
    """``n`` cases the runner accepts (the first usable case repeated) and seeds ``0..n-1``.

    Raises:
        CaseError: when no case of ``pool`` is usable by this runner.
    """
    return usable_cases(runner, pool, 1) * n, list(range(n))


def bare_call(runner: Runner, cases: Sequence[Case], seeds: Sequence[int]) -> Any:
    """The runner's bare pipeline call (:meth:`Runner.bare_call`): the overhead baseline."""
    return runner.bare_call(cases, seeds)


# -- measuring a point -----------------------------------------------------------------------


def _median(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return float(statistics.median(xs)) if xs else math.nan


def measure_point(
    runner: Runner,
    point: Point,
    cases: Sequence[Case],
    seeds: Sequence[int],
    spec: ProfileSpec,
    peaks: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], Any]:
    """Measure one point through ``runner.generate``; returns (row fields, first warm image)."""
    m = cold_then_warm(
        runner.device,
        lambda: runner.generate(cases, seeds),
        min_reps=spec.min_reps,
        min_seconds=spec.min_seconds,
        max_reps=spec.max_reps,
    )
    n = point.batch
    e2e = m.warm_s
    st = summarize(e2e)
    outs_all = [c.out for c in m.warm]
    steps_sum = [sum(o[0].steps) for o in outs_all]
    step_med = _median(
        [s for o in outs_all for s in o[0].steps[1:]] or [s for o in outs_all for s in o[0].steps]
    )
    row: dict[str, Any] = {
        "first_call_s": m.cold.seconds,
        "n_warm": st["n"],
        "warm_total_s": sum(e2e),
        "e2e_median_s": st["median"],
        "e2e_p90_s": st["p90"],
        "e2e_ci_low_s": st["ci_low"],
        "e2e_ci_high_s": st["ci_high"],
        "e2e_ci_coverage": st["ci_coverage"],
        "per_image_s": st["median"] / n,
        "step_median_s": step_med,
        "steps_sum_s": _median(steps_sum),
        "n_steps_timed": len(outs_all[0][0].steps),
    }
    for ph in PHASES:
        vals = [o[0].phases[ph] * len(o) for o in outs_all if ph in o[0].phases]
        if vals:
            row[f"{ph}_s"] = _median(vals)
    row["phases_sum_s"] = sum(row.get(f"{ph}_s", 0.0) for ph in PHASES)
    for key in ("peak_allocated_gib", "peak_reserved_gib"):
        vals = [o[0].memory[key] for o in outs_all if key in o[0].memory]
        if vals:
            row[key] = max(vals)
    for key in ("nvml_peak_gib", "host_peak_rss_gib"):
        peak = m.peak(key)
        if peak is not None:
            row[key] = peak
    energy = [c.readings["energy_j"] / n for c in m.warm if "energy_j" in c.readings]
    if energy:
        row["energy_j_per_image"] = _median(energy)
    if m.unavailable():
        row["unavailable"] = m.unavailable()
    flop, method = step_flops(runner, n)
    row["flop_per_step"], row["flop_method"] = flop, method
    peak_key = "fp8" if point.dtype == "fp8" else str(runner.dtype).removeprefix("torch.")
    peak = peaks.get(peak_key, {}).get("tflops", math.nan)
    row["achieved_tflops"] = flop / step_med / 1e12 if step_med > 0 else math.nan
    row["peak_tflops"], row["peak_dtype"] = peak, peak_key
    row["mfu"] = row["achieved_tflops"] / peak if peak and not math.isnan(peak) else math.nan
    row["floor_step_s"] = flop / (peak * 1e12) if peak and not math.isnan(peak) else math.nan
    row["step_over_floor"] = step_med / row["floor_step_s"] if row["floor_step_s"] else math.nan
    return row, outs_all[0][0].image


def measure_baseline(
    runner: Runner, cases: Sequence[Case], seeds: Sequence[int], spec: ProfileSpec
) -> dict[str, Any]:
    """Median seconds of the bare pipeline call (same repetition rule), or the reason it cannot run."""
    try:
        m = measure(
            lambda: bare_call(runner, cases, seeds),
            runner.device,
            spec.min_reps,
            spec.min_seconds,
            spec.max_reps,
        )
    except Exception as exc:
        return {"baseline_error": f"{type(exc).__name__}: {exc}"}
    st = summarize(m.warm_s)
    out: dict[str, Any] = {
        "baseline_median_s": st["median"],
        "baseline_ci_low_s": st["ci_low"],
        "baseline_ci_high_s": st["ci_high"],
        "baseline_n": st["n"],
        "baseline_first_s": m.first_s,
    }
    out.update(interleaved_overhead(runner, cases, seeds, spec.overhead_pairs or max(3, spec.min_reps)))
    return out


def interleaved_overhead(
    runner: Runner, cases: Sequence[Case], seeds: Sequence[int], rounds: int
) -> dict[str, Any]:
    """Harness vs bare call in alternating pairs (bare, runner, bare, runner, …).

    The block comparison (all harness calls, then all bare calls) is exposed to drift between the
    blocks — on the H200 one pipeline's calls moved by ±30 % between rounds; pairing each runner call with
    the bare call just before it cancels that. Returns the median of the per-pair ratios as a
    percentage with its 95 % bootstrap CI (the pairs resampled), and the pairs.
    """
    pairs: list[tuple[float, float]] = []
    for _ in range(rounds):
        times = []
        for fn in (lambda: bare_call(runner, cases, seeds), lambda: runner.generate(cases, seeds)):
            _sync(runner.device)
            t0 = time.perf_counter()
            fn()
            _sync(runner.device)
            times.append(time.perf_counter() - t0)
        pairs.append((times[0], times[1]))
    ratios = [h / b for b, h in pairs if b > 0]
    est = bootstrap_statistic(ratios, "median")
    return {
        "harness_overhead_paired_pct": 100.0 * (statistics.median(ratios) - 1.0) if ratios else math.nan,
        "harness_overhead_paired_ci_low_pct": 100.0 * (est.low - 1.0),
        "harness_overhead_paired_ci_high_pct": 100.0 * (est.high - 1.0),
        "overhead_pairs_s": [[round(b, 6), round(h, 6)] for b, h in pairs],
    }


# -- the sweep -------------------------------------------------------------------------------


class ProfileScenario(SweepScenario):
    """``evalsuite profile``: every point of a :class:`ProfileSpec`, measured through the runners, in
    the shared run lifecycle (:func:`evalsuite.engine.lifecycle.execute`)."""

    kind = "profile"

    def __init__(
        self,
        spec: ProfileSpec,
        confs: dict[str, cfg.Configuration],
        points: list[Point],
        w: Weights,
        pool: Sequence[Case],
    ) -> None:
        """Every point's runner parameters and axis point are built (and validated) here, before
        anything is loaded.

        Raises:
            ConfigError: a point's value the runner refuses (``--steps 5000``), naming the point.
        """
        super().__init__()
        self.spec, self.confs, self.points, self.w, self.pool = spec, confs, points, w, pool
        self.params = {pt: point_params(confs[pt.config], pt, w.policy) for pt in points}
        self.accel = {pt.load_key: accel_point(pt, spec.fp8_backend) for pt in points}
        self.peaks: dict[str, dict[str, Any]] = {}

    def plan(self, ctx: RunContext) -> None:
        spec, w = self.spec, self.w
        peak_dtypes = sorted(
            {
                "fp8" if p.dtype == "fp8" else ("float32" if w.policy == "tiny" else p.dtype)
                for p in self.points
            }
        )
        if "fp8" in peak_dtypes and "bfloat16" not in peak_dtypes and w.policy != "tiny":
            peak_dtypes.append("bfloat16")
        self.peaks = {
            d: measure_peak_tflops(ctx.device, d, min_seconds=spec.peak_seconds) for d in peak_dtypes
        }
        for d, pk in self.peaks.items():
            log.info("matmul peak %s: %.4g TFLOP/s", d, pk.get("tflops", math.nan))
        ctx.meta["profile"] = {
            "spec": dataclasses.asdict(spec),
            "peaks": self.peaks,
            "overhead_goal_pct": OVERHEAD_GOAL_PCT,
            "timing": "CUDA events/synchronised perf_counter; median, p90, 95 % order-statistic CI of the median",
            "plumbing_only": w.policy in NO_QUALITY_EVIDENCE,
        }

    def run(self, ctx: RunContext) -> None:
        baselined: set[str] = set()
        for key, group in itertools.groupby(self.points, key=lambda p: p.load_key):
            if ctx.stop.requested:
                break
            group_points = list(group)
            conf = self.confs[key[0]]
            try:
                first = group_points[0]
                runner, notes = _load(
                    conf, self.params[first], self.accel[key], self.spec, self.w, ctx.device
                )
            except Exception as exc:
                for pt in group_points:
                    self._record(
                        ctx, conf, pt, {"status": "error", "error": f"load: {type(exc).__name__}: {exc}"}
                    )
                log.error("%s: cannot load: %s", group_points[0].label(), exc)
                continue
            try:
                for pt in group_points:
                    if ctx.stop.requested:
                        break
                    self._record(
                        ctx, conf, pt, self._measure_one(ctx, conf, runner, pt, notes, baselined), runner
                    )
            finally:
                if key[3]:
                    torch._dynamo.reset()  # drop compiled graphs (and what they hold) before freeing
                runner.close()

    def score(self, ctx: RunContext) -> dict[str, Any]:
        from evalsuite.metrics.scoring import score_run

        return score_run(ctx.store, ["latency"], device="cpu")

    def report(self, ctx: RunContext) -> None:
        """``profile.csv/.md/.json`` and the plots (:mod:`evalsuite.report.profile`), then the run report."""
        from evalsuite.report.profile import write_profile
        from evalsuite.report.report import write_report

        write_profile(ctx.store.path, self.rows, ctx.meta)
        write_report(ctx.store.path)

    def _measure_one(
        self,
        ctx: RunContext,
        conf: cfg.Configuration,
        runner: Runner,
        pt: Point,
        notes: dict[str, Any],
        baselined: set[str],
    ) -> dict[str, Any]:
        spec = self.spec
        try:
            runner.params = self.params[pt]  # built before loading: same load fields, this point's size
            cases, seeds = pick_cases(runner, self.pool, pt.batch)
            fields, image = measure_point(runner, pt, cases, seeds, spec, self.peaks)
            if (
                spec.baseline
                and conf.name not in baselined
                and pt.memory == "gpu"
                and not pt.compile
                and pt.dtype != "fp8"
            ):
                baselined.add(conf.name)
                fields.update(measure_baseline(runner, cases, seeds, spec))
                if "baseline_median_s" in fields:
                    fields["harness_overhead_pct"] = 100.0 * (
                        fields["e2e_median_s"] / fields["baseline_median_s"] - 1.0
                    )
            fields.update(
                {
                    "status": "ok",
                    "error": None,
                    "case_id": cases[0].id,
                    "seed": seeds[0],
                    "load_s": notes.get("load_s"),
                    "prompt": cases[0].prompt,
                    "latency_s": fields["per_image_s"],
                    "fp8_backend": notes.get("precision") if pt.dtype == "fp8" else None,
                }
            )
            if spec.save_images:
                rel = ctx.store.image_relpath(pt.label(), cases[0].id, seeds[0])
                save_png_atomic(image, ctx.store.path / rel)
                fields["image"] = rel
            log.info(
                "%s: %.4g s/call (first %.4g s), %.4g s/step",
                pt.label(),
                fields["e2e_median_s"],
                fields["first_call_s"],
                fields["step_median_s"],
            )
        except Exception as exc:
            log.error("%s: %s: %s", pt.label(), type(exc).__name__, exc)
            fields = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        return fields

    def _record(
        self,
        ctx: RunContext,
        conf: cfg.Configuration,
        pt: Point,
        fields: dict[str, Any],
        runner: Runner | None = None,
    ) -> dict[str, Any]:
        row = {
            "config": pt.label(),
            "case_id": fields.pop("case_id", "-"),
            "seed": fields.pop("seed", 0),
            "base_config": pt.config,
            "weights": self.w.policy,
            "width": pt.width,
            "height": pt.height,
            "batch": pt.batch,
            "steps": pt.steps,
            "dtype": pt.dtype,
            "memory": pt.memory,
            "compile": pt.compile,
            "image": fields.pop("image", None),
            **fields,
        }
        return self.record(
            ctx,
            row,
            conf,
            self.w.policy,
            params=dataclasses.asdict(runner.params) if runner else conf.params_dict(),
            load_error=fields.get("error") if row["status"] == "error" else None,
            effective=runner.effective() if runner else None,
        )


def profile(
    spec: ProfileSpec,
    weights: str = "random",
    device: str | torch.device | None = "auto",
    out: str | Path = "reports",
    run_id: str | None = None,
    overrides: Sequence[str] = (),
    config_dirs: Sequence[str | Path] = (),
    dataset: str = "smoke",
    force: bool = False,
) -> Path:
    """Run a profile sweep and write its run directory; returns the directory.

    Same lifecycle as ``evalsuite run`` (:mod:`evalsuite.engine.lifecycle`): run lock, store,
    provenance and ``run.json`` schema (``kind: profile``), SIGINT/SIGTERM handling.

    Raises:
        ConfigError, RegistryError, RunConfigError, ValueError: for unusable arguments, before anything
            is loaded.
        DoesNotFitError: ``random``/``hub`` weights on a CPU (:func:`evalsuite.scenarios.fit.check_fits`),
            unless ``force``.
        RunLockedError: another live process uses the run directory.
        RunInterrupted: after SIGINT/SIGTERM (``result`` is the run directory), everything written.
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
    sweep = Sweep.from_config("profile", config)
    ovs = [cfg.Override.parse(o) for o in config.overrides]
    confs = {c.name: c for c in cfg.resolve_many(spec.configs, ovs, config.config_dirs)}
    points = spec.points(list(confs.values()), sweep.weights.policy)
    builds = {(pt.config, pt.dtype): pt for pt in points}  # the weights' size depends on these only
    check_fits(
        "profile",
        [
            (f"{c} ({dtype})", confs[c], point_params(confs[c], pt, sweep.weights.policy))
            for (c, dtype), pt in builds.items()
        ],
        sweep.weights.policy,
        sweep.device,
        force=config.force,
    )
    scenario = ProfileScenario(spec, confs, points, sweep.weights, list(sweep.dataset.cases))
    return sweep.execute(
        scenario,
        sweep.store(),
        seeds="0..batch-1",
        metrics=["latency"],
        dataset_note="profile cases (the first usable case, repeated per batch)",
    )
