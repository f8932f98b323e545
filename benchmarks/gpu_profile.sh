#!/usr/bin/env bash
# GPU profile for docs/benchmarks/profile-h100.md (one H100, random full-size weights, no download).
#
# Usage (from the repository root, on the GPU machine):
#   benchmarks/gpu_profile.sh [flux|configs] [OUT_DIR]
#     flux    (default, < 9 min on one H100): flux-dev 1024², 28 steps, bf16 eager / compiled /
#             fp8 eager / fp8 compiled, bare-diffusers baseline, matmul peaks (bf16, fp8), MFU.
#     configs every registered configuration at its native resolution (bf16, eager, all on GPU)
#             plus flux-cn-beta under gpu / model_offload / sequential_offload (run separately:
#             its duration depends on how many configurations the branches have registered).
#   OUT_DIR defaults to $OUT (the device tool's output folder) or reports/gpu-profile.
#   COMPILE_MODE=max-autotune-no-cudagraphs selects the slower-to-compile mode (≈ 374 s per
#   compile on the H100: too long for the 9-minute budget with two compiled points).
#
# Prints the Markdown table and writes OUT_DIR/<run-id>/ (run.json, profile.csv, profile.md,
# plots) and OUT_DIR/profile-h100-<mode>.md (the table with the command that produced it).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-flux}
OUT_DIR=${2:-${OUT:-reports/gpu-profile}}
PY=${PYTHON:-python3}
COMPILE_MODE=${COMPILE_MODE:-default}
DEVICE=${DEVICE:-cuda}      # DEVICE=cpu WEIGHTS=tiny: a dry run of this script's plumbing on a laptop
WEIGHTS=${WEIGHTS:-random}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD

if ! "$PY" -c "import diffusers" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PYTHONPATH
  else
    echo "gpu_profile: diffusers is not installed; run ../shared/tools/device-wheels.sh on the dev machine" \
         "so that .whl/ travels with the working tree" >&2
    exit 2
  fi
fi
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

case "$MODE" in
  flux)
    RUN_ID=flux-dev-1024-h100
    ARGS=(--configs flux-dev --resolutions 1024 --steps 28 --dtypes bf16 fp8 --compile off on
          --compile-mode "$COMPILE_MODE" --min-reps 3 --min-seconds 0 --max-reps 3 --peak-seconds 3)
    ;;
  configs)
    RUN_ID=configs-native-h100
    CONFIGS=$("$PY" -c "import evalsuite, evalsuite.config as c; print(' '.join(c.discover()))")
    ARGS=(--configs $CONFIGS --min-reps 3 --min-seconds 0 --max-reps 3 --peak-seconds 3)
    ;;
  *) echo "gpu_profile: unknown mode $MODE (flux or configs)" >&2; exit 2 ;;
esac

status=0
"$PY" -m evalsuite profile --weights "$WEIGHTS" --device "$DEVICE" "${ARGS[@]}" --out "$OUT_DIR" --run-id "$RUN_ID" \
  > "$OUT_DIR/$RUN_ID.log" 2>&1 || status=$?
if [ "$MODE" = configs ] && "$PY" -c "import evalsuite.config as c, sys; sys.exit('flux-cn-beta' not in c.discover())"; then
  "$PY" -m evalsuite profile --weights "$WEIGHTS" --device "$DEVICE" --configs flux-cn-beta --memory-modes gpu model_offload \
    sequential_offload --min-reps 1 --min-seconds 0 --max-reps 1 --no-baseline --peak-seconds 1 --out "$OUT_DIR" \
    --run-id flux-cn-beta-memory-h100 >> "$OUT_DIR/$RUN_ID.log" 2>&1 || status=$?
fi
tail -n 40 "$OUT_DIR/$RUN_ID.log" >&2

DOC="$OUT_DIR/profile-h100-$MODE.md"
{
  echo "<!-- produced by: benchmarks/gpu_profile.sh $MODE (COMPILE_MODE=$COMPILE_MODE) on $(date -u +%FT%TZ) -->"
  echo
  echo "Command: \`$PY -m evalsuite profile --weights $WEIGHTS --device $DEVICE ${ARGS[*]}\`"
  echo
  cat "$OUT_DIR/$RUN_ID/profile.md"
  if [ -f "$OUT_DIR/flux-cn-beta-memory-h100/profile.md" ]; then
    echo; echo "## flux-cn-beta memory modes"; echo
    sed -n '/^| point/,/^$/p' "$OUT_DIR/flux-cn-beta-memory-h100/profile.md"
  fi
} > "$DOC"
cat "$DOC"
exit $status
