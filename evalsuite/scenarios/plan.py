"""``evalsuite plan CONFIG --budget 22GiB``: the fastest measured way to run a configuration in N GiB.

1. **Component sizes**: the configuration is loaded once; the weights of every component
   (``runner.components()``) are summed, and one resident call gives the activation peak
   (allocator peak − weights) at the configuration's resolution.
2. **Candidates**: each strategy (a point of :mod:`evalsuite.accel.axes` whose axes are precision
   and memory, e.g. ``precision=layerwise,memory=te_cpu+group_block:1:stream``) gets an
   *estimate* of the weights it leaves on the device (:func:`resident_estimate`). An estimate only
   filters: strategies whose estimated weights alone exceed the largest budget are not run, and
   say so.
3. **Measured**: every other strategy is loaded, applied and called (one cold call, then warm
   calls); its latency (median warm s/image) and its **device peak** (NVML, sampled every 20 ms over
   all calls, the cold one included, so it contains the CUDA context) are recorded.
4. **Chosen**: per budget, the fastest strategy whose measured device peak ≤ budget.
5. **Verified**: the chosen strategy is loaded and applied again; then a ballast tensor takes the
   device's free memory down to exactly the budget (NVML ``used`` = budget), and the calls are
   repeated. "Fits 22 GiB" means these calls ran with 22 GiB of device memory in total, context
   included. Loading itself runs before the ballast (random weights are built on the GPU, then
   the strategy moves them). Without a CUDA device the verification is skipped with that reason.

Outputs a run directory: ``run.json`` (``kind: plan``), ``rows.jsonl``, ``plan.csv``, ``plan.md``
(sizes, strategies, the choice and verification per budget), ``plan.json``, ``plan.png`` (latency
vs device peak per strategy, the budget lines drawn; rendered by :mod:`evalsuite.report.plan`).

It runs as :class:`PlanScenario` in the shared run lifecycle (:mod:`evalsuite.engine.lifecycle`):
the run lock, ``run.json`` schema ``evalsuite.run/2`` with the environment block, Ctrl-C/SIGTERM
stop between strategies (the choices are then made from the strategies measured; exit 130/143).
Each strategy is measured by :func:`evalsuite.trackers.tracking.cold_then_warm`.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from evalsuite.accel.axes import ApplyContext, PointSpec, apply_point, load_params
from evalsuite.accel.errors import Unavailable
from evalsuite.accel.memory import GIB, component_sizes, reset_allocator
from evalsuite.config import configuration as cfg
from evalsuite.config.runconfig import RunConfigError, SweepConfig
from evalsuite.engine.lifecycle import RunContext
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import Runner
from evalsuite.runners.weights import Weights
from evalsuite.scenarios.fit import check_fits
from evalsuite.scenarios.sweep import Sweep, SweepScenario, usable_cases
from evalsuite.trackers.tracking import cold_then_warm, summarize

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = [
    "resident",
    "memory=te_cpu",
    "precision=layerwise,memory=te_cpu",
    "precision=fp8,memory=te_cpu",
    "precision=layerwise,memory=te_cpu+vae_tiling",
    "precision=layerwise,memory=te_cpu+expandable",
    "precision=layerwise_all,memory=te_cpu+expandable",
    "precision=layerwise_all,memory=te_cpu+expandable+group_partial:0.45:stream",
    "precision=layerwise_all,memory=te_cpu+expandable+group_partial:0.7:stream",
    "memory=te_cpu+group_block:1:stream",
    "precision=layerwise,memory=te_cpu+group_block:1:stream+vae_tiling",
    "memory=te_cpu+group_leaf:stream+vae_tiling",
    "precision=layerwise,memory=model_offload",
    "memory=model_offload",
]


def parse_gib(text: str) -> float:
    """``22GiB``, ``22``, ``16G``, ``12.5gib``, ``20000MiB`` → GiB.

    Raises:
        RunConfigError: (a ValueError) naming the text and the accepted forms.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(gib|g|gb|mib|m|mb)?\s*", text.lower())
    if not m:
        raise RunConfigError(f"budget {text!r}: write e.g. 22GiB, 16G, 12 or 20000MiB")
    v = float(m.group(1))
    unit = m.group(2) or "gib"
    if unit in ("mib", "m", "mb"):
        v /= 1024.0
    return v


