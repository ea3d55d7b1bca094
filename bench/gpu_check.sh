#!/usr/bin/env bash
# GPU readiness of the torch-sft trainer in under 5 minutes: bf16 training with falling loss, packed batches through
# SDPA/flash equal to the unpacked run, torch.compile, tokens/s and peak memory against the CPU run.
#
#   bash bench/gpu_check.sh          # the CPU half, then the GPU half when torch sees a CUDA device
#   bash bench/gpu_check.sh cpu      # the CPU half only (what CI runs)
#
# Each half is bounded by `timeout`; figures go to bench/results/gpu_check_{cpu,cuda}.json.
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
MODE="${1:-auto}"
STEPS="${GPU_CHECK_STEPS:-30}"
OUT="${GPU_CHECK_OUT:-bench/results}"

echo "== CPU half (${STEPS} steps)"
timeout 150 "$PY" bench/gpu_check.py --device cpu --steps "$STEPS" --out "$OUT"

if [ "$MODE" = "cpu" ]; then
  exit 0
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  if [ "$MODE" = "gpu" ]; then
    echo "gpu_check: torch sees no CUDA device" >&2
    exit 1
  fi
  echo "== GPU half skipped: torch sees no CUDA device"
  exit 0
fi
echo "== GPU half (${STEPS} steps)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 150 "$PY" bench/gpu_check.py --device cuda --steps "$STEPS" --out "$OUT"
