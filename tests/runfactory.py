"""Small synthetic run directories (written through RunStore) for report and compare tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from evalsuite.data.cases import Dataset, load_manifest
from evalsuite.results.store import RunStore
from tests.conftest import write_dataset

XSS_PROMPT = (
    'a cat <script>console.error("XSS-SCRIPT")</script> <img src=x onerror=console.error("XSS-ONERROR")>'
)

METRICS = {  # name → (higher_is_better, unit)
    "clip_score": (True, ""),
    "lpips": (False, ""),
    "latency": (False, "s"),
}


def make_dataset(root: Path, n: int = 8, prompt: Callable[[int], str] | None = None) -> Dataset:
    """n cases: even = inpainting (image + mask), odd = text-to-image; two categories, two mask families."""
    rows = []
    for i in range(n):
        r: dict[str, Any] = {
            "id": f"case-{i}",
            "prompt": prompt(i) if prompt else f"prompt number {i}",
            "category": ["portrait", "e-commerce"][i % 4 // 2],
            "seed": 100 + i,
        }
        if i % 2 == 0:
            r.update(
                {
                    "image": f"img/{i}.png",
                    "mask": f"mask/{i}.png",
                    "mask_family": ["rectangle", "ellipse"][i % 4 // 2],
                }
            )
        rows.append(r)
    return load_manifest(write_dataset(root, rows, size=32), name="synthetic")


def make_run(
    path: Path,
    ds: Dataset,
    configs: tuple[str, ...] = ("cfg-fast", "cfg-slow"),
    weights: str = "hub",
    shift: dict[str, float] | None = None,
    latency_scale: float = 1.0,
    statuses: dict[tuple[str, str], tuple[str, str]] | None = None,
    seed: int = 0,
    quality_evidence: bool = True,
    cuda: bool = True,
    fingerprint: str | None = None,
    row_updates: dict[tuple[str, str], dict[str, Any]] | None = None,
    row_shift: dict[tuple[str, str], dict[str, float]] | None = None,
) -> Path:
    """Write a complete run directory: run.json (with summary), rows, images, samples.parquet.

    Metric values are deterministic functions of (config, case) plus per-metric ``shift`` and
    small noise from ``seed``; ``statuses`` maps (config, case_id) → (status, reason);
    ``row_updates`` maps (config, case_id) → fields that replace the generated ones; ``row_shift``
    → amounts added to generated metric values.
    """
    store = RunStore(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shift = shift or {}
    statuses = statuses or {}
    rows = []
    for ci, config in enumerate(configs):
        for k, case in enumerate(ds.cases):
            base = {
                "config": config,
                "case_id": case.id,
                "seed": case.seed,
                "category": case.category,
                "mask_family": case.mask_family,
                "prompt": case.prompt,
                "weights": weights,
            }
            st, reason = statuses.get((config, case.id), ("ok", None))
            if st != "ok":
                rows.append({**base, "status": st, "error": reason, "image": None})
                continue
            rel = store.image_relpath(config, case.id, case.seed)
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            img = np.full((32, 32, 3), 40 * ci + 5 * k, np.uint8)
            img[: 4 + k, :] = 200
            Image.fromarray(img).save(path / rel)
            steps = [0.1 * (ci + 1) * latency_scale + 0.001 * j for j in range(4)]
            lat = float(sum(steps) + 0.05 + 0.001 * k)
            row = {
                **base,
                "status": "ok",
                "error": None,
                "image": rel,
                "batch_size": 1,
                "latency_s": lat,
                "latency": lat,
                "steps_s": steps,
                "step_median_s": float(np.median(steps)),
                "text_encode_s": 0.02,
                "denoise_s": sum(steps),
                "vae_decode_s": 0.03,
                "clip_score": 25.0 + ci + 0.3 * k + shift.get("clip_score", 0.0) + float(rng.normal(0, 0.01)),
                "lpips": 0.3 - 0.05 * ci + 0.01 * k + shift.get("lpips", 0.0) + float(rng.normal(0, 0.001)),
            }
            if cuda:
                row.update({"peak_allocated_gib": 10.0 + 5 * ci, "peak_reserved_gib": 12.0 + 5 * ci})
            row.update((row_updates or {}).get((config, case.id), {}))
            for m, d in (row_shift or {}).get((config, case.id), {}).items():
                row[m] += d
            rows.append(row)
    for r in rows:
        store.append_row(r)
    df = store.write_samples()
    summary = {}
    for config in configs:
        sub = df[(df["config"] == config) & (df["status"] == "ok")]
        entry: dict[str, Any] = {
            "counts": {"n": int((df["config"] == config).sum()), "ok": len(sub)},
            "metrics": {},
        }
        for m, (hib, unit) in METRICS.items():
            v = sub[m] if m in sub.columns else pd.Series(dtype=float)
            entry["metrics"][m] = {
                "value": float(v.median() if m == "latency" else v.mean()),
                "n": len(sub),
                "higher_is_better": hib,
                "unit": unit,
                "quality_evidence": quality_evidence or m == "latency",
            }
        summary[config] = entry
    meta = {
        "run_id": path.name,
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00",
        "dataset": {
            "name": ds.name,
            "size": len(ds),
            "fingerprint": fingerprint or ds.fingerprint,
            "source": ds.source,
        },
        "seeds": "per-case",
        "weights": {c: weights for c in configs},
        "metrics": list(METRICS),
        "environment": {
            "versions": {"python": "3.11", "torch": "x"},
            "git_commit": "abc123",
            "device": {"type": "cuda", "name": "Fake GPU", "memory_gib": 80.0, "cuda": "13.0"},
        },
        "configs": {
            c: {
                "runner": "fake",
                "params": {"steps": 4, "guidance": 3.5},
                "weights": weights,
                "load_error": None,
            }
            for c in configs
        },
        "summary": summary,
    }
    store.write_meta(meta)
    return path


def copy_run(src: Path, dst: Path) -> Path:
    """A byte copy of a run directory under a new name (run_id updated)."""
    shutil.copytree(src, dst)
    store = RunStore(dst)
    meta = store.read_meta()
    meta["run_id"] = dst.name
    store.write_meta(meta)
    return dst
