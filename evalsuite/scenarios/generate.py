"""The ``generate`` scenario (``evalsuite run``): configurations × cases × seeds → rows and images,
resumable, then scored and reported — run inside the shared lifecycle (:mod:`evalsuite.engine.lifecycle`).

Resume keys each finished row on what produced it: the configuration's runner, resolved parameters
and weights policy (``config_hash``), the case's bytes (``case_hash``: prompt, labels, image and mask
bytes) and the seed (in the row key). A finished row made differently is regenerated, with a
warning naming what changed; rows are never mixed.

Everything model-specific lives in the runners; everything about numbers lives in the metrics
and trackers; this module only moves data between them.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import math
import time
import traceback
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from evalsuite.config import configuration as cfg
from evalsuite.config.runconfig import DEFAULT_OUT, RunConfig, check_seeds
from evalsuite.data.cases import Case, Dataset
from evalsuite.data.imageio import save_png_atomic
from evalsuite.data.registry import load_dataset
from evalsuite.device import resolve_device
from evalsuite.engine import distributed as distributed
from evalsuite.engine.lifecycle import (
    THREADS_ENV,
    InternalRunError,
    RunContext,
    RunInterrupted,
    apply_thread_policy,
    context_factory,
    execute,
)
from evalsuite.errors import UsageError
from evalsuite.metrics.features import check_metric_weights, default_mode
from evalsuite.metrics.scoring import count_summary, default_metrics, score_run
from evalsuite.registry import RUNNERS
from evalsuite.results.run import Run, RunResult, load_run
from evalsuite.results.store import (
    RunStore,
    config_hash,
    inputs_hash,
    meta_config_hash,
    row_key,
    write_json_atomic,
)
from evalsuite.results.types import Row
from evalsuite.runners.base import CaseError, GenerationOutput, Runner, folded_truncation
from evalsuite.runners.weights import Weights
from evalsuite.trackers.tracking import DeviceMonitor
from evalsuite.vocab import quality_evidence

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OUT",
    "THREADS_ENV",
    "GenerateScenario",
    "InternalRunError",
    "RunDirConflictError",
    "RunInterrupted",
    "RunResult",
    "apply_thread_policy",
    "check_seeds",
    "load_run",
    "run",
]


class RunDirConflictError(UsageError):
    """The run directory holds rows this run cannot keep beside its own (exit 2, before anything is
    generated); the message names them and the fix (``--run-id``)."""


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


def usable_cases(task: str | None, cases: Sequence[Case]) -> list[Case]:
    """The cases a runner of ``task`` is run on: an ``inpaint`` runner gets the inpainting cases
    (image and mask) when the dataset has any — otherwise every case, each then recorded as skipped
    saying why and what to use; any other runner (text-to-image: the prompt) gets every case."""
    if task != "inpaint":
        return list(cases)
    return [c for c in cases if c.is_inpainting] or list(cases)


def work_items(
    configs: Sequence[cfg.Configuration],
    dataset: Dataset,
    seeds: Sequence[int] | None,
    tasks: dict[str, str] | None = None,
) -> list[tuple[str, Case, int]]:
    """Every (configuration, case, seed) in a fixed order. ``seeds=None`` uses each case's own seed.

    With ``tasks`` (configuration → runner task) each configuration gets the cases it can use
    (:func:`usable_cases`): on the mixed ``smoke`` set the inpainting configurations run its
    inpainting cases instead of recording its prompt-only cases as skipped rows.
    """
    return [
        (c.name, case, s)
        for c in configs
        for case in usable_cases((tasks or {}).get(c.name), dataset.cases)
        for s in (seeds if seeds is not None else [case.seed])
    ]


def _base_row(config: str, case: Case, seed: int, policy: str) -> Row:
    """The fields every row of ``case`` has: its identity, labels, weights policy and input paths."""
    return Row(
        config=config,
        case_id=case.id,
        seed=int(seed),
        category=case.category,
        mask_family=case.mask_family,
        prompt=case.prompt,
        weights=policy,
        source=str(case.image) if case.image is not None else None,
        mask=str(case.mask) if case.mask is not None else None,
        quality_evidence=quality_evidence(policy),
    )


def _ok_row(base: Row, out: GenerationOutput, image: str, batch: int) -> Row:
    row = dataclasses.replace(base, status="ok", error=None, image=image, batch_size=batch, extra={})
    for k, v in out.phases.items():
        row.extra[f"{k}_s"] = float(v)
    row.latency_s = float(sum(out.phases.values()))
    row.steps_s = [float(s) for s in out.steps]
    row.step_median_s = float(pd.Series(out.steps).median()) if out.steps else math.nan
    row.extra.update({k: float(v) for k, v in out.memory.items()})
    row.extra.update({k: v for k, v in out.info.items() if isinstance(v, int | float | str | bool)})
    return row


def _skipped_row(base: Row, reason: str) -> Row:
    return dataclasses.replace(base, status="skipped", error=reason, image=None, extra={})


def _error_row(base: Row, exc: BaseException | str, where: str) -> Row:
    msg = f"{where}: {exc if isinstance(exc, str) else f'{type(exc).__name__}: {exc}'}"
    log.error("%s %s seed %s — %s", base.config, base.case_id, base.seed, msg)
    if isinstance(exc, BaseException):
        log.debug("%s", "".join(traceback.format_exception(exc)))
    return dataclasses.replace(base, status="error", error=msg, image=None, extra={})


def _add_monitor_fields(row: Row, mon: DeviceMonitor, n: int, first_call: bool) -> Row:
    """The monitor's fields around one batch into ``row``: wall and energy per image, device/host peaks."""
    res = mon.result
    row.wall_s = res["wall_s"] / n
    row.first_call = first_call
    if "energy_j" in res:
        row.extra["energy_j"] = res["energy_j"] / n
    row.extra.update({k: res[k] for k in ("nvml_peak_gib", "host_peak_rss_gib") if k in res})
    if mon.reasons:
        row.extra["unavailable"] = "; ".join(f"{k}: {v}" for k, v in sorted(mon.reasons.items()))
    return row


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
) -> list[Row]:
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
        with folded_truncation(f"{config} {', '.join(c.id for c, _ in batch)}"), mon.watch():
            outs = runner.generate([c for c, _ in batch], [s for _, s in batch])
    except CaseError as exc:
        if len(batch) > 1:
            return [
                r for item in batch for r in _generate_batch(runner, store, config, [item], policy, oom_retry)
            ]
        log.warning("%s %s: skipped — %s", config, batch[0][0].id, exc)
        return [_skipped_row(_base_row(config, batch[0][0], batch[0][1], policy), str(exc))]
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
        for r in rows:
            r.extra["oom_retries"] = 1
        return rows
    rows = []
    for (case, seed), out in zip(batch, outs, strict=True):
        rel = store.image_relpath(config, case.id, seed)
        save_png_atomic(out.image, store.path / rel)
        row = _ok_row(_base_row(config, case, seed, policy), out, rel, len(batch))
        rows.append(_add_monitor_fields(row, mon, len(batch), first_call))
    return rows


