"""The orchestrator: resolve configurations → load each runner → generate the pending cases →
store rows and images → score → write the report.

Everything model-specific lives in the runners; everything about numbers lives in the metrics
and trackers; this module only moves data between them.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from evalsuite.config import configuration as cfg
from evalsuite.data.cases import MAX_SEED, Case, Dataset
from evalsuite.data.imageio import save_png_atomic
from evalsuite.data.registry import load_dataset
from evalsuite.engine import distributed as distributed
from evalsuite.engine.determinism import determinism_settings
from evalsuite.engine.lock import RunLock
from evalsuite.engine.provenance import environment
from evalsuite.engine.store import RunStore, row_key, write_json_atomic
from evalsuite.metrics.features import check_metric_weights, default_mode
from evalsuite.metrics.scoring import count_summary, default_metrics, score_run
from evalsuite.registry import RUNNERS
from evalsuite.runners.base import CaseError, GenerationOutput, Runner
from evalsuite.runners.weights import Weights
from evalsuite.trackers.tracking import DeviceMonitor

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

    def summary_line(self) -> str:
        """One line with the row counts by status, e.g. ``12 rows: 10 ok, 1 error, 1 skipped``."""
        status = list(self.samples["status"]) if len(self.samples) else []
        counts = ", ".join(f"{status.count(k)} {k}" for k in ("ok", "error", "skipped"))
        return f"{len(status)} rows: {counts}"


class RunInterrupted(KeyboardInterrupt):
    """Raised by :func:`run` after a Ctrl-C (SIGINT) once the current batch and every file are written.

    Attributes:
        result: the :class:`RunResult` of what was finished; rerunning the same call resumes.
    """

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"interrupted; {result.summary_line()} so far in {result.run_dir}")
        self.result = result


class _StopOnSigint:
    """While active (main thread only), the first SIGINT sets :attr:`requested` instead of raising;
    a second SIGINT raises ``KeyboardInterrupt`` at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "interrupt: finishing the current case, then writing everything and stopping "
            "(Ctrl-C again aborts at once; rerunning the same command resumes)"
        )

    def __enter__(self) -> _StopOnSigint:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


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


THREADS_ENV = "EVALSUITE_THREADS"


def apply_thread_policy(device: torch.device, policy: str) -> int:
    """Set torch's intra-op thread count for this process and return it.

    Tiny models on a CPU are all per-operator overhead: with two or more OpenMP threads on a shared
    machine the threads spin against each other (measured on a 2-core machine with one other busy
    process: 0.59 s per tiny image with one thread, 13.9 s with two). So under ``tiny`` weights on the
    CPU evalsuite uses one thread unless the user asks otherwise with ``EVALSUITE_THREADS=N`` (or
    ``OMP_NUM_THREADS``, which torch reads itself). Other policies keep torch's default.
    """
    asked = os.environ.get(THREADS_ENV)
    if asked:
        try:
            n = int(asked)
        except ValueError:
            raise ValueError(f"{THREADS_ENV}={asked!r}: expected a positive integer") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV}={asked!r}: expected a positive integer")
        torch.set_num_threads(n)
    elif policy == "tiny" and device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    return torch.get_num_threads()


def default_run_id(
    dataset: Dataset, configs: Sequence[cfg.Configuration], weights: Weights, seeds: Sequence[int] | None
) -> str:
    """A run id determined by what is run, so rerunning the same command resumes the same directory."""
    key = json.dumps(
        {
            "data": dataset.fingerprint,
            "cases": [c.id for c in dataset.cases],
            "seeds": seeds,
            "weights": weights.policy,
            "configs": {c.name: c.params_dict() for c in configs},
        },
        sort_keys=True,
        default=str,
    )
    return f"{dataset.name}-{weights.policy}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def work_items(
    configs: Sequence[cfg.Configuration], dataset: Dataset, seeds: Sequence[int] | None
) -> list[tuple[str, Case, int]]:
    """Every (configuration, case, seed) in a fixed order. ``seeds=None`` uses each case's own seed."""
    return [
        (c.name, case, s)
        for c in configs
        for case in dataset.cases
        for s in (seeds if seeds is not None else [case.seed])
    ]