def strategy_point(text: str) -> PointSpec:
    """A strategy as a point (``resident`` = the reference); only precision and memory axes allowed."""
    pt = PointSpec.parse("" if text == "resident" else text)
    bad = [k for k, _ in pt.axes if k not in ("precision", "memory")]
    if bad:
        raise RunConfigError(
            f"strategy {text!r}: only precision= and memory= axes make a memory strategy, not {bad}"
        )
    return pt


_ELEMENT = {
    "bf16": None,
    "fp8": 1.0,
    "fp8_tensor": 1.0,
    "fp8_row": 1.0,
    "layerwise": 1.0,
    "layerwise_all": 1.0,
    "int8wo": 1.0,
    "nf4": 0.5,
}


def resident_estimate(
    sizes: dict[str, float], denoisers: Sequence[str], point: PointSpec, element_size: float = 2.0
) -> float:
    """GiB of weights the strategy leaves on the device, from component sizes (a filter, not a measurement).

    ``te_offload``/``te_cpu`` remove the text encoders; ``model_offload`` keeps the largest component;
    ``sequential`` keeps none; group offload keeps none of the denoisers (one group at a time, ignored);
    ``group_partial:F`` keeps ``1 − F`` of them (blocks are taken as equal in size);
    a precision of ``b`` bytes per weight scales the denoisers by ``b / element_size``.
    """
    parts = [p.split(":")[0] for p in (point.get("memory") or "").split("+") if p]
    prec = point.get("precision") or "bf16"
    scale = 1.0 if _ELEMENT.get(prec) is None else float(_ELEMENT[prec] or 1.0) / element_size
    size = {k: (v * scale if k in denoisers else v) for k, v in sizes.items()}
    if "sequential" in parts:
        return 0.0
    if "model_offload" in parts:
        return max(size.values()) if size else 0.0
    if {"te_offload", "te_cpu"} & set(parts):
        size = {k: v for k, v in size.items() if not k.startswith("text_encoder")}
    if {"group_block", "group_leaf"} & set(parts):
        size = {k: v for k, v in size.items() if k not in denoisers}
    for p in (point.get("memory") or "").split("+"):
        name, *opts = p.split(":")
        frac = [float(o) for o in opts if re.fullmatch(r"[0-9]*\.?[0-9]+", o)]
        if name == "group_partial" and frac:
            size = {k: (v * (1.0 - min(frac[0], 1.0)) if k in denoisers else v) for k, v in size.items()}
    return float(sum(size.values()))


@dataclass
class PlanSpec:
    """Attributes:
    config: configuration name.
    budgets: GiB budgets (each gets a choice and a verification).
    strategies: strategy texts.
    reps: warm calls per strategy (after one cold call).
    verify: verify each choice under an enforced cap (CUDA only).
    max_seconds: stop measuring further strategies after this long (they are listed as skipped).
    """

    config: str
    budgets: list[float]
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    reps: int = 2
    verify: bool = True
    max_seconds: float = math.inf

    def validate(self) -> None:
        """Raise :class:`RunConfigError` (a ``ValueError``) naming the field for an unusable value (before anything is loaded)."""
        if not self.budgets or any(not b > 0 for b in self.budgets):
            raise RunConfigError(f"plan: --budget {self.budgets}: need one or more budgets > 0 GiB")
        if not self.strategies:
            raise RunConfigError("plan: --strategies: need at least one strategy")
        if self.reps < 1:
            raise RunConfigError(f"plan: --reps {self.reps}: need at least 1 warm call")
        for s in self.strategies:
            strategy_point(s)