def case_hash(case: Case) -> str:
    """What identifies a case's inputs to generation and its row: id, prompt, labels and the bytes
    of its image and mask (:func:`evalsuite.results.store.inputs_hash`)."""
    return inputs_hash(case.id, case.prompt, case.category, case.mask_family, case.image, case.mask)


def _param_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """``steps: 1 → 4, weights: tiny → hub`` between two run.json configs entries."""
    if not old:
        return "configuration parameters changed"
    out = []
    if old.get("runner") != new.get("runner"):
        out.append(f"runner: {old.get('runner')} → {new.get('runner')}")
    if old.get("weights") != new.get("weights"):
        out.append(f"weights: {old.get('weights')} → {new.get('weights')}")
    op, np_ = old.get("params") or {}, new.get("params") or {}
    for k in sorted(set(op) | set(np_)):
        if json.dumps(op.get(k), default=str) != json.dumps(np_.get(k), default=str):
            out.append(f"{k}: {op.get(k, '(unset)')} → {np_.get(k, '(unset)')}")
    return ", ".join(out) or "configuration parameters changed"


class GenerateScenario:
    """``evalsuite run``: generate every pending (configuration, case, seed), score, report."""

    kind = "generate"
    attempt = True
    refusals: tuple[type[Exception], ...] = ()

    def __init__(
        self,
        rc: RunConfig,
        confs: list[cfg.Configuration],
        ds: Dataset,
        w: Weights,
        metric_names: list[str],
        metric_weights: str,
        dist: distributed.Dist,
    ) -> None:
        self.rc, self.confs, self.ds, self.w = rc, confs, ds, w
        self.metric_names, self.metric_weights, self.dist = metric_names, metric_weights, dist
        self.items = work_items(confs, ds, rc.seeds, {c.name: RUNNERS.get(c.runner).task for c in confs})
        self.lock_name = "run.lock" if dist.is_main else f"run.rank-{dist.rank}.lock"
        self.owns_directory = dist.is_main  # rank 0 cleans partial files
        self.done = False
        self.case_hashes = {c.id: case_hash(c) for c in ds.cases}
        self.config_entries: dict[str, dict[str, Any]] = {}
        for c in confs:
            entry: dict[str, Any] = {
                "runner": c.runner,
                "description": c.description,
                "source": c.source,
                "params": c.params_dict(),
                "overrides": c.overrides,
                "weights": w.policy,
                "load_error": None,
            }
            entry["config_hash"] = config_hash(c.runner, entry["params"], w.policy)
            self.config_entries[c.name] = entry
        self.mine: set[tuple[str, str, int]] = set()
        self.gen_s = 0.0
        self.kept: list[str] = []  # configurations of earlier runs into the directory, kept (plan)
        self.kept_summary: dict[str, Any] = {}

    # -- what produced a row -----------------------------------------------------------------
    def provenance(self, config: str, case_id: str) -> dict[str, Any]:
        return {
            "config_hash": self.config_entries[config]["config_hash"],
            "case_hash": self.case_hashes[case_id],
            "dataset_fingerprint": self.ds.fingerprint,
        }

    def _append(self, ctx: RunContext, row: Row) -> None:
        prov = self.provenance(row.config, row.case_id)
        row.config_hash, row.case_hash = prov["config_hash"], prov["case_hash"]
        row.dataset_fingerprint, row.rank = prov["dataset_fingerprint"], ctx.dist.rank
        ctx.store.append_row(row.to_dict())

    def finished(self, ctx: RunContext, old_meta: dict[str, Any]) -> set[tuple[str, str, int]]:
        """Keys of rows already done *the way this run would make them*; stale ones are logged and
        recorded in this attempt (``regenerated``), and will be generated again."""
        store = ctx.store
        wanted = {(n, c.id, int(s)) for n, c, s in self.items}
        old_configs = old_meta.get("configs") or {}
        old_fp = (old_meta.get("dataset") or {}).get("fingerprint")
        done: set[tuple[str, str, int]] = set()
        stale: dict[str, dict[str, Any]] = {}
        restamp = []
        for r in store.rows():
            key = row_key(r)
            if key not in wanted or r.get("status") != "ok" or not r.get("image"):
                continue
            if not (store.path / r["image"]).is_file():
                continue
            name, cid = key[0], key[1]
            entry = self.config_entries[name]
            got_conf = r.get("config_hash")
            if got_conf is None and name in old_configs:  # a row of evalsuite.run/1: its run.json says
                got_conf = meta_config_hash(old_configs[name])
            got_case = r.get("case_hash")
            if got_case is None and old_fp == self.ds.fingerprint:
                got_case = self.case_hashes[cid]
            if got_conf != entry["config_hash"]:
                st = stale.setdefault(name, {"rows": 0, "changed": set()})
                st["rows"] += 1
                same_old = name in old_configs and meta_config_hash(old_configs[name]) == got_conf
                st["changed"].add(
                    _param_changes(old_configs.get(name) if same_old else None, entry)
                    if got_conf
                    else "no record of its configuration"
                )
                continue
            if got_case != self.case_hashes[cid]:
                st = stale.setdefault(name, {"rows": 0, "changed": set()})
                st["rows"] += 1
                st.setdefault("cases", []).append(cid)
                continue
            done.add(key)
            prov = self.provenance(name, cid)
            if any(r.get(k) != v for k, v in prov.items()):
                restamp.append({"config": name, "case_id": cid, "seed": key[2], **prov})
        if ctx.dist.is_main:
            for u in restamp:  # still valid under today's dataset/config record: say so in the journal
                store.append_row(u)
        record = {}
        for name, st in stale.items():
            what = "; ".join(sorted(st["changed"]))
            if st.get("cases"):
                cases = sorted(set(st["cases"]))
                what = "; ".join(
                    x
                    for x in (
                        what,
                        f"the inputs of case(s) {', '.join(cases[:5])}{'…' if len(cases) > 5 else ''} changed",
                    )
                    if x
                )
            log.warning(
                "%s: %d finished row(s) in %s were made differently (%s); regenerating them",
                name,
                st["rows"],
                store.path,
                what,
            )
            record[name] = {"rows": st["rows"], "changed": what}
        if record:
            ctx.meta["attempts"][-1]["regenerated"] = record
        return done

    def other_configs(self, store: RunStore, old_meta: dict[str, Any]) -> list[str]:
        """The configurations of earlier runs into this directory that this run does not make, whose
        rows stay: their ``run.json`` entries (parameters, weights, summary) are kept beside this
        run's, so one directory can collect configurations run one command at a time.

        Raises:
            RunDirConflictError: (before anything is generated) when they cannot be kept: rows of a
                configuration no ``run.json`` describes any more, rows made from another dataset, or
                a directory of another kind. The message names them and the fix (``--run-id``).
        """
        rows = store.rows()
        mine = set(self.config_entries)
        others = sorted({str(r["config"]) for r in rows} - mine)
        if not others:
            return []
        fix = (
            f"use a new run directory (--run-id NEW_NAME), or name every configuration of {store.path} "
            f"in --configs ({', '.join([*sorted(mine), *others])})"
        )
        kind = old_meta.get("kind") or "generate"
        if kind != "generate":
            raise RunDirConflictError(
                f"{store.path} holds a {kind!r} run, not an `evalsuite run` one: its rows cannot be kept "
                f"beside this run's; use a new run directory (--run-id NEW_NAME)"
            )
        described = old_meta.get("configs") or {}
        unknown = [n for n in others if not isinstance(described.get(n), dict)]
        if unknown:
            raise RunDirConflictError(
                f"{store.path} holds rows of configuration(s) {', '.join(unknown)} that its run.json no longer "
                f"describes (an earlier run into this directory replaced it); nothing was generated: {fix}"
            )
        fp = self.ds.fingerprint
        foreign = sorted(
            {
                str(r["config"])
                for r in rows
                if r["config"] in others and r.get("dataset_fingerprint") not in (None, fp)
            }
            | (set(others) if (old_meta.get("dataset") or {}).get("fingerprint") not in (None, fp) else set())
        )
        if foreign:
            was = (old_meta.get("dataset") or {}).get("name")
            raise RunDirConflictError(
                f"{store.path} holds rows of configuration(s) {', '.join(foreign)} made from another dataset "
                f"({was!r}) than this run's ({self.ds.name!r}): one run directory holds one dataset's rows; "
                "nothing was generated: use a new run directory (--run-id NEW_NAME)"
            )
        return others

    # -- the lifecycle's phases -----------------------------------------------------------------
    def plan(self, ctx: RunContext) -> None:
        store, dist = ctx.store, ctx.dist
        old_meta = store.read_meta(check=False) if store.exists() else {}
        if dist.is_main:
            store.restore_journal()  # rows only samples.parquet still holds (an emptied journal): kept
            store.repair_journal()  # corrupted middle lines: set aside loudly, their rows regenerated
        self.kept = self.other_configs(store, old_meta)  # refuses before anything is generated
        # the directory's configurations in the order they were first run, this run's after them
        order = [n for n in (old_meta.get("configs") or {}) if n in self.kept] and [
            n for n in (old_meta.get("configs") or {}) if n in self.kept or n in self.config_entries
        ]
        order += [n for n in self.config_entries if n not in order]
        entries = {**{n: dict(old_meta["configs"][n]) for n in self.kept}, **self.config_entries}
        ctx.meta["configs"] = {n: dict(entries[n]) for n in order}
        policies = {**{n: (old_meta.get("weights") or {}).get(n) for n in self.kept}}
        policies.update({c.name: self.w.policy for c in self.confs})
        ctx.meta["weights"] = {n: policies[n] for n in order}
        if self.kept:
            old_summary = old_meta.get("summary") or {}
            self.kept_summary = {n: old_summary[n] for n in self.kept if n in old_summary}
            ctx.meta["metrics"] = sorted(
                set(ctx.meta.get("metrics") or []) | set(old_meta.get("metrics") or [])
            )
            ctx.meta["attempts"][-1]["kept_configs"] = sorted(self.kept)
            log.info(
                "run directory %s also holds configuration(s) %s of an earlier run: kept, with their "
                "parameters and summary",
                store.path,
                ", ".join(sorted(self.kept)),
            )
        dist.barrier()  # rank 0 has cleaned partial files; every rank now reads the same journals
        done = self.finished(ctx, old_meta)
        dist.barrier()  # nobody appends before every rank has read what is done
        pending = [(n, c, s) for n, c, s in self.items if (n, c.id, int(s)) not in done]
        self.mine = {(n, c.id, int(s)) for n, c, s in dist.shard(pending)}
        ctx.meta["attempts"][-1]["rows_already_done"] = len(done)
        log.info(
            "run directory %s: %d work items, %d already done, %d for rank %d of %d",
            store.path,
            len(self.items),
            len(done),
            len(self.mine),
            dist.rank,
            dist.world_size,
        )

    def run(self, ctx: RunContext) -> None:
        store, meta, dist, stop, w = ctx.store, ctx.meta, ctx.dist, ctx.stop, self.w
        gen_t0 = time.perf_counter()
        for conf in self.confs:
            todo = [
                (case, s)
                for name, case, s in self.items
                if name == conf.name and (name, case.id, int(s)) in self.mine
            ]
            if not todo or stop.requested:
                continue
            runner: Runner | None = None
            try:
                runner = RUNNERS.get(conf.runner)(conf.params, w, ctx.device)
                t0 = time.perf_counter()
                runner.load()
                meta["configs"][conf.name]["load_s"] = time.perf_counter() - t0
                meta["configs"][conf.name]["effective"] = runner.effective()
                meta["configs"][conf.name]["load_error"] = None
            except Exception as exc:
                meta["configs"][conf.name]["load_error"] = f"{type(exc).__name__}: {exc}"
                for case, s in todo:
                    self._append(ctx, _error_row(_base_row(conf.name, case, s, w.policy), exc, "load"))
                if runner is not None:
                    runner.close()
                ctx.save_meta()
                continue
            bs = conf.params.batch_size
            bar = tqdm(total=len(todo), desc=conf.name, unit="img", disable=not self.rc.progress, leave=False)
            try:
                i = 0
                while i < len(todo) and not stop.requested:
                    batch = todo[i : i + bs]
                    rows = _generate_batch(runner, store, conf.name, batch, w.policy, first_call=i == 0)
                    for row in rows:
                        self._append(ctx, row)
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
            ctx.save_meta()
        self.gen_s = time.perf_counter() - gen_t0
        if stop.requested:
            return
        n_mine = sum(1 for r in store.rows() if r.get("rank") == dist.rank and row_key(r) in self.mine)
        rank_stats = {
            "rank": dist.rank,
            "rows": n_mine,
            "generate_s": self.gen_s,
            "images_per_s": n_mine / self.gen_s if self.gen_s > 0 else None,
            "device": str(ctx.device),
            "configs": meta["configs"],
        }
        if dist.enabled:
            write_json_atomic(store.path / f"rank-{dist.rank}.json", rank_stats)
            dist.barrier()  # every rank has finished generating
            if not dist.is_main:
                dist.barrier()  # rank 0 merges, scores and reports
                self.done = True
                return
            _merge_ranks(store, meta, dist)
        else:
            meta["distributed"]["ranks"] = {"0": {k: v for k, v in rank_stats.items() if k != "configs"}}

    def space_needed(self, ctx: RunContext) -> int:
        """About how many bytes the images still to generate by this process take (their mean size
        so far; 1 MiB each before the first)."""
        done = {row_key(r) for r in ctx.store.rows() if r.get("status") == "ok"}
        left = len(self.mine - done)
        sizes = [p.stat().st_size for p in (ctx.store.path / "images").rglob("*.png")]
        return left * (sum(sizes) // len(sizes) if sizes else 1 << 20)

    @property
    def wanted(self) -> set[tuple[str, str, int]]:
        return {(n, c.id, int(s)) for n, c, s in self.items}

    def score(self, ctx: RunContext) -> dict[str, Any]:
        summary = score_run(
            ctx.store,
            self.metric_names,
            device=ctx.device,
            keys=self.wanted,
            progress=self.rc.progress,
            dataset=self.ds,
            metric_weights=self.metric_weights,
            metric_weights_dir=self.rc.metric_weights_dir,
        )
        return {**self.kept_summary, **summary}

    def interrupted(self, ctx: RunContext) -> dict[str, Any]:
        wanted = self.wanted
        rows = [r for r in ctx.store.rows() if row_key(r) in wanted]
        log.warning(
            "interrupted: %d of %d rows done; rerun the same command to resume", len(rows), len(self.items)
        )
        return {
            **self.kept_summary,
            **{
                name: {
                    "counts": {
                        **count_summary([r for r in rows if r["config"] == name]),
                        "pending": sum(1 for n, _, _ in self.items if n == name)
                        - sum(1 for r in rows if r["config"] == name and r.get("status") == "ok"),
                    },
                    "metrics": {},
                }
                for name in self.config_entries
            },
        }

    def report(self, ctx: RunContext) -> None:
        from evalsuite.report.report import write_report

        write_report(ctx.store.path)

    def close(self, ctx: RunContext) -> None:
        if ctx.dist.enabled:
            ctx.dist.barrier()  # release the other ranks

    def result(self, ctx: RunContext) -> Run:
        if self.done:
            return load_run(ctx.store.path)
        wanted = self.wanted
        df = ctx.store.samples()
        if len(df):
            df = df[[row_key(r) in wanted for r in df.to_dict("records")]].reset_index(drop=True)
        return Run(ctx.store.path, ctx.meta, df)


def _fit_candidates(
    confs: Sequence[cfg.Configuration], w: Weights
) -> list[tuple[str, cfg.Configuration, Any]]:
    """The configurations whose full-size build the fit check (:func:`evalsuite.scenarios.fit.check_fits`)
    prices: under ``hub`` only those whose weights can be found (a missing model fails its own rows
    when it loads, with the command that fetches it, as documented), else all of them."""
    from evalsuite.runners.weights import WeightsError

    out = []
    for c in confs:
        model = getattr(c.params, "model", None)
        if w.policy == "hub" and model:
            try:
                w.resolve(str(model))
            except WeightsError:
                continue
        out.append((c.name, c, c.params))
    return out


def run(config: RunConfig | Sequence[str] | None = None, /, **kwargs: Any) -> RunResult:
    """Run configurations over a dataset, store everything in a run directory, score and report.

    Call with a :class:`~evalsuite.config.runconfig.RunConfig`, or with its fields as keywords
    (``evalsuite.run(configs=["my-config"], dataset="smoke", limit=2)``):

    Args:
        configs: configuration names (``all`` for every YAML configuration); default: all.
        dataset: a dataset name, a folder/manifest path, or a :class:`Dataset`.
        weights: ``tiny``, ``random`` or ``hub`` (see :mod:`evalsuite.runners.weights`).
        out: root under which the run directory is created.
        run_id: run directory name (a name, not a path); default derived from what is run, so
            the same command resumes the same directory.
        run_dir: explicit run directory (overrides ``out``/``run_id``).
        seeds: seeds per case; default each case's own ``seed``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``... (``mps`` where torch has it).
        overrides: ``[CONFIG.]FIELD=VALUE`` strings or :class:`~evalsuite.config.configuration.Override`.
        metrics: metric names to score at the end (default: :func:`~evalsuite.metrics.scoring.default_metrics`
            for the configurations' tasks; ``[]`` skips scoring).
        weights_dir: folder of pre-downloaded weights for air-gapped machines.
        limit: only the first ``limit`` cases (≥ 1).
        config_dirs: extra folders of configuration YAML.
        progress: show tqdm progress bars.
        report: write ``report.md`` at the end.
        allow_outside_paths: let manifest paths point outside the dataset folder (refused by default).
        metric_weights: feature networks of the metrics: ``real``, ``random`` or ``random_full``
            (default from ``weights``: tiny → random, random → random_full, hub → real).
        metric_weights_dir: folder of metric weight files (see :mod:`evalsuite.metrics.features`).
        force: build full-size (``random``/``hub``) weights on the CPU even when their estimated size
            exceeds the available memory (refused by default: :func:`evalsuite.scenarios.fit.check_fits`).

    Returns:
        A :class:`RunResult`. Rows that failed have ``status == "error"`` and their message;
        the run itself does not raise for them (see docs/reliability.md).

    Raises:
        RunConfigError, ConfigError, ManifestError, FileNotFoundError, RegistryError, ValueError: for
            unusable arguments, before anything is generated or written.
        DoesNotFitError: ``random``/``hub`` weights on the CPU whose estimated size exceeds the available
            memory (unless ``force``).
        RunLockedError: when another live process is running in the same run directory.
        RunInterrupted: after Ctrl-C or SIGTERM, once the current batch, the rows, ``samples.parquet``,
            ``run.json`` (``interrupted: true``) and the report are written.
        InternalRunError: an unexpected error after generation started (rows and images are kept).
    """
    if config is not None and not isinstance(config, RunConfig):  # run(["a-config"], ...) as before
        kwargs, config = {"configs": config, **kwargs}, None
    if config is not None and kwargs:
        raise TypeError("pass either a RunConfig or keyword arguments, not both")
    rc = config if config is not None else RunConfig.from_kwargs(kwargs)
    rc.validate()
    # -- resolve: every usage error surfaces here, before the lock and before anything is written
    ovs = [o if isinstance(o, cfg.Override) else cfg.Override.parse(o) for o in rc.overrides]
    w = Weights(rc.weights, rc.weights_dir)  # type: ignore[arg-type]
    confs = cfg.resolve_many(list(rc.configs) if rc.configs else ["all"], ovs, rc.config_dirs)
    ds = (
        load_dataset(rc.dataset, allow_outside=rc.allow_outside_paths)
        if not isinstance(rc.dataset, Dataset)
        else rc.dataset
    )
    if rc.limit is not None:
        ds = ds.select(limit=rc.limit)
    metric_names = (
        default_metrics([RUNNERS.get(c.runner).task for c in confs])
        if rc.metrics is None
        else list(rc.metrics)
    )
    from evalsuite.registry import METRICS

    for m in metric_names:
        METRICS.get(m)  # unknown metric → error before generating anything
    metric_weights = rc.metric_weights or default_mode(w.policy)
    check_metric_weights(metric_names, metric_weights, rc.metric_weights_dir)  # missing weights → error now
    dist = distributed.init()
    try:
        dev = resolve_device(rc.device, w.policy, dist.local_rank if dist.enabled else None)
        from evalsuite.scenarios.fit import check_fits

        check_fits("run", _fit_candidates(confs, w), w.policy, dev, force=rc.force, sweep=False)
        apply_thread_policy(dev, w.policy)
        run_dir = rc.directory(default_run_id(ds, confs, w, rc.seeds))
        store = RunStore(run_dir, shard=dist.rank if dist.enabled else None)
        scenario = GenerateScenario(rc, confs, ds, w, metric_names, metric_weights, dist)

        context = context_factory(
            "generate",
            ds,
            dev,
            dist=dist,
            seeds=list(rc.seeds) if rc.seeds is not None else "per-case",
            metrics=metric_names,
            metric_weights=metric_weights,
            weights_dir=w.weights_dir,
        )
        return execute(scenario, store, context, report=rc.report)
    finally:
        distributed.shutdown()


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