def _base_row(config: str, case: Case, seed: int, policy: str) -> dict[str, Any]:
    return {
        "config": config,
        "case_id": case.id,
        "seed": int(seed),
        "category": case.category,
        "mask_family": case.mask_family,
        "prompt": case.prompt,
        "weights": policy,
    }


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


def _error_row(base: dict[str, Any], exc: BaseException | str, where: str) -> dict[str, Any]:
    msg = f"{where}: {exc if isinstance(exc, str) else f'{type(exc).__name__}: {exc}'}"
    log.error("%s %s seed %s — %s", base["config"], base["case_id"], base["seed"], msg)
    if isinstance(exc, BaseException):
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


def is_oom(exc: BaseException) -> bool:
    """True for an accelerator out-of-memory error (``torch.cuda.OutOfMemoryError`` or its message)."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def free_memory(device: torch.device) -> None:
    """Collect garbage and return cached accelerator memory to the driver."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _generate_batch(
    runner: Runner,
    store: RunStore,
    config: str,
    batch: list[tuple[Case, int]],
    policy: str,
    oom_retry: bool = True,
    first_call: bool = False,
) -> list[dict[str, Any]]:
    """Generate one batch; on failure fall back to one case at a time so one bad case sinks only itself.

    Out of memory: free memory and retry once with the batch halved (a batch of one is retried once
    as is); rows generated by the retry carry ``oom_retries = 1``; a second out-of-memory error is
    recorded as the rows' error.
    """
    oom: str | None = None
    mon = DeviceMonitor(runner.device)
    try:
        for case, _ in batch:
            runner.check_case(case)
        with mon.watch():
            outs = runner.generate([c for c, _ in batch], [s for _, s in batch])
    except CaseError as exc:
        if len(batch) > 1:
            return [
                r for item in batch for r in _generate_batch(runner, store, config, [item], policy, oom_retry)
            ]
        log.warning("%s %s: skipped — %s", config, batch[0][0].id, exc)
        return [
            {
                **_base_row(config, batch[0][0], batch[0][1], policy),
                "status": "skipped",
                "error": str(exc),
                "image": None,
            }
        ]
    except Exception as exc:
        if not is_oom(exc):
            if len(batch) > 1:
                return [
                    r
                    for item in batch
                    for r in _generate_batch(runner, store, config, [item], policy, oom_retry)
                ]
            return [_error_row(_base_row(config, batch[0][0], batch[0][1], policy), exc, "generate")]
        oom = f"{type(exc).__name__}: {exc}"
    if oom is not None:  # outside the except block, so the exception's frames (and tensors) are released
        free_memory(runner.device)
        if not oom_retry:
            return [
                _error_row(
                    _base_row(config, c, s, policy),
                    f"{oom} (out of memory again after freeing memory "
                    f"and retrying at batch size {len(batch)})",
                    "generate",
                )
                for c, s in batch
            ]
        half = max(1, (len(batch) + 1) // 2)
        log.warning(
            "%s: out of memory at batch size %d; freed memory, retrying once at batch size %d",
            config,
            len(batch),
            half,
        )
        rows = []
        for j in range(0, len(batch), half):
            rows += _generate_batch(runner, store, config, batch[j : j + half], policy, oom_retry=False)
        return [{**r, "oom_retries": 1} for r in rows]
    rows = []
    for (case, seed), out in zip(batch, outs, strict=True):
        rel = store.image_relpath(config, case.id, seed)
        save_png_atomic(out.image, store.path / rel)
        rows.append(
            {
                **_ok_row(_base_row(config, case, seed, policy), out, rel, len(batch)),
                **_monitor_fields(mon, len(batch), first_call),
            }
        )
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
    allow_outside_paths: bool = False,
    metric_weights: str | None = None,
    metric_weights_dir: str | Path | None = None,
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
        metrics: metric names to score at the end (default: :func:`~evalsuite.scoring.default_metrics`
            for the configurations' tasks; ``[]`` skips scoring).
        weights_dir: folder of pre-downloaded weights for air-gapped machines.
        limit: only the first ``limit`` cases.
        config_dirs: extra folders of configuration YAML.
        progress: show tqdm progress bars.
        report: write ``report.md`` at the end.
        allow_outside_paths: let manifest paths point outside the dataset folder (refused by default).
        metric_weights: feature networks of the metrics: ``real``, ``random`` or ``random_full``
            (default from ``weights``: tiny → random, random → random_full, hub → real).
        metric_weights_dir: folder of metric weight files (see :mod:`evalsuite.metrics.features`).

    Returns:
        A :class:`RunResult`. Rows that failed have ``status == "error"`` and their message;
        the run itself does not raise for them (see docs/reliability.md).

    Raises:
        ConfigError, ManifestError, FileNotFoundError, RegistryError, ValueError: for unusable
            arguments, before anything is generated.
        RunLockedError: when another live process is running in the same run directory.
        RunInterrupted: after Ctrl-C, once the current batch, the rows, ``samples.parquet``,
            ``run.json`` and the report are written.
    """
    ovs = [o if isinstance(o, cfg.Override) else cfg.Override.parse(o) for o in overrides]
    w = Weights(weights, Path(weights_dir) if weights_dir else None)  # type: ignore[arg-type]
    confs = cfg.resolve_many(list(configs) if configs else ["all"], ovs, config_dirs)
    ds = (
        load_dataset(dataset, allow_outside=allow_outside_paths)
        if not isinstance(dataset, Dataset)
        else dataset
    )
    if limit is not None:
        ds = ds.select(limit=limit)
    metric_names = (
        default_metrics([RUNNERS.get(c.runner).task for c in confs]) if metrics is None else list(metrics)
    )
    from evalsuite.registry import METRICS

    for m in metric_names:
        METRICS.get(m)  # unknown metric → error before generating anything
    check_seeds(seeds)
    metric_weights = metric_weights or default_mode(w.policy)
    check_metric_weights(metric_names, metric_weights, metric_weights_dir)  # missing weights → error now
    dist = distributed.init()
    dev = pick_device(dist.device(device), w.policy)
    apply_thread_policy(dev, w.policy)
    rid = run_id or default_run_id(ds, confs, w, seeds)
    store = RunStore(Path(run_dir) if run_dir else Path(out) / rid, shard=dist.rank if dist.enabled else None)
    store.path.mkdir(parents=True, exist_ok=True)
    lock_name = "run.lock" if dist.is_main else f"run.rank-{dist.rank}.lock"
    try:
        with RunLock(store.path, lock_name) as lock:
            return _run_locked(
                store,
                lock,
                ds,
                confs,
                w,
                dev,
                seeds,
                metric_names,
                progress,
                report,
                metric_weights,
                metric_weights_dir,
                dist,
            )
    finally:
        distributed.shutdown()


def check_seeds(seeds: Sequence[int] | None) -> None:
    """Raise ``ValueError`` naming ``--seeds`` for a seed outside [0, 2**63 - 1] or a duplicate."""
    if seeds is None:
        return
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise ValueError(f"--seeds: {s!r} is not an integer in [0, 2**63-1]; pass seeds such as 0 1 2")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: {list(seeds)} repeats a seed; each seed must appear once")


def _run_locked(
    store: RunStore,
    lock: RunLock,
    ds: Dataset,
    confs: list[cfg.Configuration],
    w: Weights,
    dev: torch.device,
    seeds: Sequence[int] | None,
    metric_names: list[str],
    progress: bool,
    report: bool,
    metric_weights: str,
    metric_weights_dir: str | Path | None,
    dist: distributed.Dist | None = None,
) -> RunResult:
    """The body of :func:`run`, executed while holding the run directory's lock."""
    removed = store.clean_partial()
    if removed:
        log.info("removed %d partial file(s) left by an interrupted run", removed)
    meta: dict[str, Any] = store.read_meta() if store.exists() else {}
    meta.update(
        {
            "run_id": store.path.name,
            "created": meta.get("created") or _now(),
            "started": _now(),
            "finished": None,
            "dataset": {"name": ds.name, "size": len(ds), "fingerprint": ds.fingerprint, "source": ds.source},
            "seeds": list(seeds) if seeds is not None else "per-case",
            "generator": {"device": "cpu", "kind": "torch.Generator per sample, manual_seed(seed)"},
            "determinism": determinism_settings(dev),
            "interrupted": False,
            "weights": {c.name: w.policy for c in confs},
            "weights_dir": str(w.weights_dir) if w.weights_dir else None,
            "metrics": metric_names,
            "metric_weights": metric_weights,
            "environment": environment(dev),
            "configs": {
                c.name: {
                    "runner": c.runner,
                    "description": c.description,
                    "source": c.source,
                    "params": c.params_dict(),
                    "overrides": c.overrides,
                    "weights": w.policy,
                    "load_error": None,
                }
                for c in confs
            },
        }
    )
    dist = dist or distributed.Dist()
    items = work_items(confs, ds, seeds)
    dist.barrier()  # rank 0 has cleaned partial files; every rank now reads the same journals
    done = store.done_keys()
    dist.barrier()  # nobody appends before every rank has read what is done
    pending = [(n, c, s) for n, c, s in items if (n, c.id, int(s)) not in done]
    mine = {(n, c.id, int(s)) for n, c, s in dist.shard(pending)}
    meta["distributed"] = {"world_size": dist.world_size}
    meta.setdefault("attempts", []).append(
        {
            "started": meta["started"],
            "pid": os.getpid(),
            "rows_already_done": len(done),
            "took_over_stale_lock_of_pid": (lock.took_over or {}).get("pid"),
            "world_size": dist.world_size,
        }
    )
    if dist.is_main:
        store.write_meta(meta)
    log.info(
        "run directory %s: %d work items, %d already done, %d for rank %d of %d",
        store.path,
        len(items),
        len(done),
        len(mine),
        dist.rank,
        dist.world_size,
    )
    gen_t0 = time.perf_counter()
    with _StopOnSigint() as stop:
        for conf in confs:
            todo = [
                (case, s) for name, case, s in items if name == conf.name and (name, case.id, int(s)) in mine
            ]
            if not todo or stop.requested:
                continue
            runner: Runner | None = None
            try:
                runner = RUNNERS.get(conf.runner)(conf.params, w, dev)
                t0 = time.perf_counter()
                runner.load()
                meta["configs"][conf.name]["load_s"] = time.perf_counter() - t0
                meta["configs"][conf.name]["effective"] = runner.effective()
                meta["configs"][conf.name]["load_error"] = None
            except Exception as exc:
                meta["configs"][conf.name]["load_error"] = f"{type(exc).__name__}: {exc}"
                for case, s in todo:
                    store.append_row(_error_row(_base_row(conf.name, case, s, w.policy), exc, "load"))
                if runner is not None:
                    runner.close()
                _save_meta(store, meta, dist)
                continue
            bs = conf.params.batch_size
            bar = tqdm(total=len(todo), desc=conf.name, unit="img", disable=not progress, leave=False)
            try:
                i = 0
                while i < len(todo) and not stop.requested:
                    batch = todo[i : i + bs]
                    rows = _generate_batch(runner, store, conf.name, batch, w.policy, first_call=i == 0)
                    for row in rows:
                        store.append_row({**row, "rank": dist.rank})
                    i += len(batch)
                    bar.update(len(batch))
                    if bs > 1 and any(r.get("oom_retries") for r in rows):
                        bs = max(1, (bs + 1) // 2)
                        meta["configs"][conf.name]["batch_size_after_oom"] = bs
                        log.warning(
                            "%s: continuing at batch size %d after running out of memory", conf.name, bs
                        )
            finally:
                bar.close()
                runner.close()
            _save_meta(store, meta, dist)
    gen_s = time.perf_counter() - gen_t0
    n_mine = sum(1 for r in store.rows() if r.get("rank") == dist.rank and row_key(r) in mine)
    rank_stats = {
        "rank": dist.rank,
        "rows": n_mine,
        "generate_s": gen_s,
        "images_per_s": n_mine / gen_s if gen_s > 0 else None,
        "device": str(dev),
        "configs": meta["configs"],
    }
    if stop.requested:
        raise RunInterrupted(_finish_interrupted(store, meta, items, report))
    if dist.enabled:
        write_json_atomic(store.path / f"rank-{dist.rank}.json", rank_stats)
        dist.barrier()  # every rank has finished generating
        if not dist.is_main:
            dist.barrier()  # rank 0 merges, scores and reports
            return load_run(store.path)
        _merge_ranks(store, meta, dist)
    else:
        meta["distributed"]["ranks"] = {"0": {k: v for k, v in rank_stats.items() if k != "configs"}}

    wanted = {(n, c.id, int(s)) for n, c, s in items}
    summary = score_run(
        store,
        metric_names,
        device=dev,
        keys=wanted,
        progress=progress,
        dataset=ds,
        metric_weights=metric_weights,
        metric_weights_dir=metric_weights_dir,
    )
    df = store.write_samples()
    df = df[[row_key(r) in wanted for r in df.to_dict("records")]].reset_index(drop=True)
    meta["summary"] = summary
    meta["finished"] = _now()
    store.write_meta(meta)
    if report:
        from evalsuite.report.report import write_report

        write_report(store.path)
    if dist.enabled:
        dist.barrier()  # release the other ranks
    return RunResult(store.path, df, summary, meta)


def _save_meta(store: RunStore, meta: dict[str, Any], dist: distributed.Dist) -> None:
    """Write ``run.json`` (rank 0 only: other ranks report through ``rank-<r>.json``)."""
    if dist.is_main:
        store.write_meta(meta)


def _merge_ranks(store: RunStore, meta: dict[str, Any], dist: distributed.Dist) -> None:
    """On rank 0: fold every rank's ``rank-<r>.json`` (throughput, load errors) into ``run.json``."""
    ranks = {}
    for r in range(dist.world_size):
        path = store.path / f"rank-{r}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        for name, c in data.pop("configs", {}).items():
            mine = meta["configs"].get(name, {})
            if c.get("load_error") and not mine.get("load_error"):
                mine["load_error"] = c["load_error"]
            for k in ("effective", "load_s"):
                if k in c and k not in mine:
                    mine[k] = c[k]
        ranks[str(r)] = data
    meta["distributed"] = {
        "world_size": dist.world_size,
        "backend": "gloo (coordination only)",
        "ranks": ranks,
    }


def _finish_interrupted(
    store: RunStore, meta: dict[str, Any], items: list[tuple[str, Case, int]], report: bool
) -> RunResult:
    """Write samples, ``run.json`` (counts only, ``interrupted: true``) and the report after Ctrl-C."""
    wanted = {(n, c.id, int(s)) for n, c, s in items}
    rows = [r for r in store.rows() if row_key(r) in wanted]
    meta["summary"] = {
        name: {
            "counts": {
                **count_summary([r for r in rows if r["config"] == name]),
                "pending": sum(1 for n, _, _ in items if n == name)
                - sum(1 for r in rows if r["config"] == name and r.get("status") == "ok"),
            },
            "metrics": {},
        }
        for name in meta["configs"]
    }
    meta["interrupted"] = True
    df = store.write_samples()
    df = df[[row_key(r) in wanted for r in df.to_dict("records")]].reset_index(drop=True)
    store.write_meta(meta)
    if report:
        from evalsuite.report.report import write_report

        write_report(store.path)
    log.warning("interrupted: %d of %d rows done; rerun the same command to resume", len(rows), len(items))
    return RunResult(store.path, df, meta["summary"], meta)


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
