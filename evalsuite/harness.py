"""The orchestrator: resolve configurations → load each runner → generate the pending cases →
store rows and images → score → write the report.

Everything model-specific lives in the runners; everything about numbers lives in the metrics
and trackers; this module only moves data between them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import config as cfg
from .cases import Case, Dataset
from .datasets_registry import load_dataset
from .environment import environment
from .imageio import save_png_atomic
from .registry import RUNNERS
from .runners.base import CaseError, GenerationOutput, Runner
from .scoring import score_run
from .store import RunStore, row_key
from .trackers import DeviceMonitor
from .weights import Weights

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("reports")


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes:
        run_dir: the run directory.
        samples: one row per (configuration, case, seed), as in ``samples.parquet``.
        summary: per configuration: counts and metric aggregates (as in ``run.json``).
        meta: the full ``run.json``.
    """

    run_dir: Path
    samples: pd.DataFrame
    summary: dict[str, Any]
    meta: dict[str, Any]

    @property
    def n_errors(self) -> int:
        """Rows whose status is ``error``."""
        return int((self.samples["status"] == "error").sum()) if len(self.samples) else 0

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return self.n_errors == 0


def pick_device(device: str | torch.device | None, policy: str) -> torch.device:
    """``auto``/``None`` → ``cuda`` when available and the policy is not ``tiny``, else ``cpu`` (logged)."""
    if device not in (None, "auto"):
        d = torch.device(device)
        if d.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but CUDA is not available on this machine")
        return d
    d = torch.device("cuda" if torch.cuda.is_available() and policy != "tiny" else "cpu")
    log.info("device: %s (auto: %s weights)", d, policy)
    return d


def default_run_id(dataset: Dataset, configs: Sequence[cfg.Configuration], weights: Weights, seeds: Sequence[int] | None) -> str:
    """A run id determined by what is run, so rerunning the same command resumes the same directory."""
    key = json.dumps(
        {"data": dataset.fingerprint, "cases": [c.id for c in dataset.cases], "seeds": seeds, "weights": weights.policy,
         "configs": {c.name: c.params_dict() for c in configs}},
        sort_keys=True, default=str,
    )
    return f"{dataset.name}-{weights.policy}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def work_items(configs: Sequence[cfg.Configuration], dataset: Dataset, seeds: Sequence[int] | None) -> list[tuple[str, Case, int]]:
    """Every (configuration, case, seed) in a fixed order. ``seeds=None`` uses each case's own seed."""
    return [
        (c.name, case, s)
        for c in configs
        for case in dataset.cases
        for s in (seeds if seeds is not None else [case.seed])
    ]


def _base_row(config: str, case: Case, seed: int, policy: str) -> dict[str, Any]:
    return {"config": config, "case_id": case.id, "seed": int(seed), "category": case.category,
            "mask_family": case.mask_family, "prompt": case.prompt, "weights": policy}


def _ok_row(base: dict[str, Any], out: GenerationOutput, image: str, batch: int) -> dict[str, Any]:
    row = {**base, "status": "ok", "error": None, "image": image, "batch_size": batch}
    for k, v in out.phases.items():
        row[f"{k}_s"] = float(v)
    row["latency_s"] = float(sum(out.phases.values()))
    row["steps_s"] = [float(s) for s in out.steps]
    row["step_median_s"] = float(pd.Series(out.steps).median()) if out.steps else math.nan
    row.update({k: float(v) for k, v in out.memory.items()})
    row.update({k: v for k, v in out.info.items() if isinstance(v, int | float | str | bool)})
    return row


def _error_row(base: dict[str, Any], exc: BaseException, where: str) -> dict[str, Any]:
    msg = f"{where}: {type(exc).__name__}: {exc}"
    log.error("%s %s seed %s — %s", base["config"], base["case_id"], base["seed"], msg)
    log.debug("%s", "".join(traceback.format_exception(exc)))
    return {**base, "status": "error", "error": msg, "image": None}


