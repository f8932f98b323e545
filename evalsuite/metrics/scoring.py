"""Scoring: run metrics over the stored rows/images of a run directory.

Scores read only what is on disk, so ``evalsuite score RUN_DIR`` re-scores a run without
regenerating. Per-sample values go into the rows (column = metric name, plus any extra columns
a metric reports); aggregates go into the summary of ``run.json``.

Metrics that need ``sources``/``masks`` get each case's source image (Lanczos) and mask (nearest)
resized to the output image's size, read from the paths the row records (``source``, ``mask``); rows
written before rows recorded them fall back to the run's dataset (``run.json`` → ``dataset.source``),
whose fingerprint must match the one recorded. A metric is skipped for configurations whose
runner task is not in its ``tasks``. Paired metrics (``lpips_pair``) compare two configurations
at the same case and seed; the default pairs are ``X-turbo<N>`` vs ``X`` for every such pair present.

A metric named twice is scored once, and one that applies to none of the run's configurations is
skipped, each with a warning (:func:`select_metrics`). A row whose image cannot be read (deleted,
truncated) does not sink the others: its metrics are left empty, the row gets
``score_status = "error"`` and ``score_error`` (the reason), the set-level metrics rest on the
rest, and the configuration's summary entry lists it under ``scoring_errors``
(``evalsuite score`` then exits 1).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from evalsuite.data.cases import Case, Dataset
from evalsuite.errors import DataError, UsageError
from evalsuite.registry import METRICS
from evalsuite.results.store import Key, RunStore, inputs_hash, row_key
from evalsuite.results.types import RunMeta

log = logging.getLogger(__name__)

DEFAULT_T2I = ["latency", "clip_score", "fid", "lpips_pair"]
DEFAULT_INPAINT = ["unmasked_mse", "unmasked_psnr", "unmasked_ssim", "unmasked_lpips", "clip_score_masked"]


class ScoringError(UsageError, ValueError):
    """A run that cannot be scored as asked (dataset missing or changed, bad pair); the message says why and the fix."""


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def count_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts of rows by status, and the distinct error messages (up to 20)."""
    status = [r.get("status") for r in rows]
    errors = sorted({str(r.get("error")) for r in rows if r.get("status") == "error"})
    return {
        "n": len(rows),
        "ok": status.count("ok"),
        "error": status.count("error"),
        "skipped": status.count("skipped"),
        "errors": errors[:20],
    }


def default_metrics(tasks: Sequence[str]) -> list[str]:
    """The metrics scored by default for configurations of these runner tasks (see module doc)."""
    names = list(DEFAULT_T2I)
    if "inpaint" in tasks:
        names[1:1] = DEFAULT_INPAINT
    return names


def default_pairs(configs: Sequence[str]) -> list[tuple[str, str]]:
    """``(X-turboN, X)`` for every configuration ``X-turboN`` whose base ``X`` is also present."""
    have = set(configs)
    out = []
    for c in configs:
        m = re.fullmatch(r"(.+)-turbo\d*", c)
        if m and m.group(1) in have:
            out.append((c, m.group(1)))
    return out


def parse_pairs(specs: Sequence[str]) -> list[tuple[str, str]]:
    """``["A:B", ...]`` → ``[(A, B), ...]``.

    Raises:
        ScoringError: for a spec without exactly one ``:``.
    """
    out = []
    for s in specs:
        a, sep, b = s.partition(":")
        if not sep or not a or not b or ":" in b:
            raise ScoringError(f"pair {s!r} must be CONFIG_A:CONFIG_B (e.g. flux-dev-turbo8:flux-dev)")
        out.append((a, b))
    return out


def _typed(meta: dict[str, Any] | RunMeta) -> RunMeta:
    return meta if isinstance(meta, RunMeta) else RunMeta.from_dict(meta)


def config_tasks(meta: dict[str, Any] | RunMeta) -> dict[str, str]:
    """Configuration → runner task (``t2i``/``inpaint``) from ``run.json``; unknown runners count as ``t2i``."""
    from evalsuite.registry import RUNNERS

    out = {}
    for name, c in _typed(meta).configs.items():
        runner = c.runner
        if runner is not None and runner in RUNNERS:
            out[name] = getattr(RUNNERS.get(runner), "task", "t2i")
        else:
            out[name] = "t2i"
    return out


