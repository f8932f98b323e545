#!/usr/bin/env bash
# GPU smoke test of the scenarios on full-size random weights (no download): `evalsuite run`,
# `profile` (fp8 through the accel axes, both backends) and `frontier`, each cut short. It checks that
# the CUDA paths the CPU tests cannot reach still work after a change; its timings are not benchmarks.
# Usage (repository root, on the GPU machine, with the wheels of ../shared/tools/device-wheels.sh
# installed on PYTHONPATH): bash benchmarks/gpu_smoke.sh [OUT]
set -uo pipefail
out=${1:-${OUT:-reports/gpu-smoke}}
mkdir -p "$out"
ev() { timeout "${STEP_LIMIT:-240}" python3 -m evalsuite "$@"; }
status=0
step() {
  local name=$1; shift
  local t0=$SECONDS
  if "$@" > "$out/$name.log" 2>&1; then echo "ok   $name ($((SECONDS - t0)) s)"; else
    echo "FAIL $name ($((SECONDS - t0)) s, exit $?)"; tail -n 25 "$out/$name.log"; status=1; fi
}
step run ev run --configs flux-cn-beta-turbo8 sdxl-inpaint --weights random --device cuda --limit 2 \
  --metrics latency unmasked_psnr --out /tmp/gpu-smoke --run-id run --no-progress
step profile ev profile --configs flux-dev --steps 4 --dtypes bf16 fp8 --min-reps 2 --min-seconds 1 \
  --max-reps 3 --peak-seconds 1 --device cuda --out /tmp/gpu-smoke --run-id profile
step profile-scaled-mm ev profile --configs flux-dev --steps 4 --dtypes fp8 --fp8-backend scaled_mm \
  --min-reps 2 --min-seconds 1 --max-reps 3 --peak-seconds 1 --no-baseline --device cuda \
  --out /tmp/gpu-smoke --run-id profile-mm
step frontier ev frontier --configs flux-cn-beta-turbo8 --points ref "precision=fp8_row,qkv" \
  "precision=fp8_row,qkv,vae=channels_last,cudagraph" --cases 1 \
  --seeds 0 --device cuda --out /tmp/gpu-smoke --run-id frontier
for f in run/report.md profile/profile.md profile-mm/profile.md frontier/frontier.md; do
  [ -f "/tmp/gpu-smoke/$f" ] && cp "/tmp/gpu-smoke/$f" "$out/$(echo "$f" | tr / -)"
done
exit $status
