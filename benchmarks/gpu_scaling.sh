#!/usr/bin/env bash
# Scaling of one configuration over 1 and 2 GPUs (docs/benchmarks/scaling.md).
# Usage (repository root, on a 2-GPU machine, .whl/ carried when diffusers is missing):
#   benchmarks/gpu_scaling.sh [OUT_DIR]      (CONFIG=flux-cn-beta CASES=16 by default)
# Runs `evalsuite run` with random weights on CASES inpaint-core cases once in one process on one GPU
# and once with torchrun on 2 GPUs, and prints wall time, speed-up and per-rank throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-reports/gpu-scaling}}
CONFIG=${CONFIG:-flux-cn-beta}
CASES=${CASES:-16}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
if ! python3 -c "import diffusers" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
mkdir -p "$OUT_DIR"
ARGS=(run --configs "$CONFIG" --weights random --dataset inpaint-core --limit "$CASES" --metrics latency --no-progress)
t0=$(date +%s.%N)
CUDA_VISIBLE_DEVICES=0 python3 -m evalsuite "${ARGS[@]}" --device cuda --run-dir "$OUT_DIR/gpu1" > "$OUT_DIR/gpu1.log" 2>&1
t1=$(date +%s.%N)
python3 -m torch.distributed.run --nproc_per_node 2 -m evalsuite "${ARGS[@]}" --device cuda --run-dir "$OUT_DIR/gpu2" \
  > "$OUT_DIR/gpu2.log" 2>&1
t2=$(date +%s.%N)
python3 - "$OUT_DIR" "$t0" "$t1" "$t2" "$CONFIG" "$CASES" <<'PY'
import json, sys
out, t0, t1, t2, config, cases = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5], sys.argv[6]
w1, w2 = t1 - t0, t2 - t1
m1, m2 = (json.load(open(f"{out}/gpu{n}/run.json")) for n in (1, 2))
dev = m1["environment"]["device"]["name"]
v = m1["environment"]["versions"]
lines = [f"# Scaling `{config}` over GPUs — {dev}", "",
         f"Random full-size weights (speed only, no quality evidence), {cases} `inpaint-core` cases at 1024², batch 1, "
         f"torch {v['torch']}, diffusers {v['diffusers']}. Wall time = the whole command (process start, model build, "
         "generation, scoring latency, report).", "",
         "| GPUs | launcher | wall s | speed-up | rank | images | generate s | images/s |", "|---|---|---|---|---|---|---|---|"]
for n, meta, wall, launcher in ((1, m1, w1, "python -m evalsuite"), (2, m2, w2, "torchrun --nproc_per_node 2")):
    for r, st in sorted(meta["distributed"]["ranks"].items()):
        lines.append(f"| {n} | {launcher} | {wall:.1f} | {w1 / wall:.2f}× | {r} | {st['rows']} | {st['generate_s']:.1f} | "
                     f"{st['images_per_s']:.3f} |")
open(f"{out}/scaling.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