def run_dataset(meta: dict[str, Any] | RunMeta, override: str | Path | None = None) -> Dataset:
    """The run's dataset, loaded from ``run.json``'s ``dataset.source`` (or ``override``) and checked
    against the recorded fingerprint.

    Raises:
        ScoringError: when it cannot be loaded or its fingerprint differs.
    """
    from evalsuite.data.registry import load_dataset

    rec = _typed(meta).dataset or {}
    want = rec.get("fingerprint")
    tried = [str(override)] if override else [s for s in (rec.get("source"), rec.get("name")) if s]
    errors = []
    for src in tried:
        try:
            ds = load_dataset(src)
        except Exception as exc:  # noqa: BLE001 - collected into one message below
            errors.append(f"{src}: {exc}")
            continue
        if want and ds.fingerprint != want and rec.get("name") and ds.name != rec.get("name"):
            raise ScoringError(
                f"dataset {src} is another dataset ({ds.name!r}, fingerprint {ds.fingerprint[:16]}…) than the "
                f"one the run was made on ({rec.get('name')!r}, {want[:16]}…): pass --dataset PATH to the run's "
                f"dataset{_where(rec)}"
            )
        if want and ds.fingerprint != want:
            raise ScoringError(
                f"dataset {src} has fingerprint {ds.fingerprint[:16]}…, but the run was made on {want[:16]}…: its "
                "prompts/images/masks changed since; restore the original data or pass --dataset PATH to a copy of it"
            )
        return ds
    raise ScoringError(
        "cannot load the run's dataset ("
        + "; ".join(errors or ["run.json records no dataset"])
        + "); pass --dataset PATH to its folder"
    )


def _where(rec: dict[str, Any]) -> str:
    """`` (recorded source: X)`` when ``run.json`` records where the dataset was read from."""
    return f" (run.json records its source: {rec['source']})" if rec.get("source") else ""


def _default_mode(meta: dict[str, Any] | RunMeta) -> str:
    from evalsuite.metrics.features import default_mode

    rm = _typed(meta)
    if rm.metric_weights:
        return str(rm.metric_weights)
    policies = set((rm.weights or {}).values()) or {"tiny"}
    if "hub" in policies:
        return "real"
    return default_mode("random" if "random" in policies else "tiny")


def select_metrics(
    names: Sequence[str], tasks: dict[str, str], configs: Sequence[str] | None = None
) -> list[str]:
    """``names`` without repeats and without metrics that apply to none of ``configs``' tasks
    (``tasks``: configuration → runner task), warning once for each one dropped.

    Raises:
        RegistryError: an unknown metric name.
    """
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        if n in seen:
            log.warning("metric %r is named more than once in --metrics; scoring it once", n)
            continue
        seen.add(n)
        out.append(n)
    confs = list(configs) if configs is not None else list(tasks)
    if not confs:
        return out
    kept = []
    for n in out:
        cls = METRICS.get(n)
        applies = [c for c in confs if tasks.get(c, "t2i") in getattr(cls, "tasks", {"t2i", "inpaint"})]
        if not applies:
            log.warning(
                "metric %r applies to %s configurations only; none of this run's (%s) is one: skipping it",
                n,
                "/".join(sorted(getattr(cls, "tasks", ()))),
                ", ".join(f"{c} ({tasks.get(c, 't2i')})" for c in confs),
            )
            continue
        kept.append(n)
    return kept


