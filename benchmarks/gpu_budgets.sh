#!/usr/bin/env bash
# GPU batch for docs/benchmarks/budgets-h200.md: `evalsuite plan` per configuration (random weights).
#
# Usage (repository root, on the GPU machine, after installing the .whl wheels as the device
# README says):  benchmarks/gpu_budgets.sh [CONFIG ...]
# Default configurations: flux-cn-beta-turbo8 flux-dev (sdxl-inpaint and flux-cn-alpha on request). Each runs in its own process
# (so one failure or hang loses only its own rows), capped at its own time; files land in $OUT as
# plan-<config>.{md,json,png}. DEVICE=cpu WEIGHTS=tiny: a dry run of the plumbing on a laptop.
# PLAN_STRATEGIES ("a;b;c"), PLAN_BUDGETS ("22 16") and PLAN_REPS (warm calls) override the lists below.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
PY=${PYTHON:-python3}
LW="precision=layerwise,memory=te_cpu+expandable"
LWA="precision=layerwise_all,memory=te_cpu+expandable"
declare -A STRATS=(
  [flux-cn-beta-turbo8]="resident;$LWA;$LWA+group_partial:0.2:stream;$LWA+group_partial:0.45:stream"
  [flux-cn-alpha]="resident;$LWA;$LWA+group_partial:0.45:stream;$LWA+group_partial:0.7:stream"
  [flux-dev]="resident;$LWA;$LWA+group_partial:0.3:stream"
  [sdxl-inpaint]="resident;memory=te_cpu;memory=te_cpu+expandable+vae_tiling;memory=te_cpu+group_block:1:stream+vae_tiling"
)
declare -A SECS=([flux-cn-beta-turbo8]=140 [flux-cn-alpha]=150 [flux-dev]=90 [sdxl-inpaint]=80)
declare -A LIMIT=([flux-cn-beta-turbo8]=285 [flux-dev]=285 [flux-cn-alpha]=280)
declare -A BUDGETS=([sdxl-inpaint]="22 16 12 8 6")
declare -A REPS=([flux-cn-alpha]=1)
for c in "${@:-flux-cn-beta-turbo8 flux-dev}"; do
  for config in $c; do
    echo "=== plan $config ($(date -u +%T))" >&2
    PLAN_STRATEGIES="${PLAN_STRATEGIES:-${STRATS[$config]:-}}" PLAN_BUDGETS="${PLAN_BUDGETS:-${BUDGETS[$config]:-22 16 12}}" \
      PLAN_REPS="${PLAN_REPS:-${REPS[$config]:-2}}" \
      timeout "${LIMIT[$config]:-$(( ${SECS[$config]:-200} + 150 ))}" "$PY" benchmarks/gpu_frontier.py "plan:$config=${SECS[$config]:-200}" \
      || echo "plan $config: exit $?" >&2
  done
done
