"""Measure what is bitwise reproducible on a GPU: the same run twice, batch size 1 vs 2, with and
without PyTorch's deterministic algorithms.

Usage (one command, on a CUDA machine, from the repository root)::

    HF_HUB_OFFLINE=1 python benchmarks/gpu_reproducibility.py --out "$OUT/repro" \
        [--configs flux-dev] [--weights random] [--size 512] [--steps 4] [--cases 3]

For each mode (``default``; ``deterministic`` = ``torch.use_deterministic_algorithms(True)``,
``cudnn.benchmark`` off, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``) it runs every configuration three
times through :func:`evalsuite.run` on the smoke prompts (batch 1, batch 1 again, batch 2) and
compares the PNGs. It prints a Markdown table and writes ``reproducibility.md`` and
``reproducibility.json`` under ``--out``. ``random`` weights: the numbers say nothing about image
quality, only about kernel determinism.
"""

from __future__ import annotations

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # must be set before cuBLAS starts

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import evalsuite  # noqa: E402


def _images(res: evalsuite.RunResult) -> dict[str, bytes]:
    return {
        f"{r['config']}/{r['case_id']}": (res.run_dir / r["image"]).read_bytes()
        for r in res.samples.to_dict("records")
        if r["status"] == "ok"
    }


def _compare(a: dict[str, bytes], b: dict[str, bytes]) -> dict[str, float | int]:
    same = sum(a[k] == b[k] for k in a if k in b)
    worst, frac = 0, 0.0
    for k in a:
        if k in b and a[k] != b[k]:
            x = np.asarray(Image.open(io.BytesIO(a[k])), dtype=np.int16)
            y = np.asarray(Image.open(io.BytesIO(b[k])), dtype=np.int16)
            d = np.abs(x - y)
            worst, frac = max(worst, int(d.max())), max(frac, float((d > 0).mean()))
    return {"identical": same, "of": len(a), "max_abs_diff": worst, "max_frac_pixels_differing": frac}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for run directories and the result table")
    ap.add_argument("--configs", nargs="+", default=["flux-dev"])
    ap.add_argument("--weights", default="random", choices=["tiny", "random", "hub"])
    ap.add_argument("--size", type=int, default=512, help="width = height in pixels (random/hub weights)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--cases", type=int, default=3, help="first N cases of the smoke dataset")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results = []
    for mode in ("default", "deterministic"):
        torch.use_deterministic_algorithms(mode == "deterministic")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = mode == "deterministic"
        runs = {}
        for name, bs in (("bs1-a", 1), ("bs1-b", 1), ("bs2", 2)):
            runs[name] = evalsuite.run(
                configs=args.configs,
                dataset="smoke",
                weights=args.weights,
                device=args.device,
                limit=args.cases,
                overrides=[
                    f"steps={args.steps}",
                    f"batch_size={bs}",
                    f"width={args.size}",
                    f"height={args.size}",
                ],
                run_dir=out / mode / name,
                metrics=[],
                progress=False,
                report=False,
            )
        a, b, c = (_images(runs[k]) for k in ("bs1-a", "bs1-b", "bs2"))
        det = runs["bs1-a"].meta["determinism"]
        dev = runs["bs1-a"].meta["environment"]["device"].get("name")
        for label, other in (("same batch size (1), two runs", b), ("batch size 1 vs 2", c)):
            results.append(
                {
                    "mode": mode,
                    "comparison": label,
                    "device": dev,
                    "weights": args.weights,
                    "size": args.size,
                    "steps": args.steps,
                    "deterministic_algorithms": det["deterministic_algorithms"],
                    **_compare(a, other),
                }
            )
    head = (
        "| mode | comparison | bitwise identical | max abs diff (0-255) | max fraction of values differing |"
    )
    lines = [
        f"GPU reproducibility — {results[0]['device']}, weights={args.weights} (no quality evidence), "
        f"{args.size}², {args.steps} steps, torch {torch.__version__}",
        "",
        head,
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['mode']} | {r['comparison']} | {r['identical']}/{r['of']} | {r['max_abs_diff']} | "
            f"{r['max_frac_pixels_differing']:.2e} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    (out / "reproducibility.md").write_text(table, encoding="utf-8")
    (out / "reproducibility.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