def metric_kwargs(cls: Any, common: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Constructor options for ``cls``: the run-wide ``common`` ones it accepts (``metric_weights``...)
    plus the user's ``options`` (all of them, so that a typo is refused by the metric)."""
    accepted = set(cls.option_names()) if hasattr(cls, "option_names") else set(common)
    return {**{k: v for k, v in common.items() if k in accepted}, **options}


class RowImageError(DataError):
    """A stored image of a row that cannot be read; scoring marks the row and goes on."""


class _Loader:
    """Reads images, sources and masks for rows, resized to each output's size."""

    def __init__(self, store: RunStore, cases: dict[str, Case] | None, device: torch.device) -> None:
        self.store, self.cases, self.device = store, cases, device
        self.checked: set[tuple[str, str]] = set()  # (case id, case_hash) whose recorded inputs are checked

    def image(self, row: dict[str, Any]) -> torch.Tensor:
        """The row's stored image as float (3, H, W).

        Raises:
            RowImageError: missing or unreadable file (the message names it).
        """
        path = self.store.path / str(row.get("image") or "")
        if not row.get("image"):
            raise RowImageError("the row records no image file")
        try:
            with Image.open(path) as im:
                return _to_tensor(im)
        except FileNotFoundError as exc:
            raise RowImageError(f"image file {path} is missing") from exc
        except (OSError, ValueError) as exc:
            raise RowImageError(f"image file {path} cannot be read ({exc})") from exc

    def common_size(self, rows: Sequence[dict[str, Any]]) -> tuple[int, int] | None:
        """The (height, width) most of ``rows``' images have (read from the file headers; unreadable
        ones are left out here and fail when loaded): the size a batch of them is scored at."""
        from collections import Counter

        sizes: Counter[tuple[int, int]] = Counter()
        for r in rows:
            if not r.get("image"):
                continue
            try:
                with Image.open(self.store.path / str(r["image"])) as im:
                    sizes[(im.height, im.width)] += 1
            except (OSError, ValueError):
                continue
        return sizes.most_common(1)[0][0] if sizes else None

    def images(self, rows: Sequence[dict[str, Any]]) -> torch.Tensor:
        return torch.stack([self.image(r) for r in rows]).to(self.device)

    def _case(self, row: dict[str, Any], what: str) -> Case:
        # a dataset given (--dataset) wins; else a row that records its inputs needs none
        if self.cases is None and row.get("quality_evidence") is not None:
            return self._recorded_case(row)
        if self.cases is None:
            raise ScoringError(f"metrics that need {what} need the run's dataset; pass --dataset PATH")
        case = self.cases.get(str(row["case_id"]))
        if case is None:
            raise ScoringError(
                f"case {row['case_id']!r} of the run is not in the dataset; pass the run's dataset"
            )
        return case

    def _recorded_case(self, row: dict[str, Any]) -> Case:
        """The case as the row records it, once its inputs are checked to be the ones it was
        generated from (its ``case_hash``; once per case and hash).

        Raises:
            ScoringError: the source or mask changed since (or cannot be read now).
        """
        cid = str(row["case_id"])
        case = Case(
            cid,
            str(row.get("prompt") or ""),
            image=Path(row["source"]) if row.get("source") else None,
            mask=Path(row["mask"]) if row.get("mask") else None,
        )
        want = row.get("case_hash")
        if want and (cid, want) not in self.checked:
            got = inputs_hash(
                cid, row.get("prompt"), row.get("category"), row.get("mask_family"), case.image, case.mask
            )
            if got != want:
                raise ScoringError(
                    f"the source image or mask of case {cid!r} ({case.image}, {case.mask}) changed since its "
                    f"row was generated (or cannot be read): restore the original data, or pass --dataset PATH "
                    "to a copy of it"
                )
            self.checked.add((cid, str(want)))
        return case

    def sources_masks(
        self, rows: Sequence[dict[str, Any]], images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from evalsuite.data.imageio import load_image, load_mask, resize_image, resize_mask

        srcs, masks = [], []
        h, w = images.shape[-2:]
        for r in rows:
            case = self._case(r, "sources/masks")
            if case.image is None or case.mask is None:
                raise ScoringError(
                    f"case {case.id!r} has no source image/mask; sources/masks metrics need inpainting cases"
                )
            srcs.append(_to_tensor(resize_image(load_image(case.image), (w, h))))
            masks.append(torch.from_numpy(resize_mask(load_mask(case.mask), (w, h)).astype(np.float32))[None])
        return torch.stack(srcs).to(self.device), torch.stack(masks).to(self.device)

    def batch(
        self,
        rows: Sequence[dict[str, Any]],
        needs: set[str],
        pair_rows: Sequence[dict[str, Any]] | None = None,
        failed: dict[Key, str] | None = None,
        size: tuple[int, int] | None = None,
    ) -> Any:
        """A :class:`MetricBatch` of ``rows``; a row whose image (or its pair's) cannot be read, or is
        not of ``size`` (height, width: the size of the configuration's other images; default the
        first kept image's), is left out of it (``batch.rows`` are the rows kept) and recorded in
        ``failed``."""
        from evalsuite.metrics.base import MetricBatch

        failed = {} if failed is None else failed
        images = pairs = None
        if needs & {"images", "sources", "masks", "pairs"} or pair_rows is not None:
            kept, pimgs = [], []
            imgs: list[torch.Tensor] = []
            for i, r in enumerate(rows):
                k = row_key(r)
                if k in failed:
                    continue
                try:
                    img = self.image(r)
                    pimg = self.image(pair_rows[i]) if pair_rows is not None else None
                    want = size or (tuple(imgs[0].shape[-2:]) if imgs else tuple(img.shape[-2:]))
                    for what, t in (("image", img), ("paired image", pimg)):
                        if t is not None and tuple(t.shape[-2:]) != want:
                            src = r if what == "image" else pair_rows[i]  # type: ignore[index]
                            raise RowImageError(
                                f"{what} {self.store.path / str(src.get('image'))} is {t.shape[-1]}×{t.shape[-2]} "
                                f"while the configuration's other images are {want[1]}×{want[0]}: metrics "
                                "compare images of one size; delete it and rerun `evalsuite run` to "
                                "regenerate it"
                            )
                except RowImageError as exc:
                    failed[k] = str(exc)
                    log.warning("scoring: leaving out %s/%s seed %s: %s", k[0], k[1], k[2], exc)
                    continue
                kept.append(r)
                imgs.append(img)
                pimgs.append(pimg)
            rows = kept
            if not rows:
                return MetricBatch(rows=[])
            images = torch.stack(imgs).to(self.device)
            if pair_rows is not None:
                pairs = torch.stack(pimgs).to(self.device)  # type: ignore[arg-type]
        sources = masks = None
        if images is not None and needs & {"sources", "masks"}:
            sources, masks = self.sources_masks(rows, images)
        return MetricBatch(
            rows=rows,
            images=images,
            prompts=[str(r.get("prompt", "")) for r in rows],
            sources=sources,
            masks=masks,
            pairs=pairs,
        )


def score_run(
    store: RunStore,
    metric_names: Sequence[str],
    device: torch.device | str = "cpu",
    keys: set[Key] | None = None,
    progress: bool = False,
    cases: dict[str, Case] | None = None,
    batch_size: int = 8,
    dataset: Dataset | None = None,
    metric_weights: str | None = None,
    metric_weights_dir: str | Path | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Compute ``metric_names`` for every configuration of the run in ``store``.

    Args:
        keys: restrict to these row keys (default: every row).
        cases: case id → :class:`Case`, needed by metrics that read sources/masks (default: from
            ``dataset``, else the run's dataset when a metric needs it).
        dataset: the run's dataset (default: loaded from ``run.json`` and fingerprint-checked).
        metric_weights: ``real``/``random``/``random_full`` (default from the run's weights policy:
            tiny → random, random → random_full, hub → real).
        metric_weights_dir: folder of metric weight files (see :mod:`evalsuite.metrics.features`).
        pairs: (A, B) configuration pairs for paired metrics (default :func:`default_pairs`).
        metric_options: per metric name, extra options for its constructor.

    Returns:
        ``{config: {"counts": {...}, "metrics": {name: {"value", "n", "unit", ...}}}}``

    Raises:
        ScoringError: dataset missing/changed, or a pair names an unknown configuration.
        MetricWeightsError: real feature-network weights missing offline.
    """
    meta = RunMeta.from_dict(store.read_meta() if store.exists() else {})
    rows = [r for r in store.rows() if keys is None or row_key(r) in keys]
    by_config: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_config.setdefault(r["config"], []).append(r)
    tasks = config_tasks(meta)
    names = select_metrics(metric_names, tasks, list(by_config) or None)
    classes = {n: METRICS.get(n) for n in names}
    mode = metric_weights or _default_mode(meta)
    opts = metric_options or {}
    for n in opts:
        if n not in classes:
            METRICS.get(n)  # unknown metric → RegistryError
            log.warning("--metric-option for %r, which is not scored in this call: ignored", n)
    dev = torch.device(device)
    common = {
        "metric_weights": mode,
        "metric_weights_dir": str(metric_weights_dir) if metric_weights_dir else None,
    }

    def make(name: str) -> Any:
        return classes[name](device=dev, **metric_kwargs(classes[name], common, opts.get(name, {})))

    for n in classes:  # unknown or ill-typed options → MetricOptionError now, before any work
        make(n)

    from evalsuite.metrics.base import Metric, ScoringContext

    if dataset is None and cases is None and meta.dataset:
        # rows that record their inputs (source, mask) need no dataset; older rows find theirs in it
        older = any(r.get("quality_evidence") is None for r in rows if r.get("status") == "ok")
        if older and any(set(c.needs) & {"sources", "masks"} for c in classes.values()):
            dataset = run_dataset(meta)
        elif any(c.prepare is not Metric.prepare for c in classes.values()):
            try:
                dataset = run_dataset(meta)
            except ScoringError as exc:
                log.warning("scoring without the dataset (reference statistics unavailable): %s", exc)
    if cases is None and dataset is not None:
        cases = {c.id: c for c in dataset.cases}
    # set-level references (FID, KID, the distribution metrics) rest on the cases the scored rows
    # cover — the same set whether scored by `evalsuite run --limit N` or a later `evalsuite score`
    reference = _covered(dataset, rows)
    loader = _Loader(store, cases, dev)
    summary: dict[str, Any] = {}
    updates: dict[Key, dict[str, Any]] = {}
    failed: dict[Key, str] = {}

    def record(row: dict[str, Any], col: str, v: float) -> None:
        k = row_key(row)
        updates.setdefault(k, {"config": k[0], "case_id": k[1], "seed": k[2]})[col] = float(v)

    for config, crow in by_config.items():
        ok = [r for r in crow if r.get("status") == "ok"]
        task = tasks.get(config, "t2i")
        entry: dict[str, Any] = {"counts": count_summary(crow), "metrics": {}}
        keyed: dict[str, list[tuple[Key, float]]] = {}  # metric → (row key, per-sample value)
        summary[config] = entry
        active = [(n, make(n)) for n, c in classes.items() if task in c.tasks and not c.paired]
        if not active:
            continue
        ctx = ScoringContext(config=config, task=task, dataset=reference, run_dir=store.path)
        for _, m in active:
            m.prepare(ctx)
        needs = set().union(*(set(m.needs) for _, m in active))
        size = loader.common_size(ok) if needs & {"images", "sources", "masks"} else None
        for i in range(0, len(ok), batch_size):
            batch = loader.batch(ok[i : i + batch_size], needs, failed=failed, size=size)
            chunk = list(batch.rows)
            if not chunk:
                continue
            for name, m in active:
                vals = m.update(batch)
                if m.per_sample and vals is not None:
                    for r, v in zip(chunk, vals, strict=True):
                        record(r, name, v)
                        keyed.setdefault(name, []).append((row_key(r), float(v)))
                for col, cv in m.extra_columns().items():
                    for r, v in zip(chunk, cv, strict=True):
                        record(r, col, v)
        for name, m in active:
            result = m.compute().as_dict()
            entry["metrics"][name] = {**result, **sample_ci(m, result, keyed.get(name, [])), **m.describe()}

    paired = [n for n, c in classes.items() if c.paired]
    if paired:
        if pairs is None and not default_pairs(list(by_config)):
            log.warning(
                "%s: no configuration pairs in this run (X-turboN with X, or --pair A:B): nothing to compare",
                ", ".join(paired),
            )
        else:
            _score_pairs(paired, make, by_config, tasks, pairs, loader, batch_size, summary, record, failed)
    blank = {c: math.nan for n, cls in classes.items() if cls.per_sample for c in (n, *cls.columns)}
    for k, reason in failed.items():
        updates.setdefault(k, {"config": k[0], "case_id": k[1], "seed": k[2]}).update(
            {**blank, "score_status": "error", "score_error": reason}
        )
        entry = summary.setdefault(k[0], {"counts": count_summary(by_config.get(k[0], [])), "metrics": {}})
        errs = entry.setdefault("scoring_errors", {"n": 0, "errors": []})
        errs["n"] += 1
        if len(errs["errors"]) < 20:
            errs["errors"].append(f"{k[1]} seed {k[2]}: {reason}")
    for r in rows:  # a row that failed an earlier scoring and scores now
        k = row_key(r)
        if r.get("score_status") == "error" and k in updates and k not in failed:
            updates[k].update({"score_status": "ok", "score_error": None})
    store.update_rows(updates.values())
    return summary


def sample_ci(metric: Any, result: dict[str, Any], keyed: Sequence[tuple[Key, float]]) -> dict[str, float]:
    """``ci_low``/``ci_high`` for a per-sample metric's summary entry (``result``: what its
    :meth:`~evalsuite.metrics.base.Metric.compute` gave): the 95 % percentile-bootstrap interval of
    its :attr:`~evalsuite.metrics.base.Metric.statistic` (:func:`evalsuite.trackers.stats.bootstrap_statistic`)
    over its per-sample values in row-key order — the order of ``samples.parquet``, whose values the
    report's tables bootstrap too, so a mean's interval here is the one the report shows. ``keyed``:
    (row key, value) of every sample. Empty when the metric records its own interval, is set-level or
    declares no statistic, has fewer than two finite values, or its value is not that statistic of
    them (a metric whose ``compute`` is something else)."""
    if not metric.per_sample or metric.statistic is None or "ci_low" in result or "ci_high" in result:
        return {}
    from evalsuite.trackers.stats import bootstrap_statistic

    value = result.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return {}
    est = bootstrap_statistic([v for _, v in sorted(keyed, key=lambda kv: kv[0])], metric.statistic)
    if est.n < 2 or abs(est.value - value) > 1e-9 * max(1.0, abs(value)):
        return {}
    return {"ci_low": est.low, "ci_high": est.high}


def _covered(dataset: Dataset | None, rows: Sequence[dict[str, Any]]) -> Dataset | None:
    """``dataset`` narrowed to the cases ``rows`` cover (in dataset order)."""
    if dataset is None:
        return None
    ids = {str(r["case_id"]) for r in rows}
    return dataset.select(ids=[c.id for c in dataset.cases if c.id in ids]) if ids else dataset


def reference_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per configuration whose FID reference set in ``new`` (a summary) is not the one its
    FID in ``old`` was measured against (empty when none changed)."""
    out = []
    for config, entry in new.items():
        f = (entry.get("metrics") or {}).get("fid") or {}
        was = (((old.get(config) or {}).get("metrics") or {}).get("fid")) or {}
        if not f or not was or f.get("reference_id") == was.get("reference_id"):
            continue
        before = was.get("reference_set") or f"an unrecorded reference set of {was.get('n_ref')} image(s)"
        out.append(
            f"{config}: FID's reference set changed: was {before}, now {f.get('reference_set')}; the new "
            "FID is not comparable with the old one"
        )
    return out


def scoring_failures(summary: dict[str, Any]) -> list[str]:
    """One line per configuration with rows that could not be scored (empty when all were)."""
    return [
        f"{config}: {e['scoring_errors']['n']} row(s) not scored: "
        + "; ".join(e["scoring_errors"]["errors"][:3])
        for config, e in summary.items()
        if e.get("scoring_errors", {}).get("n")
    ]


def _score_pairs(
    names: list[str],
    make: Any,
    by_config: dict[str, list[dict[str, Any]]],
    tasks: dict[str, str],
    pairs: Sequence[tuple[str, str]] | None,
    loader: _Loader,
    batch_size: int,
    summary: dict[str, Any],
    record: Any,
    failed: dict[Key, str],
) -> None:
    configs = list(by_config)
    todo = default_pairs(configs) if pairs is None else list(pairs)
    seen: dict[str, str] = {}
    for a, b in todo:
        for c in (a, b):
            if c not in by_config:
                raise ScoringError(
                    f"pair {a}:{b}: configuration {c!r} has no rows in this run "
                    f"(configurations: {', '.join(configs)})"
                )
        if a in seen and seen[a] != b:
            raise ScoringError(
                f"configuration {a!r} is paired with both {seen[a]!r} and {b!r}; pair it with one"
            )
        seen[a] = b
        other = {row_key(r)[1:]: r for r in by_config[b] if r.get("status") == "ok"}
        matched = [
            (r, other[row_key(r)[1:]])
            for r in by_config[a]
            if r.get("status") == "ok" and row_key(r)[1:] in other
        ]
        inpaint = tasks.get(a) == "inpaint" and tasks.get(b) == "inpaint"
        size = loader.common_size([x for x, _ in matched])
        for name in names:
            m = make(name)
            keyed: list[tuple[Key, float]] = []
            for i in range(0, len(matched), batch_size):
                chunk = matched[i : i + batch_size]
                batch = loader.batch(
                    [x for x, _ in chunk],
                    set(m.needs) | ({"masks"} if inpaint else set()),
                    [y for _, y in chunk],
                    failed=failed,
                    size=size,
                )
                ra = list(batch.rows)
                if not ra:
                    continue
                if not inpaint:
                    batch.sources = batch.masks = None
                vals = m.update(batch)
                if vals is not None:
                    for r, v in zip(ra, vals, strict=True):
                        record(r, name, v)
                        keyed.append((row_key(r), float(v)))
                for col, cv in m.extra_columns().items():
                    for r, v in zip(ra, cv, strict=True):
                        record(r, col, v)
            result = m.compute().as_dict()
            summary.setdefault(a, {"counts": count_summary(by_config[a]), "metrics": {}})["metrics"][name] = {
                **result,
                **sample_ci(m, result, keyed),
                **m.describe(),
                "vs": b,
            }


def nan_to_none(x: float) -> float | None:
    """``None`` for NaN (JSON has no NaN)."""
    return None if isinstance(x, float) and math.isnan(x) else x


def metric_notes(summary: dict[str, Any]) -> list[str]:
    """Report lines under the summary table: metrics made with random feature networks (no quality
    evidence), CLIP prompts truncated per configuration, KID beside FID, paired-LPIPS partners."""
    lines: list[str] = []
    weak = sorted(
        {
            f"`{m}`"
            for s in summary.values()
            for m, r in s.get("metrics", {}).items()
            if r.get("quality_evidence") is False
        }
    )
    if weak:
        lines.append(f"- **{', '.join(weak)}: computed with random feature networks — NO quality evidence.**")
    for config, s in summary.items():
        ms = s.get("metrics", {})
        trunc = {m: r.get("truncated_prompts") for m, r in ms.items() if r.get("truncated_prompts")}
        for m, t in trunc.items():
            lines.append(
                f"- `{config}` {m}: {t} of {ms[m].get('n')} prompts were truncated to the CLIP text context "
                f"({ms[m].get('context_length')} tokens)."
            )
        f = ms.get("fid")
        if (
            f
            and f.get("value") is not None
            and not (isinstance(f.get("value"), float) and math.isnan(f["value"]))
        ):
            compat = (f.get("preprocessing") or {}).get("compatible_with", "")
            ref = f", reference: {f['reference_set']}" if f.get("reference_set") else ""
            lines.append(
                f"- `{config}` FID {f['value']:.4g} (mode {f.get('fid_mode', 'clean')}"
                + (f", {compat}" if compat else "")
                + f"; N={f.get('n')}, reference N={f.get('n_ref')}{ref}; biased at "
                f"small N) — KID {f.get('kid', math.nan):.4g} ± {f.get('kid_std', math.nan):.2g}."
            )
        bb = sorted(m for m in ms if m.endswith("_brushbench"))
        if bb:
            lines.append(
                f"- `{config}` {', '.join(bb)}: BrushBench's definition (512² PIL bicubic; 3-channel squared-error "
                "sum / 1-channel pixel count: MSE 3× ours, PSNR ≈ 4.77 dB lower) — compare these with BrushBench "
                "tables; `unmasked_mse`/`unmasked_psnr` are evalsuite's per-element definition."
            )
        if "clip_score_mlperf" in ms:
            lines.append(
                f"- `{config}` clip_score_mlperf: MLPerf's definition (open_clip ViT-B-32/openai, 100·cos without "
                "clamp, open_clip's eval transform); `clip_score` is evalsuite's (clamped at 0)."
            )
        p = ms.get("lpips_pair")
        if p:
            lines.append(
                f"- `{config}` lpips_pair is measured against `{p.get('vs')}` at the same case and seed."
            )
    return ["", "### Metric notes", "", *lines] if lines else []
