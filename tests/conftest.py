import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on a shared 2-core machine: one intra-op thread (see evalsuite.engine.lifecycle.apply_thread_policy);
# subprocesses started by the tests inherit it.
os.environ.setdefault("EVALSUITE_THREADS", "1")
# ... and one BLAS thread for numpy/scipy (read when numpy is first imported, below): two pytest workers
# on two cores, each with a BLAS pool of two spinning threads, collapse the same way.
for _blas in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas, "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["EVALSUITE_THREADS"]))
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# The slowest test modules (seconds on a 2-core CPU), started first: `make test` runs two workers with
# `--dist loadfile --no-loadscope-reorder`, which hands out whole modules in collection order, so the
# long ones do not start last and keep one worker busy alone at the end.
SLOW_FIRST = (
    "test_metrics_fid_modes.py",
    "test_reliability_resume.py",
    "test_distributed.py",
    "test_cli.py",
    "test_metrics_scoring.py",
    "test_packaging.py",
    "test_plan.py",
    "test_bad_inputs.py",
    "test_compare.py",
    "test_engine_faults.py",
    "test_pytest_plugin.py",
    "test_report.py",
    "test_metrics_ocr.py",
    "test_metrics_distribution.py",
)


# The modules whose tests compare numbers the models generate (images, latents, metric values against
# a reference implementation): marked `numerics`, which `make test-cpu-levels` runs once more under a
# second CPU dispatch level (ATEN_CPU_CAPABILITY), so an assertion that holds on one instruction set
# only fails on every machine, not just on the next one.
NUMERICS = (
    "test_runner_flux.py",
    "test_runner_native.py",
    "test_runner_controlnet.py",
    "test_runner_contract.py",
    "test_reliability_determinism.py",
    "test_engine_lifecycle.py",
    "test_fp8.py",
    "test_metrics_functional.py",
    "test_metrics_networks.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: modules stay in order
    for item in items:
        if item.path.name in NUMERICS:
            item.add_marker(pytest.mark.numerics)
    # tests marked `gpu` are skipped without CUDA by evalsuite's pytest plugin (the one skip hook)


def pytest_report_header(config):
    return f"torch CPU dispatch level: {torch.backends.cpu.get_cpu_capability()}"


def pytest_configure(config):
    # `make test-cpu-levels` states the level it asked for; refuse to pass quietly on another one
    want = os.environ.get("EVALSUITE_EXPECT_CPU_LEVEL")
    have = torch.backends.cpu.get_cpu_capability()
    if want and have.lower() != want.lower():
        raise pytest.UsageError(f"ATEN_CPU_CAPABILITY asked for {want}, but torch runs {have} kernels")


def write_dataset(root: Path, rows: list[dict], size: int = 64, files: bool = True) -> Path:
    """Write a small dataset (random images, rectangle masks) and its manifest; returns the folder."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for r in rows:
        if files and r.get("image") and not (root / r["image"]).exists():
            (root / r["image"]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / r["image"])
        if files and r.get("mask") and not (root / r["mask"]).exists():
            (root / r["mask"]).parent.mkdir(parents=True, exist_ok=True)
            m = np.zeros((size, size), np.uint8)
            m[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
            Image.fromarray(m).save(root / r["mask"])
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    rows = [
        {
            "id": "a",
            "prompt": "a red apple on a table",
            "image": "img/a.png",
            "mask": "mask/a.png",
            "seed": 1,
        },
        {
            "id": "b",
            "prompt": "a blue car",
            "image": "img/b.png",
            "mask": "mask/b.png",
            "seed": 2,
            "category": "e-commerce",
        },
        {"id": "c", "prompt": "a lighthouse at night", "seed": 3},
    ]
    return write_dataset(tmp_path / "ds", rows)