def _monitor_fields(mon: DeviceMonitor, n: int, first_call: bool) -> dict[str, Any]:
    """Row fields from the monitor around one batch: wall and energy per image, device/host peaks."""
    res = mon.result
    out: dict[str, Any] = {"wall_s": res["wall_s"] / n, "first_call": first_call}
    if "energy_j" in res:
        out["energy_j"] = res["energy_j"] / n
    out.update({k: res[k] for k in ("nvml_peak_gib", "host_peak_rss_gib") if k in res})
    if mon.reasons:
        out["unavailable"] = "; ".join(f"{k}: {v}" for k, v in sorted(mon.reasons.items()))
    return out


def _generate_batch(runner: Runner, store: RunStore, config: str, batch: list[tuple[Case, int]], policy: str,
                    first_call: bool = False) -> list[dict[str, Any]]:
    """Generate one batch; on failure fall back to one case at a time so one bad case sinks only itself."""
    mon = DeviceMonitor(runner.device)
    try:
        for case, _ in batch:
            runner.check_case(case)
        with mon.watch():
            outs = runner.generate([c for c, _ in batch], [s for _, s in batch])
    except CaseError as exc:
        if len(batch) > 1:
            return [r for item in batch for r in _generate_batch(runner, store, config, [item], policy)]
        log.warning("%s %s: skipped — %s", config, batch[0][0].id, exc)
        return [{**_base_row(config, batch[0][0], batch[0][1], policy), "status": "skipped", "error": str(exc),
                 "image": None}]
    except Exception as exc:
        if len(batch) > 1:
            return [r for item in batch for r in _generate_batch(runner, store, config, [item], policy)]
        return [_error_row(_base_row(config, batch[0][0], batch[0][1], policy), exc, "generate")]
    rows = []
    for (case, seed), out in zip(batch, outs, strict=True):
        rel = store.image_relpath(config, case.id, seed)
        save_png_atomic(out.image, store.path / rel)
        rows.append({**_ok_row(_base_row(config, case, seed, policy), out, rel, len(batch)),
                     **_monitor_fields(mon, len(batch), first_call)})
    return rows


