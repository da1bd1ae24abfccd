#!/usr/bin/env bash
# Issue 6's quantize and dequantize kernels at ResNet-50's activation shapes
# (batch 128), in GB/s against the card's DRAM peak. Run by
# scripts/gpu-check.sh (BUILD_DIR names the build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-gpu}
"$build/anvil_bench_quantize" --batch "${BATCH:-128}"