class Ballast:
    """Hold device memory so that NVML ``used`` = ``budget_gib`` (a device-level cap, context included)."""

    def __init__(self, device: torch.device, budget_gib: float) -> None:
        from evalsuite.trackers.tracking import nvml_memory_reader

        self.device = device
        self.tensor: torch.Tensor | None = None
        read = nvml_memory_reader(device)
        torch.cuda.empty_cache()
        used = read()
        total = torch.cuda.get_device_properties(device).total_memory
        self.used_before_gib = used / GIB
        self.budget_gib = budget_gib
        if used > budget_gib * GIB:
            raise MemoryError(
                f"{used / GIB:.2f} GiB already in use before the calls (weights left on the device + "
                f"context) > budget {budget_gib:g} GiB"
            )
        # take the free memory down to (budget − used): then NVML used = budget
        self.bytes = max(0, (total - used) - (int(budget_gib * GIB) - used))
        if self.bytes:
            self.tensor = torch.empty(self.bytes, dtype=torch.uint8, device=device)
        self.used_after_gib = read() / GIB

    def release(self) -> None:
        self.tensor = None
        torch.cuda.empty_cache()


def _measure(
    conf: cfg.Configuration,
    pt: PointSpec,
    w: Weights,
    dev: torch.device,
    pool: Sequence[Any],
    reps: int,
    budget_gib: float | None = None,
    label: str = "",
) -> dict[str, Any]:
    row: dict[str, Any] = {"strategy": pt.label if pt.axes else "resident"}
    runner: Runner | None = None
    ballast: Ballast | None = None
    try:
        log.info("%s: load", label)
        runner = RUNNERS.get(conf.runner)(load_params(conf.params, pt, f"plan strategy {pt.label!r}"), w, dev)
        runner.load()
        case = usable_cases(runner, pool, 1)[0]
        log.info("%s: apply", label)
        row["notes"] = apply_point(runner, pt, ApplyContext(config=conf.name))
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            row["resident_alloc_gib"] = torch.cuda.memory_allocated(dev) / GIB
        if budget_gib is not None:
            ballast = Ballast(dev, budget_gib)
            row["ballast_gib"] = ballast.bytes / GIB
            row["used_before_calls_gib"] = ballast.used_before_gib
            row["used_with_ballast_gib"] = ballast.used_after_gib
        call = runner.generate
        m = cold_then_warm(
            dev,
            lambda: call([case], [0]),
            min_reps=reps,
            max_reps=reps,
            before_each=lambda i: log.info(
                "%s: call %d/%d%s", label, i + 1, reps + 1, " (cold)" if i == 0 else ""
            ),
        )
        row["first_call_s"] = m.cold.seconds
        st = summarize(m.warm_s)
        row.update(status="ok", s_per_image=st["median"], n=st["n"])
        # the device peak over every call, the cold one included (it holds the CUDA context's growth)
        nvml = m.peak("nvml_peak_gib", cold=True)
        if nvml is not None:
            row["nvml_peak_gib"] = nvml - (ballast.bytes / GIB if ballast else 0.0)
            if ballast is not None:
                row["nvml_peak_total_gib"] = nvml
        else:
            row["unavailable"] = m.unavailable() or "nvml_peak_gib: no sample"
        for key in ("alloc_peak_gib", "reserved_peak_gib"):
            if m.peak(key, cold=True) is not None:
                row[key] = m.peak(key, cold=True)
        log.info("%s: %.4g s/image, device peak %s GiB", label, st["median"], row.get("nvml_peak_gib"))
    except Unavailable as exc:
        row.update(status="unavailable", reason=str(exc))
    except (torch.OutOfMemoryError, MemoryError) as exc:
        row.update(status="oom", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    except Exception as exc:
        row.update(status="error", reason=f"{type(exc).__name__}: {exc}")
        log.error("%s: %s", label, row["reason"])
    finally:
        if ballast is not None:
            ballast.release()
        if runner is not None:
            runner.close()
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        reset_allocator(dev)
    return row


def peak_for_budget(row: dict[str, Any]) -> tuple[float, str]:
    """(GiB, basis) compared with a budget: the measured NVML device peak, or — where NVML cannot
    measure (CPU) — the estimated device weights, labelled ``estimate``."""
    if row.get("nvml_peak_gib") is not None and not math.isnan(row["nvml_peak_gib"]):
        return float(row["nvml_peak_gib"]), "measured (NVML)"
    return float(row.get("estimated_resident_gib", math.inf)), "estimate (no NVML on this device)"


def choose(rows: list[dict[str, Any]], budget_gib: float) -> dict[str, Any] | None:
    """The fastest ok row whose device peak (:func:`peak_for_budget`) ≤ budget (``None`` if none)."""
    fit = [r for r in rows if r.get("status") == "ok" and peak_for_budget(r)[0] <= budget_gib]
    return min(fit, key=lambda r: r["s_per_image"]) if fit else None


class PlanScenario(SweepScenario):
    """``evalsuite plan`` in the shared run lifecycle: component sizes, then each strategy measured
    (or skipped with its reason), then per budget the fastest that fits, verified under an enforced
    cap. A signal stops it between strategies; the choices are then made from what was measured."""

    kind = "plan"

    def __init__(self, spec: PlanSpec, conf: cfg.Configuration, w: Weights, pool: Sequence[Any]) -> None:
        super().__init__()
        self.spec, self.conf, self.w, self.pool = spec, conf, w, pool
        self.points = [(s, strategy_point(s)) for s in spec.strategies]
        self.measured: list[dict[str, Any]] = []  # the "measure" rows (verification rows are apart)

    def plan(self, ctx: RunContext) -> None:
        conf = self.conf
        ctx.meta["configs"][conf.name] = {
            "runner": conf.runner,
            "description": conf.description,
            "source": conf.source,
            "params": conf.params_dict(),
            "weights": self.w.policy,
        }
        ctx.meta["weights"][conf.name] = self.w.policy
        ctx.meta["plan"] = {"spec": dataclasses.asdict(self.spec), "weights": self.w.policy}

    def _record(self, ctx: RunContext, row: dict[str, Any], config: str, phase: str) -> None:
        row.update(config=config, case_id="-", seed=0, phase=phase)
        strategy = str(row.get("strategy"))
        self.record(ctx, row, self.conf, self.w.policy, strategy=strategy, phase=phase)

    def run(self, ctx: RunContext) -> None:
        spec, conf, w, dev, meta = self.spec, self.conf, self.w, ctx.device, ctx.meta
        # 1. sizes
        log.info("plan %s: component sizes", conf.name)
        runner = RUNNERS.get(conf.runner)(conf.params, w, dev)
        runner.load()
        sizes = component_sizes(runner)
        dens = list(runner.denoisers())
        elem = (
            float(next(iter(runner.denoisers().values())).parameters().__next__().element_size())
            if dens
            else 2.0
        )
        runner.close()
        del runner
        gc.collect()
        meta["plan"]["component_gib"] = sizes
        meta["plan"]["denoisers"] = dens
        # 2. + 3. candidates, measured
        largest = max(spec.budgets)
        started = time.perf_counter()
        for k, (text, pt) in enumerate(self.points, 1):
            if ctx.stop.requested:
                break
            est = resident_estimate(sizes, dens, pt, elem)
            label = f"[{k}/{len(self.points)}] {conf.name} {text}"
            row: dict[str, Any]
            if time.perf_counter() - started > spec.max_seconds:
                row = {
                    "strategy": text,
                    "status": "skipped",
                    "reason": f"time limit {spec.max_seconds:g} s reached",
                }
            elif (
                est > largest and text != "resident"
            ):  # the resident point is the latency reference: always run
                row = {
                    "strategy": text,
                    "status": "skipped",
                    "reason": f"estimated weights on the device {est:.2f} GiB > largest budget {largest:g} GiB",
                }
            else:
                row = _measure(conf, pt, w, dev, self.pool, spec.reps, label=label)
                row["strategy"] = text
            row["estimated_resident_gib"] = est
            self._record(ctx, row, f"{conf.name}[{text}]", "measure")
            self.measured.append(row)
        rows = self.measured
        ok_res = [r for r in rows if r["strategy"] == "resident" and r.get("status") == "ok"]
        if ok_res and "alloc_peak_gib" in ok_res[0]:
            meta["plan"]["activation_gib"] = ok_res[0]["alloc_peak_gib"] - sum(sizes.values())
        resident_s = ok_res[0]["s_per_image"] if ok_res else math.nan
        # 4. + 5. chosen and verified
        choices = []
        for b in spec.budgets:
            best = choose(rows, b)
            ch: dict[str, Any] = {"budget_gib": b, "strategy": best["strategy"] if best else None}
            if best:
                ch.update(
                    s_per_image=best["s_per_image"],
                    nvml_peak_gib=peak_for_budget(best)[0],
                    peak_basis=peak_for_budget(best)[1],
                    vs_resident=best["s_per_image"] / resident_s if resident_s == resident_s else math.nan,
                )
                ch.update(self._verify(ctx, best["strategy"], b))
            choices.append(ch)
        meta["plan"]["choices"] = choices
        meta["plan"]["resident_s"] = resident_s
        ctx.save_meta()

    def _verify(self, ctx: RunContext, strategy: str, budget: float) -> dict[str, Any]:
        """The verification fields of a choice: the chosen strategy run again under an enforced cap."""
        if ctx.stop.requested:
            return {"verified": "not verified: the run was interrupted"}
        if not self.spec.verify:
            return {"verified": "not asked (--no-verify)"}
        if ctx.device.type != "cuda":
            return {"verified": "skipped: no CUDA device (the cap is a ballast allocation on the GPU)"}
        v = _measure(
            self.conf,
            strategy_point(strategy),
            self.w,
            ctx.device,
            self.pool,
            self.spec.reps,
            budget_gib=budget,
            label=f"verify {budget:g} GiB {strategy}",
        )
        self._record(ctx, v, f"{self.conf.name}[{strategy}]@{budget:g}GiB", "verify")
        keys = (
            "status",
            "reason",
            "s_per_image",
            "nvml_peak_gib",
            "nvml_peak_total_gib",
            "ballast_gib",
            "used_with_ballast_gib",
        )
        return {
            "verify": {k: v.get(k) for k in keys},
            "verified": (
                f"ran under an enforced {budget:g} GiB cap: {v['s_per_image']:.4g} s/image"
                if v.get("status") == "ok"
                else f"FAILED under the cap: {v.get('reason')}"
            ),
        }

    def report(self, ctx: RunContext) -> None:
        """``plan.csv``, ``plan.md``, ``plan.json`` and ``plan.png`` from the measured strategies
        (:mod:`evalsuite.report.plan`)."""
        from evalsuite.report.plan import write_plan

        ctx.meta["plan"].setdefault("choices", [])
        write_plan(ctx.store.path, self.measured, ctx.meta, self.spec.budgets)


def plan(
    spec: PlanSpec,
    weights: str = "random",
    device: str | torch.device | None = "auto",
    out: str | Path = "reports",
    run_id: str | None = None,
    overrides: Sequence[str] = (),
    config_dirs: Sequence[str | Path] = (),
    dataset: str = "smoke",
    force: bool = False,
) -> Path:
    """Run the planner; returns the run directory.

    The lifecycle, and the errors raised, are those of :func:`evalsuite.scenarios.profile.profile`
    (``kind: plan`` in ``run.json``).
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
    sweep = Sweep.from_config("plan", config)
    conf = cfg.resolve(spec.config, [cfg.Override.parse(o) for o in config.overrides], config.config_dirs)
    check_fits(
        "plan", [(conf.name, conf, conf.params)], sweep.weights.policy, sweep.device, force=config.force
    )
    scenario = PlanScenario(spec, conf, sweep.weights, list(sweep.dataset.cases))
    return sweep.execute(
        scenario,
        sweep.store(conf.name),
        seeds=[0],
        metrics=["latency"],
        dataset_note="the first usable case of the dataset, seed 0",
    )