def run(
    configs: Sequence[str] | None = None,
    dataset: str | Dataset = "smoke",
    weights: str = "tiny",
    out: str | Path = DEFAULT_OUT,
    run_id: str | None = None,
    run_dir: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    device: str | torch.device | None = "auto",
    overrides: Sequence[str | cfg.Override] = (),
    metrics: Sequence[str] | None = None,
    weights_dir: str | Path | None = None,
    limit: int | None = None,
    config_dirs: Sequence[str | Path] = (),
    progress: bool = True,
    report: bool = True,
) -> RunResult:
    """Run configurations over a dataset, store everything in a run directory, score and report.

    Args:
        configs: configuration names (``all`` for every YAML configuration); default: all.
        dataset: a dataset name, a folder/manifest path, or a :class:`Dataset`.
        weights: ``tiny``, ``random`` or ``hub`` (see :mod:`evalsuite.weights`).
        out: root under which the run directory is created.
        run_id: run directory name; default derived from what is run, so the same command
            resumes the same directory.
        run_dir: explicit run directory (overrides ``out``/``run_id``).
        seeds: seeds per case; default each case's own ``seed``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        overrides: ``[CONFIG.]FIELD=VALUE`` strings or :class:`~evalsuite.config.Override`.
        metrics: metric names to score at the end (default ``latency``; ``[]`` skips scoring).
        weights_dir: folder of pre-downloaded weights for air-gapped machines.
        limit: only the first ``limit`` cases.
        config_dirs: extra folders of configuration YAML.
        progress: show tqdm progress bars.
        report: write ``report.md`` at the end.

    Returns:
        A :class:`RunResult`. Rows that failed have ``status == "error"`` and their message;
        the run itself does not raise for them.

    Raises:
        ConfigError, ManifestError, FileNotFoundError, RegistryError: for unusable arguments,
            before anything is generated.
    """
    ovs = [o if isinstance(o, cfg.Override) else cfg.Override.parse(o) for o in overrides]
    w = Weights(weights, Path(weights_dir) if weights_dir else None)  # type: ignore[arg-type]
    confs = cfg.resolve_many(list(configs) if configs else ["all"], ovs, config_dirs)
    ds = load_dataset(dataset) if not isinstance(dataset, Dataset) else dataset
    if limit is not None:
        ds = ds.select(limit=limit)
    metric_names = ["latency"] if metrics is None else list(metrics)
    from .registry import METRICS

    for m in metric_names:
        METRICS.get(m)  # unknown metric → error before generating anything
    dev = pick_device(device, w.policy)
    rid = run_id or default_run_id(ds, confs, w, seeds)
    store = RunStore(Path(run_dir) if run_dir else Path(out) / rid)
    store.path.mkdir(parents=True, exist_ok=True)

    meta: dict[str, Any] = store.read_meta() if store.exists() else {}
    meta.update({
        "run_id": store.path.name,
        "created": meta.get("created") or _now(),
        "started": _now(),
        "finished": None,
        "dataset": {"name": ds.name, "size": len(ds), "fingerprint": ds.fingerprint, "source": ds.source},
        "seeds": list(seeds) if seeds is not None else "per-case",
        "generator": {"device": "cpu", "kind": "torch.Generator per sample, manual_seed(seed)"},
        "weights": {c.name: w.policy for c in confs},
        "weights_dir": str(w.weights_dir) if w.weights_dir else None,
        "metrics": metric_names,
        "environment": environment(dev),
        "configs": {
            c.name: {"runner": c.runner, "description": c.description, "source": c.source,
                     "params": c.params_dict(), "overrides": c.overrides, "weights": w.policy,
                     "load_error": None}
            for c in confs
        },
    })
    store.write_meta(meta)

    items = work_items(confs, ds, seeds)
    done = store.done_keys()
    log.info("run directory %s: %d work items, %d already done", store.path, len(items), len(done))
    for conf in confs:
        todo = [(case, s) for name, case, s in items if name == conf.name and (name, case.id, int(s)) not in done]
        if not todo:
            continue
        runner_cls = RUNNERS.get(conf.runner)
        runner: Runner = runner_cls(conf.params, w, dev)
        try:
            t0 = time.perf_counter()
            runner.load()
            meta["configs"][conf.name]["load_s"] = time.perf_counter() - t0
            meta["configs"][conf.name]["effective"] = runner.effective()
        except Exception as exc:
            meta["configs"][conf.name]["load_error"] = f"{type(exc).__name__}: {exc}"
            for case, s in todo:
                store.append_row(_error_row(_base_row(conf.name, case, s, w.policy), exc, "load"))
            runner.close()
            continue
        bs = conf.params.batch_size
        bar = tqdm(total=len(todo), desc=conf.name, unit="img", disable=not progress, leave=False)
        try:
            for i in range(0, len(todo), bs):
                batch = todo[i : i + bs]
                for row in _generate_batch(runner, store, conf.name, batch, w.policy, first_call=i == 0):
                    store.append_row(row)
                bar.update(len(batch))
        finally:
            bar.close()
            runner.close()
        store.write_meta(meta)

    wanted = {(n, c.id, int(s)) for n, c, s in items}
    summary = score_run(store, metric_names, device=dev, keys=wanted, progress=progress)
    df = store.write_samples()
    df = df[[row_key(r) in wanted for r in df.to_dict("records")]].reset_index(drop=True)
    meta["summary"] = summary
    meta["finished"] = _now()
    store.write_meta(meta)
    if report:
        from .report import write_report

        write_report(store.path)
    return RunResult(store.path, df, summary, meta)


def load_run(path: str | Path) -> RunResult:
    """Read a run directory back (``run.json`` + ``samples.parquet``).

    Raises:
        FileNotFoundError: if ``path`` is not a run directory.
    """
    store = RunStore(path)
    meta = store.read_meta()
    return RunResult(store.path, store.samples(), meta.get("summary", {}), meta)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
