#!/usr/bin/env bash
# GPU batch for issue 28's routes (docs/benchmarks/frontier-h100.md, "Third session"): one H100,
# random full-size weights, no download.
#
# Usage (repository root, on the GPU machine; stages run in the order given):
#   benchmarks/gpu_routes.sh STAGE[:SECONDS] ...
#     attention   benchmarks/gpu_attention.py: SDPA backends and sageattn at FLUX's shapes
#     breakdown   benchmarks/gpu_breakdown.py: device kernel time by kind of one warm flux-dev image at
#                 evalsuite's best point and at that point with each of BREAKDOWN_ROUTES (default: none)
#     routes      flux-dev frontier: ref, the points of FIRST_POINTS (default: none), evalsuite's best
#                 point, and that point with each of ROUTES (default: attention=_native_cudnn
#                 inductor=tuned inductor=persistent cudagraph)
#     autotune    flux-dev frontier: ref and the best point with inductor=autotune (long cold start)
#     overhead    evalsuite profile of OVERHEAD_CONFIGS (default: sdxl-inpaint and the 8-step
#                 configurations), bf16 eager, with OVERHEAD_PAIRS (default 20) alternating
#                 (bare, harness) pairs each
#     turbo8      flux-dev-turbo8 frontier: ref, the best point, and the best point with cudagraph
#     coldcache   flux-dev frontier of ref and the best point in empty Inductor and Triton caches (a fresh
#                 machine's) with --compile-cache COMPILE_CACHE, which the stages before filled: the
#                 cold start when the compile comes from an earlier run's artifacts
#   COMPILE_CACHE (default: none; coldcache needs it), when set, is passed as --compile-cache to every
#   frontier stage.
#   BEST overrides the best point (DEVICE=cpu dry runs: BEST=qkv,compile=regional).
#   SECONDS caps a stage (timeout, then SIGKILL 5 s later); what it wrote is kept.
# Every stage writes OUT/<stage>/ (OUT defaults to $OUT, the device tool's output folder, or
# reports/gpu-routes) and its log OUT/<stage>.log; a failing stage does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-reports/gpu-routes}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}      # DEVICE=cpu WEIGHTS=tiny: a dry run of the plumbing
WEIGHTS=${WEIGHTS:-random}
OVERHEAD_PAIRS=${OVERHEAD_PAIRS:-20}
ROUTES=${ROUTES:-attention=_native_cudnn inductor=tuned inductor=persistent cudagraph}
BREAKDOWN_ROUTES=${BREAKDOWN_ROUTES:-}
FIRST_POINTS=${FIRST_POINTS:-}
OVERHEAD_CONFIGS=${OVERHEAD_CONFIGS:-sdxl-inpaint flux-cn-beta-turbo8 flux-dev-turbo8}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
mkdir -p "$OUT_DIR"
BEST=${BEST:-precision=fp8_row,qkv,compile=regional,vae=compile}
COMPILE_CACHE=${COMPILE_CACHE:-}
FRONTIER=("$PY" -m evalsuite frontier --weights "$WEIGHTS" --device "$DEVICE" --cases 2 --seeds 0
          --bootstrap 1000 --out "$OUT_DIR" --no-catalog ${COMPILE_CACHE:+--compile-cache "$COMPILE_CACHE"})

stage() {  # stage NAME SECONDS COMMAND...
  local name=$1 secs=$2; shift 2
  echo "== $name (≤ ${secs}s) $(date -u +%T)" >&2
  local t0=$SECONDS
  timeout -k 5 "$secs" "$@" > "$OUT_DIR/$name.log" 2>&1
  local rc=$?
  echo "== $name rc=$rc in $((SECONDS - t0))s" >&2
  tail -n 25 "$OUT_DIR/$name.log" >&2
}

for arg in "$@"; do
  name=${arg%%:*}; secs=${arg#*:}; [ "$secs" = "$arg" ] && secs=600
  case "$name" in
    attention) stage attention "$secs" "$PY" benchmarks/gpu_attention.py --device "$DEVICE" --out "$OUT_DIR/attention" ;;
    breakdown) tasks=("flux-dev=$BEST"); for r in $BREAKDOWN_ROUTES; do tasks+=("flux-dev=$BEST,$r"); done
               stage breakdown "$secs" env OUT="$OUT_DIR/breakdown" "$PY" benchmarks/gpu_breakdown.py "${tasks[@]}" ;;
    routes) points=($FIRST_POINTS "$BEST"); for r in $ROUTES; do points+=("$BEST,$r"); done
            stage routes "$secs" "${FRONTIER[@]}" --configs flux-dev --run-id routes --points "${points[@]}" ;;
    autotune) stage autotune "$secs" "${FRONTIER[@]}" --configs flux-dev --run-id autotune \
                --points "$BEST,inductor=autotune" ;;
    overhead) stage overhead "$secs" "$PY" -m evalsuite profile --weights "$WEIGHTS" --device "$DEVICE" \
                --configs $OVERHEAD_CONFIGS --dtypes bf16 --compile off \
                --min-reps 3 --min-seconds 0 --max-reps 3 --overhead-pairs "$OVERHEAD_PAIRS" --peak-seconds 1 \
                --out "$OUT_DIR" --run-id overhead --no-catalog ;;
    turbo8) stage turbo8 "$secs" "${FRONTIER[@]}" --configs flux-dev-turbo8 --run-id turbo8 --points "$BEST" \
              "$BEST,cudagraph" ;;
    coldcache) if [ -z "$COMPILE_CACHE" ]; then
                 echo "gpu_routes: coldcache needs COMPILE_CACHE (the folder the earlier stages fill)" >&2; continue
               fi
               fresh=$(mktemp -d)
               stage coldcache "$secs" env TORCHINDUCTOR_CACHE_DIR="$fresh/inductor" TRITON_CACHE_DIR="$fresh/triton" \
                 "${FRONTIER[@]}" --configs flux-dev --run-id coldcache --points "$BEST" ;;
    *) echo "gpu_routes: unknown stage $name (attention breakdown routes autotune overhead turbo8 coldcache)" >&2 ;;
  esac
done
ls -R "$OUT_DIR" | head -80 >&2
